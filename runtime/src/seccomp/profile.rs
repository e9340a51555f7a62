//! A seccomp profile as Quilt models it: a default action and rules, each
//! naming syscalls, the action taken when their arguments match, and the
//! capabilities and architectures it depends on. Docker's JSON format
//! (`json.rs`) and the built-in default (`default.rs`) both read into it.
use super::arch::Arch;
use crate::capability::Capability;
use rustix::thread::CapabilitySet;

/// What the kernel does with a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Allow,
    /// Fail with this errno, without running the syscall.
    Errno(u16),
    /// Kill the calling thread (libseccomp's SCMP_ACT_KILL).
    KillThread,
    KillProcess,
    /// Send SIGSYS to the caller.
    Trap,
    /// Allow, and log it (audit).
    Log,
    /// Stop for a ptrace tracer with this message; without one, fail with
    /// ENOSYS.
    Trace(u16),
}

/// How an argument is compared (unsigned, all 64 bits, as libseccomp does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `(arg & value) == value_two`.
    MaskedEq,
}

/// One argument condition of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgCheck {
    /// 0 to 5.
    pub index: u8,
    pub op: CmpOp,
    pub value: u64,
    /// Only for MaskedEq: the value the masked argument must equal.
    pub value_two: u64,
}

impl ArgCheck {
    pub fn new(index: u8, op: CmpOp, value: u64) -> ArgCheck {
        ArgCheck {
            index,
            op,
            value,
            value_two: 0,
        }
    }
}

/// Capabilities and architectures a rule is restricted by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Capability names ("CAP_SYS_ADMIN"), as written.
    pub caps: Vec<String>,
    /// Architecture names ("amd64", "SCMP_ARCH_X86_64").
    pub arches: Vec<String>,
}

impl Scope {
    pub fn caps(caps: &[Capability]) -> Scope {
        Scope {
            caps: caps.iter().map(|c| c.name().to_owned()).collect(),
            arches: Vec::new(),
        }
    }
}

/// One rule: `action` for the syscalls `names` whose arguments pass every
/// check of `args` (no check: any arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Syscall names; those the architecture does not have are skipped.
    pub names: Vec<String>,
    pub action: Action,
    pub args: Vec<ArgCheck>,
    /// The rule applies only when the container holds every capability, and
    /// runs on one of the architectures, listed here (empty: no condition).
    pub includes: Scope,
    /// The rule does not apply when the container holds any capability, or
    /// runs on any architecture, listed here.
    pub excludes: Scope,
}

impl Rule {
    /// `action` for `names`, whatever the arguments and capabilities.
    pub fn new(names: &[&str], action: Action) -> Rule {
        Rule {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            action,
            args: Vec::new(),
            includes: Scope::default(),
            excludes: Scope::default(),
        }
    }

    /// Whether the rule applies to a container holding `caps` on `arch`.
    pub fn applies(&self, caps: CapabilitySet, arch: Arch) -> bool {
        let held =
            |name: &String| Capability::from_name(name).is_some_and(|c| caps.contains(c.as_set()));
        let on_arch = |names: &[String]| names.iter().any(|n| arch.is_named(n));
        (self.includes.arches.is_empty() || on_arch(&self.includes.arches))
            && self.includes.caps.iter().all(held)
            && !on_arch(&self.excludes.arches)
            && !self.excludes.caps.iter().any(held)
    }
}

/// A whole profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// For every syscall no applicable rule matches.
    pub default_action: Action,
    pub rules: Vec<Rule>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_follow_capabilities_and_arches() {
        let arch = Arch::X86_64;
        let none = CapabilitySet::empty();
        let admin = Capability::SysAdmin.as_set();
        let mut r = Rule::new(&["mount"], Action::Allow);
        assert!(r.applies(none, arch));
        r.includes = Scope::caps(&[Capability::SysAdmin]);
        assert!(!r.applies(none, arch));
        assert!(r.applies(admin, arch));
        // Every included capability is needed.
        r.includes = Scope::caps(&[Capability::SysAdmin, Capability::NetAdmin]);
        assert!(!r.applies(admin, arch));
        assert!(r.applies(admin | Capability::NetAdmin.as_set(), arch));
        // Any excluded one is enough to drop the rule.
        r.includes = Scope::default();
        r.excludes = Scope::caps(&[Capability::SysAdmin, Capability::NetAdmin]);
        assert!(r.applies(none, arch));
        assert!(!r.applies(admin, arch));
        // A capability name nobody knows is never held.
        r.excludes = Scope::default();
        r.includes.caps = vec!["CAP_NOPE".into()];
        assert!(!r.applies(CapabilitySet::all(), arch));
        r.includes.caps.clear();
        // Architectures.
        r.includes.arches = vec!["s390x".into(), "amd64".into()];
        assert!(r.applies(none, arch));
        assert!(!r.applies(none, Arch::Aarch64));
        r.includes.arches.clear();
        r.excludes.arches = vec!["arm64".into()];
        assert!(r.applies(none, arch));
        assert!(!r.applies(none, Arch::Aarch64));
    }
}
