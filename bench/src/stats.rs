//! Latency statistics: nearest-rank percentiles over a list of durations.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// `x` rounded to `decimals` places (as figures are reported).
pub fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// `a / b` to two places where both measured something; None otherwise.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (a > 0.0 && b > 0.0).then(|| round(a / b, 2))
}

/// Summary of one measured operation. Times are milliseconds. `n` counts the
/// successful samples; `errors` the attempts that failed (not in the times).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub min_ms: f64,
    pub avg_ms: f64,
}

/// Nearest-rank percentile of an ascending slice: the smallest value such
/// that at least `p` percent of the samples are <= it.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl Stats {
    pub fn from_durations(mut v: Vec<Duration>, errors: u64) -> Stats {
        v.sort_unstable();
        if v.is_empty() {
            return Stats {
                errors,
                ..Stats::default()
            };
        }
        let total: Duration = v.iter().sum();
        Stats {
            n: v.len(),
            errors,
            p50_ms: ms(percentile(&v, 50.0)),
            p95_ms: ms(percentile(&v, 95.0)),
            p99_ms: ms(percentile(&v, 99.0)),
            max_ms: ms(v[v.len() - 1]),
            min_ms: ms(v[0]),
            avg_ms: ms(total / v.len() as u32),
        }
    }
}

/// Collects the samples of one operation, and its failures by kind.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    pub times: Vec<Duration>,
    pub errors: u64,
    pub error_kinds: BTreeMap<String, u64>,
    /// The first few error messages, to make failures readable.
    pub error_examples: Vec<String>,
}

impl Samples {
    pub fn ok(&mut self, d: Duration) {
        self.times.push(d);
    }

    pub fn err(&mut self, kind: &str, message: impl Into<String>) {
        self.errors += 1;
        *self.error_kinds.entry(kind.to_string()).or_default() += 1;
        if self.error_examples.len() < 5 {
            self.error_examples.push(message.into());
        }
    }

    pub fn merge(&mut self, other: Samples) {
        self.times.extend(other.times);
        self.errors += other.errors;
        for (k, v) in other.error_kinds {
            *self.error_kinds.entry(k).or_default() += v;
        }
        for e in other.error_examples {
            if self.error_examples.len() < 5 {
                self.error_examples.push(e);
            }
        }
    }

    pub fn stats(&self) -> Stats {
        Stats::from_durations(self.times.clone(), self.errors)
    }

    /// Stats plus the error breakdown, as the report holds them.
    pub fn report(&self) -> OpStats {
        let failed = self.errors > 0;
        OpStats {
            stats: self.stats(),
            error_kinds: failed.then(|| self.error_kinds.clone()),
            error_examples: failed.then(|| self.error_examples.clone()),
        }
    }
}

/// One operation in the report: its [`Stats`] and, when some attempts
/// failed, how (by kind, and the first few messages).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OpStats {
    #[serde(flatten)]
    pub stats: Stats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kinds: Option<BTreeMap<String, u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_examples: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(d).collect();
        assert_eq!(percentile(&v, 50.0), d(50));
        assert_eq!(percentile(&v, 95.0), d(95));
        assert_eq!(percentile(&v, 99.0), d(99));
        assert_eq!(percentile(&v, 100.0), d(100));
        assert_eq!(percentile(&v, 0.0), d(1));
        let small = vec![d(3), d(1), d(2)];
        let s = Stats::from_durations(small, 1);
        assert_eq!(s.n, 3);
        assert_eq!(s.errors, 1);
        assert_eq!(s.p50_ms, 2.0);
        assert_eq!(s.p99_ms, 3.0);
        assert_eq!(s.min_ms, 1.0);
        assert_eq!(s.avg_ms, 2.0);
    }

    #[test]
    fn empty() {
        let s = Stats::from_durations(vec![], 4);
        assert_eq!(s.n, 0);
        assert_eq!(s.errors, 4);
        assert_eq!(s.p99_ms, 0.0);
    }
}
