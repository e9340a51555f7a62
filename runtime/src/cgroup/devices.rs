//! The device allow-list of a container: docker's default nodes plus the
//! devices it was given, and nothing else. On v1 it is written to the
//! `devices` controller (deny all, then allow each rule); on v2 it is
//! compiled into a BPF_CGROUP_DEVICE program ([`super::bpf`]).
use super::{CgroupError, io_err, write_file};
use crate::spec::{DeviceKind, DeviceNode};
use std::io::{ErrorKind, Write};
use std::path::Path;

/// What a rule allows: read, write, mknod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub read: bool,
    pub write: bool,
    pub mknod: bool,
}

impl Access {
    pub const ALL: Access = Access {
        read: true,
        write: true,
        mknod: true,
    };

    /// "rwm", or any of them in that order; None for anything else (empty,
    /// repeated or unknown letters).
    pub fn parse(s: &str) -> Option<Access> {
        let mut a = Access {
            read: false,
            write: false,
            mknod: false,
        };
        let mut rest = s;
        for (letter, flag) in [('r', &mut a.read), ('w', &mut a.write), ('m', &mut a.mknod)] {
            if let Some(r) = rest.strip_prefix(letter) {
                *flag = true;
                rest = r;
            }
        }
        (rest.is_empty() && !s.is_empty()).then_some(a)
    }

    /// As the v1 controller writes it ("rwm", "r", ...).
    pub fn letters(self) -> String {
        [(self.read, 'r'), (self.write, 'w'), (self.mknod, 'm')]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, c)| *c)
            .collect()
    }
}

/// One allowed device, or range of devices (`None`: any number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    pub kind: DeviceKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: Access,
}

impl DeviceRule {
    const fn char(major: u32, minor: Option<u32>) -> DeviceRule {
        DeviceRule {
            kind: DeviceKind::Char,
            major: Some(major),
            minor,
            access: Access::ALL,
        }
    }

    /// The v1 `devices.allow` line: "c 1:3 rwm", "c 136:* rwm".
    pub fn v1_line(&self) -> String {
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        format!(
            "{} {}:{} {}",
            self.kind.letter(),
            num(self.major),
            num(self.minor),
            self.access.letters()
        )
    }
}

/// Docker's default allow-list: null, zero, full, random, urandom, tty,
/// console, ptmx and the pseudo-terminals (136:*), read, write and mknod.
/// Nothing else, and no blanket mknod.
pub const DEFAULT_RULES: [DeviceRule; 9] = [
    DeviceRule::char(1, Some(3)),
    DeviceRule::char(1, Some(5)),
    DeviceRule::char(1, Some(7)),
    DeviceRule::char(1, Some(8)),
    DeviceRule::char(1, Some(9)),
    DeviceRule::char(5, Some(0)),
    DeviceRule::char(5, Some(1)),
    DeviceRule::char(5, Some(2)),
    DeviceRule::char(136, None),
];

/// The allow-list of a container given `devices`: the defaults, then one
/// rule per device with its access (a device whose access string is not
/// some of "rwm" is refused).
pub fn rules_for(devices: &[DeviceNode]) -> Result<Vec<DeviceRule>, CgroupError> {
    let mut rules = DEFAULT_RULES.to_vec();
    for d in devices {
        let access = Access::parse(&d.access).ok_or_else(|| {
            io_err(
                Path::new(&d.host_path),
                std::io::Error::new(
                    ErrorKind::InvalidInput,
                    format!("invalid device access {:?} (some of \"rwm\")", d.access),
                ),
            )
        })?;
        rules.push(DeviceRule {
            kind: d.kind,
            major: Some(d.major),
            minor: Some(d.minor),
            access,
        });
    }
    Ok(rules)
}

/// v1: the container's `devices` cgroup denies everything, then allows each
/// rule. A host without the devices hierarchy cannot confine devices: an
/// error, never a container with every device open to it.
pub(super) fn apply_v1(root: &Path, rel: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let hier = root.join("devices");
    if !hier.is_dir() {
        return Err(io_err(
            &hier,
            std::io::Error::new(
                ErrorKind::NotFound,
                "the devices controller is not mounted: device access cannot be restricted",
            ),
        ));
    }
    let dir = hier.join(rel);
    if !dir.is_dir() {
        return Err(io_err(&dir, std::io::Error::from(ErrorKind::NotFound)));
    }
    write_file(&dir.join("devices.deny"), "a")?;
    // One rule per write(2): the controller parses each write as one rule
    // (a trailing newline is accepted, as from `echo`).
    let allow = dir.join("devices.allow");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&allow)
        .map_err(|e| io_err(&allow, e))?;
    for r in rules {
        f.write_all(format!("{}\n", r.v1_line()).as_bytes())
            .map_err(|e| io_err(&allow, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::testutil::read;

    #[test]
    fn access_parse() {
        for (s, want) in [
            ("rwm", Some("rwm")),
            ("r", Some("r")),
            ("rw", Some("rw")),
            ("wm", Some("wm")),
            ("m", Some("m")),
            ("", None),
            ("mr", None),
            ("rr", None),
            ("rwx", None),
            ("R", None),
        ] {
            assert_eq!(
                Access::parse(s).map(Access::letters).as_deref(),
                want,
                "{s:?}"
            );
        }
    }

    #[test]
    fn rules_and_v1_lines() {
        let dev = DeviceNode {
            path: "/dev/myzero".into(),
            host_path: "/dev/zero".into(),
            kind: DeviceKind::Char,
            major: 1,
            minor: 5,
            access: "r".into(),
        };
        let block = DeviceNode {
            kind: DeviceKind::Block,
            major: 7,
            minor: 3,
            access: "rw".into(),
            ..dev.clone()
        };
        let lines: Vec<String> = rules_for(&[dev.clone(), block])
            .unwrap()
            .iter()
            .map(DeviceRule::v1_line)
            .collect();
        assert_eq!(
            lines,
            [
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:1 rwm",
                "c 5:2 rwm",
                "c 136:* rwm",
                "c 1:5 r",
                "b 7:3 rw",
            ]
        );
        let bad = DeviceNode {
            access: "x".into(),
            ..dev
        };
        assert!(rules_for(&[bad]).is_err());
    }

    #[test]
    fn v1_writes_deny_then_allow() {
        let t = tempfile::tempdir().unwrap();
        let rel = Path::new("quilt/c1");
        // No devices hierarchy: refused, not silently unconfined.
        let err = apply_v1(t.path(), rel, &DEFAULT_RULES).unwrap_err();
        assert!(err.to_string().contains("devices controller"), "{err}");
        std::fs::create_dir_all(t.path().join("devices/quilt/c1")).unwrap();
        apply_v1(t.path(), rel, &DEFAULT_RULES[..2]).unwrap();
        let dir = t.path().join("devices/quilt/c1");
        assert_eq!(read(dir.join("devices.deny")), "a");
        assert_eq!(read(dir.join("devices.allow")), "c 1:3 rwm\nc 1:5 rwm\n");
    }
}
