//! Linux capabilities by name: every capability the kernel defines up to
//! CAP_CHECKPOINT_RESTORE (40), with docker's names (`CAP_NET_ADMIN`, also
//! accepted as `NET_ADMIN`, in any case).
use rustix::thread::CapabilitySet;
use std::fmt;
use std::str::FromStr;

/// One capability; the discriminant is its number (linux/capability.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Capability {
    Chown = 0,
    DacOverride = 1,
    DacReadSearch = 2,
    Fowner = 3,
    Fsetid = 4,
    Kill = 5,
    Setgid = 6,
    Setuid = 7,
    Setpcap = 8,
    LinuxImmutable = 9,
    NetBindService = 10,
    NetBroadcast = 11,
    NetAdmin = 12,
    NetRaw = 13,
    IpcLock = 14,
    IpcOwner = 15,
    SysModule = 16,
    SysRawio = 17,
    SysChroot = 18,
    SysPtrace = 19,
    SysPacct = 20,
    SysAdmin = 21,
    SysBoot = 22,
    SysNice = 23,
    SysResource = 24,
    SysTime = 25,
    SysTtyConfig = 26,
    Mknod = 27,
    Lease = 28,
    AuditWrite = 29,
    AuditControl = 30,
    Setfcap = 31,
    MacOverride = 32,
    MacAdmin = 33,
    Syslog = 34,
    WakeAlarm = 35,
    BlockSuspend = 36,
    AuditRead = 37,
    Perfmon = 38,
    Bpf = 39,
    CheckpointRestore = 40,
}

/// Every capability with its name, in number order (entry n is number n).
const TABLE: [(Capability, &str); 41] = {
    use Capability::*;
    [
        (Chown, "CAP_CHOWN"),
        (DacOverride, "CAP_DAC_OVERRIDE"),
        (DacReadSearch, "CAP_DAC_READ_SEARCH"),
        (Fowner, "CAP_FOWNER"),
        (Fsetid, "CAP_FSETID"),
        (Kill, "CAP_KILL"),
        (Setgid, "CAP_SETGID"),
        (Setuid, "CAP_SETUID"),
        (Setpcap, "CAP_SETPCAP"),
        (LinuxImmutable, "CAP_LINUX_IMMUTABLE"),
        (NetBindService, "CAP_NET_BIND_SERVICE"),
        (NetBroadcast, "CAP_NET_BROADCAST"),
        (NetAdmin, "CAP_NET_ADMIN"),
        (NetRaw, "CAP_NET_RAW"),
        (IpcLock, "CAP_IPC_LOCK"),
        (IpcOwner, "CAP_IPC_OWNER"),
        (SysModule, "CAP_SYS_MODULE"),
        (SysRawio, "CAP_SYS_RAWIO"),
        (SysChroot, "CAP_SYS_CHROOT"),
        (SysPtrace, "CAP_SYS_PTRACE"),
        (SysPacct, "CAP_SYS_PACCT"),
        (SysAdmin, "CAP_SYS_ADMIN"),
        (SysBoot, "CAP_SYS_BOOT"),
        (SysNice, "CAP_SYS_NICE"),
        (SysResource, "CAP_SYS_RESOURCE"),
        (SysTime, "CAP_SYS_TIME"),
        (SysTtyConfig, "CAP_SYS_TTY_CONFIG"),
        (Mknod, "CAP_MKNOD"),
        (Lease, "CAP_LEASE"),
        (AuditWrite, "CAP_AUDIT_WRITE"),
        (AuditControl, "CAP_AUDIT_CONTROL"),
        (Setfcap, "CAP_SETFCAP"),
        (MacOverride, "CAP_MAC_OVERRIDE"),
        (MacAdmin, "CAP_MAC_ADMIN"),
        (Syslog, "CAP_SYSLOG"),
        (WakeAlarm, "CAP_WAKE_ALARM"),
        (BlockSuspend, "CAP_BLOCK_SUSPEND"),
        (AuditRead, "CAP_AUDIT_READ"),
        (Perfmon, "CAP_PERFMON"),
        (Bpf, "CAP_BPF"),
        (CheckpointRestore, "CAP_CHECKPOINT_RESTORE"),
    ]
};

impl Capability {
    /// Every capability, in number order.
    pub const ALL: [Capability; 41] = {
        let mut all = [Capability::Chown; 41];
        let mut i = 0;
        while i < TABLE.len() {
            all[i] = TABLE[i].0;
            i += 1;
        }
        all
    };

    /// Docker's default set: what a container holds unless told otherwise.
    pub const DEFAULTS: [Capability; 14] = {
        use Capability::*;
        [
            Chown,
            DacOverride,
            Fowner,
            Fsetid,
            Kill,
            Setgid,
            Setuid,
            Setpcap,
            NetBindService,
            NetRaw,
            SysChroot,
            Mknod,
            AuditWrite,
            Setfcap,
        ]
    };

    /// The capability's number (bit position in the kernel's sets).
    pub const fn number(self) -> u32 {
        self as u32
    }

    /// The capability with this number; None past the last one known here.
    pub fn from_number(n: u32) -> Option<Capability> {
        TABLE.get(usize::try_from(n).ok()?).map(|(cap, _)| *cap)
    }

    /// The kernel's name: "CAP_NET_ADMIN".
    pub const fn name(self) -> &'static str {
        TABLE[self as usize].1
    }

    /// "CAP_NET_ADMIN", "NET_ADMIN", "net_admin", "cap_net_admin" ->
    /// `NetAdmin` (docker's `--cap-add` spellings). None for unknown names.
    pub fn from_name(name: &str) -> Option<Capability> {
        let upper = name.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        TABLE
            .iter()
            .find(|(_, n)| n.strip_prefix("CAP_") == Some(bare))
            .map(|(cap, _)| *cap)
    }

    /// The set holding only this capability.
    pub fn as_set(self) -> CapabilitySet {
        CapabilitySet::from_bits_retain(1 << self.number())
    }

    /// The set holding `caps`.
    pub fn set_of(caps: &[Capability]) -> CapabilitySet {
        caps.iter()
            .fold(CapabilitySet::empty(), |set, c| set | c.as_set())
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A capability name that `Capability::from_name` does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability {0:?}")]
pub struct UnknownCapability(pub String);

impl FromStr for Capability {
    type Err = UnknownCapability;

    fn from_str(s: &str) -> Result<Capability, UnknownCapability> {
        Capability::from_name(s).ok_or_else(|| UnknownCapability(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(Capability::ALL.len(), 41);
        for (n, cap) in Capability::ALL.iter().enumerate() {
            let n = n as u32;
            assert_eq!(cap.number(), n, "{cap}");
            assert_eq!(Capability::from_number(n), Some(*cap));
            assert!(cap.name().starts_with("CAP_"), "{cap}");
            assert_eq!(Capability::from_name(cap.name()), Some(*cap));
            let bare = cap.name().strip_prefix("CAP_").unwrap();
            assert_eq!(Capability::from_name(bare), Some(*cap));
            assert_eq!(Capability::from_name(&bare.to_lowercase()), Some(*cap));
            assert_eq!(cap.name().parse::<Capability>(), Ok(*cap));
            assert_eq!(cap.to_string(), cap.name());
        }
        assert_eq!(Capability::from_number(41), None);
        assert_eq!(
            Capability::from_name("CAP_NET_ADMIN"),
            Some(Capability::NetAdmin)
        );
        assert_eq!(
            Capability::from_name("NET_ADMIN"),
            Some(Capability::NetAdmin)
        );
        assert_eq!(
            Capability::from_name("cap_sys_admin"),
            Some(Capability::SysAdmin)
        );
        assert_eq!(Capability::NetAdmin.number(), 12);
        assert_eq!(Capability::CheckpointRestore.number(), 40);
        for bad in ["", "CAP_", "NET-ADMIN", "CAP_NOPE", "ALL", "12"] {
            assert_eq!(Capability::from_name(bad), None, "{bad}");
            assert_eq!(
                bad.parse::<Capability>(),
                Err(UnknownCapability(bad.to_owned()))
            );
        }
    }

    #[test]
    fn sets_match_the_kernel_bits() {
        assert_eq!(Capability::Chown.as_set(), CapabilitySet::CHOWN);
        assert_eq!(Capability::NetAdmin.as_set(), CapabilitySet::NET_ADMIN);
        assert_eq!(Capability::SysAdmin.as_set(), CapabilitySet::SYS_ADMIN);
        assert_eq!(Capability::Setfcap.as_set(), CapabilitySet::SETFCAP);
        assert_eq!(
            Capability::CheckpointRestore.as_set(),
            CapabilitySet::CHECKPOINT_RESTORE
        );
        let all = Capability::set_of(&Capability::ALL);
        assert_eq!(all.bits(), (1u64 << 41) - 1);
        // rustix's named flags are exactly these 41.
        let named = CapabilitySet::all()
            .iter_names()
            .fold(CapabilitySet::empty(), |s, (_, f)| s | f);
        assert_eq!(named, all);
        for (name, flag) in CapabilitySet::all().iter_names() {
            let cap = Capability::from_name(name).expect(name);
            assert_eq!(cap.as_set(), flag, "{name}");
        }
    }
}
