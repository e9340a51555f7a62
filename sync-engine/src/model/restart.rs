//! Restart policies (docker's `--restart`): which exits are followed by a
//! new start, and the back-off between them. The monitor asks
//! [`Container::restart_due`](super::Container::restart_due) after recording
//! an exit; the restart itself is `services::restarter`.
use super::container::ExitInfo;
use std::time::Duration;

/// When a container that exited is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    /// Never.
    #[default]
    No,
    /// After a non-zero exit (or a death by signal), at most `max` times
    /// (0: no limit).
    OnFailure { max: u32 },
    /// After every exit.
    Always,
    /// After every exit; as `always`, a stop or kill by the user ends it.
    UnlessStopped,
}

/// The first back-off; it doubles with each quick exit, up to `BACKOFF_MAX`.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A run at least this long resets the back-off to `BACKOFF_FIRST`.
pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(10);

impl RestartPolicy {
    /// Parses `no`, `on-failure`, `on-failure:N`, `always` or `unless-stopped`.
    pub fn parse(s: &str) -> Result<RestartPolicy, String> {
        let bad = || {
            format!(
                "invalid restart policy {} (expected no, on-failure[:N], always or unless-stopped)",
                crate::validate::echo(s)
            )
        };
        Ok(match s {
            "" | "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => RestartPolicy::OnFailure { max: 0 },
            _ => match s.strip_prefix("on-failure:") {
                Some(n) => RestartPolicy::OnFailure {
                    max: n.parse().map_err(|_| bad())?,
                },
                None => return Err(bad()),
            },
        })
    }

    /// Builds a policy from its stored (or wire) name and maximum.
    pub fn from_parts(name: &str, max: u32) -> Result<RestartPolicy, String> {
        match (RestartPolicy::parse(name)?, max) {
            (RestartPolicy::OnFailure { .. }, max) => Ok(RestartPolicy::OnFailure { max }),
            (p, 0) => Ok(p),
            (_, _) => Err(format!(
                "a maximum restart count only applies to on-failure, not {name:?}"
            )),
        }
    }

    /// The stored name: `no`, `on-failure`, `always`, `unless-stopped`.
    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure { .. } => "on-failure",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }

    /// The maximum count of on-failure (0: none, and for the others).
    pub fn max(self) -> u32 {
        match self {
            RestartPolicy::OnFailure { max } => max,
            _ => 0,
        }
    }

    /// Whether an exit calls for a restart, `count` restarts having been
    /// made already.
    pub fn wants_restart(self, exit: &ExitInfo, count: u32) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max } => {
                (exit.exit_code != 0 || exit.signal != 0) && (max == 0 || count < max)
            }
        }
    }
}

/// The wait before the next restart after `quick` consecutive runs shorter
/// than `BACKOFF_RESET_AFTER`: 100 ms, 200 ms, 400 ms, ... up to a minute.
pub fn backoff(quick: u32) -> Duration {
    BACKOFF_FIRST
        .saturating_mul(1u32.checked_shl(quick.min(20)).unwrap_or(u32::MAX))
        .min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: i32, signal: i32) -> ExitInfo {
        ExitInfo {
            exit_code: code,
            signal,
            oom_killed: false,
            finished_at_ns: None,
        }
    }

    #[test]
    fn parse_and_names() {
        assert_eq!(RestartPolicy::parse("no").unwrap(), RestartPolicy::No);
        assert_eq!(RestartPolicy::parse("").unwrap(), RestartPolicy::No);
        assert_eq!(
            RestartPolicy::parse("on-failure:3").unwrap(),
            RestartPolicy::OnFailure { max: 3 }
        );
        assert_eq!(
            RestartPolicy::parse("on-failure").unwrap(),
            RestartPolicy::OnFailure { max: 0 }
        );
        for bad in [
            "sometimes",
            "on-failure:",
            "on-failure:-1",
            "always:2",
            "ON-FAILURE",
        ] {
            assert!(RestartPolicy::parse(bad).is_err(), "{bad}");
        }
        for p in [
            RestartPolicy::No,
            RestartPolicy::Always,
            RestartPolicy::UnlessStopped,
            RestartPolicy::OnFailure { max: 7 },
        ] {
            assert_eq!(RestartPolicy::from_parts(p.name(), p.max()).unwrap(), p);
        }
        assert!(RestartPolicy::from_parts("always", 2).is_err());
    }

    #[test]
    fn which_exits_restart() {
        let f = RestartPolicy::OnFailure { max: 3 };
        assert!(f.wants_restart(&exit(1, 0), 0));
        assert!(f.wants_restart(&exit(137, 9), 2));
        assert!(!f.wants_restart(&exit(1, 0), 3));
        assert!(!f.wants_restart(&exit(0, 0), 0));
        assert!(RestartPolicy::OnFailure { max: 0 }.wants_restart(&exit(2, 0), 1000));
        assert!(RestartPolicy::Always.wants_restart(&exit(0, 0), 1000));
        assert!(RestartPolicy::UnlessStopped.wants_restart(&exit(0, 0), 0));
        assert!(!RestartPolicy::No.wants_restart(&exit(1, 0), 0));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(10), BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }
}
