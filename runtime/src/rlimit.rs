//! Resource limits by name (`--ulimit nofile=1024:2048`): the names docker
//! accepts, and how a workload gets them. `UNLIMITED` (RLIM_INFINITY) is
//! what `-1` means on the wire.
use crate::spec::Rlimit;
use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// RLIM_INFINITY.
pub const UNLIMITED: u64 = u64::MAX;

/// Every limit a container may set, by its name without the RLIMIT_ prefix.
pub const NAMES: [(&str, Resource); 15] = [
    ("as", Resource::RLIMIT_AS),
    ("core", Resource::RLIMIT_CORE),
    ("cpu", Resource::RLIMIT_CPU),
    ("data", Resource::RLIMIT_DATA),
    ("fsize", Resource::RLIMIT_FSIZE),
    ("locks", Resource::RLIMIT_LOCKS),
    ("memlock", Resource::RLIMIT_MEMLOCK),
    ("msgqueue", Resource::RLIMIT_MSGQUEUE),
    ("nice", Resource::RLIMIT_NICE),
    ("nofile", Resource::RLIMIT_NOFILE),
    ("nproc", Resource::RLIMIT_NPROC),
    ("rtprio", Resource::RLIMIT_RTPRIO),
    ("rttime", Resource::RLIMIT_RTTIME),
    ("sigpending", Resource::RLIMIT_SIGPENDING),
    ("stack", Resource::RLIMIT_STACK),
];

/// The resource named `name` ("nofile"; case-insensitive, RLIMIT_ prefix
/// allowed); None for unknown names.
pub fn resource(name: &str) -> Option<Resource> {
    let lower = name.trim().to_ascii_lowercase();
    let bare = lower.strip_prefix("rlimit_").unwrap_or(&lower);
    NAMES.iter().find(|(n, _)| *n == bare).map(|(_, r)| *r)
}

/// The canonical name of a limit ("nofile"), None for unknown names.
pub fn canonical(name: &str) -> Option<&'static str> {
    let r = resource(name)?;
    NAMES.iter().find(|(_, x)| *x == r).map(|(n, _)| *n)
}

/// The kernel's ceiling of RLIMIT_NOFILE (fs.nr_open): no process can have
/// a higher hard limit. None when it cannot be read.
pub fn nofile_ceiling() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Why a hard limit is as high as a workload of this process may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ceiling {
    /// The kernel's (fs.nr_open, for nofile).
    Kernel(u64),
    /// This process's own hard limit: without CAP_SYS_RESOURCE it cannot
    /// raise it, nor can what it starts.
    Own(u64),
}

impl Ceiling {
    pub fn value(self) -> u64 {
        match self {
            Ceiling::Kernel(v) | Ceiling::Own(v) => v,
        }
    }
}

/// For each limit of `NAMES`, how high the hard limit of a workload this
/// process starts may be; None: no ceiling (CAP_SYS_RESOURCE raises it).
pub fn ceilings() -> Vec<(&'static str, Option<Ceiling>)> {
    use rustix::thread::{CapabilitySet, capabilities};
    let raise = capabilities(None).is_ok_and(|c| c.effective.contains(CapabilitySet::SYS_RESOURCE));
    let nr_open = nofile_ceiling();
    NAMES
        .iter()
        .map(|&(name, res)| {
            let own = getrlimit(res).ok().map(|(_, hard)| hard);
            let ceiling = match (raise, own) {
                (true, _) | (false, None) => None,
                (false, Some(hard)) => Some(Ceiling::Own(hard)),
            };
            let ceiling = match (res, ceiling, nr_open) {
                (Resource::RLIMIT_NOFILE, Some(Ceiling::Own(h)), Some(n)) if n < h => {
                    Some(Ceiling::Kernel(n))
                }
                (Resource::RLIMIT_NOFILE, None, Some(n)) => Some(Ceiling::Kernel(n)),
                (_, c, _) => c,
            };
            (name, ceiling)
        })
        .collect()
}

/// Why a limit could not be set.
#[derive(Debug, thiserror::Error)]
#[error("ulimit {name}={soft}:{hard}: {source}")]
pub struct RlimitError {
    pub name: String,
    pub soft: String,
    pub hard: String,
    #[source]
    pub source: nix::errno::Errno,
}

fn shown(v: u64) -> String {
    if v == UNLIMITED {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

fn error(l: &Rlimit, e: nix::errno::Errno) -> RlimitError {
    RlimitError {
        name: l.resource.clone(),
        soft: shown(l.soft),
        hard: shown(l.hard),
        source: e,
    }
}

/// Raises this process's hard limits to those of `limits` where they are
/// higher, leaving the soft limits as they are: the ceiling a less
/// privileged child (one in a user namespace cannot raise a hard limit)
/// needs to set them exactly. Needs CAP_SYS_RESOURCE.
pub fn raise_hard_limits(limits: &[Rlimit]) -> Result<(), RlimitError> {
    for l in limits {
        let Some(res) = resource(&l.resource) else {
            return Err(error(l, nix::errno::Errno::EINVAL));
        };
        let (soft, hard) = getrlimit(res).map_err(|e| error(l, e))?;
        if l.hard > hard {
            setrlimit(res, soft, l.hard).map_err(|e| error(l, e))?;
        }
    }
    Ok(())
}

/// Sets every limit of `limits` exactly (soft and hard).
pub fn apply(limits: &[Rlimit]) -> Result<(), RlimitError> {
    for l in limits {
        let Some(res) = resource(&l.resource) else {
            return Err(error(l, nix::errno::Errno::EINVAL));
        };
        setrlimit(res, l.soft, l.hard).map_err(|e| error(l, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(resource("nofile"), Some(Resource::RLIMIT_NOFILE));
        assert_eq!(resource("NOFILE"), Some(Resource::RLIMIT_NOFILE));
        assert_eq!(resource("RLIMIT_NPROC"), Some(Resource::RLIMIT_NPROC));
        assert_eq!(canonical("RLIMIT_AS"), Some("as"));
        for bad in ["", "files", "rlimit_", "rss", "nofile2"] {
            assert_eq!(resource(bad), None, "{bad}");
        }
        for (name, res) in NAMES {
            assert_eq!(resource(name), Some(res));
            assert_eq!(canonical(name), Some(name));
        }
        assert!(nofile_ceiling().is_some_and(|n| n >= 1024));
        let c = ceilings();
        assert_eq!(c.len(), NAMES.len());
        let nofile = c.iter().find(|(n, _)| *n == "nofile").and_then(|(_, c)| *c);
        // Whatever else holds, no one goes past fs.nr_open.
        assert!(nofile.is_some_and(|c| c.value() <= nofile_ceiling().unwrap()));
    }
}
