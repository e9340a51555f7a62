//! Byte sizes as users type them (`quiltd --log-max-size 10m`,
//! `quilt run --tmpfs /t:size=64m`) and as the CLI prints them.
//!
//! The grammar is docker's: `k`, `m` and `g` are powers of 1024, in any
//! case, optionally followed by `b` or `ib` (`64k`, `64KB`, `10MiB`); a
//! plain number is bytes.

/// A size that [`parse_size`] refused; the message quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("invalid size {0:?}: expected e.g. 65536, 64k or 10m")]
    NoNumber(String),
    #[error("invalid size {0:?}: number too large")]
    NumberTooLarge(String),
    #[error("invalid size {0:?}: unknown unit (use k, m or g)")]
    UnknownUnit(String),
    #[error("invalid size {0:?}: too large")]
    TooLarge(String),
}

/// A byte count: digits, then an optional unit (see the module doc).
/// Blanks around the number and the unit are ignored: `" 3 m "` is 3 MiB.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(SizeError::NoNumber(s.to_owned()));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| SizeError::NumberTooLarge(s.to_owned()))?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        _ => return Err(SizeError::UnknownUnit(s.to_owned())),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| SizeError::TooLarge(s.to_owned()))
}

/// `512 B`, `1.5 KiB`, `3.0 MiB`, ... up to TiB.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (s, v) in [
            ("0", 0),
            ("10", 10),
            ("65536", 65536),
            ("64k", 65536),
            ("64K", 65536),
            ("64kb", 65536),
            ("64KiB", 65536),
            ("10m", 10 << 20),
            ("10MB", 10 << 20),
            ("10MiB", 10 << 20),
            ("1g", 1 << 30),
            ("1gb", 1 << 30),
            ("1GiB", 1 << 30),
            (" 3 m ", 3 << 20),
            ("12b", 12),
        ] {
            assert_eq!(parse_size(s), Ok(v), "{s}");
        }
        for bad in [
            "",
            "k",
            "-1",
            "+1",
            "1.5m",
            "10x",
            "10kk",
            "10 k b x",
            "99999999999999999999",
            "17179869184g",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn size_errors_quote_the_input() {
        assert_eq!(
            parse_size("lots").unwrap_err().to_string(),
            "invalid size \"lots\": expected e.g. 65536, 64k or 10m"
        );
        assert_eq!(
            parse_size("10x").unwrap_err().to_string(),
            "invalid size \"10x\": unknown unit (use k, m or g)"
        );
        assert_eq!(
            parse_size("99999999999999999999").unwrap_err().to_string(),
            "invalid size \"99999999999999999999\": number too large"
        );
        assert_eq!(
            parse_size("17179869184g").unwrap_err().to_string(),
            "invalid size \"17179869184g\": too large"
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(human_size(5 << 40), "5.0 TiB");
        assert_eq!(human_size(5 << 50), "5120.0 TiB");
    }
}
