//! End-to-end tests of `quilt-shim` through `launch::start` (needs root,
//! overlayfs and cgroups; never touches the network).
use quilt_runtime::execproto::{self, FrameKind};
use quilt_runtime::image::ImageStore;
use quilt_runtime::logfile::{self, Stream};
use quilt_runtime::signal::Signal;
use quilt_runtime::spec::*;
use quilt_runtime::{cgroup, exitfile, launch, proc};
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const SHIM: &str = env!("CARGO_BIN_EXE_quilt-shim");

fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}-{}-{t}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Owns everything a test creates; cleans up even when the test panics.
struct Env {
    tmp: tempfile::TempDir,
    image: PathBuf,
    layout: CgroupLayout,
    cgroups: Vec<CgroupSpec>,
    /// (shim pid, container pid) of started containers.
    started: Vec<(i32, i32)>,
}

impl Env {
    /// Real namespaces, mounts and cgroups: these tests need root and fail
    /// without it rather than pass having checked nothing.
    fn new() -> Env {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the runtime's integration tests need root (namespaces, mounts, cgroups)"
        );
        let tmp = tempfile::tempdir().unwrap();
        let image = ImageStore::new(tmp.path()).prepare("default").unwrap();
        let layout = cgroup::detect_layout().unwrap();
        Env {
            tmp,
            image,
            layout,
            cgroups: Vec::new(),
            started: Vec::new(),
        }
    }

    fn config(&mut self, argv: &[&str], limits: Limits) -> ContainerConfig {
        let id = unique();
        let cg = CgroupSpec {
            layout: self.layout.clone(),
            path: format!("quilt-rt-test/{id}"),
            limits,
        };
        self.cgroups.push(cg.clone());
        ContainerConfig {
            id: id.clone(),
            dir: self.tmp.path().join("containers").join(&id),
            image_rootfs: self.image.clone(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                "HOME=/root".into(),
                "QUILT_TEST=yes".into(),
            ],
            workdir: "/".into(),
            hostname: "quilt-test-host".into(),
            host_network: false,
            init: false,
            cgroup: cg,
            log_max_bytes: None,
            log_max_files: None,
            mounts: Vec::new(),
            security: Default::default(),
        }
    }

    fn start(&mut self, cfg: &ContainerConfig) -> StartReport {
        let r = launch::start(Path::new(SHIM), cfg).unwrap();
        if let StartReport::Started { shim_pid, pid, .. } = r {
            self.started.push((shim_pid, pid));
        }
        r
    }

    /// Starts and expects Started; returns (shim pid, container pid).
    fn run(&mut self, cfg: &ContainerConfig) -> (i32, i32) {
        match self.start(cfg) {
            StartReport::Started {
                shim_pid,
                pid,
                shim_start_time,
            } => {
                assert!(shim_start_time > 0);
                assert_eq!(proc::parent_pid(shim_pid), Some(std::process::id() as i32));
                (shim_pid, pid)
            }
            other => panic!("expected Started, got {other:?}"),
        }
    }

    /// Runs to completion and returns the exit record.
    fn run_to_exit(&mut self, cfg: &ContainerConfig) -> ExitRecord {
        let (shim, _) = self.run(cfg);
        assert!(
            wait_exit(shim, Duration::from_secs(20)),
            "shim did not exit in time"
        );
        exitfile::read(&cfg.dir).unwrap().expect("exit.json")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for &(shim, pid) in &self.started {
            if proc::try_reap(shim).unwrap_or(true) {
                continue;
            }
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            if !wait_exit(shim, Duration::from_secs(5)) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(shim),
                    nix::sys::signal::Signal::SIGKILL,
                );
                wait_exit(shim, Duration::from_secs(5));
            }
        }
        for cg in &self.cgroups {
            if let Err(e) = cgroup::remove(cg) {
                eprintln!("cleanup: removing cgroup {}: {e}", cg.path);
            }
            // The shared parent goes with the last test that used it; while
            // another test still has a cgroup below it, rmdir fails with
            // EBUSY and that test removes it instead.
            if let Some((parent, _)) = cg.path.rsplit_once('/') {
                cgroup::remove_parent_if_empty(&cg.layout, parent);
            }
        }
    }
}

/// Waits (bounded) for our child `pid` to exit and reaps it.
fn wait_exit(pid: i32, timeout: Duration) -> bool {
    let Ok(fd) = proc::pidfd_open(pid) else {
        return proc::try_reap(pid).unwrap_or(true);
    };
    let deadline = Instant::now() + timeout;
    loop {
        if proc::try_reap(pid).unwrap() {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut fds = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ms = left.as_millis().min(10_000) as u16;
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
    }
}

/// (stream, partial, text) of every record in the container log.
fn log_records(dir: &Path) -> Vec<(Stream, bool, String)> {
    let data = std::fs::read(dir.join(logfile::LOG_FILE)).unwrap_or_default();
    data.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let r = logfile::parse(l).expect("valid record");
            (
                r.stream,
                r.partial,
                String::from_utf8_lossy(r.data).into_owned(),
            )
        })
        .collect()
}

fn stdout_lines(dir: &Path) -> Vec<String> {
    log_records(dir)
        .into_iter()
        .filter(|(s, _, _)| *s == Stream::Stdout)
        .map(|(_, _, t)| t)
        .collect()
}

fn host_hostname() -> String {
    nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn echo_hello_lands_in_log() {
    let mut env = Env::new();
    let cfg = env.config(&["echo", "hello"], Limits::default());
    let rec = env.run_to_exit(&cfg);
    assert_eq!((rec.exit_code, rec.signal, rec.oom_killed), (0, 0, false));
    assert!(rec.finished_at_ns > 0);
    assert_eq!(
        log_records(&cfg.dir),
        vec![(Stream::Stdout, false, "hello".to_string())]
    );
    // The shim never leaves the overlay mounted on the host.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(cfg.dir.to_str().unwrap()),
        "overlay leaked to the host"
    );
}

#[test]
fn pid1_and_hostname() {
    let mut env = Env::new();
    let before = host_hostname();
    let cfg = env.config(
        &["sh", "-c", "echo $$; hostname; echo oops >&2"],
        Limits::default(),
    );
    let rec = env.run_to_exit(&cfg);
    assert_eq!(rec.exit_code, 0);
    assert_eq!(stdout_lines(&cfg.dir), vec!["1", "quilt-test-host"]);
    assert!(log_records(&cfg.dir).contains(&(Stream::Stderr, false, "oops".to_string())));
    assert_eq!(host_hostname(), before);
}

/// Docker's default set (CAP_CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL,
/// SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD,
/// AUDIT_WRITE, SETFCAP), as /proc/PID/status shows it.
const DEFAULT_CAPS_HEX: &str = "00000000a80425fb";

#[test]
fn workload_gets_the_default_capabilities() {
    let mut env = Env::new();
    let cfg = env.config(
        &["sh", "-c", "grep -E '^(Cap|NoNewPrivs)' /proc/self/status"],
        Limits::default(),
    );
    let rec = env.run_to_exit(&cfg);
    assert_eq!(rec.exit_code, 0);
    let lines = stdout_lines(&cfg.dir);
    let field = |name: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in {lines:?}"))
            .to_owned()
    };
    for set in ["CapPrm", "CapEff", "CapBnd"] {
        assert_eq!(field(set), DEFAULT_CAPS_HEX, "{set}: {lines:?}");
    }
    // Nothing inheritable (docker's fix of CVE-2022-24769).
    assert_eq!(field("CapInh"), "0000000000000000");
    assert_eq!(field("CapAmb"), "0000000000000000");
    assert_eq!(field("NoNewPrivs"), "1");
}

#[test]
fn exit_code_is_recorded() {
    let mut env = Env::new();
    let cfg = env.config(&["sh", "-c", "exit 7"], Limits::default());
    let rec = env.run_to_exit(&cfg);
    assert_eq!((rec.exit_code, rec.signal, rec.oom_killed), (7, 0, false));
}

#[test]
fn missing_command_fails_with_127() {
    let mut env = Env::new();
    let cfg = env.config(&["nosuchcmd", "arg"], Limits::default());
    match env.start(&cfg) {
        StartReport::Failed { exit_code, message } => {
            assert_eq!(exit_code, 127, "{message}");
            assert!(message.contains("\"nosuchcmd\""), "{message}");
            assert!(message.contains("not found"), "{message}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    // The shim removed the cgroup again.
    let dir = match &cfg.cgroup.layout {
        CgroupLayout::V2 { root } => root.join(&cfg.cgroup.path),
        CgroupLayout::V1 { root } => root.join("memory").join(&cfg.cgroup.path),
    };
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert_eq!(exitfile::read(&cfg.dir).unwrap(), None);

    // Not executable (a directory given by path) -> 126; bad workdir is fine
    // (created); a file in the way of the workdir -> 125.
    let cfg = env.config(&["/etc"], Limits::default());
    assert!(matches!(
        env.start(&cfg),
        StartReport::Failed { exit_code: 126, .. }
    ));
    let cfg = env.config(&["/no/such/binary"], Limits::default());
    assert!(matches!(
        env.start(&cfg),
        StartReport::Failed { exit_code: 127, .. }
    ));
    let mut cfg = env.config(&["true"], Limits::default());
    cfg.workdir = "/etc/passwd/sub".into();
    assert!(matches!(
        env.start(&cfg),
        StartReport::Failed { exit_code: 125, .. }
    ));
}

#[test]
fn env_workdir_and_stdin() {
    let mut env = Env::new();
    let mut cfg = env.config(
        &["sh", "-c", "env | sort; pwd; cat; echo end"],
        Limits::default(),
    );
    cfg.workdir = "/srv/app".into();
    let rec = env.run_to_exit(&cfg);
    assert_eq!(rec.exit_code, 0);
    let lines = stdout_lines(&cfg.dir);
    // sh adds PWD/SHLVL of its own; everything else comes from the config only.
    let vars: Vec<&String> = lines.iter().filter(|l| l.contains('=')).collect();
    for want in &cfg.env {
        assert!(vars.contains(&want), "{want} missing from {vars:?}");
    }
    for v in &vars {
        let k = v.split('=').next().unwrap();
        assert!(
            ["PATH", "HOME", "QUILT_TEST", "PWD", "SHLVL", "_"].contains(&k),
            "unexpected {v}"
        );
    }
    assert!(
        lines.ends_with(&["/srv/app".to_string(), "end".to_string()]),
        "{lines:?}"
    );
}

#[test]
fn proc_shows_only_the_container() {
    let mut env = Env::new();
    let cfg = env.config(&["ls", "/proc"], Limits::default());
    let rec = env.run_to_exit(&cfg);
    assert_eq!(rec.exit_code, 0);
    let pids: Vec<String> = stdout_lines(&cfg.dir)
        .into_iter()
        .filter(|l| l.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(pids, vec!["1"]);
}

#[test]
fn namespaces_and_mounts() {
    let mut env = Env::new();
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    let script = "readlink /proc/self/ns/net; ip link show lo | head -n1; \
                  touch /proc/sys/kernel/x 2>/dev/null && echo sys-writable || echo sys-ro; \
                  cat /proc/keys | wc -c; ls -l /dev/null | cut -c1; test -L /dev/ptmx && echo ptmx; \
                  echo x > /newfile && echo rootfs-writable";
    let cfg = env.config(&["sh", "-c", script], Limits::default());
    let rec = env.run_to_exit(&cfg);
    assert_eq!(rec.exit_code, 0);
    let lines = stdout_lines(&cfg.dir);
    assert_ne!(
        lines[0],
        host_net.to_string_lossy(),
        "private net namespace expected"
    );
    assert!(lines[1].contains("UP"), "lo not up: {lines:?}");
    assert_eq!(lines[2..], ["sys-ro", "0", "c", "ptmx", "rootfs-writable"]);
    // Writes land in the upper layer, never in the image.
    assert!(cfg.dir.join("upper/newfile").exists());
    assert!(!env.image.join("newfile").exists());

    let mut cfg = env.config(&["readlink", "/proc/self/ns/net"], Limits::default());
    cfg.host_network = true;
    let rec = env.run_to_exit(&cfg);
    assert_eq!(rec.exit_code, 0);
    assert_eq!(
        stdout_lines(&cfg.dir),
        vec![host_net.to_string_lossy().into_owned()]
    );
}

#[test]
fn oom_kill_is_reported() {
    let mut env = Env::new();
    let cfg = env.config(
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"],
        Limits {
            memory_bytes: Some(32 << 20),
            cpus: None,
            pids: None,
        },
    );
    let rec = env.run_to_exit(&cfg);
    assert_eq!(
        (rec.signal, rec.exit_code, rec.oom_killed),
        (9, 137, true),
        "{rec:?}"
    );
}

#[test]
fn signals_are_forwarded() {
    let mut env = Env::new();
    let cfg = env.config(
        &[
            "sh",
            "-c",
            "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.05; done",
        ],
        Limits::default(),
    );
    let (shim, _) = env.run(&cfg);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stdout_lines(&cfg.dir).contains(&"ready".to_string()) {
        assert!(Instant::now() < deadline, "container never got ready");
        std::thread::sleep(Duration::from_millis(10));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(wait_exit(shim, Duration::from_secs(10)));
    let rec = exitfile::read(&cfg.dir).unwrap().unwrap();
    assert_eq!((rec.exit_code, rec.signal), (42, 0));
    assert_eq!(stdout_lines(&cfg.dir), vec!["ready", "got-term"]);
}

fn run_exec(cfg: &ExecConfig) -> (i32, String, String) {
    let mut child = Command::new(SHIM)
        .arg("exec")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The framed protocol (quilt_runtime::execproto): Config, then EOF.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&execproto::frame(
            FrameKind::Config,
            &serde_json::to_vec(cfg).unwrap(),
        ))
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let mut buf = out.stdout.clone();
    let (mut code, mut stdout) = (out.status.code().unwrap_or(-1), Vec::new());
    let mut stderr = Vec::new();
    for (kind, data) in execproto::split(&mut buf).unwrap() {
        match kind {
            FrameKind::Stdout => stdout.extend_from_slice(&data),
            FrameKind::Stderr => stderr.extend_from_slice(&data),
            FrameKind::Exit => code = execproto::read_i32(&data, 0).unwrap(),
            _ => {}
        }
    }
    stderr.extend_from_slice(&out.stderr);
    (
        code,
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn exec_into_running_container() {
    let mut env = Env::new();
    let cfg = env.config(
        &["sleep", "100"],
        Limits {
            memory_bytes: Some(64 << 20),
            cpus: Some(1.0),
            pids: Some(100),
        },
    );
    let (shim, pid) = env.run(&cfg);

    // The container's PID 1 is in its cgroup.
    let procs_dir = match &cfg.cgroup.layout {
        CgroupLayout::V2 { root } => root.join(&cfg.cgroup.path),
        CgroupLayout::V1 { root } => root.join("pids").join(&cfg.cgroup.path),
    };
    let procs = std::fs::read_to_string(procs_dir.join("cgroup.procs")).unwrap();
    assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");

    let exec = |argv: &[&str], workdir: &str| ExecConfig {
        pid,
        shim_pid: Some(shim),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/bin:/usr/bin".into(), "X=1".into()],
        workdir: workdir.into(),
        cgroup: cfg.cgroup.clone(),
        tty: false,
        rows: 0,
        cols: 0,
        attach_stdin: false,
        security: Default::default(),
    };
    let (code, out, err) = run_exec(&exec(&["sh", "-c", "exit 3"], "/"));
    assert_eq!(code, 3, "stderr: {err}");
    assert!(out.is_empty());

    // On a terminal: the size asked for, and it is the controlling terminal.
    let mut tty = exec(&["sh", "-c", "stty size; echo ctty >/dev/tty"], "/");
    (tty.tty, tty.rows, tty.cols) = (true, 33, 99);
    let (code, out, err) = run_exec(&tty);
    assert_eq!(code, 0, "stderr: {err}");
    assert!(out.contains("33 99"), "{out:?}");
    assert!(out.contains("ctty"), "{out:?}");

    let (code, out, err) = run_exec(&exec(
        &[
            "sh",
            "-c",
            "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /proc | grep -c '^[0-9]'; pwd; echo $X",
        ],
        "/tmp",
    ));
    assert_eq!(code, 0, "stderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "quilt-test-host");
    assert_eq!(lines[1].trim(), "sleep 100");
    // sleep, sh, ls, grep: only the container's processes are visible.
    let n: u32 = lines[2].parse().unwrap();
    assert!((3..=5).contains(&n), "{out}");
    assert_eq!(lines[3..], ["/tmp", "1"]);

    let (code, _, err) = run_exec(&exec(&["nosuchcmd"], "/"));
    assert_eq!(code, 127, "{err}");
    assert!(err.starts_with("quilt-shim: "), "{err}");
    let (code, _, err) = run_exec(&exec(&["true"], "/no/such/dir"));
    assert_eq!(code, 125, "{err}");
    let (code, _, _) = run_exec(&exec(&["sh", "-c", "kill -9 $$"], "/"));
    assert_eq!(code, 137);
    // A pid that is not the supervisor's child (as after pid reuse) is refused
    // before the command runs anywhere.
    let mut wrong = exec(&["true"], "/");
    wrong.shim_pid = Some(std::process::id() as i32);
    let (code, _, err) = run_exec(&wrong);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("not running"), "{err}");
    // Without the supervisor's pid nothing can be checked: refused too,
    // as is a pid that cannot be one.
    for missing in [None, Some(0), Some(-1)] {
        wrong.shim_pid = missing;
        let (code, _, err) = run_exec(&wrong);
        assert_eq!(code, 125, "{missing:?}: {err}");
        assert!(err.contains("supervisor"), "{missing:?}: {err}");
    }

    // Kill PID 1: the shim records the signal and exits.
    let pidfd = proc::pidfd_open(pid).unwrap();
    proc::pidfd_send_signal(&pidfd, Signal::KILL).unwrap();
    assert!(wait_exit(shim, Duration::from_secs(10)));
    let rec = exitfile::read(&cfg.dir).unwrap().unwrap();
    assert_eq!((rec.exit_code, rec.signal, rec.oom_killed), (137, 9, false));

    // Exec into a container that is gone.
    let (code, _, err) = run_exec(&exec(&["true"], "/"));
    assert_eq!(code, 125, "{err}");
}

/// The v2 code paths (clone3 into the cgroup, exec joining it, removal with
/// cgroup.kill) against a real cgroup2 hierarchy. Pure v2 hosts run every test
/// on v2 anyway; on hybrid hosts the cgroup2 mount at `unified` is used here.
#[test]
fn cgroup_v2_paths() {
    let mut env = Env::new();
    let root = match &env.layout {
        CgroupLayout::V2 { root } => root.clone(),
        CgroupLayout::V1 { root } => root.join("unified"),
    };
    // Hybrid hosts (this project's CI among them) have one at `unified`.
    assert!(
        root.join("cgroup.controllers").is_file(),
        "no cgroup2 hierarchy at {} to test the v2 paths against",
        root.display()
    );
    env.layout = CgroupLayout::V2 { root: root.clone() };
    let cfg = env.config(&["sleep", "100"], Limits::default());
    let (shim, pid) = env.run(&cfg);
    let leaf = root.join(&cfg.cgroup.path);
    let procs = std::fs::read_to_string(leaf.join("cgroup.procs")).unwrap();
    assert_eq!(procs.lines().collect::<Vec<_>>(), vec![pid.to_string()]);

    let exec = ExecConfig {
        pid,
        shim_pid: Some(shim),
        argv: vec!["cat".into(), "/proc/self/cgroup".into()],
        env: vec![],
        workdir: "/".into(),
        cgroup: cfg.cgroup.clone(),
        tty: false,
        rows: 0,
        cols: 0,
        attach_stdin: false,
        security: Default::default(),
    };
    let (code, out, err) = run_exec(&exec);
    assert_eq!(code, 0, "{err}");
    let want = format!("0::/{}", cfg.cgroup.path);
    assert!(out.lines().any(|l| l == want), "{out}");

    // Removal kills the container.
    cgroup::remove(&cfg.cgroup).unwrap();
    assert!(!leaf.exists());
    assert!(wait_exit(shim, Duration::from_secs(10)));
    let rec = exitfile::read(&cfg.dir).unwrap().unwrap();
    assert_eq!((rec.exit_code, rec.signal), (137, 9));
}

#[test]
fn large_output_is_logged_completely() {
    let mut env = Env::new();
    // 200k lines of 100 bytes with the newline (20 MB) plus a 40 KiB line without newline at
    // the end on stderr.
    let script = "yes 012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789abcdefghi \
                  | head -n 200000; head -c 40960 /dev/zero | tr '\\0' 'z' >&2";
    let cfg = env.config(&["sh", "-c", script], Limits::default());
    let t0 = Instant::now();
    let rec = env.run_to_exit(&cfg);
    let took = t0.elapsed();
    assert_eq!(rec.exit_code, 0);
    let recs = log_records(&cfg.dir);
    let out: Vec<_> = recs.iter().filter(|r| r.0 == Stream::Stdout).collect();
    assert_eq!(out.len(), 200_000);
    assert!(out.iter().all(|r| !r.1 && r.2.len() == 99));
    let err: Vec<_> = recs.iter().filter(|r| r.0 == Stream::Stderr).collect();
    assert!(err.iter().all(|r| r.1), "all stderr records are partial");
    assert_eq!(err.iter().map(|r| r.2.len()).sum::<usize>(), 40960);
    assert!(err.iter().all(|r| r.2.len() <= logfile::MAX_RECORD));
    eprintln!("20 MB of output logged in {took:?}");
}

/// `cargo test -p quilt-runtime --test shim -- --ignored --nocapture start_latency`
#[test]
#[ignore]
fn start_latency() {
    let mut env = Env::new();
    let mut times = Vec::new();
    for _ in 0..50 {
        let cfg = env.config(
            &["true"],
            Limits {
                memory_bytes: Some(256 << 20),
                cpus: Some(1.0),
                pids: Some(1000),
            },
        );
        let t0 = Instant::now();
        let (shim, _) = env.run(&cfg);
        times.push(t0.elapsed());
        assert!(wait_exit(shim, Duration::from_secs(10)));
        cgroup::remove(&cfg.cgroup).unwrap();
    }
    report("launch::start(/bin/true)", times);

    let cfg = env.config(
        &["sleep", "100"],
        Limits {
            memory_bytes: Some(256 << 20),
            cpus: Some(1.0),
            pids: Some(1000),
        },
    );
    let (shim, pid) = env.run(&cfg);
    let exec = ExecConfig {
        pid,
        shim_pid: Some(shim),
        argv: vec!["true".into()],
        env: vec!["PATH=/bin".into()],
        workdir: "/".into(),
        cgroup: cfg.cgroup.clone(),
        tty: false,
        rows: 0,
        cols: 0,
        attach_stdin: false,
        security: Default::default(),
    };
    let mut times = Vec::new();
    for _ in 0..50 {
        let t0 = Instant::now();
        let (code, _, err) = run_exec(&exec);
        times.push(t0.elapsed());
        assert_eq!(code, 0, "{err}");
    }
    report("quilt-shim exec true (spawn to exit)", times);
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    eprintln!(
        "{what}: p50 {:?} p90 {:?} min {:?} max {:?}",
        times[times.len() / 2],
        times[times.len() * 9 / 10],
        times[0],
        times[times.len() - 1]
    );
}

/// `cargo test -p quilt-runtime --release --test shim -- --ignored --nocapture log_throughput`
#[test]
#[ignore]
fn log_throughput() {
    let mut env = Env::new();
    let cfg = env.config(
        &[
            "sh",
            "-c",
            "head -c 100000000 /dev/zero | tr '\\0' 'x' | fold -w 99",
        ],
        Limits::default(),
    );
    let t0 = Instant::now();
    let rec = env.run_to_exit(&cfg);
    let took = t0.elapsed();
    assert_eq!(rec.exit_code, 0);
    let size = std::fs::metadata(cfg.dir.join(logfile::LOG_FILE))
        .unwrap()
        .len();
    eprintln!("100 MB of output: container ran and was logged in {took:?} (log {size} bytes)");
}
