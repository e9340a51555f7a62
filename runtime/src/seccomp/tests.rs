//! What compiled profiles answer, run through `bpf.rs` as the kernel would
//! run the installed filters.
use super::arch::Arch;
use super::bpf::{SyscallData, combined, run, runs};
use super::compile::{decode, programs};
use super::*;
use crate::capability::Capability;
use rustix::thread::CapabilitySet;
use seccompiler::BpfProgram;

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const EPERM: u32 = libc::SECCOMP_RET_ERRNO | 1;
const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | 38;

fn native() -> Arch {
    Arch::native().expect("tests run on x86_64 or aarch64")
}

fn docker_caps() -> CapabilitySet {
    Capability::set_of(&Capability::DEFAULTS)
}

fn with(extra: Capability) -> CapabilitySet {
    docker_caps() | extra.as_set()
}

/// The answer of `filters` to syscall `name` with `args` on the native arch.
fn answer(filters: &[BpfProgram], name: &str, args: &[u64]) -> u32 {
    let arch = native();
    let nr = arch
        .syscall(name)
        .unwrap_or_else(|| panic!("{name} is not a syscall here"));
    let mut a = [0u64; 6];
    a[..args.len()].copy_from_slice(args);
    let data = SyscallData {
        nr: nr as i32,
        arch: arch.audit(),
        instruction_pointer: 0x7f00_0000_1000,
        args: a,
    };
    combined(filters, &data).expect("the compiled filters run")
}

fn default_for(caps: CapabilitySet) -> Vec<BpfProgram> {
    programs(&default_profile(), caps, native()).expect("the default profile compiles")
}

fn custom(text: &str) -> Result<Vec<BpfProgram>, SeccompError> {
    programs(&parse(text)?, docker_caps(), native())
}

const CLONE_NEWUSER: u64 = 0x1000_0000;
const SIGCHLD: u64 = 17;

#[test]
fn the_default_profile_allows_ordinary_programs() {
    let f = default_for(docker_caps());
    for name in [
        "read",
        "write",
        "execve",
        "exit_group",
        "openat",
        "mmap",
        "futex",
        "rt_sigaction",
        "wait4",
        "newfstatat",
        "prctl",
        "seccomp",
        "ptrace",
    ] {
        assert_eq!(answer(&f, name, &[]), ALLOW, "{name}");
    }
    // fork and threads, sockets other than vsock, the usual personalities.
    assert_eq!(answer(&f, "clone", &[SIGCHLD]), ALLOW);
    assert_eq!(
        answer(&f, "clone", &[0x3d0f00]),
        ALLOW,
        "pthread_create's flags"
    );
    assert_eq!(answer(&f, "socket", &[2, 1, 0]), ALLOW, "AF_INET");
    assert_eq!(answer(&f, "socket", &[1, 1, 0]), ALLOW, "AF_UNIX");
    for p in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert_eq!(answer(&f, "personality", &[p]), ALLOW, "personality {p:#x}");
    }
}

#[test]
fn the_default_profile_refuses_what_the_audit_found() {
    let f = default_for(docker_caps());
    for name in [
        "keyctl",
        "add_key",
        "request_key",
        "unshare",
        "setns",
        "mount",
        "umount2",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "userfaultfd",
        "perf_event_open",
        "bpf",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "open_by_handle_at",
        "swapon",
        "swapoff",
        "acct",
        "quotactl",
        "reboot",
        "pivot_root",
        "kcmp",
        "pidfd_getfd",
        "settimeofday",
    ] {
        assert_eq!(answer(&f, name, &[]), EPERM, "{name}");
    }
    if native() == Arch::X86_64 {
        for name in ["lookup_dcookie", "nfsservctl", "iopl", "ioperm"] {
            assert_eq!(answer(&f, name, &[]), EPERM, "{name}");
        }
    }
    assert_eq!(answer(&f, "clone", &[CLONE_NEWUSER | SIGCHLD]), EPERM);
    for ns in [
        0x20000,
        0x0200_0000,
        0x0400_0000,
        0x0800_0000,
        0x2000_0000,
        0x4000_0000,
    ] {
        assert_eq!(answer(&f, "clone", &[ns | SIGCHLD]), EPERM, "clone {ns:#x}");
    }
    assert_eq!(answer(&f, "clone3", &[0, 88]), ENOSYS);
    assert_eq!(
        answer(&f, "personality", &[0x0040000]),
        EPERM,
        "ADDR_NO_RANDOMIZE"
    );
    // All 64 bits are compared.
    assert_eq!(answer(&f, "personality", &[1 << 32]), EPERM);
    assert_eq!(answer(&f, "socket", &[40, 1, 0]), EPERM, "AF_VSOCK");
}

#[test]
fn capabilities_lift_what_they_make_useful() {
    let admin = default_for(with(Capability::SysAdmin));
    for name in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "bpf",
        "perf_event_open",
    ] {
        assert_eq!(answer(&admin, name, &[]), ALLOW, "{name} with SYS_ADMIN");
    }
    assert_eq!(answer(&admin, "clone", &[CLONE_NEWUSER | SIGCHLD]), ALLOW);
    assert_eq!(answer(&admin, "clone3", &[0, 88]), ALLOW);
    assert_eq!(answer(&admin, "keyctl", &[]), EPERM, "never");
    assert_eq!(answer(&admin, "reboot", &[]), EPERM);

    let ptrace = default_for(with(Capability::SysPtrace));
    for name in ["userfaultfd", "kcmp", "pidfd_getfd", "process_madvise"] {
        assert_eq!(answer(&ptrace, name, &[]), ALLOW, "{name} with SYS_PTRACE");
    }
    assert_eq!(answer(&ptrace, "mount", &[]), EPERM);
    assert_eq!(
        answer(&default_for(with(Capability::SysBoot)), "reboot", &[]),
        ALLOW
    );
    assert_eq!(
        answer(&default_for(with(Capability::Bpf)), "bpf", &[]),
        ALLOW
    );
    assert_eq!(
        answer(
            &default_for(with(Capability::DacReadSearch)),
            "open_by_handle_at",
            &[]
        ),
        ALLOW
    );
    // Fewer capabilities than docker's: chroot goes with SYS_CHROOT.
    let none = default_for(CapabilitySet::empty());
    assert_eq!(answer(&none, "chroot", &[]), EPERM);
    assert_eq!(answer(&default_for(docker_caps()), "chroot", &[]), ALLOW);
}

#[test]
fn other_abis_are_not_let_through() {
    let f = default_for(docker_caps());
    // A 32-bit syscall (int 0x80 on x86_64, AArch32 on arm64): killed.
    let foreign = SyscallData {
        nr: 0,
        arch: 0x4000_0003,
        instruction_pointer: 0,
        args: [0; 6],
    };
    assert_eq!(combined(&f, &foreign), Some(libc::SECCOMP_RET_KILL_PROCESS));
    if native() == Arch::X86_64 {
        // x32 (the x86_64 arch with bit 30 in the number): the default action.
        let x32 = SyscallData {
            nr: 0x4000_0000,
            arch: native().audit(),
            instruction_pointer: 0,
            args: [0; 6],
        };
        assert_eq!(combined(&f, &x32), Some(EPERM));
    }
}

#[test]
fn the_compiled_default_is_small_and_round_trips() {
    let f = default_for(docker_caps());
    // The allow-list and the clone3 ENOSYS filter.
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(f.iter().all(|p| p.len() < 4096));
    let compiled = compile(&default_profile(), docker_caps())
        .unwrap()
        .expect("a filter");
    assert_eq!(compiled.filters.len(), 2);
    let decoded: Vec<_> = compiled
        .filters
        .iter()
        .map(|h| decode(h).unwrap())
        .collect();
    assert_eq!(decoded, f);
    let program = Program::decode(Some(&compiled)).unwrap();
    assert!(!program.is_empty());
    assert!(Program::decode(None).unwrap().is_empty());
    let bad = crate::spec::SeccompFilters {
        filters: vec!["0011".into()],
    };
    assert!(matches!(
        Program::decode(Some(&bad)),
        Err(SeccompError::Decode(_))
    ));
    let bad = crate::spec::SeccompFilters {
        filters: vec!["zz".into()],
    };
    assert!(matches!(
        Program::decode(Some(&bad)),
        Err(SeccompError::Decode(_))
    ));
}

#[test]
fn a_custom_deny_list_with_errno() {
    let f = custom(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(answer(&f, "mkdirat", &[]), libc::SECCOMP_RET_ERRNO | 13);
    assert_eq!(answer(&f, "read", &[]), ALLOW);
    assert_eq!(answer(&f, "keyctl", &[]), ALLOW);
    // Allowing everything needs no filter at all.
    assert_eq!(
        compile(
            &parse(
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#
            )
            .unwrap(),
            docker_caps()
        ),
        Ok(None)
    );
}

#[test]
fn several_actions_combine_as_one_profile() {
    let f = custom(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "syscalls": [
              {"names": ["read", "write", "prctl", "seccomp", "no_such_call", "chown32"],
               "action": "SCMP_ACT_ALLOW"},
              {"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS"},
              {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
               "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
              {"names": ["uname"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 4096, "op": "SCMP_CMP_GE"}]},
              {"names": ["getppid"], "action": "SCMP_ACT_LOG"},
              {"names": ["gettid"], "action": "SCMP_ACT_TRAP"},
              {"names": ["getuid"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
              {"names": ["getgid"], "action": "SCMP_ACT_KILL"},
              {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
              {"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 1, "value": 65280, "valueTwo": 21504, "op": "SCMP_CMP_MASKED_EQ"}]},
              {"names": ["fcntl"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 1, "value": 1, "valueTwo": 3, "op": "SCMP_CMP_MASKED_EQ"}]},
              {"names": ["lseek"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 2, "value": 1, "op": "SCMP_CMP_GT"},
                        {"index": 2, "value": 2, "op": "SCMP_CMP_LE"}]},
              {"names": ["dup3"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 5, "op": "SCMP_CMP_LT"}]},
              {"names": ["close"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_NE"}]},
              {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
              {"names": ["umount2"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_CHOWN"]}}
            ]}"#,
    )
    .unwrap();
    assert_eq!(answer(&f, "read", &[]), ALLOW);
    assert_eq!(answer(&f, "openat", &[]), EPERM, "the default");
    assert_eq!(answer(&f, "mkdirat", &[]), EPERM, "same as the default");
    assert_eq!(answer(&f, "getpid", &[]), libc::SECCOMP_RET_KILL_PROCESS);
    assert_eq!(answer(&f, "uname", &[0]), ENOSYS);
    assert_eq!(answer(&f, "uname", &[4096]), ALLOW);
    assert_eq!(answer(&f, "uname", &[100]), EPERM, "no rule matches");
    assert_eq!(answer(&f, "getppid", &[]), libc::SECCOMP_RET_LOG);
    assert_eq!(answer(&f, "gettid", &[]), libc::SECCOMP_RET_TRAP);
    assert_eq!(answer(&f, "getuid", &[]), libc::SECCOMP_RET_TRACE | 7);
    assert_eq!(answer(&f, "getgid", &[]), libc::SECCOMP_RET_KILL_THREAD);
    // (arg1 & 0xff00) == 0x5400: terminal ioctls only.
    assert_eq!(answer(&f, "ioctl", &[1, 0x5401]), ALLOW);
    assert_eq!(answer(&f, "ioctl", &[1, 0x8901]), EPERM);
    // A masked value with bits outside the mask never matches.
    assert_eq!(answer(&f, "fcntl", &[1, 1]), EPERM);
    assert_eq!(answer(&f, "fcntl", &[1, 3]), EPERM);
    // Conditions on one argument are all required.
    assert_eq!(answer(&f, "lseek", &[0, 0, 2]), ALLOW);
    assert_eq!(answer(&f, "lseek", &[0, 0, 1]), EPERM);
    assert_eq!(answer(&f, "lseek", &[0, 0, 3]), EPERM);
    assert_eq!(answer(&f, "dup3", &[4]), ALLOW);
    assert_eq!(answer(&f, "dup3", &[5]), EPERM);
    // Unsigned 64-bit comparisons.
    assert_eq!(answer(&f, "dup3", &[u64::MAX]), EPERM);
    assert_eq!(answer(&f, "close", &[3]), EPERM);
    assert_eq!(answer(&f, "close", &[3 | 1 << 32]), ALLOW);
    // Capability scopes: docker's set has CHOWN, not SYS_ADMIN.
    assert_eq!(answer(&f, "mount", &[]), EPERM);
    assert_eq!(answer(&f, "umount2", &[]), EPERM);
}

#[test]
fn overlapping_rules_keep_the_most_restrictive_action() {
    let f = custom(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
              {"names": ["read", "write", "prctl", "seccomp", "personality"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
               "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
              {"names": ["personality"], "action": "SCMP_ACT_KILL_PROCESS",
               "args": [{"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}]}]}"#,
    )
    .unwrap();
    assert_eq!(answer(&f, "personality", &[0]), ALLOW);
    assert_eq!(
        answer(&f, "personality", &[8]),
        libc::SECCOMP_RET_ERRNO | 22
    );
    assert_eq!(
        answer(&f, "personality", &[9]),
        libc::SECCOMP_RET_KILL_PROCESS
    );
}

/// Whether each filter can be installed under those before it.
fn installable(filters: &[BpfProgram]) -> bool {
    let arch = native();
    let call = |name: &str, args: [u64; 6]| SyscallData {
        nr: arch.syscall(name).unwrap() as i32,
        arch: arch.audit(),
        instruction_pointer: 0,
        args,
    };
    let prctl = call("prctl", [38, 1, 0, 0, 0, 0]);
    let seccomp = call("seccomp", [1, 0, 0x7ffc_0000_0000, 0, 0, 0]);
    (1..filters.len()).all(|n| {
        [prctl, seccomp]
            .iter()
            .all(|d| combined(&filters[..n], d).is_some_and(runs))
    })
}

#[test]
fn filters_are_ordered_so_that_each_can_be_installed() {
    // The default refuses seccomp(2): the allow-list filter goes last.
    let f = custom(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
              {"names": ["read", "write", "prctl", "execve"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
              {"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS"}]}"#,
    )
    .unwrap();
    assert_eq!(f.len(), 3);
    assert!(installable(&f));
    assert_eq!(
        run(
            &f[2],
            &SyscallData {
                nr: native().syscall("seccomp").unwrap() as i32,
                arch: native().audit(),
                instruction_pointer: 0,
                args: [1, 0, 0, 0, 0, 0],
            }
        ),
        Some(EPERM)
    );
    assert_eq!(answer(&f, "seccomp", &[1]), EPERM);
    assert_eq!(answer(&f, "clone3", &[]), ENOSYS);
    // A rule refusing seccomp(2) with its own action: that filter goes last.
    let f = custom(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
              {"names": ["seccomp"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95},
              {"names": ["mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]}"#,
    )
    .unwrap();
    assert!(installable(&f));
    assert_eq!(answer(&f, "seccomp", &[1]), libc::SECCOMP_RET_ERRNO | 95);
    // The default refuses seccomp(2) and another action prctl(2): no order
    // works, refused with a reason.
    let e = custom(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
              {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["prctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}]}"#,
    )
    .unwrap_err();
    assert!(
        matches!(&e, SeccompError::Invalid(m) if m.starts_with("the profile refuses prctl(2) or seccomp(2)")),
        "{e}"
    );
    // The default profile installs in any order; it stays as compiled.
    assert!(installable(&default_for(docker_caps())));
}
