//! Quilt's default seccomp profile: docker's default policy. An allow-list:
//! every syscall not allowed here fails with EPERM. Among those refused: the
//! kernel keyring (keyctl, add_key, request_key), io_uring, bpf,
//! perf_event_open, kexec, kernel modules, swapon/swapoff, acct, quotactl,
//! open_by_handle_at, namespaces (unshare, setns, clone with a namespace
//! flag) and mounts, userfaultfd, and personalities other than the usual
//! ones; several become allowed with the capability that makes them useful
//! (CAP_SYS_ADMIN for mounts and namespaces, ...).
use super::profile::{Action, ArgCheck, CmpOp, Profile, Rule, Scope};
use crate::capability::Capability;

/// Syscalls every container may make. Names of other architectures than the
/// one filtered are skipped (arch_prctl and modify_ldt are x86_64's).
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "clock_adjtime",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futex",
    "futex_requeue",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "modify_ldt",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedsend",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    // Docker allows these three from kernel 4.8 on, where seccomp is
    // checked again after a tracer changed a syscall: every kernel Quilt
    // runs on. Other processes are still guarded by ptrace's own checks.
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "pselect6",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "sendfile",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "setsid",
    "setsockopt",
    "setuid",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "socketpair",
    "splice",
    "stat",
    "statfs",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "times",
    "tkill",
    "truncate",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "write",
    "writev",
];

/// Syscalls a container may make only while it holds a capability.
const WITH_CAPABILITY: &[(Capability, &[&str])] = &[
    (
        Capability::SysAdmin,
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount2",
            "unshare",
        ],
    ),
    (Capability::DacReadSearch, &["open_by_handle_at"]),
    (Capability::SysBoot, &["reboot"]),
    (Capability::SysChroot, &["chroot"]),
    (
        Capability::SysModule,
        &["delete_module", "init_module", "finit_module"],
    ),
    (Capability::SysPacct, &["acct"]),
    (
        Capability::SysPtrace,
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
            "userfaultfd",
        ],
    ),
    (Capability::SysRawio, &["iopl", "ioperm"]),
    (Capability::SysTime, &["settimeofday", "clock_settime"]),
    (Capability::SysTtyConfig, &["vhangup"]),
    (
        Capability::SysNice,
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    (Capability::Syslog, &["syslog"]),
    (Capability::Bpf, &["bpf"]),
    (Capability::Perfmon, &["perf_event_open"]),
];

/// The personalities a container may switch to: PER_LINUX, PER_LINUX32,
/// UNAME26, UNAME26|PER_LINUX32, and 0xffffffff (which only queries). Not
/// ADDR_NO_RANDOMIZE, which turns address space randomisation off.
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// AF_VSOCK: sockets to the hypervisor or other VMs.
const AF_VSOCK: u64 = 40;

/// Every namespace flag of clone(2): CLONE_NEWNS, CLONE_NEWCGROUP,
/// CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET.
const NAMESPACE_FLAGS: u64 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

/// The default profile (what the rules depend on is resolved at compile
/// time, against the container's capabilities).
pub fn profile() -> Profile {
    let mut rules = vec![Rule::new(ALLOWED, Action::Allow)];
    for (cap, names) in WITH_CAPABILITY {
        rules.push(Rule {
            includes: Scope::caps(&[*cap]),
            ..Rule::new(names, Action::Allow)
        });
    }
    rules.push(Rule {
        args: vec![ArgCheck::new(0, CmpOp::Ne, AF_VSOCK)],
        ..Rule::new(&["socket"], Action::Allow)
    });
    for p in PERSONALITIES {
        rules.push(Rule {
            args: vec![ArgCheck::new(0, CmpOp::Eq, p)],
            ..Rule::new(&["personality"], Action::Allow)
        });
    }
    let without_sys_admin = Scope::caps(&[Capability::SysAdmin]);
    // Threads and processes, but no new namespace.
    rules.push(Rule {
        args: vec![ArgCheck {
            index: 0,
            op: CmpOp::MaskedEq,
            value: NAMESPACE_FLAGS,
            value_two: 0,
        }],
        excludes: without_sys_admin.clone(),
        ..Rule::new(&["clone"], Action::Allow)
    });
    // clone3 passes its flags in memory, out of a filter's reach: ENOSYS
    // makes the C libraries fall back to clone, whose flags are checked.
    rules.push(Rule {
        excludes: without_sys_admin,
        ..Rule::new(&["clone3"], Action::Errno(libc::ENOSYS as u16))
    });
    Profile {
        default_action: Action::Errno(libc::EPERM as u16),
        rules,
    }
}

#[cfg(test)]
mod tests {
    use super::super::arch::Arch;
    use super::*;

    #[test]
    fn every_name_is_a_syscall_of_a_filtered_architecture() {
        let names = ALLOWED
            .iter()
            .chain(WITH_CAPABILITY.iter().flat_map(|(_, n)| n.iter()))
            .chain(["socket", "personality", "clone", "clone3"].iter());
        for name in names {
            assert!(
                Arch::X86_64.syscall(name).is_some() || Arch::Aarch64.syscall(name).is_some(),
                "{name} is a syscall of neither x86_64 nor aarch64"
            );
        }
        let mut sorted = ALLOWED.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ALLOWED.len(), "ALLOWED has duplicates");
    }

    #[test]
    fn what_is_never_allowed() {
        let p = profile();
        for refused in [
            "keyctl",
            "add_key",
            "request_key",
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
            "kexec_load",
            "kexec_file_load",
            "nfsservctl",
            "swapon",
            "swapoff",
            "pivot_root",
            "uselib",
            "_sysctl",
            "create_module",
        ] {
            assert!(
                p.rules
                    .iter()
                    .all(|r| !r.names.iter().any(|n| n == refused)),
                "{refused} must not be in any rule"
            );
        }
    }
}
