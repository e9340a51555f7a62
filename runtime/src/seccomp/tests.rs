//! What compiled profiles answer, run through `bpf.rs` as the kernel would
//! run the installed filter, and the same answers as seccompiler's filters
//! (one per action, combined by the kernel) would give.
use super::arch::Arch;
use super::bpf::{SyscallData, combined, run, run_counted};
use super::compile::{decode, program};
use super::*;
use crate::capability::Capability;
use rustix::thread::CapabilitySet;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};
use std::collections::BTreeMap;

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const EPERM: u32 = libc::SECCOMP_RET_ERRNO | 1;
const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | 38;

fn native() -> Arch {
    Arch::native().expect("tests run on x86_64 or aarch64")
}

fn docker_caps() -> CapabilitySet {
    Capability::set_of(&Capability::DEFAULT)
}

fn with(extra: Capability) -> CapabilitySet {
    docker_caps() | extra.as_set()
}

/// The answer of `filter` to syscall `name` with `args` on the native arch.
fn answer(filter: &BpfProgram, name: &str, args: &[u64]) -> u32 {
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
    run(filter, &data).expect("the compiled filter runs")
}

fn default_for(caps: CapabilitySet) -> BpfProgram {
    program(&default_profile(), caps, native())
        .expect("the default profile compiles")
        .expect("a filter")
}

fn custom(text: &str) -> Result<BpfProgram, SeccompError> {
    Ok(program(&parse(text)?, docker_caps(), native())?.expect("a filter"))
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
    assert_eq!(run(&f, &foreign), Some(libc::SECCOMP_RET_KILL_PROCESS));
    if native() == Arch::X86_64 {
        // x32 (the x86_64 arch with bit 30 in the number): killed too.
        for nr in [0x4000_0000, 0x4000_0001, 0x4000_0000 + 250] {
            let x32 = SyscallData {
                nr,
                arch: native().audit(),
                instruction_pointer: 0,
                args: [0; 6],
            };
            assert_eq!(run(&f, &x32), Some(libc::SECCOMP_RET_KILL_PROCESS));
        }
    }
}

#[test]
fn the_compiled_default_is_small_and_round_trips() {
    let f = default_for(docker_caps());
    // Small: the kernel's install cost grows with the length.
    assert!(f.len() < 250, "{} instructions", f.len());
    let compiled = compile(&default_profile(), docker_caps())
        .unwrap()
        .expect("a filter");
    assert_eq!(compiled.bpf.len(), f.len() * 16);
    assert_eq!(decode(&compiled.bpf).unwrap(), f);
    let program = Program::decode(Some(&compiled)).unwrap();
    assert!(!program.is_empty());
    assert!(Program::decode(None).unwrap().is_empty());
    for bad in ["0011", "zz", ""] {
        let bad = crate::spec::SeccompFilter {
            bpf: bad.into(),
            ..Default::default()
        };
        assert!(
            matches!(Program::decode(Some(&bad)), Err(SeccompError::Decode(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn a_custom_deny_list_with_errno() {
    let f = custom(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap();
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

#[test]
fn profiles_may_refuse_what_installing_needs() {
    // One filter, installed by one call: a profile may refuse prctl(2) and
    // seccomp(2) with any actions.
    let f = custom(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
              {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["prctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95},
              {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#,
    )
    .unwrap();
    assert_eq!(answer(&f, "seccomp", &[1]), EPERM);
    assert_eq!(answer(&f, "prctl", &[38, 1]), libc::SECCOMP_RET_ERRNO | 95);
    assert_eq!(answer(&f, "clone3", &[]), ENOSYS);
    assert_eq!(answer(&f, "read", &[]), ALLOW);
}

#[test]
fn keyring_calls_refused_whatever_the_arguments() {
    use super::compile::{KEYRING_SYSCALLS, refuses};
    let arch = native();
    let refused = |p: &Profile, caps| refuses(p, caps, arch, &KEYRING_SYSCALLS);
    // The default profile, whatever the capabilities; its filter says so,
    // and answers so for a few arguments.
    for caps in [docker_caps(), CapabilitySet::all()] {
        assert!(refused(&default_profile(), caps));
        // CAP_SYS_ADMIN (which may mount file systems that request keys)
        // gets a keyring of its own all the same.
        let f = compile(&default_profile(), caps).unwrap().unwrap();
        assert_eq!(f.keyring_refused, caps == docker_caps());
        let bpf = default_for(caps);
        for name in KEYRING_SYSCALLS {
            for args in [[0u64; 2], [1, 0], [u64::MAX, 7]] {
                assert_eq!(answer(&bpf, name, &args), EPERM, "{name} {args:?}");
            }
        }
    }
    let parsed = |text: &str| parse(text).unwrap();
    let caps = docker_caps();
    // Unconfined: no filter at all.
    // A name the architecture does not know is not taken as refused.
    assert!(!refuses(
        &default_profile(),
        caps,
        arch,
        &["keyctl", "no_such_call"]
    ));
    let allow_all = parsed(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#);
    assert!(!refused(&allow_all, caps));
    assert_eq!(compile(&allow_all, caps).unwrap(), None);
    // Refused by rules of other actions, or by the default.
    for text in [
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
              {"names": ["keyctl", "add_key"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
              {"names": ["request_key"], "action": "SCMP_ACT_KILL_PROCESS"}]}"#,
        r#"{"defaultAction": "SCMP_ACT_TRAP", "syscalls": [
              {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
               "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
    ] {
        assert!(refused(&parsed(text), caps), "{text}");
    }
    // Not refused: one of the three allowed, with some arguments (those no
    // condition matches reach an allowing default), traced or logged.
    for text in [
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
              {"names": ["add_key"], "action": "SCMP_ACT_ALLOW"}]}"#,
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
              {"names": ["keyctl"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
              {"names": ["keyctl", "add_key", "request_key"], "action": "SCMP_ACT_ERRNO",
               "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
              {"names": ["request_key"], "action": "SCMP_ACT_TRACE"}]}"#,
        r#"{"defaultAction": "SCMP_ACT_LOG"}"#,
    ] {
        let p = parsed(text);
        assert!(!refused(&p, caps), "{text}");
        assert!(
            !compile(&p, caps).unwrap().unwrap().keyring_refused,
            "{text}"
        );
    }
}

#[test]
fn any_syscall_number_is_settled_in_a_few_instructions() {
    // The kernel runs each filter for every syscall number when it is
    // installed: what a linear filter made slow.
    let arch = native();
    for caps in [docker_caps(), CapabilitySet::all()] {
        let f = default_for(caps);
        {
            let worst = (0..600)
                .map(|nr| {
                    let data = SyscallData {
                        nr,
                        arch: arch.audit(),
                        instruction_pointer: 0,
                        args: [0; 6],
                    };
                    run_counted(&f, &data).expect("runs").1
                })
                .max()
                .unwrap();
            assert!(worst <= 40, "{worst} instructions for one syscall");
        }
    }
}

fn seccompiler_action(a: Action) -> SeccompAction {
    match a {
        Action::Allow => SeccompAction::Allow,
        Action::Errno(e) => SeccompAction::Errno(u32::from(e)),
        Action::KillThread => SeccompAction::KillThread,
        Action::KillProcess => SeccompAction::KillProcess,
        Action::Trap => SeccompAction::Trap,
        Action::Log => SeccompAction::Log,
        Action::Trace(m) => SeccompAction::Trace(u32::from(m)),
    }
}

/// seccompiler's condition for a check.
fn seccompiler_condition(c: &ArgCheck) -> SeccompCondition {
    let (op, value) = match c.op {
        CmpOp::Eq => (SeccompCmpOp::Eq, c.value),
        CmpOp::Ne => (SeccompCmpOp::Ne, c.value),
        CmpOp::Lt => (SeccompCmpOp::Lt, c.value),
        CmpOp::Le => (SeccompCmpOp::Le, c.value),
        CmpOp::Gt => (SeccompCmpOp::Gt, c.value),
        CmpOp::Ge => (SeccompCmpOp::Ge, c.value),
        CmpOp::MaskedEq => (SeccompCmpOp::MaskedEq(c.value), c.value_two),
    };
    SeccompCondition::new(c.index, SeccompCmpArgLen::Qword, op, value).unwrap()
}

/// Syscall -> None (whatever the arguments) or the rules that match it.
type Reference = BTreeMap<i64, Option<Vec<SeccompRule>>>;

fn reference_add(map: &mut Reference, nr: i64, rule: &Option<SeccompRule>) {
    match (map.get_mut(&nr), rule) {
        (Some(None), _) => {}
        (_, None) => {
            map.insert(nr, None);
        }
        (Some(Some(rules)), Some(r)) => rules.push(r.clone()),
        (None, Some(r)) => {
            map.insert(nr, Some(vec![r.clone()]));
        }
    }
}

/// The profile as seccompiler filters, one per action: the default action
/// but for what a rule of another action matches, then, per other action,
/// that action for what its rules match. The kernel keeps the most
/// restrictive answer of all.
fn reference(profile: &Profile, caps: CapabilitySet) -> Vec<BpfProgram> {
    let arch = native();
    let default = profile.default_action;
    let mut escapes = Reference::new();
    let mut by_action: Vec<(Action, Reference)> = Vec::new();
    for rule in profile.rules.iter().filter(|r| r.applies(caps, arch)) {
        if rule.action == default {
            continue;
        }
        let cond = (!rule.args.is_empty()).then(|| {
            SeccompRule::new(rule.args.iter().map(seccompiler_condition).collect()).unwrap()
        });
        if rule.action != Action::Allow && !by_action.iter().any(|(a, _)| *a == rule.action) {
            by_action.push((rule.action, Reference::new()));
        }
        for nr in rule.names.iter().filter_map(|n| arch.syscall(n)) {
            reference_add(&mut escapes, nr, &cond);
            if let Some((_, own)) = by_action.iter_mut().find(|(a, _)| *a == rule.action) {
                reference_add(own, nr, &cond);
            }
        }
    }
    let build = |map: Reference, mismatch: Action, on_match: Action| {
        let rules = map
            .into_iter()
            .map(|(nr, r)| (nr, r.unwrap_or_default()))
            .collect();
        SeccompFilter::new(
            rules,
            seccompiler_action(mismatch),
            seccompiler_action(on_match),
            arch.target(),
        )
        .and_then(BpfProgram::try_from)
        .unwrap()
    };
    let mut filters = Vec::new();
    if default != Action::Allow {
        filters.push(build(escapes, default, Action::Allow));
    }
    for (action, map) in by_action {
        filters.push(build(map, Action::Allow, action));
    }
    filters
}

/// Quilt's filter answers as seccompiler's filters together would, for
/// every syscall number, and arguments on either side of every value the
/// profile compares.
fn same_as_seccompiler(profile: &Profile, caps: CapabilitySet) {
    let arch = native();
    let ours = program(profile, caps, arch).unwrap().expect("a filter");
    let theirs = reference(profile, caps);
    let mut values = vec![0u64, 1, u64::MAX, 1 << 32];
    let mut conditional = Vec::new();
    for rule in &profile.rules {
        for c in &rule.args {
            for v in [c.value, c.value_two, c.value & c.value_two] {
                values.extend([v, v.wrapping_sub(1), v.wrapping_add(1), v ^ (1 << 32)]);
                values.extend([v.wrapping_add(1 << 32), v.wrapping_sub(1 << 32)]);
            }
        }
        if !rule.args.is_empty() {
            conditional.extend(rule.names.iter().filter_map(|n| arch.syscall(n)));
        }
    }
    values.sort_unstable();
    values.dedup();
    for nr in 0..=500i64 {
        let arg_sets: Vec<[u64; 6]> = match conditional.contains(&nr) {
            false => vec![[0; 6]],
            true => (0..6)
                .flat_map(|i| {
                    values.iter().map(move |v| {
                        let mut a = [0u64; 6];
                        a[i] = *v;
                        a
                    })
                })
                .collect(),
        };
        for args in arg_sets {
            let data = SyscallData {
                nr: nr as i32,
                arch: arch.audit(),
                instruction_pointer: 0,
                args,
            };
            assert_eq!(
                run(&ours, &data),
                combined(&theirs, &data),
                "syscall {nr} with {args:x?}"
            );
        }
    }
    // Another architecture's syscalls are killed by both.
    let foreign = SyscallData {
        nr: 1,
        arch: 0x4000_0003,
        instruction_pointer: 0,
        args: [0; 6],
    };
    assert_eq!(run(&ours, &foreign), Some(libc::SECCOMP_RET_KILL_PROCESS));
    assert_eq!(
        combined(&theirs, &foreign),
        Some(libc::SECCOMP_RET_KILL_PROCESS)
    );
}

#[test]
fn filters_answer_as_seccompiler_would() {
    let profile = default_profile();
    for caps in [
        CapabilitySet::empty(),
        docker_caps(),
        with(Capability::SysAdmin),
        with(Capability::SysPtrace),
        CapabilitySet::all(),
    ] {
        same_as_seccompiler(&profile, caps);
    }
    let every_op = parse(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
          {"names": ["read", "write", "close", "exit_group"], "action": "SCMP_ACT_ALLOW"},
          {"names": ["openat"], "action": "SCMP_ACT_ALLOW",
           "args": [{"index": 2, "value": 4294967296, "op": "SCMP_CMP_LT"}]},
          {"names": ["openat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
           "args": [{"index": 2, "value": 8589934593, "op": "SCMP_CMP_GE"},
                    {"index": 1, "value": 7, "op": "SCMP_CMP_NE"}]},
          {"names": ["lseek"], "action": "SCMP_ACT_ALLOW",
           "args": [{"index": 2, "value": 1, "op": "SCMP_CMP_GT"},
                    {"index": 2, "value": 4294967298, "op": "SCMP_CMP_LE"}]},
          {"names": ["ioctl"], "action": "SCMP_ACT_LOG",
           "args": [{"index": 1, "value": 18446744069414649600, "valueTwo": 4294988800, "op": "SCMP_CMP_MASKED_EQ"}]},
          {"names": ["ioctl"], "action": "SCMP_ACT_KILL_PROCESS",
           "args": [{"index": 1, "value": 21505, "op": "SCMP_CMP_EQ"}]},
          {"names": ["dup3"], "action": "SCMP_ACT_TRAP",
           "args": [{"index": 0, "value": 5, "op": "SCMP_CMP_LT"}]},
          {"names": ["getpid", "getppid", "gettid"], "action": "SCMP_ACT_TRACE", "errnoRet": 3}
        ]}"#,
    )
    .unwrap();
    same_as_seccompiler(&every_op, docker_caps());
}
