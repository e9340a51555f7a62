//! Parsing of quiltd's container log limits (`--log-max-size`).

/// A byte count: plain bytes, or with a binary suffix `k`, `m`, `g`
/// (optionally followed by `b` or `ib`, any case): `65536`, `64k`, `10m`,
/// `10MiB`, `1g`. `0` means no cap.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "invalid size {s:?}: expected e.g. 65536, 64k or 10m"
        ));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?}: number too large"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return Err(format!("invalid size {s:?}: unknown unit (use k, m or g)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("invalid size {s:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        for (s, v) in [
            ("0", 0),
            ("65536", 65536),
            ("64k", 65536),
            ("64K", 65536),
            ("64kb", 65536),
            ("10m", 10 << 20),
            ("10MiB", 10 << 20),
            ("1g", 1 << 30),
            (" 3 m ", 3 << 20),
            ("12b", 12),
        ] {
            assert_eq!(parse_size(s), Ok(v), "{s}");
        }
        for bad in [
            "",
            "k",
            "-1",
            "1.5m",
            "10x",
            "99999999999999999999",
            "17179869184g",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
