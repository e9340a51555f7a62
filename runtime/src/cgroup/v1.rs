//! Cgroup v1: one hierarchy per controller (`ROOT/memory`, `ROOT/cpu`,
//! `ROOT/pids`, `ROOT/devices`), each with the container's own directory.
use super::{
    CPU_PERIOD_US, CgroupError, V1_HIERARCHIES, cpu_quota_us, io_err, wants_own_memory, write_file,
};
use crate::spec::CgroupSpec;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// The membership file `join_self` writes "0" to: `tasks` moves only the
/// calling thread, which is cheaper than `cgroup.procs` (see `join_self`).
pub(super) const JOIN_FILE: &str = "tasks";

/// The file whose `oom_kill` line counts the cgroup's OOM kills.
pub(super) fn oom_file(root: &Path, rel: &Path) -> PathBuf {
    root.join("memory").join(rel).join("memory.oom_control")
}

/// The memory cgroup a container without a memory limit shares with every
/// other such container: its parent's (`ROOT/memory/PARENT`). None for a
/// path with no parent (the container then stays in its supervisor's).
///
/// A memory cgroup costs the host far more than its directory: the kernel
/// gives each one arrays sized by the number of shrinkers (one per
/// superblock, several per container) and list_lru slots for every
/// superblock, about 0.6 MiB once thousands of mounts have existed, and
/// walks all of them when one is removed. A container with no memory limit
/// gains nothing from one of its own, so it has none; its processes are
/// charged to the shared group, which an administrator may limit as a whole.
pub(super) fn shared_memory_dir(root: &Path, rel: &Path) -> Option<PathBuf> {
    let parent = rel.parent().filter(|p| !p.as_os_str().is_empty())?;
    Some(root.join("memory").join(parent))
}

/// The memory cgroup the container's processes join: its own when it wants
/// one or has one (a container made by an older quilt, which gave every
/// container one, or adopted from a pool with a memory limit), else the
/// shared one (None: none to join).
pub(super) fn memory_dir(root: &Path, rel: &Path, spec: &CgroupSpec) -> Option<PathBuf> {
    let own = root.join("memory").join(rel);
    match wants_own_memory(spec) || own.is_dir() {
        true => Some(own),
        false => shared_memory_dir(root, rel),
    }
}

/// Creates the container's directory in every mounted hierarchy and writes
/// the limits; a limit whose controller is not mounted is an error. A
/// container without a memory limit gets no memory cgroup of its own (see
/// `shared_memory_dir`): the shared one is made instead. (The device list
/// is written by `restrict_devices`.)
pub(super) fn create(root: &Path, rel: &Path, spec: &CgroupSpec) -> Result<(), CgroupError> {
    let limits = &spec.limits;
    let needed = |ctrl: &str| match ctrl {
        "memory" => limits.memory_bytes.is_some(),
        "cpu" => limits.cpus.is_some(),
        "pids" => limits.pids.is_some(),
        _ => false,
    };
    for ctrl in V1_HIERARCHIES {
        let hier = root.join(ctrl);
        if !hier.is_dir() {
            if needed(ctrl) {
                return Err(io_err(
                    &hier,
                    std::io::Error::new(
                        ErrorKind::NotFound,
                        format!("{ctrl} controller not mounted but a {ctrl} limit was requested"),
                    ),
                ));
            }
            continue;
        }
        let dir = match ctrl {
            "memory" => match memory_dir(root, rel, spec) {
                Some(dir) => dir,
                None => continue,
            },
            _ => hier.join(rel),
        };
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        match ctrl {
            "memory" => {
                if let Some(bytes) = limits.memory_bytes {
                    let v = bytes.to_string();
                    let mem = dir.join("memory.limit_in_bytes");
                    let memsw = dir.join("memory.memsw.limit_in_bytes");
                    let has_memsw = memsw.exists();
                    match write_file(&mem, &v) {
                        Ok(()) => {}
                        // Raising the limit above the current memsw limit: memsw first.
                        Err(CgroupError::Io { source, .. })
                            if has_memsw && source.raw_os_error() == Some(libc::EINVAL) =>
                        {
                            write_file(&memsw, &v)?;
                            write_file(&mem, &v)?;
                        }
                        Err(e) => return Err(e),
                    }
                    if has_memsw {
                        write_file(&memsw, &v)?;
                    }
                }
            }
            "cpu" => {
                if let Some(cpus) = limits.cpus {
                    write_file(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                    write_file(
                        &dir.join("cpu.cfs_quota_us"),
                        &cpu_quota_us(cpus).to_string(),
                    )?;
                }
            }
            "pids" => {
                if let Some(n) = limits.pids {
                    write_file(&dir.join("pids.max"), &n.to_string())?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{fake_v1, read, spec};
    use super::super::{add_process, adopt, create, join_self, oom_kills};
    use crate::spec::{CgroupLayout, CgroupSpec, Limits};
    use std::fs;

    #[test]
    fn v1_create_add_oom() {
        let t = fake_v1(true);
        let root = t.path();
        let s = spec(
            CgroupLayout::V1 { root: root.into() },
            Limits {
                memory_bytes: Some(32 << 20),
                cpus: Some(0.004),
                pids: Some(64),
            },
        );
        create(&s).unwrap();
        let mem = root.join("memory/quilt/c1");
        assert_eq!(read(mem.join("memory.limit_in_bytes")), "33554432");
        assert_eq!(read(mem.join("memory.memsw.limit_in_bytes")), "33554432");
        let cpu = root.join("cpu/quilt/c1");
        assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "1000"); // clamped minimum
        assert_eq!(read(root.join("pids/quilt/c1/pids.max")), "64");
        // cpuset is not one of ours.
        assert!(!root.join("cpuset/quilt").exists());

        create(&s).unwrap();
        add_process(&s, 77).unwrap();
        // The devices hierarchy holds the container too (its allow-list is
        // written by restrict_devices).
        assert!(!root.join("devices/quilt/c1/devices.deny").exists());
        for c in ["memory", "cpu", "pids", "devices"] {
            assert_eq!(
                read(root.join(c).join("quilt/c1/cgroup.procs")),
                "77",
                "{c}"
            );
        }

        assert_eq!(oom_kills(&s).unwrap(), 0);
        fs::write(
            mem.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n",
        )
        .unwrap();
        assert_eq!(oom_kills(&s).unwrap(), 5);
    }

    #[test]
    fn v1_join_without_a_devices_cgroup() {
        let t = fake_v1(false);
        let root = t.path();
        let s = spec(CgroupLayout::V1 { root: root.into() }, Limits::default());
        create(&s).unwrap();
        // A container from before the devices cgroup: joined all the same.
        fs::remove_dir(root.join("devices/quilt/c1")).unwrap();
        join_self(&s).unwrap();
        assert_eq!(read(root.join("memory/quilt/tasks")), "0");
        assert_eq!(read(root.join("cpu/quilt/c1/tasks")), "0");
        // Any other hierarchy missing is an error.
        fs::remove_dir_all(root.join("pids/quilt/c1")).unwrap();
        assert!(join_self(&s).is_err());
    }

    #[test]
    fn v1_no_memory_cgroup_without_a_memory_limit() {
        let t = fake_v1(false);
        let root = t.path();
        let unlimited = spec(
            CgroupLayout::V1 { root: root.into() },
            Limits {
                cpus: Some(0.5),
                ..Default::default()
            },
        );
        create(&unlimited).unwrap();
        // The shared memory cgroup, none of its own; every other hierarchy
        // has the container's directory.
        assert!(root.join("memory/quilt").is_dir());
        assert!(!root.join("memory/quilt/c1").exists());
        for c in ["cpu", "pids", "devices"] {
            assert!(root.join(c).join("quilt/c1").is_dir(), "{c}");
        }
        join_self(&unlimited).unwrap();
        assert_eq!(read(root.join("memory/quilt/tasks")), "0");
        for c in ["cpu", "pids", "devices"] {
            assert_eq!(read(root.join(c).join("quilt/c1/tasks")), "0", "{c}");
        }
        // Nothing to count OOM kills in: none.
        assert_eq!(oom_kills(&unlimited).unwrap(), 0);

        // Adopted by a container with a memory limit: its own memory cgroup,
        // with the limit, and the first process moved into it.
        let limited = spec(
            CgroupLayout::V1 { root: root.into() },
            Limits {
                memory_bytes: Some(8 << 20),
                ..Default::default()
            },
        );
        adopt(&unlimited, &limited, 4242).unwrap();
        let own = root.join("memory/quilt/c1");
        assert_eq!(read(own.join("memory.limit_in_bytes")), "8388608");
        assert_eq!(read(own.join("tasks")), "4242");
        // From now on its commands join its own, even without the limit
        // in the spec (a container made by an older quilt has one too).
        fs::write(root.join("memory/quilt/tasks"), "").unwrap();
        join_self(&unlimited).unwrap();
        assert_eq!(read(own.join("tasks")), "0");
        assert_eq!(read(root.join("memory/quilt/tasks")), "");
        // An adoption that adds no memory limit moves nothing.
        fs::remove_dir_all(&own).unwrap();
        let cpus = spec(
            CgroupLayout::V1 { root: root.into() },
            Limits {
                cpus: Some(1.0),
                ..Default::default()
            },
        );
        adopt(&unlimited, &cpus, 4243).unwrap();
        assert!(!own.exists());
        // A pids limit the pooled container was prepared with and the
        // adopter goes without is lifted.
        let with_pids = spec(
            CgroupLayout::V1 { root: root.into() },
            Limits {
                pids: Some(4096),
                ..Default::default()
            },
        );
        create(&with_pids).unwrap();
        assert_eq!(read(root.join("pids/quilt/c1/pids.max")), "4096");
        adopt(&with_pids, &cpus, 4243).unwrap();
        assert_eq!(read(root.join("pids/quilt/c1/pids.max")), "max");

        // Asked for (a container that could mount the hierarchy itself):
        // its own, without a limit.
        fs::remove_dir_all(root.join("memory/quilt")).unwrap();
        let asked = CgroupSpec {
            own_memory: true,
            ..spec(CgroupLayout::V1 { root: root.into() }, Limits::default())
        };
        create(&asked).unwrap();
        join_self(&asked).unwrap();
        assert_eq!(read(own.join("tasks")), "0");
        assert!(!own.join("memory.limit_in_bytes").exists());
        assert!(!root.join("memory/quilt/tasks").exists());

        // A cgroup path with no parent: no shared cgroup to join, the
        // process stays in its supervisor's memory cgroup.
        let top = CgroupSpec {
            layout: CgroupLayout::V1 { root: root.into() },
            path: "solo".into(),
            limits: Limits::default(),
            own_memory: false,
        };
        create(&top).unwrap();
        join_self(&top).unwrap();
        assert!(!root.join("memory/solo").exists());
        assert!(!root.join("memory/tasks").exists());
        assert_eq!(read(root.join("pids/solo/tasks")), "0");
    }

    #[test]
    fn v1_cpu_rounding_and_no_memsw() {
        let t = fake_v1(false);
        let root = t.path();
        let s = spec(
            CgroupLayout::V1 { root: root.into() },
            Limits {
                memory_bytes: Some(1000),
                cpus: Some(0.33333),
                pids: None,
            },
        );
        create(&s).unwrap();
        assert_eq!(read(root.join("cpu/quilt/c1/cpu.cfs_quota_us")), "33333");
        assert_eq!(
            read(root.join("memory/quilt/c1/memory.limit_in_bytes")),
            "1000"
        );
        assert!(
            !root
                .join("memory/quilt/c1/memory.memsw.limit_in_bytes")
                .exists()
        );
        assert!(!root.join("pids/quilt/c1/pids.max").exists());
        assert!(root.join("pids/quilt/c1").is_dir());
    }

    #[test]
    fn v1_missing_controller() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("memory")).unwrap();
        let layout = CgroupLayout::V1 {
            root: t.path().into(),
        };
        // No limit needs cpu/pids: fine.
        create(&spec(
            layout.clone(),
            Limits {
                memory_bytes: Some(1 << 20),
                ..Default::default()
            },
        ))
        .unwrap();
        // A pids limit without the pids hierarchy is an error.
        assert!(
            create(&spec(
                layout,
                Limits {
                    pids: Some(5),
                    ..Default::default()
                }
            ))
            .is_err()
        );
    }
}
