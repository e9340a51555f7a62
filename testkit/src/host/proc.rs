//! Processes, read from /proc (through the `procfs` crate).

use std::fs;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use procfs::Current;
use procfs::process::{FDTarget, Process};

use crate::retry;

/// The command name (`comm`) of Quilt's per-container supervisor.
pub const SHIM_COMM: &str = "quilt-shim";

/// What /proc/PID/stat says about a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: i32,
    /// The command name (may contain spaces and parentheses).
    pub comm: String,
    /// The state letter: R, S, D, Z (zombie), X (dead), ...
    pub state: char,
    pub ppid: i32,
}

/// /proc/PID/stat of `pid`; None if the process is gone.
pub fn proc_info(pid: i32) -> Option<ProcInfo> {
    let stat = Process::new(pid).ok()?.stat().ok()?;
    Some(ProcInfo {
        pid,
        comm: stat.comm,
        state: stat.state,
        ppid: stat.ppid,
    })
}

/// Every process of the PID namespace we see.
pub fn all_pids() -> Vec<i32> {
    match procfs::process::all_processes() {
        Ok(procs) => procs.flatten().map(|p| p.pid()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Every process with its stat (those that exited meanwhile are left out).
pub fn all_procs() -> Vec<ProcInfo> {
    all_pids().into_iter().filter_map(proc_info).collect()
}

/// The process state letter (R, S, Z, ...), None if the process is gone.
pub fn proc_state(pid: i32) -> Option<char> {
    proc_info(pid).map(|p| p.state)
}

pub fn parent_pid(pid: i32) -> Option<i32> {
    proc_info(pid).map(|p| p.ppid)
}

/// True if the process exists and is neither a zombie nor dead.
pub fn pid_alive(pid: i32) -> bool {
    Process::new(pid).is_ok_and(|p| p.is_alive())
}

pub fn proc_comm(pid: i32) -> Option<String> {
    proc_info(pid).map(|p| p.comm)
}

/// The arguments of a process (empty if it is gone). Read by hand rather
/// than with procfs, which refuses arguments that are not UTF-8.
pub fn proc_cmdline(pid: i32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// True if the process refers to `root` in its command line, working
/// directory, root directory or open files.
pub fn proc_refers_to(pid: i32, root: &Path) -> bool {
    let needle = root.to_string_lossy();
    if proc_cmdline(pid)
        .iter()
        .any(|a| a.contains(needle.as_ref()))
    {
        return true;
    }
    let Ok(p) = Process::new(pid) else {
        return false;
    };
    if p.cwd().is_ok_and(|d| d.starts_with(root)) || p.root().is_ok_and(|d| d.starts_with(root)) {
        return true;
    }
    let Ok(fds) = p.fd() else {
        return false;
    };
    fds.flatten()
        .any(|fd| matches!(&fd.target, FDTarget::Path(t) if t.starts_with(root)))
}

/// Zombie children of any of `parents`.
pub fn zombies_of(parents: &[i32]) -> Vec<ProcInfo> {
    all_procs()
        .into_iter()
        .filter(|p| p.state == 'Z' && parents.contains(&p.ppid))
        .collect()
}

/// Live `quilt-shim` processes of one daemon: children of its `quiltd`
/// (when it runs), or shims that mention `root` in their arguments, working
/// or root directory or open files (also after quiltd is gone).
pub fn shims_of(root: &Path, quiltd: Option<i32>) -> Vec<i32> {
    all_procs()
        .into_iter()
        .filter(|p| p.comm == SHIM_COMM && p.state != 'Z' && p.state != 'X')
        .filter(|p| Some(p.ppid) == quiltd || proc_refers_to(p.pid, root))
        .map(|p| p.pid)
        .collect()
}

/// SIGKILLs the given processes (errors ignored: they may be gone). Never
/// PID 1 or the caller itself.
pub fn kill_all(pids: impl IntoIterator<Item = i32>) {
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    for p in pids {
        if p > 1 && p != me {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
    }
}

/// Waits (bounded) until the process has gone away or become a zombie.
pub fn wait_pid_gone(pid: i32, timeout: Duration) -> bool {
    retry(timeout, || (!pid_alive(pid)).then_some(())).is_some()
}

/// Resident set size of a process, kB (VmRSS).
pub fn rss_kb(pid: i32) -> Option<u64> {
    Process::new(pid).ok()?.status().ok()?.vmrss
}

/// Peak resident set size of a process, kB (VmHWM).
pub fn hwm_kb(pid: i32) -> Option<u64> {
    Process::new(pid).ok()?.status().ok()?.vmhwm
}

/// Proportional set size of a process, kB (/proc/PID/smaps_rollup).
pub fn pss_kb(pid: i32) -> Option<u64> {
    let rollup = Process::new(pid).ok()?.smaps_rollup().ok()?;
    let all = rollup.memory_map_rollup.0.first()?;
    // procfs reports bytes; the file says kB.
    all.extension.map.get("Pss").map(|b| b / 1024)
}

/// SUnreclaim of /proc/meminfo (unreclaimable slab), kB.
pub fn sunreclaim_kb() -> Option<u64> {
    // procfs reports bytes; the file says kB.
    procfs::Meminfo::current()
        .ok()?
        .s_unreclaim
        .map(|b| b / 1024)
}

/// The memory controller's `num_cgroups` in /proc/cgroups: every memory
/// cgroup the kernel still holds, the removed ones still dying included.
pub fn memory_cgroups() -> Option<u32> {
    procfs::cgroups()
        .ok()?
        .0
        .into_iter()
        .find(|c| c.name == "memory")
        .map(|c| c.num_cgroups)
}

/// MemAvailable of /proc/meminfo, kB.
pub fn mem_available_kb() -> Option<u64> {
    // procfs reports bytes; the file says kB.
    procfs::Meminfo::current()
        .ok()?
        .mem_available
        .map(|b| b / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> i32 {
        i32::try_from(std::process::id()).unwrap()
    }

    #[test]
    fn reads_our_own_process() {
        let me = me();
        assert!(pid_alive(me));
        let info = proc_info(me).expect("own stat");
        assert!(info.ppid > 0 && !info.comm.is_empty(), "{info:?}");
        assert_eq!(parent_pid(me), Some(info.ppid));
        assert!(all_pids().contains(&me));
        assert!(!proc_cmdline(me).is_empty());
        assert!(rss_kb(me).is_some_and(|kb| kb > 0));
        assert!(hwm_kb(me).is_some_and(|kb| kb > 0));
        assert!(pss_kb(me).is_some_and(|kb| kb > 0));
        assert!(mem_available_kb().is_some_and(|kb| kb > 0));
    }

    #[test]
    fn reads_the_host_kernel_memory_figures() {
        assert!(sunreclaim_kb().is_some_and(|kb| kb > 0));
        // The root memory cgroup at least (quilt needs the controller).
        let listed = std::fs::read_to_string("/proc/cgroups").unwrap();
        let memory = listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some("memory"))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|n| n.parse::<u32>().ok());
        assert!(memory.is_some_and(|n| n >= 1), "{listed}");
        // Other tests may add or remove memory cgroups meanwhile.
        assert!(memory_cgroups().is_some_and(|n| n >= 1));
    }

    #[test]
    fn a_missing_process_is_absent() {
        // PIDs are at most 2^22 on Linux.
        let gone = 1 << 23;
        assert!(!pid_alive(gone));
        assert_eq!(proc_info(gone), None);
        assert!(proc_cmdline(gone).is_empty());
        assert!(!proc_refers_to(gone, Path::new("/")));
    }

    #[test]
    fn a_process_refers_to_its_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        assert!(proc_refers_to(me(), &cwd));
        assert!(!proc_refers_to(
            me(),
            Path::new("/nonexistent/quilt-testkit")
        ));
    }
}
