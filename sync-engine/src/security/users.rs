//! Who a container's processes are and what they may do as that: the user
//! (`--user`, resolved by the shim in the container's own /etc/passwd), the
//! user namespace (`--userns`, with the id range stored at create), the
//! read-only root, the capabilities (`--cap-add/--cap-drop`, docker's
//! rules) and the resource limits (`--ulimit`). Checked at create,
//! resolved for the runtime at each start and exec. Runs first of the
//! security modules: seccomp reads the capability set computed here.
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::{Container, IdRange, Security, Ulimit, UsernsMode};
use quilt_runtime::capability::Capability;
use quilt_runtime::passwd::{self, Id};
use quilt_runtime::rlimit;
use quilt_runtime::spec::{IdMap, Rlimit, SecurityConfig};
use std::collections::BTreeSet;
use std::sync::LazyLock;

/// How high each hard limit of a workload may go (quiltd's own hard limits
/// unless it has CAP_SYS_RESOURCE; fs.nr_open for nofile); read once,
/// warmed on the blocking pool at start-up (see `startup`).
static CEILINGS: LazyLock<Vec<(&'static str, Option<rlimit::Ceiling>)>> =
    LazyLock::new(rlimit::ceilings);

pub(super) fn validate(s: &Security) -> Result<()> {
    if let Some(u) = &s.user {
        check_user(u)?;
    }
    capabilities(&s.cap_add, &s.cap_drop)?;
    ulimits(&s.ulimits)
}

pub(super) fn configure(_shared: &Shared, c: &Container, cfg: &mut SecurityConfig) -> Result<()> {
    let s = &c.security;
    cfg.user = s.user.clone();
    cfg.read_only_rootfs = s.read_only;
    cfg.capabilities = Some(
        capabilities(&s.cap_add, &s.cap_drop)?
            .iter()
            .map(|cap| cap.number() as u8)
            .collect(),
    );
    cfg.rlimits = s
        .ulimits
        .iter()
        .map(|u| Rlimit {
            resource: rlimit::canonical(&u.name).map_or_else(|| u.name.clone(), str::to_owned),
            soft: u.soft,
            hard: u.hard,
        })
        .collect();
    cfg.idmap = idmap(c)?;
    Ok(())
}

/// Checks a user given to an exec (or at create).
pub(super) fn check_user(user: &str) -> Result<()> {
    if user.len() > 2 * passwd::MAX_NAME_BYTES + 1 {
        return Err(EngineError::InvalidArgument(format!(
            "invalid user {}: too long",
            crate::validate::echo(user)
        )));
    }
    passwd::parse_spec(user)
        .map(drop)
        .map_err(|e| EngineError::InvalidArgument(e.to_string()))
}

/// At create, before the row is stored: the user namespace the container
/// gets for good (the daemon's default when it did not choose: its files
/// are owned accordingly), and what can only be checked knowing it.
pub(crate) fn for_create(shared: &Shared, c: &mut Container) -> Result<()> {
    if c.security.userns == UsernsMode::Default {
        c.security.userns = match shared.cfg().userns_default {
            UsernsMode::Private => UsernsMode::Private,
            UsernsMode::Host | UsernsMode::Default => UsernsMode::Host,
        };
    }
    if c.security.userns == UsernsMode::Private
        && let Some(user) = &c.security.user
    {
        let spec =
            passwd::parse_spec(user).map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
        for id in std::iter::once(spec.user).chain(spec.group) {
            if let Id::Num(n) = id
                && n >= IdRange::SIZE
            {
                return Err(EngineError::InvalidArgument(format!(
                    "user {user}: id {n} is outside a private user namespace (ids 0 to {})",
                    IdRange::SIZE - 1
                )));
            }
        }
    }
    Ok(())
}

/// The user namespace mapping of `c`: its stored id range for a private
/// one, None without.
pub(crate) fn idmap(c: &Container) -> Result<Option<IdMap>> {
    match (c.security.userns, c.id_range) {
        (UsernsMode::Private, Some(r)) => Ok(Some(IdMap {
            host_uid: r.host_id,
            host_gid: r.host_id,
            size: r.size,
        })),
        (UsernsMode::Private, None) => Err(EngineError::Internal(format!(
            "container {} has a private user namespace but no id range: restart quiltd to give it one",
            c.name
        ))),
        (UsernsMode::Host | UsernsMode::Default, _) => Ok(None),
    }
}

/// At start-up: the stored id ranges checked (see `Store::userns_reconcile`),
/// and the host's limits read once, off the reactor.
pub(crate) async fn startup(shared: &Shared) -> Result<()> {
    let (dropped, given) = shared
        .store()
        .userns_reconcile(&shared.cfg().userns_ids)
        .await?;
    if dropped > 0 || given > 0 {
        tracing::warn!(
            dropped,
            given,
            "user namespace id ranges: dropped those of removed containers, gave one to those without"
        );
    }
    tokio::task::spawn_blocking(|| LazyLock::force(&CEILINGS).len()).await?;
    Ok(())
}

/// The capability set, by docker's rules: ALL in --cap-add gives every
/// capability but those dropped; ALL in --cap-drop gives only those added;
/// otherwise docker's default set, less those dropped, plus those added.
/// Names as `Capability::from_name` takes them (NET_ADMIN, CAP_NET_ADMIN,
/// net_admin); an unknown one is refused.
pub(crate) fn capabilities(add: &[String], drop: &[String]) -> Result<BTreeSet<Capability>> {
    let parse = |list: &[String], flag: &str| -> Result<(bool, BTreeSet<Capability>)> {
        let mut all = false;
        let mut set = BTreeSet::new();
        for name in list {
            if name.trim().eq_ignore_ascii_case("ALL") {
                all = true;
                continue;
            }
            let cap = Capability::from_name(name).ok_or_else(|| {
                EngineError::InvalidArgument(format!(
                    "{flag}: unknown capability {}: use a name such as NET_ADMIN or \
                     CAP_NET_ADMIN, or ALL",
                    crate::validate::echo(name)
                ))
            })?;
            set.insert(cap);
        }
        Ok((all, set))
    };
    let (add_all, add) = parse(add, "--cap-add")?;
    let (drop_all, drop) = parse(drop, "--cap-drop")?;
    Ok(if add_all {
        Capability::ALL
            .into_iter()
            .filter(|c| !drop.contains(c))
            .collect()
    } else if drop_all {
        add
    } else {
        Capability::DEFAULT
            .into_iter()
            .filter(|c| !drop.contains(c))
            .chain(add)
            .collect()
    })
}

fn shown(v: u64) -> String {
    if v == rlimit::UNLIMITED {
        "unlimited".into()
    } else {
        v.to_string()
    }
}

/// Known names (each once), soft <= hard, and no hard limit above what a
/// workload of quiltd may get: refused here, neither clamped nor left to
/// fail at start. That is the kernel's fs.nr_open for nofile, and quiltd's
/// own hard limits when it lacks CAP_SYS_RESOURCE; as root with it (like
/// dockerd), the others may go up to unlimited.
fn ulimits(list: &[Ulimit]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for u in list {
        let name = rlimit::canonical(&u.name).ok_or_else(|| {
            let names: Vec<&str> = rlimit::NAMES.iter().map(|(n, _)| *n).collect();
            EngineError::InvalidArgument(format!(
                "unknown ulimit {}: use one of {}",
                crate::validate::echo(&u.name),
                names.join(", ")
            ))
        })?;
        if !seen.insert(name) {
            return Err(EngineError::InvalidArgument(format!(
                "ulimit {name} is given more than once"
            )));
        }
        if u.soft > u.hard {
            return Err(EngineError::InvalidArgument(format!(
                "ulimit {name}: the soft limit {} is above the hard limit {}",
                shown(u.soft),
                shown(u.hard)
            )));
        }
        let ceiling = CEILINGS
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, c)| *c);
        match ceiling {
            Some(rlimit::Ceiling::Kernel(max)) if u.hard > max => {
                return Err(EngineError::InvalidArgument(format!(
                    "ulimit {name}: the hard limit {} is above the kernel's maximum \
                     (fs.nr_open = {max})",
                    shown(u.hard)
                )));
            }
            Some(rlimit::Ceiling::Own(max)) if u.hard > max => {
                return Err(EngineError::InvalidArgument(format!(
                    "ulimit {name}: the hard limit {} is above quiltd's own ({}), which it \
                     cannot raise without CAP_SYS_RESOURCE",
                    shown(u.hard),
                    shown(max)
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(set: &BTreeSet<Capability>) -> Vec<&'static str> {
        set.iter().map(|c| c.name()).collect()
    }

    fn caps(add: &[&str], drop: &[&str]) -> Result<BTreeSet<Capability>> {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        capabilities(&v(add), &v(drop))
    }

    #[test]
    fn capabilities_follow_docker() {
        let default: BTreeSet<Capability> = Capability::DEFAULT.into_iter().collect();
        assert_eq!(caps(&[], &[]).unwrap(), default);
        let set = caps(&["net_admin", "CAP_SYS_PTRACE"], &["MKNOD", "cap_chown"]).unwrap();
        assert!(set.contains(&Capability::NetAdmin) && set.contains(&Capability::SysPtrace));
        assert!(!set.contains(&Capability::Mknod) && !set.contains(&Capability::Chown));
        assert_eq!(set.len(), default.len());
        // Drop ALL, then add: exactly what is added.
        assert_eq!(
            names(&caps(&["NET_BIND_SERVICE"], &["all"]).unwrap()),
            vec!["CAP_NET_BIND_SERVICE"]
        );
        assert!(caps(&[], &["ALL"]).unwrap().is_empty());
        // Add ALL: everything but what is dropped (drop ALL does not win).
        assert_eq!(caps(&["ALL"], &[]).unwrap().len(), Capability::ALL.len());
        let set = caps(&["ALL"], &["SYS_ADMIN", "ALL"]).unwrap();
        assert_eq!(set.len(), Capability::ALL.len() - 1);
        assert!(!set.contains(&Capability::SysAdmin));
        // Added and dropped: added wins.
        assert!(
            caps(&["CHOWN"], &["CHOWN"])
                .unwrap()
                .contains(&Capability::Chown)
        );
        match caps(&["NET_ADMN"], &[]) {
            Err(EngineError::InvalidArgument(m)) => assert_eq!(
                m,
                "--cap-add: unknown capability \"NET_ADMN\": use a name such as NET_ADMIN or \
                 CAP_NET_ADMIN, or ALL"
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            caps(&[], &[""]),
            Err(EngineError::InvalidArgument(_))
        ));
    }

    fn ulimit(name: &str, soft: u64, hard: u64) -> Ulimit {
        Ulimit {
            name: name.into(),
            soft,
            hard,
        }
    }

    #[test]
    fn ulimits_are_checked() {
        let u = rlimit::UNLIMITED;
        ulimits(&[
            ulimit("nofile", 100, 200),
            ulimit("core", 0, 0),
            ulimit("NPROC", 10, 20),
            ulimit("rlimit_stack", 1 << 20, 1 << 20),
        ])
        .unwrap();
        let err = |l: &[Ulimit]| match ulimits(l) {
            Err(EngineError::InvalidArgument(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(
            err(&[ulimit("files", 1, 1)])
                .starts_with("unknown ulimit \"files\": use one of as, core")
        );
        assert_eq!(
            err(&[ulimit("nofile", 300, 200)]),
            "ulimit nofile: the soft limit 300 is above the hard limit 200"
        );
        assert_eq!(
            err(&[ulimit("cpu", u, 5)]),
            "ulimit cpu: the soft limit unlimited is above the hard limit 5"
        );
        assert_eq!(
            err(&[ulimit("nofile", 1, 1), ulimit("NOFILE", 2, 2)]),
            "ulimit nofile is given more than once"
        );
        // Above the ceiling (fs.nr_open, or quiltd's own hard limit here).
        let max = rlimit::ceilings()
            .into_iter()
            .find_map(|(n, c)| (n == "nofile").then_some(c))
            .flatten()
            .unwrap()
            .value();
        assert!(err(&[ulimit("nofile", 1, max + 1)]).starts_with("ulimit nofile: the hard limit "));
        assert!(err(&[ulimit("nofile", u, u)]).contains("hard limit unlimited is above"));
        ulimits(&[ulimit("nofile", max, max)]).unwrap();
    }

    #[test]
    fn users_are_checked() {
        for ok in ["1000", "1000:1000", "nobody", "www-data:adm", "0:0"] {
            check_user(ok).unwrap();
        }
        for bad in ["", ":", "a:b:c", "4294967295", "a\nb"] {
            assert!(
                matches!(check_user(bad), Err(EngineError::InvalidArgument(_))),
                "{bad:?}"
            );
        }
    }
}
