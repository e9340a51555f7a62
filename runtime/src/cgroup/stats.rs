//! Usage figures of a container's cgroup (CPU time, memory, pids, block
//! I/O) read from v1 or v2 control files, and the processes in it. Reads
//! block: run them on a blocking thread.
use super::{CgroupError, dirs, keyed_value, read_file, rel_path};
use crate::spec::{CgroupLayout, CgroupSpec};
use std::path::Path;

/// One reading of a cgroup's counters. A figure the host does not provide
/// (its controller is not mounted or not enabled) is None.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time used since the cgroup was created, in nanoseconds.
    pub cpu_ns: Option<u64>,
    /// Memory charged to the cgroup, without its inactive file cache.
    pub memory_bytes: Option<u64>,
    /// The memory limit; None when there is none.
    pub memory_limit: Option<u64>,
    pub pids: Option<u64>,
    /// The pids limit; None when there is none.
    pub pids_limit: Option<u64>,
    /// Bytes read from and written to block devices.
    pub block_read: Option<u64>,
    pub block_write: Option<u64>,
}

/// Limits at or above this are "none" (v1 writes a page-rounded i64::MAX).
const NO_LIMIT: u64 = 1 << 62;

fn number(s: Option<String>) -> Option<u64> {
    s?.trim().parse().ok()
}

/// A limit file: a number, or "max" (v2) / a huge number (v1) for none.
fn limit(s: Option<String>) -> Option<u64> {
    number(s).filter(|&v| v < NO_LIMIT)
}

/// Reads the cgroup's counters. A cgroup that does not exist (nothing runs)
/// reads as all None.
pub fn usage(spec: &CgroupSpec) -> Result<Usage, CgroupError> {
    let rel = rel_path(spec)?;
    match &spec.layout {
        CgroupLayout::V1 { root } => {
            let u = v1(root, rel)?;
            Ok(with_resident(u, spec, root.join("memory").is_dir()))
        }
        CgroupLayout::V2 { root } => {
            let u = v2(root, &super::v2::placed(root, rel, spec))?;
            let memory = read_file(&root.join("cgroup.controllers"))
                .ok()
                .flatten()
                .is_some_and(|s| s.split_whitespace().any(|c| c == "memory"));
            Ok(with_resident(u, spec, memory))
        }
    }
}

/// A container without a memory cgroup of its own on a host that has the
/// controller: its memory figure is its processes' resident memory.
/// Unreadable members leave that figure out, not the others.
fn with_resident(mut u: Usage, spec: &CgroupSpec, memory_controller: bool) -> Usage {
    if u.memory_bytes.is_none() && memory_controller {
        u.memory_bytes = members(spec).ok().and_then(|m| resident_bytes(&m));
    }
    u
}

/// The resident memory of `pids` together (each process's RSS from
/// `/proc/PID/statm`; pages two of them share count twice). What a
/// container without a memory cgroup of its own reports as its memory:
/// nothing else counts its memory alone. None when no process is left.
fn resident_bytes(pids: &[i32]) -> Option<u64> {
    let page = rustix::param::page_size() as u64;
    let mut total = None;
    for pid in pids {
        let Ok(statm) = std::fs::read_to_string(format!("/proc/{pid}/statm")) else {
            continue;
        };
        let Some(pages) = statm
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u64>().ok())
        else {
            continue;
        };
        total = Some(
            total
                .unwrap_or(0u64)
                .saturating_add(pages.saturating_mul(page)),
        );
    }
    total
}

fn v1(root: &Path, rel: &Path) -> Result<Usage, CgroupError> {
    let mem = root.join("memory").join(rel);
    let memory_bytes = number(read_file(&mem.join("memory.usage_in_bytes"))?).map(|used| {
        let stat = read_file(&mem.join("memory.stat")).ok().flatten();
        let inactive = stat
            .as_deref()
            .and_then(|s| keyed_value(s, "total_inactive_file"))
            .unwrap_or(0);
        used.saturating_sub(inactive)
    });
    let pids = root.join("pids").join(rel);
    let (block_read, block_write) = match read_file(
        &root
            .join("blkio")
            .join(rel)
            .join("blkio.throttle.io_service_bytes_recursive"),
    )? {
        Some(s) => {
            let (r, w) = blkio_v1(&s);
            (Some(r), Some(w))
        }
        None => (None, None),
    };
    Ok(Usage {
        cpu_ns: number(read_file(
            &root.join("cpuacct").join(rel).join("cpuacct.usage"),
        )?),
        memory_bytes,
        memory_limit: limit(read_file(&mem.join("memory.limit_in_bytes"))?),
        pids: number(read_file(&pids.join("pids.current"))?),
        pids_limit: limit(read_file(&pids.join("pids.max"))?),
        block_read,
        block_write,
    })
}

fn v2(root: &Path, rel: &Path) -> Result<Usage, CgroupError> {
    let dir = root.join(rel);
    let memory_bytes = number(read_file(&dir.join("memory.current"))?).map(|used| {
        let stat = read_file(&dir.join("memory.stat")).ok().flatten();
        let inactive = stat
            .as_deref()
            .and_then(|s| keyed_value(s, "inactive_file"))
            .unwrap_or(0);
        used.saturating_sub(inactive)
    });
    let (block_read, block_write) = match read_file(&dir.join("io.stat"))? {
        Some(s) => {
            let (r, w) = io_stat_v2(&s);
            (Some(r), Some(w))
        }
        None => (None, None),
    };
    Ok(Usage {
        cpu_ns: read_file(&dir.join("cpu.stat"))?
            .and_then(|s| keyed_value(&s, "usage_usec"))
            .map(|us| us.saturating_mul(1000)),
        memory_bytes,
        memory_limit: limit(read_file(&dir.join("memory.max"))?),
        pids: number(read_file(&dir.join("pids.current"))?),
        pids_limit: limit(read_file(&dir.join("pids.max"))?),
        block_read,
        block_write,
    })
}

/// v1 `blkio.throttle.io_service_bytes_recursive`: `MAJ:MIN Read N` lines
/// (and Write, Sync, Async, Discard, Total), summed over devices.
fn blkio_v1(s: &str) -> (u64, u64) {
    let (mut r, mut w) = (0u64, 0u64);
    for line in s.lines() {
        let mut it = line.split_whitespace();
        let (Some(_dev), Some(op), Some(n)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        match op {
            "Read" => r = r.saturating_add(n),
            "Write" => w = w.saturating_add(n),
            _ => {}
        }
    }
    (r, w)
}

/// v2 `io.stat`: `MAJ:MIN rbytes=N wbytes=N rios=N ...` lines, summed.
fn io_stat_v2(s: &str) -> (u64, u64) {
    let (mut r, mut w) = (0u64, 0u64);
    for field in s.lines().flat_map(|l| l.split_whitespace().skip(1)) {
        let Some((k, v)) = field.split_once('=') else {
            continue;
        };
        let Ok(n) = v.parse::<u64>() else { continue };
        match k {
            "rbytes" => r = r.saturating_add(n),
            "wbytes" => w = w.saturating_add(n),
            _ => {}
        }
    }
    (r, w)
}

/// The processes in the cgroup and its child cgroups, sorted, without
/// duplicates. On v1 every hierarchy holds the same processes; the first
/// one the container has a directory in is read (a container without a
/// memory limit has none in the memory hierarchy). Empty when the cgroup
/// does not exist.
pub fn members(spec: &CgroupSpec) -> Result<Vec<i32>, CgroupError> {
    let Some(dir) = dirs(spec)?.into_iter().find(|d| d.is_dir()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    collect(&dir, &mut out, 0)?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Child cgroups deeper than this are not walked (a container cannot make
/// them on its own; this only bounds a hostile tree).
const MAX_DEPTH: usize = 16;

fn collect(dir: &Path, out: &mut Vec<i32>, depth: usize) -> Result<(), CgroupError> {
    let Some(procs) = read_file(&dir.join("cgroup.procs"))? else {
        return Ok(());
    };
    out.extend(
        procs
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok()),
    );
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        // Child cgroups are directories; never follow a symlink.
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect(&e.path(), out, depth + 1)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{fake_v1, fake_v2, spec};
    use super::*;
    use crate::spec::Limits;
    use std::fs;

    #[test]
    fn v1_figures() {
        let t = fake_v1(false);
        let root = t.path();
        let s = spec(CgroupLayout::V1 { root: root.into() }, Limits::default());
        assert_eq!(usage(&s).unwrap(), Usage::default());
        assert!(members(&s).unwrap().is_empty());
        for c in ["memory", "pids", "cpuacct", "blkio"] {
            fs::create_dir_all(root.join(c).join("quilt/c1")).unwrap();
        }
        let w = |p: &str, v: &str| fs::write(root.join(p), v).unwrap();
        w("memory/quilt/c1/memory.usage_in_bytes", "10000\n");
        w(
            "memory/quilt/c1/memory.stat",
            "cache 5000\ninactive_file 1\ntotal_inactive_file 4000\n",
        );
        w(
            "memory/quilt/c1/memory.limit_in_bytes",
            "9223372036854771712\n",
        );
        w("memory/quilt/c1/cgroup.procs", "12\n7\n");
        w("cpuacct/quilt/c1/cpuacct.usage", "123456789\n");
        w("pids/quilt/c1/pids.current", "3\n");
        w("pids/quilt/c1/pids.max", "max\n");
        w(
            "blkio/quilt/c1/blkio.throttle.io_service_bytes_recursive",
            "8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\n8:16 Read 1\nTotal 4609\n",
        );
        let u = usage(&s).unwrap();
        assert_eq!(
            u,
            Usage {
                cpu_ns: Some(123_456_789),
                memory_bytes: Some(6000),
                memory_limit: None,
                pids: Some(3),
                pids_limit: None,
                block_read: Some(4097),
                block_write: Some(512),
            }
        );
        w("memory/quilt/c1/memory.limit_in_bytes", "67108864\n");
        w("pids/quilt/c1/pids.max", "64\n");
        let u = usage(&s).unwrap();
        assert_eq!((u.memory_limit, u.pids_limit), (Some(67_108_864), Some(64)));
        assert_eq!(members(&s).unwrap(), [7, 12]);
    }

    #[test]
    fn v2_figures() {
        let t = fake_v2();
        let s = spec(
            CgroupLayout::V2 {
                root: t.path().into(),
            },
            Limits::default(),
        );
        let dir = t.path().join("quilt/c1");
        fs::create_dir_all(dir.join("sub")).unwrap();
        let w = |p: &str, v: &str| fs::write(dir.join(p), v).unwrap();
        w(
            "cpu.stat",
            "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n",
        );
        w("memory.current", "8192\n");
        w("memory.stat", "anon 4096\ninactive_file 1024\n");
        w("memory.max", "max\n");
        w("pids.current", "2\n");
        w("pids.max", "100\n");
        w(
            "io.stat",
            "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n259:0 rbytes=1 wbytes=2\n",
        );
        w("cgroup.procs", "30\n");
        w("sub/cgroup.procs", "31\n30\n");
        assert_eq!(
            usage(&s).unwrap(),
            Usage {
                cpu_ns: Some(2_500_000),
                memory_bytes: Some(7168),
                memory_limit: None,
                pids: Some(2),
                pids_limit: Some(100),
                block_read: Some(101),
                block_write: Some(202),
            }
        );
        assert_eq!(members(&s).unwrap(), [30, 31]);
    }
}
