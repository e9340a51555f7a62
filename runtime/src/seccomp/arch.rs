//! The architecture seccomp filters are built for: the native one (x86_64 or
//! aarch64) only. Its names in profiles, its `AUDIT_ARCH_*` value and its
//! syscall numbers by name.
use std::str::FromStr;

/// An architecture filters can be built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

/// libseccomp's architecture names, as profiles list them in
/// `architectures` and `archMap` (any of them may appear; only the native
/// one is filtered).
const SCMP_ARCHES: [&str; 23] = [
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH",
];

/// Whether `name` is one of libseccomp's architecture names.
pub fn is_scmp_arch(name: &str) -> bool {
    SCMP_ARCHES.contains(&name)
}

impl Arch {
    /// The architecture this program runs on; None on one filters cannot
    /// be built for.
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }

    /// `seccomp_data.arch` for this architecture (linux/audit.h).
    pub fn audit(self) -> u32 {
        const ARCH_64BIT_LE: u32 = 0x8000_0000 | 0x4000_0000;
        match self {
            Arch::X86_64 => 62 | ARCH_64BIT_LE,
            Arch::Aarch64 => 183 | ARCH_64BIT_LE,
        }
    }

    /// seccompiler's name (the tests compare its filters with ours).
    #[cfg(test)]
    pub(crate) fn target(self) -> seccompiler::TargetArch {
        match self {
            Arch::X86_64 => seccompiler::TargetArch::x86_64,
            Arch::Aarch64 => seccompiler::TargetArch::aarch64,
        }
    }

    /// Whether a profile's architecture name means this one: docker's
    /// `includes.arches` use Go's names ("amd64"), `architectures` and
    /// `archMap` libseccomp's ("SCMP_ARCH_X86_64"); the kernel's name
    /// ("x86_64") is accepted as well.
    pub fn is_named(self, name: &str) -> bool {
        let names: [&str; 3] = match self {
            Arch::X86_64 => ["amd64", "x86_64", "SCMP_ARCH_X86_64"],
            Arch::Aarch64 => ["arm64", "aarch64", "SCMP_ARCH_AARCH64"],
        };
        names.contains(&name)
    }

    /// The number of the syscall called `name` on this architecture, with
    /// libseccomp's names; None for a syscall this architecture does not
    /// have.
    pub fn syscall(self, name: &str) -> Option<i64> {
        match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::from_str(name)
                .ok()
                .map(|s| i64::from(s.id())),
            Arch::Aarch64 => {
                // The generic table calls it fstatat; libseccomp (and so
                // every profile) newfstatat.
                let name = if name == "newfstatat" {
                    "fstatat"
                } else {
                    name
                };
                syscalls::aarch64::Sysno::from_str(name)
                    .ok()
                    .map(|s| i64::from(s.id()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_of_both_architectures() {
        let x = Arch::X86_64;
        assert_eq!(x.syscall("read"), Some(0));
        assert_eq!(x.syscall("write"), Some(1));
        assert_eq!(x.syscall("keyctl"), Some(250));
        assert_eq!(x.syscall("newfstatat"), Some(262));
        assert_eq!(x.syscall("clone3"), Some(435));
        assert_eq!(x.syscall("chown32"), None);
        assert_eq!(x.syscall("no_such_call"), None);
        let a = Arch::Aarch64;
        assert_eq!(a.syscall("read"), Some(63));
        assert_eq!(a.syscall("newfstatat"), Some(79));
        assert_eq!(a.syscall("keyctl"), Some(219));
        assert_eq!(a.syscall("open"), None);
        assert_eq!(a.syscall("arch_prctl"), None);
    }

    #[test]
    fn names() {
        assert!(Arch::X86_64.is_named("amd64"));
        assert!(Arch::X86_64.is_named("SCMP_ARCH_X86_64"));
        assert!(!Arch::X86_64.is_named("x86"));
        assert!(!Arch::X86_64.is_named("SCMP_ARCH_X32"));
        assert!(Arch::Aarch64.is_named("arm64"));
        assert!(!Arch::Aarch64.is_named("arm"));
        assert!(is_scmp_arch("SCMP_ARCH_X32"));
        assert!(!is_scmp_arch("amd64"));
        assert_eq!(Arch::X86_64.audit(), 0xC000_003E);
        assert_eq!(Arch::Aarch64.audit(), 0xC000_00B7);
        assert!(Arch::native().is_some());
    }
}
