//! Polling with a deadline.

use std::time::{Duration, Instant};

/// Polls `f` with a growing back-off (5 ms doubling up to 100 ms) until it
/// returns Some or `timeout` passes; a last try is made at the deadline.
pub fn retry<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_value_or_gives_up() {
        let mut n = 0;
        assert_eq!(
            retry(Duration::from_secs(5), || {
                n += 1;
                (n == 3).then_some(n)
            }),
            Some(3)
        );
        assert_eq!(retry(Duration::from_millis(20), || None::<()>), None);
    }
}
