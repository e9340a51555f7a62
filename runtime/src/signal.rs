//! Signals as a type: a signal number the kernel accepts (1..=64), its
//! names ("TERM", "SIGTERM", "RTMIN+3") and the parser for signals named in
//! requests.
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// A signal number in 1..=64 (the kernel's range on Linux).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

/// Kernel real-time signal range (glibc reserves 32 and 33 for itself).
const RTMIN: i32 = 34;
const RTMAX: i32 = 64;
/// The highest signal number.
const MAX: i32 = 64;

impl Signal {
    pub const HUP: Signal = Signal(libc::SIGHUP);
    pub const INT: Signal = Signal(libc::SIGINT);
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    pub const ILL: Signal = Signal(libc::SIGILL);
    pub const TRAP: Signal = Signal(libc::SIGTRAP);
    pub const ABRT: Signal = Signal(libc::SIGABRT);
    pub const BUS: Signal = Signal(libc::SIGBUS);
    pub const FPE: Signal = Signal(libc::SIGFPE);
    pub const KILL: Signal = Signal(libc::SIGKILL);
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    pub const SEGV: Signal = Signal(libc::SIGSEGV);
    pub const USR2: Signal = Signal(libc::SIGUSR2);
    pub const PIPE: Signal = Signal(libc::SIGPIPE);
    pub const ALRM: Signal = Signal(libc::SIGALRM);
    pub const TERM: Signal = Signal(libc::SIGTERM);
    pub const STKFLT: Signal = Signal(libc::SIGSTKFLT);
    pub const CHLD: Signal = Signal(libc::SIGCHLD);
    pub const CONT: Signal = Signal(libc::SIGCONT);
    pub const STOP: Signal = Signal(libc::SIGSTOP);
    pub const TSTP: Signal = Signal(libc::SIGTSTP);
    pub const TTIN: Signal = Signal(libc::SIGTTIN);
    pub const TTOU: Signal = Signal(libc::SIGTTOU);
    pub const URG: Signal = Signal(libc::SIGURG);
    pub const XCPU: Signal = Signal(libc::SIGXCPU);
    pub const XFSZ: Signal = Signal(libc::SIGXFSZ);
    pub const VTALRM: Signal = Signal(libc::SIGVTALRM);
    pub const PROF: Signal = Signal(libc::SIGPROF);
    pub const WINCH: Signal = Signal(libc::SIGWINCH);
    pub const IO: Signal = Signal(libc::SIGIO);
    pub const PWR: Signal = Signal(libc::SIGPWR);
    pub const SYS: Signal = Signal(libc::SIGSYS);
    /// The first real-time signal the kernel offers a program (34).
    pub const RTMIN: Signal = Signal(RTMIN);
    /// The last signal (64).
    pub const RTMAX: Signal = Signal(RTMAX);

    /// The signal with this number; None outside 1..=64.
    pub const fn from_number(n: i32) -> Option<Signal> {
        if n >= 1 && n <= MAX {
            Some(Signal(n))
        } else {
            None
        }
    }

    /// The signal number.
    pub const fn number(self) -> i32 {
        self.0
    }

    /// True for the real-time signals (RTMIN..=RTMAX).
    pub const fn is_realtime(self) -> bool {
        self.0 >= RTMIN
    }

    /// "KILL", "SIGKILL", "kill", "9", "RTMIN+3", "SIGRTMAX-1" -> the signal.
    /// None for unknown names and numbers outside 1..=64.
    pub fn parse(s: &str) -> Option<Signal> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return Signal::from_number(s.parse().ok()?);
        }
        let upper = s.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some(&(_, sig)) = NAMES.iter().find(|(nm, _)| *nm == name) {
            return Some(sig);
        }
        // RTMIN, RTMIN+n, RTMAX, RTMAX-n.
        let rt = |base: i32, rest: &str, sign: char| -> Option<Signal> {
            if rest.is_empty() {
                return Some(Signal(base));
            }
            let off = rest.strip_prefix(sign)?;
            if off.is_empty() || !off.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let off: i32 = off.parse().ok()?;
            let n = if sign == '+' { base + off } else { base - off };
            (RTMIN..=RTMAX).contains(&n).then_some(Signal(n))
        };
        if let Some(rest) = name.strip_prefix("RTMIN") {
            return rt(RTMIN, rest, '+');
        }
        if let Some(rest) = name.strip_prefix("RTMAX") {
            return rt(RTMAX, rest, '-');
        }
        None
    }

    /// The signal's name as `kill -l` shows it, with the SIG prefix:
    /// "SIGTERM", "SIGRTMIN+3", "SIGRTMAX-1". Signals 32 and 33, which
    /// have no name (glibc keeps them), are shown by their number. `parse`
    /// accepts every name given here.
    pub fn name(self) -> Cow<'static, str> {
        if let Some((_, name)) = PRIMARY_NAMES.iter().find(|(sig, _)| *sig == self) {
            return Cow::Borrowed(name);
        }
        let n = self.0;
        // Like bash: RTMIN+n up to the middle of the range, RTMAX-n above it.
        Cow::Owned(match n {
            RTMIN => "SIGRTMIN".to_owned(),
            RTMAX => "SIGRTMAX".to_owned(),
            n if n > RTMIN && n <= (RTMIN + RTMAX) / 2 => format!("SIGRTMIN+{}", n - RTMIN),
            n if n > RTMIN => format!("SIGRTMAX-{}", RTMAX - n),
            n => n.to_string(),
        })
    }
}

/// Names accepted by `parse` (without the SIG prefix), aliases included.
const NAMES: &[(&str, Signal)] = &[
    ("HUP", Signal::HUP),
    ("INT", Signal::INT),
    ("QUIT", Signal::QUIT),
    ("ILL", Signal::ILL),
    ("TRAP", Signal::TRAP),
    ("ABRT", Signal::ABRT),
    ("IOT", Signal::ABRT),
    ("BUS", Signal::BUS),
    ("FPE", Signal::FPE),
    ("KILL", Signal::KILL),
    ("USR1", Signal::USR1),
    ("SEGV", Signal::SEGV),
    ("USR2", Signal::USR2),
    ("PIPE", Signal::PIPE),
    ("ALRM", Signal::ALRM),
    ("TERM", Signal::TERM),
    ("STKFLT", Signal::STKFLT),
    ("CHLD", Signal::CHLD),
    ("CLD", Signal::CHLD),
    ("CONT", Signal::CONT),
    ("STOP", Signal::STOP),
    ("TSTP", Signal::TSTP),
    ("TTIN", Signal::TTIN),
    ("TTOU", Signal::TTOU),
    ("URG", Signal::URG),
    ("XCPU", Signal::XCPU),
    ("XFSZ", Signal::XFSZ),
    ("VTALRM", Signal::VTALRM),
    ("PROF", Signal::PROF),
    ("WINCH", Signal::WINCH),
    ("IO", Signal::IO),
    ("POLL", Signal::IO),
    ("PWR", Signal::PWR),
    ("SYS", Signal::SYS),
];

/// The name `name()` gives each named signal (no aliases).
const PRIMARY_NAMES: &[(Signal, &str)] = &[
    (Signal::HUP, "SIGHUP"),
    (Signal::INT, "SIGINT"),
    (Signal::QUIT, "SIGQUIT"),
    (Signal::ILL, "SIGILL"),
    (Signal::TRAP, "SIGTRAP"),
    (Signal::ABRT, "SIGABRT"),
    (Signal::BUS, "SIGBUS"),
    (Signal::FPE, "SIGFPE"),
    (Signal::KILL, "SIGKILL"),
    (Signal::USR1, "SIGUSR1"),
    (Signal::SEGV, "SIGSEGV"),
    (Signal::USR2, "SIGUSR2"),
    (Signal::PIPE, "SIGPIPE"),
    (Signal::ALRM, "SIGALRM"),
    (Signal::TERM, "SIGTERM"),
    (Signal::STKFLT, "SIGSTKFLT"),
    (Signal::CHLD, "SIGCHLD"),
    (Signal::CONT, "SIGCONT"),
    (Signal::STOP, "SIGSTOP"),
    (Signal::TSTP, "SIGTSTP"),
    (Signal::TTIN, "SIGTTIN"),
    (Signal::TTOU, "SIGTTOU"),
    (Signal::URG, "SIGURG"),
    (Signal::XCPU, "SIGXCPU"),
    (Signal::XFSZ, "SIGXFSZ"),
    (Signal::VTALRM, "SIGVTALRM"),
    (Signal::PROF, "SIGPROF"),
    (Signal::WINCH, "SIGWINCH"),
    (Signal::IO, "SIGIO"),
    (Signal::PWR, "SIGPWR"),
    (Signal::SYS, "SIGSYS"),
];

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A signal name or number that `Signal::parse` does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid signal {0:?}")]
pub struct InvalidSignal(pub String);

impl FromStr for Signal {
    type Err = InvalidSignal;

    fn from_str(s: &str) -> Result<Signal, InvalidSignal> {
        Signal::parse(s).ok_or_else(|| InvalidSignal(s.to_owned()))
    }
}

impl TryFrom<i32> for Signal {
    type Error = InvalidSignal;

    fn try_from(n: i32) -> Result<Signal, InvalidSignal> {
        Signal::from_number(n).ok_or_else(|| InvalidSignal(n.to_string()))
    }
}

impl From<Signal> for i32 {
    fn from(s: Signal) -> i32 {
        s.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Option<i32> {
        Signal::parse(s).map(Signal::number)
    }

    #[test]
    fn parses_names_and_numbers() {
        for s in ["KILL", "SIGKILL", "kill", "sigkill", "SigKill", "9", " 9 "] {
            assert_eq!(parse(s), Some(9), "{s}");
        }
        assert_eq!(parse("TERM"), Some(15));
        assert_eq!(parse("sigterm"), Some(15));
        assert_eq!(parse("15"), Some(15));
        assert_eq!(parse("HUP"), Some(1));
        assert_eq!(parse("usr1"), Some(10));
        assert_eq!(parse("SIGUSR2"), Some(12));
        assert_eq!(parse("1"), Some(1));
        assert_eq!(parse("64"), Some(64));
        assert_eq!(parse("RTMIN"), Some(34));
        assert_eq!(parse("RTMIN+3"), Some(37));
        assert_eq!(parse("SIGRTMIN+2"), Some(36));
        assert_eq!(parse("rtmax-1"), Some(63));
        assert_eq!(parse("IOT"), Some(6));
        assert_eq!(parse("CLD"), Some(17));
        assert_eq!(parse("POLL"), Some(29));
        for bad in [
            "",
            "0",
            "65",
            "-1",
            "+9",
            "NOPE",
            "SIG",
            "9x",
            "RTMIN+40",
            "RTMIN+",
            "RTMAX+1",
            "RTMIN-1",
            "99999999999999",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
            assert_eq!(bad.parse::<Signal>(), Err(InvalidSignal(bad.into())));
        }
    }

    #[test]
    fn consts_match_the_platform() {
        assert_eq!(Signal::KILL.number(), 9);
        assert_eq!(Signal::TERM.number(), 15);
        assert_eq!(Signal::RTMIN.number(), 34);
        assert_eq!(Signal::RTMAX.number(), 64);
        assert_eq!(i32::from(Signal::INT), libc::SIGINT);
        for (_, sig) in NAMES {
            let nix = nix::sys::signal::Signal::try_from(sig.number()).unwrap();
            assert_eq!(nix as i32, sig.number());
        }
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(Signal::TERM.name(), "SIGTERM");
        assert_eq!(Signal::TERM.to_string(), "SIGTERM");
        assert_eq!(Signal::ABRT.name(), "SIGABRT");
        assert_eq!(Signal::RTMIN.name(), "SIGRTMIN");
        assert_eq!(Signal::from_number(37).unwrap().name(), "SIGRTMIN+3");
        assert_eq!(Signal::from_number(49).unwrap().name(), "SIGRTMIN+15");
        assert_eq!(Signal::from_number(50).unwrap().name(), "SIGRTMAX-14");
        assert_eq!(Signal::RTMAX.name(), "SIGRTMAX");
        assert_eq!(Signal::from_number(32).unwrap().name(), "32");
        for n in 1..=64 {
            let sig = Signal::try_from(n).unwrap();
            assert_eq!(sig.number(), n);
            assert_eq!(Signal::parse(&sig.name()), Some(sig), "{sig}");
            assert_eq!(sig.is_realtime(), n >= 34, "{sig}");
        }
        assert!(Signal::try_from(0).is_err());
        assert!(Signal::try_from(65).is_err());
        assert_eq!(Signal::from_number(-9), None);
    }
}
