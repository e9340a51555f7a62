//! Time formatting: RFC 3339 timestamps and human-readable durations.

use std::time::{SystemTime, UNIX_EPOCH};

use prost_types::Timestamp;

/// How many fractional-second digits to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fraction {
    /// Nanoseconds without trailing zeros; none at all on a whole second.
    Trimmed,
    /// Always nine digits (aligned columns, e.g. `logs -t`).
    Nanos,
}

/// Seconds and nanoseconds since the epoch, nanos normalized to 0..1e9.
fn normalize(ts: &Timestamp) -> (i64, u32) {
    let extra = i64::from(ts.nanos).div_euclid(1_000_000_000);
    let nanos = i64::from(ts.nanos).rem_euclid(1_000_000_000);
    (
        ts.seconds.saturating_add(extra),
        u32::try_from(nanos).unwrap_or(0),
    )
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a year;
    // an era is a 400-year cycle of 146097 days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// Formats `ts` as an RFC 3339 UTC time, e.g. `2024-05-01T12:00:00.5Z`.
pub fn rfc3339(ts: &Timestamp, fraction: Fraction) -> String {
    let (secs, nanos) = normalize(ts);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let in_day = secs.rem_euclid(86_400);
    let (hour, minute, second) = (in_day / 3600, in_day % 3600 / 60, in_day % 60);
    let mut out = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
    match fraction {
        Fraction::Nanos => out.push_str(&format!(".{nanos:09}")),
        Fraction::Trimmed if nanos != 0 => {
            let digits = format!("{nanos:09}");
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
        Fraction::Trimmed => {}
    }
    out.push('Z');
    out
}

/// The current time as whole seconds since the epoch.
pub fn now_seconds() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Whole seconds elapsed from `ts` to `now` (0 when `ts` is in the future).
pub fn seconds_since(ts: &Timestamp, now: i64) -> i64 {
    (now - normalize(ts).0).max(0)
}

/// A rough, human-readable length of time: "5 seconds", "About a minute",
/// "3 hours", "2 weeks".
pub fn human_duration(seconds: i64) -> String {
    const MINUTE: i64 = 60;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;

    if seconds < 1 {
        return "Less than a second".to_owned();
    }
    if seconds == 1 {
        return "1 second".to_owned();
    }
    if seconds < MINUTE {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / MINUTE;
    if minutes == 1 {
        return "About a minute".to_owned();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Round to the nearest hour from here on.
    let hours = (seconds + HOUR / 2) / HOUR;
    if hours == 1 {
        return "About an hour".to_owned();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    let days = hours * HOUR / DAY;
    if days < 14 {
        return format!("{days} days");
    }
    if days < 60 {
        return format!("{} weeks", days / 7);
    }
    if days < 730 {
        return format!("{} months", days / 30);
    }
    format!("{} years", days / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64, nanos: i32) -> Timestamp {
        Timestamp { seconds, nanos }
    }

    #[test]
    fn epoch_and_known_dates() {
        assert_eq!(
            rfc3339(&ts(0, 0), Fraction::Trimmed),
            "1970-01-01T00:00:00Z"
        );
        // 2000-02-29 (a leap day in a century leap year).
        assert_eq!(
            rfc3339(&ts(951_782_400, 0), Fraction::Trimmed),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(&ts(1_714_564_800, 0), Fraction::Trimmed),
            "2024-05-01T12:00:00Z"
        );
        // 2038-01-19T03:14:07Z, the 32-bit rollover.
        assert_eq!(
            rfc3339(&ts(2_147_483_647, 0), Fraction::Trimmed),
            "2038-01-19T03:14:07Z"
        );
        assert_eq!(
            rfc3339(&ts(-1, 0), Fraction::Trimmed),
            "1969-12-31T23:59:59Z"
        );
        // 2100 is not a leap year: 2100-02-28 is followed by 2100-03-01.
        assert_eq!(
            rfc3339(&ts(4_107_542_400, 0), Fraction::Trimmed),
            "2100-03-01T00:00:00Z"
        );
    }

    #[test]
    fn every_day_of_a_range_round_trips() {
        // Day numbers and dates must advance together without gaps.
        let mut prev = civil_from_days(-800_000);
        for day in -799_999..800_000 {
            let cur = civil_from_days(day);
            let next_day = (prev.0, prev.1, prev.2 + 1);
            let next_month = (prev.0, prev.1 + 1, 1);
            let next_year = (prev.0 + 1, 1, 1);
            assert!(
                cur == next_day || cur == next_month || cur == next_year,
                "{prev:?} -> {cur:?}"
            );
            prev = cur;
        }
    }

    #[test]
    fn fractions() {
        let t = ts(1_714_564_800, 500_000_000);
        assert_eq!(rfc3339(&t, Fraction::Trimmed), "2024-05-01T12:00:00.5Z");
        assert_eq!(
            rfc3339(&t, Fraction::Nanos),
            "2024-05-01T12:00:00.500000000Z"
        );
        assert_eq!(
            rfc3339(&ts(0, 0), Fraction::Nanos),
            "1970-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            rfc3339(&ts(0, 123_456_789), Fraction::Trimmed),
            "1970-01-01T00:00:00.123456789Z"
        );
        // Unnormalized nanos are carried into seconds.
        assert_eq!(
            rfc3339(&ts(1, -500_000_000), Fraction::Trimmed),
            "1970-01-01T00:00:00.5Z"
        );
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(60), "About a minute");
        assert_eq!(human_duration(119), "About a minute");
        assert_eq!(human_duration(180), "3 minutes");
        assert_eq!(human_duration(3599), "59 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(47 * 3600), "47 hours");
        assert_eq!(human_duration(3 * 86_400), "3 days");
        assert_eq!(human_duration(21 * 86_400), "3 weeks");
        assert_eq!(human_duration(90 * 86_400), "3 months");
        assert_eq!(human_duration(3 * 365 * 86_400), "3 years");
    }

    #[test]
    fn elapsed_is_never_negative() {
        assert_eq!(seconds_since(&ts(100, 0), 160), 60);
        assert_eq!(seconds_since(&ts(200, 0), 160), 0);
    }
}
