//! Cgroup v2: the unified hierarchy. Our controllers are enabled in the
//! `cgroup.subtree_control` of every level above the container's cgroup.
use super::{CONTROLLERS, CPU_PERIOD_US, CgroupError, cpu_quota_us, io_err, read_file, write_file};
use crate::spec::{CgroupSpec, Limits};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// The group, below the parent, of the containers without a memory cgroup
/// of their own: the memory controller is enabled for it (its processes
/// are charged to it together) but not for its children, the containers.
/// A name no container id can take.
pub const SHARED: &str = "shared-memory";

/// Where the container's cgroup is, relative to the root: `PARENT/ID` for
/// one with a memory cgroup of its own (see `wants_own_memory`),
/// `PARENT/shared-memory/ID` for the others. A memory cgroup costs the host
/// per-shrinker arrays and list_lru slots for every superblock, which grow
/// with the mounts ever alive (over 0.6 MiB each after thousands of
/// containers) and are walked when one goes offline. A container that has
/// its cgroup at the other place (made by an older quilt, which gave every
/// container its own, or prepared in a warm pool) keeps it there. A path
/// with no parent stays as it is.
pub(super) fn placed(root: &Path, rel: &Path, spec: &CgroupSpec) -> PathBuf {
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return rel.to_path_buf();
    };
    if parent.as_os_str().is_empty() || super::wants_own_memory(spec) {
        return rel.to_path_buf();
    }
    let shared = parent.join(SHARED).join(name);
    if !root.join(&shared).is_dir() && root.join(rel).is_dir() {
        return rel.to_path_buf();
    }
    shared
}

/// The membership file `join_self` writes "0" to.
pub(super) const JOIN_FILE: &str = "cgroup.procs";

/// The file whose `oom_kill` line counts the cgroup's OOM kills.
pub(super) fn oom_file(root: &Path, rel: &Path) -> PathBuf {
    root.join(rel).join("memory.events")
}

/// An O_DIRECTORY descriptor of the container's cgroup, for
/// clone3(CLONE_INTO_CGROUP).
pub(super) fn open_dir(root: &Path, rel: &Path) -> Result<std::fs::File, CgroupError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = root.join(rel);
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(&dir)
        .map_err(|e| io_err(&dir, e))
}

/// Controllers listed in a space-separated control file.
fn controller_list(s: &str) -> Vec<String> {
    s.split_whitespace()
        .map(|w| w.trim_start_matches(['+', '-']).to_string())
        .collect()
}

/// Creates the container's cgroup, enabling our controllers on the way
/// down, and writes the limits.
///
/// `shared`: `rel` is below the shared group (see `placed`), whose children
/// get every controller but memory.
pub(super) fn create(
    root: &Path,
    rel: &Path,
    limits: &Limits,
    shared: bool,
) -> Result<(), CgroupError> {
    // Walk from the root down to the parent of the leaf, enabling our
    // controllers for the children of each level.
    let comps: Vec<_> = rel.components().collect();
    let mut level = root.to_path_buf();
    // What the kernel makes available to `level`'s children is what `level`
    // enabled; used when a (fake) level has no cgroup.controllers file.
    let mut inherited: Option<Vec<String>> = None;
    for (i, comp) in comps.iter().enumerate() {
        let available = match read_file(&level.join("cgroup.controllers"))? {
            Some(s) => controller_list(&s),
            None => inherited.clone().unwrap_or_default(),
        };
        let enabled = read_file(&level.join("cgroup.subtree_control"))?
            .map(|s| controller_list(&s))
            .unwrap_or_default();
        // The shared group's children have no memory cgroup (see `placed`).
        let no_memory = shared && i + 1 == comps.len();
        let missing: Vec<&str> = CONTROLLERS
            .iter()
            .copied()
            .filter(|c| !(no_memory && *c == "memory"))
            .filter(|c| available.iter().any(|a| a == c) && !enabled.iter().any(|e| e == c))
            .collect();
        if !missing.is_empty() {
            let line = missing
                .iter()
                .map(|c| format!("+{c}"))
                .collect::<Vec<_>>()
                .join(" ");
            write_file(&level.join("cgroup.subtree_control"), &line)?;
        }
        let mut now_enabled: Vec<String> = enabled
            .into_iter()
            .filter(|e| available.iter().any(|a| a == e))
            .collect();
        now_enabled.extend(missing.iter().map(|s| s.to_string()));
        inherited = Some(now_enabled);
        level.push(comp);
        match std::fs::create_dir(&level) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(&level, e)),
        }
    }
    let leaf = level;
    if let Some(bytes) = limits.memory_bytes {
        write_file(&leaf.join("memory.max"), &bytes.to_string())?;
        let swap = leaf.join("memory.swap.max");
        if swap.exists() {
            write_file(&swap, "0")?;
        }
    }
    if let Some(cpus) = limits.cpus {
        write_file(
            &leaf.join("cpu.max"),
            &format!("{} {}", cpu_quota_us(cpus), CPU_PERIOD_US),
        )?;
    }
    if let Some(n) = limits.pids {
        write_file(&leaf.join("pids.max"), &n.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{fake_v2, read, spec};
    use super::super::{add_process, adopt, create, join_self, oom_kills, open_v2_dir};
    use crate::spec::{CgroupLayout, CgroupSpec, Limits};
    use std::fs;

    #[test]
    fn v2_adoption_lifts_a_pids_limit_the_adopter_has_not() {
        let t = fake_v2();
        let root = t.path();
        let v2 = || CgroupLayout::V2 { root: root.into() };
        let pids = |n| Limits {
            pids: n,
            ..Default::default()
        };
        let pooled = CgroupSpec {
            own_memory: true,
            ..spec(v2(), pids(Some(4096)))
        };
        create(&pooled).unwrap();
        let leaf = root.join("quilt/c1");
        assert_eq!(read(leaf.join("pids.max")), "4096");
        // The same limit: written again, unchanged.
        adopt(&pooled, &pooled, 7).unwrap();
        assert_eq!(read(leaf.join("pids.max")), "4096");
        // Another one: the adopter's.
        let other = CgroupSpec {
            limits: pids(Some(64)),
            ..pooled.clone()
        };
        adopt(&pooled, &other, 7).unwrap();
        assert_eq!(read(leaf.join("pids.max")), "64");
        // None: lifted, not inherited.
        let none = CgroupSpec {
            limits: pids(None),
            ..pooled.clone()
        };
        adopt(&pooled, &none, 7).unwrap();
        assert_eq!(read(leaf.join("pids.max")), "max");
    }

    #[test]
    fn v2_create_add_oom() {
        let t = fake_v2();
        let root = t.path();
        let layout = CgroupLayout::V2 { root: root.into() };
        let s = spec(
            layout,
            Limits {
                memory_bytes: Some(64 << 20),
                cpus: Some(1.5),
                pids: Some(100),
            },
        );
        // A pre-existing leaf with a swap knob (the kernel would provide it).
        fs::create_dir_all(root.join("quilt/c1")).unwrap();
        fs::write(root.join("quilt/c1/memory.swap.max"), "max\n").unwrap();

        create(&s).unwrap();
        assert_eq!(
            read(root.join("cgroup.subtree_control")),
            "+memory +cpu +pids +io"
        );
        // The intermediate level had no cgroup.controllers: it inherits what
        // the root enabled.
        assert_eq!(
            read(root.join("quilt/cgroup.subtree_control")),
            "+memory +cpu +pids +io"
        );
        let leaf = root.join("quilt/c1");
        assert_eq!(read(leaf.join("memory.max")), "67108864");
        assert_eq!(read(leaf.join("memory.swap.max")), "0");
        assert_eq!(read(leaf.join("cpu.max")), "150000 100000");
        assert_eq!(read(leaf.join("pids.max")), "100");
        assert!(!leaf.join("cgroup.subtree_control").exists());

        // Idempotent.
        create(&s).unwrap();
        assert_eq!(read(leaf.join("cpu.max")), "150000 100000");

        add_process(&s, 4242).unwrap();
        assert_eq!(read(leaf.join("cgroup.procs")), "4242");
        join_self(&s).unwrap();
        assert_eq!(read(leaf.join("cgroup.procs")), "0");
        assert!(open_v2_dir(&s).unwrap().is_some());

        assert_eq!(oom_kills(&s).unwrap(), 0);
        fs::write(
            leaf.join("memory.events"),
            "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n",
        )
        .unwrap();
        assert_eq!(oom_kills(&s).unwrap(), 2);
    }

    #[test]
    fn v2_only_available_controllers_and_no_limits() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::write(root.join("cgroup.controllers"), "cpu io memory\n").unwrap();
        fs::write(root.join("cgroup.subtree_control"), "memory\n").unwrap();
        fs::create_dir(root.join("quilt")).unwrap();
        fs::write(root.join("quilt/cgroup.controllers"), "memory\n").unwrap();
        fs::write(root.join("quilt/cgroup.subtree_control"), "memory\n").unwrap();
        let s = spec(CgroupLayout::V2 { root: root.into() }, Limits::default());
        create(&s).unwrap();
        // memory already enabled at the root: only cpu and io added; pids
        // unavailable.
        assert_eq!(read(root.join("cgroup.subtree_control")), "+cpu +io");
        // Nothing missing at the second level: untouched.
        assert_eq!(read(root.join("quilt/cgroup.subtree_control")), "memory\n");
        // No memory limit: below the shared group, whose children get no
        // memory controller (it is the only one it could pass on here).
        assert!(!root.join("quilt/c1").exists());
        let leaf = root.join("quilt/shared-memory/c1");
        assert!(leaf.is_dir());
        assert!(
            !root
                .join("quilt/shared-memory/cgroup.subtree_control")
                .exists()
        );
        for f in ["memory.max", "cpu.max", "pids.max", "memory.swap.max"] {
            assert!(!leaf.join(f).exists(), "{f}");
        }
    }

    #[test]
    fn v2_memory_cgroup_only_with_a_memory_limit() {
        let t = fake_v2();
        let root = t.path();
        let layout = CgroupLayout::V2 { root: root.into() };
        let unlimited = spec(
            layout.clone(),
            Limits {
                pids: Some(9),
                ..Default::default()
            },
        );
        create(&unlimited).unwrap();
        let shared = root.join("quilt/shared-memory");
        // memory for the shared group, not for its children.
        assert_eq!(
            read(root.join("quilt/cgroup.subtree_control")),
            "+memory +cpu +pids +io"
        );
        assert_eq!(
            read(shared.join("cgroup.subtree_control")),
            "+cpu +pids +io"
        );
        assert_eq!(read(shared.join("c1/pids.max")), "9");
        join_self(&unlimited).unwrap();
        assert_eq!(read(shared.join("c1/cgroup.procs")), "0");
        assert!(open_v2_dir(&unlimited).unwrap().is_some());
        assert_eq!(oom_kills(&unlimited).unwrap(), 0);
        assert!(!root.join("quilt/c1").exists());

        // A memory limit, or a container that asks: a cgroup of its own.
        let limited = CgroupSpec {
            path: "quilt/c2".into(),
            ..spec(
                layout.clone(),
                Limits {
                    memory_bytes: Some(1 << 20),
                    ..Default::default()
                },
            )
        };
        create(&limited).unwrap();
        assert_eq!(read(root.join("quilt/c2/memory.max")), "1048576");
        let asked = CgroupSpec {
            path: "quilt/c3".into(),
            own_memory: true,
            ..spec(layout.clone(), Limits::default())
        };
        create(&asked).unwrap();
        assert!(root.join("quilt/c3").is_dir());
        // Made elsewhere (an older quilt, a warm pool): found where it is.
        let legacy = CgroupSpec {
            path: "quilt/c3".into(),
            ..spec(layout, Limits::default())
        };
        join_self(&legacy).unwrap();
        assert_eq!(read(root.join("quilt/c3/cgroup.procs")), "0");
        assert!(!shared.join("c3").exists());
    }
}
