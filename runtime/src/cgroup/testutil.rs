//! Helpers shared by the cgroup module's unit tests: fake hierarchies of
//! regular files.
use crate::spec::{CgroupLayout, CgroupSpec, Limits};
use std::fs;
use std::path::Path;

pub(super) fn spec(layout: CgroupLayout, limits: Limits) -> CgroupSpec {
    CgroupSpec {
        layout,
        path: "quilt/c1".into(),
        limits,
        own_memory: false,
    }
}

pub(super) fn read(p: impl AsRef<Path>) -> String {
    fs::read_to_string(p).unwrap()
}

pub(super) fn fake_v2() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    fs::write(
        t.path().join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids\n",
    )
    .unwrap();
    fs::write(t.path().join("cgroup.subtree_control"), "").unwrap();
    fs::write(t.path().join("cgroup.procs"), "1\n").unwrap();
    t
}

pub(super) fn fake_v1(with_memsw: bool) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for c in ["memory", "cpu", "pids", "cpuset", "devices"] {
        fs::create_dir(t.path().join(c)).unwrap();
    }
    if with_memsw {
        // Pre-create the leaf with a memsw file, as the kernel would.
        let leaf = t.path().join("memory/quilt/c1");
        fs::create_dir_all(&leaf).unwrap();
        fs::write(
            leaf.join("memory.memsw.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
    }
    t
}
