//! The value of `quilt logs --since`: a duration before now (`10s`, `5m`,
//! `2h`, `1h30m`, `1d`, `250ms`), an RFC 3339 time
//! (`2026-11-23T19:00:00Z`, `2026-11-23T20:00:00.5+01:00`) or unix seconds
//! (`1795460400`, `1795460400.25`).

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use prost_types::Timestamp;

const NANOS: i128 = 1_000_000_000;

/// Parses `s` relative to the current time.
pub fn parse_since(s: &str) -> Result<Timestamp, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    parse_at(s, now)
}

/// `--until` of `events`: the same forms as `--since`.
pub fn parse_until(s: &str) -> Result<Timestamp, String> {
    parse_since(s).map_err(|e| e.replacen("--since", "--until", 1))
}

fn from_nanos(ns: i128) -> Timestamp {
    Timestamp {
        seconds: ns.div_euclid(NANOS) as i64,
        nanos: ns.rem_euclid(NANOS) as i32,
    }
}

/// Parses `s` with `now_ns` as the current unix time in nanoseconds.
fn parse_at(s: &str, now_ns: i128) -> Result<Timestamp, String> {
    let t = s.trim();
    let bad = || {
        format!(
            "invalid time {s:?}: expected a duration (10s, 5m, 1h30m), \
             an RFC 3339 time (2026-11-23T19:00:00Z) or unix seconds"
        )
    };
    if t.is_empty() {
        return Err(bad());
    }
    if let Some(ns) = unix_seconds(t) {
        return Ok(from_nanos(ns));
    }
    if let Some(d) = duration_ns(t) {
        return Ok(from_nanos(now_ns - d));
    }
    if t.contains('T') || t.contains('t') {
        return Timestamp::from_str(t).map_err(|_| bad());
    }
    Err(bad())
}

/// `SECONDS[.FRACTION]`.
fn unix_seconds(t: &str) -> Option<i128> {
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty()
        || whole.len() > 12
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 9
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (t.contains('.') && frac.is_empty())
    {
        return None;
    }
    let secs: i128 = whole.parse().ok()?;
    let mut nanos: i128 = 0;
    for (i, b) in frac.bytes().enumerate() {
        nanos += i128::from(b - b'0') * 10i128.pow(8 - i as u32);
    }
    Some(secs * NANOS + nanos)
}

/// A sequence of `<integer><unit>` with units d, h, m, s, ms.
/// A duration (`30s`, `5m`, `1h30m`, `250ms`, `0`) in milliseconds, for
/// `--ttl` and `--idle-timeout`.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(0);
    }
    duration_ns(t)
        .filter(|_| !t.is_empty())
        .and_then(|ns| u64::try_from(ns / 1_000_000).ok())
        .ok_or_else(|| format!("invalid duration {s:?}: expected e.g. 30s, 5m, 1h30m, 250ms"))
}

fn duration_ns(t: &str) -> Option<i128> {
    let mut rest = t;
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 || digits > 12 {
            return None;
        }
        let n: i128 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit: i128 = match &rest[..end] {
            "d" => 86_400 * NANOS,
            "h" => 3_600 * NANOS,
            "m" => 60 * NANOS,
            "s" => NANOS,
            "ms" => NANOS / 1000,
            _ => return None,
        };
        total += n * unit;
        rest = &rest[end..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i128 = 1_795_460_400 * NANOS; // 2026-11-23T19:00:00Z

    fn secs(s: &str) -> Result<(i64, i32), String> {
        parse_at(s, NOW).map(|t| (t.seconds, t.nanos))
    }

    #[test]
    fn plain_durations() {
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("0"), Ok(0));
        assert!(parse_duration_ms("").is_err());
        assert!(parse_duration_ms("10").is_err());
        assert!(parse_duration_ms("-5s").is_err());
    }

    #[test]
    fn durations_count_back_from_now() {
        assert_eq!(secs("10s"), Ok((1_795_460_390, 0)));
        assert_eq!(secs("5m"), Ok((1_795_460_100, 0)));
        assert_eq!(secs("2h"), Ok((1_795_453_200, 0)));
        assert_eq!(secs("1h30m"), Ok((1_795_455_000, 0)));
        assert_eq!(secs("1d"), Ok((1_795_374_000, 0)));
        assert_eq!(secs("250ms"), Ok((1_795_460_399, 750_000_000)));
        assert_eq!(secs(" 1m1s "), Ok((1_795_460_339, 0)));
    }

    #[test]
    fn absolute_times() {
        assert_eq!(secs("2026-11-23T19:00:00Z"), Ok((1_795_460_400, 0)));
        assert_eq!(
            secs("2026-11-23T20:00:00.5+01:00"),
            Ok((1_795_460_400, 500_000_000))
        );
        assert_eq!(secs("1795460400"), Ok((1_795_460_400, 0)));
        assert_eq!(secs("1795460400.25"), Ok((1_795_460_400, 250_000_000)));
        assert_eq!(secs("0"), Ok((0, 0)));
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "s",
            "x",
            "10x",
            "1h30",
            "-5m",
            "5 m",
            "1.5h",
            "12.",
            ".5",
            "yesterday",
            "2026-13-45T99:00:00Z",
            "2026-11-23",
        ] {
            let e = secs(bad).expect_err(bad);
            assert!(e.contains("invalid time"), "{e}");
        }
    }
}
