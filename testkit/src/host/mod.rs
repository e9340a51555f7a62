//! Looking at the host from the outside: processes, cgroups, mounts and
//! device numbers.
//!
//! Everything here reads /proc and /sys/fs/cgroup directly, so that callers
//! check what the kernel sees, not what the daemon believes. Probes never
//! fail: a process or directory that vanished while it was read counts as
//! absent.

mod cgroup;
mod devices;
mod leftovers;
mod mounts;
mod proc;

pub use cgroup::{
    CGROUP_ROOT, CgroupVersion, cgroup_dir, cgroup_hierarchies, cgroup_parents, cgroup_version,
    cgroups_below, pids_in_cgroups, read_trimmed, remove_cgroups,
};
pub use devices::{char_majors, unused_char_major};
pub use leftovers::{Footprint, Leftovers};
pub use mounts::{mounts_under, umount_all_under};
pub use proc::{
    ProcInfo, SHIM_COMM, all_pids, all_procs, hwm_kb, kill_all, mem_available_kb, memory_cgroups,
    parent_pid, pid_alive, proc_cmdline, proc_comm, proc_info, proc_refers_to, proc_state, pss_kb,
    rss_kb, shims_of, sunreclaim_kb, wait_pid_gone, zombies_of,
};
