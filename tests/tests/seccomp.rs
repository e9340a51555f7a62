//! Seccomp: the default profile refuses what lets a container reach past
//! itself (the kernel keyring, user namespaces, io_uring, userfaultfd,
//! perf_event_open, personality(ADDR_NO_RANDOMIZE), vsock) while ordinary
//! programs run; exec'd commands and an `--init` PID 1 are filtered too, the
//! shim is not; `seccomp=unconfined` lifts it; a docker JSON profile applies
//! its own actions; an invalid one is refused at create, leaving nothing.
//!
//! The probes are a static C program (tests/probes/seccomp_probe.c), built
//! here with gcc and bind-mounted read-only at /probe. Each probe's answer
//! without a filter is known exactly (EINVAL, EFAULT, EOPNOTSUPP for
//! arguments the kernel refuses itself), so EPERM can only be the filter's.
use quilt_tests::api::{self, ContainerState};
use quilt_tests::{Daemon, IMAGE, host};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Builds the probe into ROOT/probe/seccomp-probe; returns its directory.
fn build_probe(d: &Daemon) -> PathBuf {
    let dir = d.root.join("probe");
    std::fs::create_dir_all(&dir).expect("probe dir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("probes/seccomp_probe.c");
    let out = Command::new("gcc")
        .args(["-static", "-O1", "-Wall", "-o"])
        .arg(dir.join("seccomp-probe"))
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("gcc and libc6-dev build the seccomp probe: {e}"));
    assert!(
        out.status.success(),
        "building {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn probe_mount(dir: &Path) -> String {
    format!("{}:/probe:ro", dir.display())
}

/// "NAME RESULT" lines, by name.
fn results(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.trim().split_once(' '))
        .map(|(n, r)| (n.to_owned(), r.to_owned()))
        .collect()
}

/// `quilt run --rm -v PROBE:/probe:ro OPTS... default /probe/seccomp-probe NAMES...`
fn probe_run(d: &Daemon, dir: &Path, opts: &[&str], names: &[&str]) -> BTreeMap<String, String> {
    let mount = probe_mount(dir);
    let mut args = vec!["run", "--rm", "-v", &mount];
    args.extend_from_slice(opts);
    args.extend([IMAGE, "/probe/seccomp-probe"]);
    args.extend_from_slice(names);
    let r = results(&d.cli(&args).ok());
    assert_eq!(r.len(), names.len(), "a probe did not answer: {r:?}");
    r
}

/// Every probe with the answer the default profile must give.
const DEFAULT_ANSWERS: [(&str, &str); 16] = [
    ("keyctl", "EPERM"),
    ("keyctl-bad", "EPERM"),
    ("add_key", "EPERM"),
    ("unshare-user", "EPERM"),
    ("unshare-bad", "EPERM"),
    ("clone-user", "EPERM"),
    ("clone-user-bad", "EPERM"),
    ("clone-plain", "ok"),
    // ENOSYS: the C library falls back to clone, whose flags are checked.
    ("clone3-bad", "ENOSYS"),
    ("io_uring_setup-bad", "EPERM"),
    ("userfaultfd", "EPERM"),
    ("perf_event_open-bad", "EPERM"),
    ("personality-norandom", "EPERM"),
    ("personality-query", "ok"),
    ("socket-vsock", "EPERM"),
    ("socket-inet", "ok"),
];

fn expected(answers: &[(&str, &str)]) -> BTreeMap<String, String> {
    answers
        .iter()
        .map(|(n, r)| ((*n).to_owned(), (*r).to_owned()))
        .collect()
}

fn names(answers: &[(&'static str, &'static str)]) -> Vec<&'static str> {
    answers.iter().map(|(n, _)| *n).collect()
}

/// The "Seccomp:" (mode) and "Seccomp_filters:" lines of /proc/PID/status.
fn seccomp_status(pid: i32) -> (String, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("Seccomp:"), field("Seccomp_filters:"))
}

fn parent(pid: i32) -> i32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("PPid")
}

#[test]
fn the_default_profile_refuses_escapes_and_runs_ordinary_programs() {
    let d = Daemon::start();
    let dir = build_probe(&d);
    let got = probe_run(&d, &dir, &[], &names(&DEFAULT_ANSWERS));
    assert_eq!(got, expected(&DEFAULT_ANSWERS));

    // Ordinary programs: a shell, pipes, files, and busybox's own unshare
    // refused with EPERM.
    let out = d.cli([
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo hello | tr a-z A-Z; mkdir /tmp/x && ls -d /tmp/x; uname -s; \
         cat /proc/self/status | grep '^Seccomp:'; unshare -U true; echo rc=$?",
    ]);
    assert_eq!(
        out.lines(),
        ["HELLO", "/tmp/x", "Linux", "Seccomp:\t2", "rc=1"],
        "{out:?}"
    );
    assert!(
        out.stderr.contains("Operation not permitted"),
        "unshare -U should be refused: {out:?}"
    );
    d.assert_no_leftovers();
}

#[test]
fn exec_and_init_are_filtered_and_the_shim_is_not() {
    let d = Daemon::start();
    let dir = build_probe(&d);
    let mount = probe_mount(&dir);
    let id = d.run_detached(&["-v", &mount, IMAGE, "sleep", "600"]);
    let c = d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    // One filter; the shim has none.
    assert_eq!(seccomp_status(c.pid), ("2".into(), "1".into()));
    assert_eq!(
        seccomp_status(parent(c.pid)).0,
        "0",
        "the shim is unfiltered"
    );

    let out = d.cli([
        "exec",
        &id,
        "/probe/seccomp-probe",
        "keyctl-bad",
        "unshare-bad",
        "clone3-bad",
        "personality-query",
    ]);
    assert_eq!(
        results(&out.ok()),
        expected(&[
            ("keyctl-bad", "EPERM"),
            ("unshare-bad", "EPERM"),
            ("clone3-bad", "ENOSYS"),
            ("personality-query", "ok"),
        ])
    );
    let r = d
        .exec(api::ExecStart {
            container_id: id.clone(),
            command: vec!["grep".into(), "^Seccomp".into(), "/proc/self/status".into()],
            ..Default::default()
        })
        .expect("exec");
    assert_eq!(r.exit_code, 0, "{r:?}");
    assert_eq!(
        String::from_utf8_lossy(&r.stdout)
            .lines()
            .collect::<Vec<_>>(),
        ["Seccomp:\t2", "Seccomp_filters:\t1"]
    );

    // --init: PID 1 (the init) and the workload it forks.
    let id2 = d.run_detached(&["--init", IMAGE, "sleep", "600"]);
    let c2 = d.wait_state(&id2, &[ContainerState::Running], Duration::from_secs(30));
    assert_eq!(seccomp_status(c2.pid), ("2".into(), "1".into()), "init");
    assert_eq!(seccomp_status(parent(c2.pid)).0, "0", "the shim");
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", c2.pid))
        .expect("children of init");
    let workload: i32 = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("init's workload");
    assert_eq!(
        seccomp_status(workload),
        ("2".into(), "1".into()),
        "workload"
    );
    let got = probe_run(&d, &dir, &["--init"], &["keyctl-bad", "socket-vsock"]);
    assert_eq!(
        got,
        expected(&[("keyctl-bad", "EPERM"), ("socket-vsock", "EPERM")])
    );

    d.cli(["rm", "-f", &id, &id2]).expect_code(0);
    assert!(host::wait_pid_gone(c.pid, Duration::from_secs(10)));
    assert!(host::wait_pid_gone(c2.pid, Duration::from_secs(10)));
    d.assert_no_leftovers();
}

#[test]
fn unconfined_lifts_the_filter() {
    let d = Daemon::start();
    let dir = build_probe(&d);
    let unconfined = ["--security-opt", "seccomp=unconfined"];
    let got = probe_run(&d, &dir, &unconfined, &names(&DEFAULT_ANSWERS));
    // Exactly the kernel's own answers to these arguments.
    for (name, want) in [
        ("keyctl-bad", "EOPNOTSUPP"),
        ("unshare-bad", "EINVAL"),
        ("clone-user-bad", "EINVAL"),
        ("clone-plain", "ok"),
        ("clone3-bad", "EINVAL"),
        ("io_uring_setup-bad", "EFAULT"),
        ("perf_event_open-bad", "EFAULT"),
        ("personality-norandom", "ok"),
        ("personality-query", "ok"),
        ("socket-inet", "ok"),
    ] {
        assert_eq!(got[name], want, "{name}: {got:?}");
    }
    // These depend on the host (keyrings, vsock, userfaultfd), but the
    // filter's EPERM is gone.
    for name in ["keyctl", "add_key", "socket-vsock", "userfaultfd"] {
        assert_ne!(got[name], "EPERM", "{name}: {got:?}");
    }
    let out = d.cli([
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        IMAGE,
        "grep",
        "^Seccomp:",
        "/proc/self/status",
    ]);
    assert_eq!(out.ok(), "Seccomp:\t0");
    d.assert_no_leftovers();
}

/// Refuses seccomp(2) itself (the shim installs the filter all the same),
/// mkdir with EDQUOT, kills uname, and names syscalls this architecture
/// does not have.
const CUSTOM: &str = r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
  "syscalls": [
    {"names": ["seccomp"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95},
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 122},
    {"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"},
    {"names": ["chown32", "no_such_syscall"], "action": "SCMP_ACT_ERRNO"}
  ]
}"#;

#[test]
fn a_docker_profile_applies_its_own_actions() {
    let d = Daemon::start();
    let dir = build_probe(&d);
    let file = d.root.join("custom.json");
    std::fs::write(&file, CUSTOM).unwrap();
    let opt = format!("seccomp={}", file.display());
    let out = d.cli([
        "run",
        "--rm",
        "--security-opt",
        &opt,
        IMAGE,
        "sh",
        "-c",
        "mkdir /tmp/x; echo mkdir=$?; uname; echo uname=$?; touch /tmp/y && echo touched",
    ]);
    // 159 = 128 + SIGSYS.
    assert_eq!(out.lines(), ["mkdir=1", "uname=159", "touched"], "{out:?}");
    assert!(out.stderr.contains("Disk quota exceeded"), "{out:?}");
    // Its default action is ALLOW: what the default profile refuses runs.
    let got = probe_run(
        &d,
        &dir,
        &["--security-opt", &opt],
        &["keyctl-bad", "unshare-bad"],
    );
    assert_eq!(
        got,
        expected(&[("keyctl-bad", "EOPNOTSUPP"), ("unshare-bad", "EINVAL")])
    );
    // An exec'd command gets the container's profile.
    let id = d.run_detached(&["--security-opt", &opt, IMAGE, "sleep", "600"]);
    let out = d.cli(["exec", &id, "sh", "-c", "mkdir /tmp/z; echo $?"]);
    assert_eq!(out.ok(), "1");
    assert!(out.stderr.contains("Disk quota exceeded"), "{out:?}");
    d.cli(["rm", "-f", &id]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn an_invalid_profile_is_refused_at_create_and_leaves_nothing() {
    let d = Daemon::start();
    for (i, (text, message)) in [
        ("{\"defaultAction\": ", "invalid seccomp profile: not a JSON profile: "),
        (
            r#"{"defaultAction": "SCMP_ACT_MAYBE"}"#,
            "invalid seccomp profile: defaultAction: unknown action \"SCMP_ACT_MAYBE\"",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
                "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOMEWHAT"}]}]}"#,
            "invalid seccomp profile: syscalls[0]: args[0]: unknown op \"SCMP_CMP_SOMEWHAT\"",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#,
            "invalid seccomp profile: defaultAction: SCMP_ACT_NOTIFY needs a seccomp agent",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"],
                "action": "SCMP_ACT_ERRNO", "errnoRet": 4096}]}"#,
            "invalid seccomp profile: syscalls[0]: errno 4096 is out of range (0 to 4095)",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let file = d.root.join(format!("bad{i}.json"));
        std::fs::write(&file, text).unwrap();
        let opt = format!("seccomp={}", file.display());
        for verb in ["run", "create"] {
            let out = d.cli([verb, "--security-opt", &opt, IMAGE, "true"]);
            out.expect_engine_error();
            assert!(out.stderr.contains(message), "{message:?}: {out:?}");
        }
        // The API says INVALID_ARGUMENT with the same message.
        let err = d
            .create(api::CreateContainerRequest {
                security: Some(api::Security {
                    seccomp_profile: text.to_owned(),
                    ..Default::default()
                }),
                ..quilt_tests::req(&["true"])
            })
            .expect_err("an invalid profile is refused");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        assert!(err.message().starts_with(message), "{err:?}");
    }
    let missing = d.root.join("missing.json");
    let out = d.cli([
        "run",
        "--security-opt",
        &format!("seccomp={}", missing.display()),
        IMAGE,
        "true",
    ]);
    out.expect_engine_error();
    assert!(
        out.stderr.contains("cannot read the seccomp profile"),
        "{out:?}"
    );
    assert!(d.list().is_empty(), "{:?}", d.list());
    d.assert_no_leftovers();
}
