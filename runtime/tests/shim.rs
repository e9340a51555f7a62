//! End-to-end tests of `quilt-shim` through `launch::start` (needs root,
//! overlayfs and cgroups; never touches the network).
use quilt_runtime::execproto::{self, FrameKind};
use quilt_runtime::image::ImageStore;
use quilt_runtime::logfile::{self, Stream};
use quilt_runtime::signal::Signal;
use quilt_runtime::spec::*;
use quilt_runtime::{cgroup, exitfile, launch, proc};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
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
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).envs += 1;
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
            path: format!("{PARENT}/{id}"),
            limits,
            own_memory: false,
        };
        self.cgroups.push(cg.clone());
        ContainerConfig {
            id: id.clone(),
            dir: self.tmp.path().join("containers").join(&id),
            image_rootfs: self.image.clone(),
            volatile_rootfs: false,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                "HOME=/root".into(),
                "QUILT_TEST=yes".into(),
            ],
            workdir: "/".into(),
            hostname: "quilt-test-host".into(),
            host_network: false,
            netns: None,
            init: false,
            cgroup: cg,
            log_max_bytes: None,
            log_max_files: None,
            mounts: Vec::new(),
            security: Default::default(),
            stdio: Default::default(),
            mount_ns: None,
            shared_sysfs: None,
            pooled: false,
            gated: false,
        }
    }

    fn start(&mut self, cfg: &ContainerConfig) -> StartReport {
        self.start_on(cfg, None)
    }

    /// `start`, with its root made ahead (see `quilt_runtime::layer`).
    fn start_on(&mut self, cfg: &ContainerConfig, root: Option<OwnedFd>) -> StartReport {
        let r = launch::start(Path::new(SHIM), cfg, root).unwrap();
        if let StartReport::Started { shim_pid, pid, .. } = r {
            self.started.push((shim_pid, pid));
        }
        r
    }

    /// Starts and expects Started; returns (shim pid, container pid).
    fn run(&mut self, cfg: &ContainerConfig) -> (i32, i32) {
        self.run_on(cfg, None)
    }

    /// `run`, with its root made ahead (see `start_on`).
    fn run_on(&mut self, cfg: &ContainerConfig, root: Option<OwnedFd>) -> (i32, i32) {
        match self.start_on(cfg, root) {
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
        self.run_to_exit_on(cfg, None)
    }

    /// `run_to_exit`, with its root made ahead (see `start_on`).
    fn run_to_exit_on(&mut self, cfg: &ContainerConfig, root: Option<OwnedFd>) -> ExitRecord {
        let (shim, _) = self.run_on(cfg, root);
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
        }
        // The shared parent goes with the last test environment, under the
        // count's lock: an empty parent is not removed while another test
        // is starting a container that joins it (on v1 one without a memory
        // limit joins the memory parent itself), and a new environment
        // waits until the removal is over.
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        for layout in self.cgroups.iter().map(|cg| &cg.layout) {
            if !live.layouts.contains(layout) {
                live.layouts.push(layout.clone());
            }
        }
        live.envs -= 1;
        if live.envs == 0 {
            // A pooled container's shim, let go by a test, cleans up on a
            // thread of its own: it may still be in the parent for a moment.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            for layout in std::mem::take(&mut live.layouts) {
                loop {
                    cgroup::remove_parent_if_empty(&layout, PARENT);
                    if !parent_left(&layout) || std::time::Instant::now() >= deadline {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// The cgroup parent of every test container.
const PARENT: &str = "quilt-rt-test";

/// Whether the parent is still there, in any hierarchy.
fn parent_left(layout: &CgroupLayout) -> bool {
    match layout {
        CgroupLayout::V2 { root } => root.join(PARENT).exists(),
        // Not the cgroup2 mount a hybrid host has beside its v1 hierarchies
        // (another layout).
        CgroupLayout::V1 { root } => std::fs::read_dir(root)
            .map(|hs| {
                hs.flatten()
                    .filter(|h| h.file_name() != "unified")
                    .any(|h| h.path().join(PARENT).exists())
            })
            .unwrap_or(false),
    }
}

/// The test environments alive in this process, and the cgroup layouts
/// their containers used (see `Env`'s drop).
struct Live {
    envs: usize,
    layouts: Vec<CgroupLayout>,
}

static LIVE: std::sync::Mutex<Live> = std::sync::Mutex::new(Live {
    envs: 0,
    layouts: Vec::new(),
});

/// The container's cgroup directory: v1 in the pids hierarchy (every
/// container has one there); v2 its own, or, without a memory cgroup of its
/// own, below the parent's shared group.
fn cgroup_leaf(cg: &CgroupSpec) -> PathBuf {
    match &cg.layout {
        CgroupLayout::V1 { root } => root.join("pids").join(&cg.path),
        CgroupLayout::V2 { root } => {
            let own = root.join(&cg.path);
            if cg.limits.memory_bytes.is_some() || cg.own_memory || own.is_dir() {
                return own;
            }
            let (parent, id) = cg.path.rsplit_once('/').expect("a parent");
            root.join(parent).join(cgroup::SHARED_MEMORY_GROUP).join(id)
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

/// A root made ahead is the container's: the fork server hands it to the
/// shim, whose container attaches it instead of mounting an overlay. It is
/// made `volatile` here and the container not: an overlay mounted by the
/// container over the same directories would refuse them (overlayfs keeps
/// a volatile mark in the work directory), and only the one made ahead
/// leaves that mark.
#[test]
fn a_container_starts_on_a_root_made_ahead() {
    let mut env = Env::new();
    let cfg = env.config(
        &[
            "sh",
            "-c",
            "test -x /bin/sh && echo made > /made && cat /made",
        ],
        Limits::default(),
    );
    // The layer's directory becomes the container's, as at a first start.
    std::fs::create_dir_all(cfg.dir.parent().unwrap()).unwrap();
    let pool = env.tmp.path().join("layers");
    std::fs::create_dir_all(&pool).unwrap();
    let layer =
        quilt_runtime::layer::Layer::make(&cfg.image_rootfs, &pool.join("l1"), true).unwrap();
    let root = layer.install(&cfg.dir).unwrap().root;
    let rec = env.run_to_exit_on(&cfg, Some(root));
    assert_eq!((rec.exit_code, rec.signal), (0, 0));
    assert_eq!(stdout_lines(&cfg.dir), vec!["made"]);
    assert_eq!(
        std::fs::read_to_string(cfg.dir.join("upper/made")).unwrap(),
        "made\n"
    );
    assert!(
        cfg.dir.join("work/work/incompat/volatile").is_dir(),
        "the container mounted an overlay of its own"
    );
    assert!(!cfg.image_rootfs.join("made").exists());
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
    let dir = cgroup_leaf(&cfg.cgroup);
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

/// A cgroup the kernel refuses fails the start with the kernel's reason.
/// On v1 the shim makes it while PID 1 sets up its mounts and waits on the
/// shim's pipe: the shim kills it before reaping it (reaping it alone
/// would wait forever, the shim holding that pipe).
#[test]
fn a_cgroup_the_kernel_refuses_fails_the_start() {
    let mut env = Env::new();
    // The kernel reads pids.max as a signed number: this is out of range.
    let refused = Limits {
        pids: Some(u64::MAX),
        ..Limits::default()
    };
    let cfg = env.config(&["true"], refused);
    let (tx, rx) = std::sync::mpsc::channel();
    let sent = cfg.clone();
    std::thread::spawn(move || tx.send(launch::start(Path::new(SHIM), &sent, None)));
    let report = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the start hung");
    match report.unwrap() {
        StartReport::Failed { exit_code, message } => {
            assert_eq!(exit_code, EXIT_SETUP, "{message}");
            assert!(message.contains("creating cgroup"), "{message}");
            assert!(message.contains("pids.max"), "{message}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    let dir = cgroup_leaf(&cfg.cgroup);
    assert!(!dir.exists(), "{} still exists", dir.display());
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

/// Connects to the container's attach socket (it is there once the start
/// was reported).
fn attach(dir: &Path) -> std::os::unix::net::UnixStream {
    let d = quilt_runtime::attach::open_dir(dir).unwrap();
    std::os::unix::net::UnixStream::connect(quilt_runtime::attach::socket_path(d.as_fd())).unwrap()
}

fn all_output(dir: &Path) -> String {
    log_records(dir).into_iter().map(|(_, _, t)| t).collect()
}

#[test]
fn a_terminal_for_the_main_process() {
    let mut env = Env::new();
    let mut cfg = env.config(
        &[
            "sh",
            "-c",
            "read x; stty size; tty; echo \"got $x\"; exit 3",
        ],
        Limits::default(),
    );
    cfg.stdio = StdioConfig {
        tty: true,
        open_stdin: true,
    };
    let (shim, _) = env.run(&cfg);
    let mut sock = attach(&cfg.dir);
    let mut wire = Vec::new();
    execproto::encode(
        &mut wire,
        FrameKind::Resize,
        &execproto::resize_payload(30, 100),
    );
    execproto::encode(&mut wire, FrameKind::Stdin, b"hello\n");
    sock.write_all(&wire).unwrap();
    assert!(
        wait_exit(shim, Duration::from_secs(20)),
        "shim did not exit"
    );
    let rec = exitfile::read(&cfg.dir).unwrap().unwrap();
    assert_eq!(rec.exit_code, 3);
    let out = all_output(&cfg.dir);
    // The terminal echoes what was typed, and its lines end in CR LF.
    assert!(out.contains("hello\r"), "{out:?}");
    assert!(out.contains("30 100\r"), "{out:?}");
    assert!(out.contains("/dev/pts/0\r"), "{out:?}");
    assert!(out.contains("got hello\r"), "{out:?}");
    assert!(
        log_records(&cfg.dir)
            .iter()
            .all(|(s, _, _)| *s == Stream::Stdout),
        "a terminal's output is one stream"
    );
    assert!(
        !cfg.dir.join(quilt_runtime::attach::SOCKET_NAME).exists(),
        "the attach socket outlived the workload"
    );
}

#[test]
fn an_open_stdin_survives_a_detach_and_closes_on_request() {
    let mut env = Env::new();
    let mut cfg = env.config(&["cat"], Limits::default());
    cfg.stdio = StdioConfig {
        tty: false,
        open_stdin: true,
    };
    let (shim, _) = env.run(&cfg);
    {
        let mut first = attach(&cfg.dir);
        first
            .write_all(&execproto::frame(FrameKind::Stdin, b"one\n"))
            .unwrap();
        // Detaches: gone without closing stdin.
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stdout_lines(&cfg.dir).contains(&"one".to_string()) {
        assert!(
            Instant::now() < deadline,
            "the first client's input was lost"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !wait_exit(shim, Duration::from_millis(300)),
        "cat ended on a detach"
    );
    let mut second = attach(&cfg.dir);
    let mut wire = execproto::frame(FrameKind::Stdin, b"two\n");
    execproto::encode(&mut wire, FrameKind::CloseStdin, b"");
    second.write_all(&wire).unwrap();
    assert!(
        wait_exit(shim, Duration::from_secs(10)),
        "cat never saw the end of input"
    );
    assert_eq!(exitfile::read(&cfg.dir).unwrap().unwrap().exit_code, 0);
    assert_eq!(stdout_lines(&cfg.dir), vec!["one", "two"]);
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
    let procs_dir = cgroup_leaf(&cfg.cgroup);
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
        detached_log: None,
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
    // No memory limit: below the shared group of the parent.
    let leaf = cgroup_leaf(&cfg.cgroup);
    assert!(leaf.starts_with(root.join("quilt-rt-test/shared-memory")));
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
        detached_log: None,
    };
    let (code, out, err) = run_exec(&exec);
    assert_eq!(code, 0, "{err}");
    // The exec'd command is in the container's cgroup namespace: its
    // cgroup is the namespace's root.
    assert!(out.lines().any(|l| l == "0::/"), "{out}");

    // One device program, attached by the shim; the cgroup holds the only
    // reference to it.
    let progs = cgroup::device_programs(&cfg.cgroup).unwrap();
    assert_eq!(progs.len(), 1, "{progs:?}");
    assert!(cgroup::bpf_program_exists(progs[0]).unwrap());

    // Removal kills the container, and the program goes with the cgroup.
    cgroup::remove(&cfg.cgroup).unwrap();
    assert!(!leaf.exists());
    assert!(wait_exit(shim, Duration::from_secs(10)));
    let rec = exitfile::read(&cfg.dir).unwrap().unwrap();
    assert_eq!((rec.exit_code, rec.signal), (137, 9));
    let freed = Instant::now() + Duration::from_secs(10);
    while cgroup::bpf_program_exists(progs[0]).unwrap() {
        assert!(
            Instant::now() < freed,
            "device program {} still loaded 10 s after its cgroup was removed",
            progs[0]
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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

    // A warm pool's container: from the adoption's config to Started.
    let mut times = Vec::new();
    for _ in 0..50 {
        let mut cfg = env.config(&[], Limits::default());
        let p = match launch::prepare(Path::new(SHIM), &cfg).unwrap() {
            launch::PrepareOutcome::Ready(p) => p,
            launch::PrepareOutcome::Failed { message, .. } => panic!("{message}"),
        };
        cfg.argv = vec!["true".into()];
        let t0 = Instant::now();
        let r = adopt(p, &cfg).unwrap();
        times.push(t0.elapsed());
        let StartReport::Started { shim_pid, .. } = r else {
            panic!("{r:?}");
        };
        assert!(wait_exit(shim_pid, Duration::from_secs(10)));
        cgroup::remove(&cfg.cgroup).unwrap();
    }
    report("Prepared::adopt(/bin/true)", times);

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
        detached_log: None,
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

/// A pooled container prepared from `cfg`; panics when it was not.
fn prepare(cfg: &ContainerConfig) -> Box<launch::Prepared> {
    match launch::prepare(Path::new(SHIM), cfg).unwrap() {
        launch::PrepareOutcome::Ready(p) => p,
        launch::PrepareOutcome::Failed { message, .. } => panic!("not prepared: {message}"),
    }
}

/// Hands a pooled container over to `config` and waits for its start, as
/// quiltd does (on an async runtime). Panics when it was not handed over.
fn adopt(
    p: Box<launch::Prepared>,
    config: &ContainerConfig,
) -> Result<StartReport, launch::LaunchError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let handed = p
            .send(launch::Encoded::new(config))
            .await
            .expect("handed over");
        handed.wait().await
    })
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

// ---- Devices, masked paths, cgroup namespace -------------------------------

/// Switches `env` to the cgroup2 hierarchy: the host's on pure v2, the
/// `unified` mount beside the v1 controllers on hybrid hosts (where a
/// device program attached there is enforced as well).
fn use_v2(env: &mut Env) -> PathBuf {
    let root = match &env.layout {
        CgroupLayout::V2 { root } => root.clone(),
        CgroupLayout::V1 { root } => root.join("unified"),
    };
    assert!(
        root.join("cgroup.controllers").is_file(),
        "no cgroup2 hierarchy at {} to test the v2 paths against",
        root.display()
    );
    env.layout = CgroupLayout::V2 { root: root.clone() };
    root
}

/// Host device nodes a container must never open, made by the test in a
/// host directory the container gets as a writable bind mount (so only the
/// device cgroup stands in the way): (name, kind, major, minor).
const FORBIDDEN: [(&str, nix::sys::stat::SFlag, u64, u64); 4] = [
    ("loop-control", nix::sys::stat::SFlag::S_IFCHR, 10, 237),
    ("tty1", nix::sys::stat::SFlag::S_IFCHR, 4, 1),
    ("vcs", nix::sys::stat::SFlag::S_IFCHR, 7, 0),
    ("loop0", nix::sys::stat::SFlag::S_IFBLK, 7, 0),
];

/// Prints "NAME ok" or "NAME <error>" for each probe.
const PROBE: &str = "p() { if eval \"$2\" 2>/tmp/err; then echo \"$1 ok\"; \
                     else echo \"$1 $(sed 's/.*: //' /tmp/err)\"; fi; }; ";

/// The device probes of `devices_are_confined`, and what each must give.
/// `exp` is a node of an unregistered major: allowed, opening it reaches
/// the kernel's driver lookup (ENXIO); refused, the device cgroup stops it
/// first (EPERM).
fn device_probes(exp: u32) -> (String, Vec<String>) {
    let mknod_exp = format!("mknod /tmp/e c {exp} 0");
    let probes: [(&str, &str, &str); 22] = [
        ("null-w", "echo x > /dev/null", "ok"),
        ("zero-r", "head -c 1 /dev/zero > /dev/null", "ok"),
        ("full-w", "echo x > /dev/full", "No space left on device"),
        ("random-r", "head -c 1 /dev/random > /dev/null", "ok"),
        ("urandom-r", "head -c 1 /dev/urandom > /dev/null", "ok"),
        ("ptmx", "true <> /dev/ptmx", "ok"),
        // mknod of a listed device is allowed (rwm) ...
        ("mknod-null", "mknod /tmp/n c 1 3 && echo x > /tmp/n", "ok"),
        // ... of anything else it is not.
        (
            "mknod-loop0",
            "mknod /tmp/l b 7 0",
            "Operation not permitted",
        ),
        (
            "mknod-tty1",
            "mknod /tmp/t c 4 1",
            "Operation not permitted",
        ),
        (
            "mknod-nvidiactl",
            "mknod /tmp/c c 195 255",
            "Operation not permitted",
        ),
        // Host nodes that are there all the same: not opened.
        // (Opened and closed only: nothing is read or written.)
        (
            "loop-control",
            "true <> /h/loop-control",
            "Operation not permitted",
        ),
        ("tty1", "true < /h/tty1", "Operation not permitted"),
        ("vcs", "true < /h/vcs", "Operation not permitted"),
        ("loop0-r", "true < /h/loop0", "Operation not permitted"),
        ("loop0-w", "true >> /h/loop0", "Operation not permitted"),
        // Given read-only: opened for reading, not for writing, no mknod.
        ("exp-r", "true < /dev/exp", "No such device or address"),
        ("exp-w", "true > /dev/exp", "Operation not permitted"),
        ("exp-rw", "true <> /dev/exp", "Operation not permitted"),
        ("exp-m", &mknod_exp, "Operation not permitted"),
        ("exp-kind", "test -c /dev/exp", "ok"),
        // The same major, another minor: not given.
        ("exp1", "true < /h/exp1", "Operation not permitted"),
        // A default device under another name works as itself.
        (
            "myzero-r",
            "head -c 1 /dev/myzero | wc -c | grep -qx 1",
            "ok",
        ),
    ];
    let mut script = String::from(PROBE);
    let mut want = Vec::new();
    for (name, cmd, expect) in probes {
        script.push_str(&format!("p {name} '{cmd}'; "));
        want.push(format!("{name} {expect}"));
    }
    (script, want)
}

/// Runs the device probes in a container on `env`'s layout.
fn check_devices(env: &mut Env) {
    let hostdev = env.tmp.path().join(format!("hostdev-{}", unique()));
    std::fs::create_dir(&hostdev).unwrap();
    for (name, kind, major, minor) in FORBIDDEN {
        nix::sys::stat::mknod(
            &hostdev.join(name),
            kind,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(major, minor),
        )
        .unwrap();
    }
    let exp = quilt_testkit::host::unused_char_major().expect("a free experimental major");
    for minor in [0, 1] {
        nix::sys::stat::mknod(
            &hostdev.join(format!("exp{minor}")),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(exp.into(), minor),
        )
        .unwrap();
    }
    let (script, want) = device_probes(exp);
    let mut cfg = env.config(&["sh", "-c", &script], Limits::default());
    cfg.mounts.push(quilt_runtime::mounts::MountConfig {
        target: "/h".into(),
        read_only: false,
        kind: quilt_runtime::mounts::MountKind::Bind {
            source: hostdev.clone(),
            create: false,
        },
    });
    cfg.security.devices.push(DeviceNode {
        path: "/dev/exp".into(),
        host_path: hostdev.join("exp0").to_str().unwrap().into(),
        kind: DeviceKind::Char,
        major: exp,
        minor: 0,
        access: "r".into(),
    });
    cfg.security.devices.push(DeviceNode {
        path: "/dev/myzero".into(),
        host_path: "/dev/zero".into(),
        kind: DeviceKind::Char,
        major: 1,
        minor: 5,
        access: "r".into(),
    });
    let rec = env.run_to_exit(&cfg);
    assert_eq!(stdout_lines(&cfg.dir), want, "{:?}", env.layout);
    assert_eq!(rec.exit_code, 0, "{:?}", log_records(&cfg.dir));
}

/// The default allow-list and `--device`, on the host's layout (v1 here:
/// the devices controller) and on cgroup2 (the BPF program).
#[test]
fn devices_are_confined() {
    let mut env = Env::new();
    check_devices(&mut env);
    if let CgroupLayout::V1 { root } = env.layout.clone() {
        // The controller holds exactly the list (the kernel's own rendering).
        let mut cfg = env.config(&["true"], Limits::default());
        cfg.security.devices.push(DeviceNode {
            path: "/dev/ro-null".into(),
            host_path: "/dev/null".into(),
            kind: DeviceKind::Char,
            major: 1,
            minor: 3,
            access: "rw".into(),
        });
        let list = root
            .join("devices")
            .join(&cfg.cgroup.path)
            .join("devices.list");
        assert_eq!(env.run_to_exit(&cfg).exit_code, 0);
        let got = std::fs::read_to_string(list).unwrap();
        let mut got: Vec<&str> = got.lines().collect();
        got.sort_unstable();
        assert_eq!(
            got,
            [
                "c 136:* rwm",
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:1 rwm",
                "c 5:2 rwm",
            ]
        );
    }
    use_v2(&mut env);
    check_devices(&mut env);
}

/// A device that changed since the daemon resolved it is refused, and a
/// node the shim cannot confine (not a device) too.
#[test]
fn a_changed_device_is_refused() {
    let mut env = Env::new();
    let mut cfg = env.config(&["true"], Limits::default());
    cfg.security.devices.push(DeviceNode {
        path: "/dev/x".into(),
        host_path: "/dev/zero".into(),
        kind: DeviceKind::Char,
        major: 1,
        minor: 3,
        access: "rwm".into(),
    });
    match env.start(&cfg) {
        StartReport::Failed { exit_code, message } => {
            assert_eq!(exit_code, 125);
            assert!(
                message.contains("/dev/zero is no longer c 1:3"),
                "{message}"
            );
        }
        other => panic!("expected a failed start, got {other:?}"),
    }
    let mut cfg = env.config(&["true"], Limits::default());
    cfg.security.devices.push(DeviceNode {
        path: "/dev/x".into(),
        host_path: "/dev/null".into(),
        kind: DeviceKind::Char,
        major: 1,
        minor: 3,
        access: "rwx".into(),
    });
    match env.start(&cfg) {
        StartReport::Failed { exit_code, message } => {
            assert_eq!(exit_code, 125);
            assert!(message.contains("invalid device access"), "{message}");
        }
        other => panic!("expected a failed start, got {other:?}"),
    }
    // Nothing left of either: the shim removed the cgroups it made.
    for cg in &env.cgroups {
        let dir = match &cg.layout {
            CgroupLayout::V2 { .. } => cgroup_leaf(cg),
            CgroupLayout::V1 { root } => root.join("devices").join(&cg.path),
        };
        assert!(!dir.exists(), "{}", dir.display());
    }
}

/// A cgroup namespace rooted at the container's cgroup; on v2 its own
/// hierarchy read-only at /sys/fs/cgroup.
#[test]
fn cgroup_namespace() {
    let mut env = Env::new();
    let cfg = env.config(&["cat", "/proc/self/cgroup"], Limits::default());
    assert_eq!(env.run_to_exit(&cfg).exit_code, 0);
    let lines = stdout_lines(&cfg.dir);
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(l.ends_with(":/"), "{lines:?}");
    }

    use_v2(&mut env);
    // PID 1 is the only member of the container's cgroup, which is the
    // root of what it sees.
    let cfg = env.config(&["cat", "/sys/fs/cgroup/cgroup.procs"], Limits::default());
    assert_eq!(env.run_to_exit(&cfg).exit_code, 0);
    assert_eq!(stdout_lines(&cfg.dir), ["1"]);
    let script = "grep ' /sys/fs/cgroup ' /proc/self/mountinfo | cut -d' ' -f4,6 | cut -c1-4; \
                  mkdir /sys/fs/cgroup/x 2>&1 | sed 's/.*: //'";
    let cfg = env.config(&["sh", "-c", script], Limits::default());
    assert_eq!(env.run_to_exit(&cfg).exit_code, 0);
    assert_eq!(stdout_lines(&cfg.dir), ["/ ro", "Read-only file system"]);
}

/// Docker's masked and read-only paths.
#[test]
fn masked_paths() {
    let mut env = Env::new();
    let dirs = [
        "/proc/acpi",
        "/proc/asound",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ];
    let present: Vec<&str> = dirs.into_iter().filter(|d| Path::new(d).is_dir()).collect();
    // This host has /sys/firmware with entries: the masking is seen.
    assert!(
        std::fs::read_dir("/sys/firmware").is_ok_and(|mut d| d.next().is_some()),
        "the test needs a host /sys/firmware with entries"
    );
    let mut script = String::from(PROBE);
    let mut want = Vec::new();
    for d in &present {
        script.push_str(&format!("echo {d} $(ls -A {d} | wc -l); "));
        want.push(format!("{d} 0"));
    }
    // Read-only mounts (the error a write gets differs between kernels:
    // EROFS, or ENOENT from procfs).
    for p in [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ] {
        if Path::new(p).exists() {
            script.push_str(&format!(
                "echo {p} $(grep ' {p} ' /proc/self/mountinfo | cut -d' ' -f6 | cut -c1-3); "
            ));
            want.push(format!("{p} ro,"));
        }
    }
    for (name, cmd) in [
        ("sysrq", "echo h > /proc/sysrq-trigger"),
        ("sysctl", "echo 1 > /proc/sys/kernel/sysrq"),
        ("keys", "test -s /proc/keys"),
        ("kcore", "test -s /proc/kcore"),
        ("timer_list", "test -s /proc/timer_list"),
    ] {
        script.push_str(&format!(
            "{cmd} 2>/dev/null && echo {name} open || echo {name} closed; "
        ));
        want.push(format!("{name} closed"));
    }
    let cfg = env.config(&["sh", "-c", &script], Limits::default());
    assert_eq!(env.run_to_exit(&cfg).exit_code, 0);
    assert_eq!(stdout_lines(&cfg.dir), want);
}

/// The GPU plumbing with stand-ins (this host has no GPU): driver files
/// bind mounted read-only at their host paths, the soname link, the
/// loader's configuration and environment, and a device node.
#[test]
fn gpu_driver_files_are_mounted() {
    let mut env = Env::new();
    let driver = env.tmp.path().join("driver");
    std::fs::create_dir(&driver).unwrap();
    let lib = driver.join("libnvidia-fake.so.555.1");
    std::fs::write(&lib, "fake library\n").unwrap();
    let tool = driver.join("nvidia-fake-smi");
    std::fs::write(&tool, "#!/bin/sh\necho smi-ran\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = driver.to_str().unwrap().to_string();
    // A hostile image: the loader's config file is a symlink to the
    // container's /etc/passwd, and the soname a dangling symlink.
    let conf_dir = env.image.join("etc/ld.so.conf.d");
    std::fs::create_dir_all(&conf_dir).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", conf_dir.join("00-quilt-nvidia.conf")).unwrap();
    let image_driver = env.image.join(d.trim_start_matches('/'));
    std::fs::create_dir_all(&image_driver).unwrap();
    std::os::unix::fs::symlink("/nowhere", image_driver.join("libnvidia-fake.so.1")).unwrap();
    let script = format!(
        "cat {d}/libnvidia-fake.so.1; readlink {d}/libnvidia-fake.so.1; {d}/nvidia-fake-smi; \
         echo x >> {d}/libnvidia-fake.so.555.1 2>/dev/null || echo lib-ro; \
         cat /etc/ld.so.conf.d/00-quilt-nvidia.conf; head -c 5 /etc/passwd; echo; \
         echo $NVIDIA_VISIBLE_DEVICES $NVIDIA_DRIVER_CAPABILITIES $LD_LIBRARY_PATH; \
         ls -l /dev/nvidia0 | cut -c1; head -c 1 /dev/nvidia0 | wc -c"
    );
    let mut cfg = env.config(&["sh", "-c", &script], Limits::default());
    cfg.security.gpu = Some(GpuConfig {
        visible_devices: "0".into(),
        files: vec![lib.to_str().unwrap().into(), tool.to_str().unwrap().into()],
        links: vec![Symlink {
            path: format!("{d}/libnvidia-fake.so.1"),
            target: "libnvidia-fake.so.555.1".into(),
        }],
        library_dirs: vec![d.clone()],
    });
    // A GPU's node stands in as /dev/zero.
    cfg.security.devices.push(DeviceNode {
        path: "/dev/nvidia0".into(),
        host_path: "/dev/zero".into(),
        kind: DeviceKind::Char,
        major: 1,
        minor: 5,
        access: "rw".into(),
    });
    let rec = env.run_to_exit(&cfg);
    assert_eq!(rec.exit_code, 0);
    assert_eq!(
        stdout_lines(&cfg.dir),
        [
            "fake library".to_string(),
            "libnvidia-fake.so.555.1".into(),
            "smi-ran".into(),
            "lib-ro".into(),
            d.clone(),
            "root:".into(),
            format!("0 compute,utility {d}"),
            "c".into(),
            "1".into(),
        ]
    );
    // The host's files are untouched, and nothing was added beside them.
    assert_eq!(std::fs::read_to_string(&lib).unwrap(), "fake library\n");
    assert!(!driver.join("libnvidia-fake.so.1").exists());
}

/// A restart on v2 attaches the new device program in place of the old
/// one (never one more), and the old one is freed.
#[test]
fn a_restart_replaces_the_device_program() {
    let mut env = Env::new();
    use_v2(&mut env);
    let cfg = env.config(&["true"], Limits::default());
    assert_eq!(env.run_to_exit(&cfg).exit_code, 0);
    let first = cgroup::device_programs(&cfg.cgroup).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(env.run_to_exit(&cfg).exit_code, 0);
    let second = cgroup::device_programs(&cfg.cgroup).unwrap();
    assert_eq!(second.len(), 1);
    assert_ne!(first, second);
    let freed = Instant::now() + Duration::from_secs(10);
    while cgroup::bpf_program_exists(first[0]).unwrap() {
        assert!(
            Instant::now() < freed,
            "the replaced program is still loaded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the device allow-list costs a start, on each layout: the shim's
/// `restrict_devices` on a fresh cgroup (v1: ten writes to the devices
/// controller; v2: load and attach the BPF program).
/// `cargo test --release -p quilt-runtime --test shim -- --ignored --nocapture device_filter_cost`
#[test]
#[ignore]
fn device_filter_cost() {
    let mut env = Env::new();
    for v2 in [false, true] {
        if v2 {
            use_v2(&mut env);
        } else if matches!(env.layout, CgroupLayout::V2 { .. }) {
            continue;
        }
        let rules = cgroup::devices::rules_for(&[]).unwrap();
        let mut times = Vec::new();
        for _ in 0..200 {
            let cfg = env.config(&["true"], Limits::default());
            cgroup::create(&cfg.cgroup).unwrap();
            let t0 = Instant::now();
            cgroup::restrict_devices(&cfg.cgroup, &rules).unwrap();
            times.push(t0.elapsed());
            cgroup::remove(&cfg.cgroup).unwrap();
        }
        report(&format!("restrict_devices ({:?})", env.layout), times);
    }
}

// ---- Freezer and usage figures against the real kernel ---------------------

/// Freezes a busy container and reads its CPU time, on the host's layout
/// and on cgroup v2 (the `unified` mount of a hybrid host): the CPU time
/// stands still while frozen and moves again once thawed; the cgroup's
/// members are the workload.
#[test]
fn freeze_stops_the_cpu_clock_and_thaw_restarts_it() {
    for v2 in [false, true] {
        let mut env = Env::new();
        if v2 {
            use_v2(&mut env);
        }
        let cfg = env.config(&["sh", "-c", "while :; do :; done"], Limits::default());
        let (shim, pid) = env.run(&cfg);
        let cpu = || {
            cgroup::usage(&cfg.cgroup)
                .unwrap()
                .cpu_ns
                .expect("cpu time")
        };
        let before = cpu();
        std::thread::sleep(Duration::from_millis(200));
        assert!(cpu() > before, "v2={v2}: the busy loop used no CPU");
        assert_eq!(cgroup::members(&cfg.cgroup).unwrap(), vec![pid], "v2={v2}");

        cgroup::freeze(&cfg.cgroup).unwrap();
        assert!(cgroup::is_frozen(&cfg.cgroup).unwrap());
        let frozen = cpu();
        std::thread::sleep(Duration::from_millis(200));
        let still = cpu();
        assert!(
            still - frozen < 1_000_000,
            "v2={v2}: {} ns of CPU while frozen",
            still - frozen
        );

        cgroup::thaw(&cfg.cgroup).unwrap();
        assert!(!cgroup::is_frozen(&cfg.cgroup).unwrap());
        std::thread::sleep(Duration::from_millis(200));
        assert!(cpu() > still, "v2={v2}: no CPU after thawing");

        // How long a freeze of this small container takes (for the record;
        // speed is proven by the benchmark, not asserted here).
        let mut took: Vec<Duration> = (0..20)
            .map(|_| {
                let t0 = Instant::now();
                cgroup::freeze(&cfg.cgroup).unwrap();
                let t = t0.elapsed();
                cgroup::thaw(&cfg.cgroup).unwrap();
                t
            })
            .collect();
        took.sort();
        eprintln!("v2={v2}: freeze p50 {:?}, max {:?}", took[10], took[19]);

        // Frozen again, then removed: removal thaws before it kills.
        cgroup::freeze(&cfg.cgroup).unwrap();
        cgroup::remove(&cfg.cgroup).unwrap();
        assert!(wait_exit(shim, Duration::from_secs(10)), "v2={v2}");
    }
}

/// A process's nice value (field 19 of /proc/PID/stat).
fn nice_of(pid: i32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(16).unwrap().parse().unwrap()
}

/// The memory cgroup a process is in, from /proc/PID/cgroup (v1: the
/// `memory` line; v2: the only one).
fn memory_cgroup_of(pid: i32) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    text.lines()
        .find_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            (ctrls.split(',').any(|c| c == "memory") || ctrls.is_empty()).then(|| path.to_owned())
        })
        .unwrap_or_default()
}

/// Cgroup v1: a container without a memory limit has no memory cgroup of
/// its own (its processes are charged to the one its parent path names,
/// shared by all such containers), still reports the memory it uses, and
/// its removal leaves the shared one alone; a container with a limit has
/// its own, with the limit.
#[test]
fn v1_memory_cgroup_only_with_a_memory_limit() {
    let mut env = Env::new();
    let CgroupLayout::V1 { root } = env.layout.clone() else {
        eprintln!("not a cgroup v1 host: nothing to check");
        return;
    };
    if !root.join("memory").is_dir() {
        eprintln!("no v1 memory hierarchy: nothing to check");
        return;
    }
    // dd fills an 8 MiB buffer, then blocks writing it to a pipe nobody reads.
    let argv = ["sh", "-c", "dd if=/dev/zero bs=8M count=1 | sleep 60"];
    let free = env.config(&argv, Limits::default());
    let limited = env.config(
        &argv,
        Limits {
            memory_bytes: Some(64 << 20),
            ..Default::default()
        },
    );
    let (free_shim, free_pid) = env.run(&free);
    let (lim_shim, lim_pid) = env.run(&limited);
    let own = |cfg: &ContainerConfig| root.join("memory").join(&cfg.cgroup.path);
    assert!(!own(&free).exists(), "a memory cgroup without a limit");
    assert_eq!(memory_cgroup_of(free_pid), "/quilt-rt-test");
    assert_eq!(
        memory_cgroup_of(lim_pid),
        format!("/{}", limited.cgroup.path)
    );
    assert_eq!(
        std::fs::read_to_string(own(&limited).join("memory.limit_in_bytes"))
            .unwrap()
            .trim(),
        (64u64 << 20).to_string()
    );
    // Both report what they use, once the shell has built its string.
    let deadline = Instant::now() + Duration::from_secs(20);
    for cfg in [&free, &limited] {
        loop {
            let u = cgroup::usage(&cfg.cgroup).unwrap();
            let used = u.memory_bytes.expect("a memory figure");
            if used > 8_000_000 {
                break;
            }
            assert!(Instant::now() < deadline, "{}: {used} bytes", cfg.id);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(cgroup::usage(&free.cgroup).unwrap().memory_limit, None);
    // sh, dd and sleep.
    let members = cgroup::members(&free.cgroup).unwrap();
    assert!(
        members.contains(&free_pid) && members.len() == 3,
        "{members:?}"
    );

    // Removing the unlimited container kills only its own processes.
    cgroup::remove(&free.cgroup).unwrap();
    assert!(wait_exit(free_shim, Duration::from_secs(10)));
    assert!(root.join("memory/quilt-rt-test").is_dir());
    assert_eq!(
        memory_cgroup_of(lim_pid),
        format!("/{}", limited.cgroup.path)
    );
    assert!(proc::state(lim_pid).is_some(), "the limited container died");
    cgroup::remove(&limited.cgroup).unwrap();
    assert!(wait_exit(lim_shim, Duration::from_secs(10)));
    assert!(!own(&limited).exists());
}

/// A warm pool's container: prepared without a command, adopted by a
/// container of the same shape with its own command, environment,
/// hostname, working directory, user and memory limit; refused by one of
/// another shape; discarded (cgroup and directory gone) when its stdin
/// closes.
#[test]
fn a_pooled_container_is_adopted_discarded_or_refused() {
    let mut env = Env::new();
    let cgroup_dir = |cfg: &ContainerConfig| cgroup_leaf(&cfg.cgroup);

    // Adopted. On v1 it is prepared in the shared memory cgroup and moved
    // into its own for the adopter's limit; on v2 it needs its own from the
    // start (as the daemon's pools prepare them).
    let mut pooled = env.config(&[], Limits::default());
    pooled.cgroup.own_memory = matches!(pooled.cgroup.layout, CgroupLayout::V2 { .. });
    pooled.hostname = "pooled".into();
    let p = prepare(&pooled);
    assert!(cgroup_dir(&pooled).is_dir());
    assert!(proc::start_time(p.pid).is_some(), "its PID 1 waits");
    // Prepared at a lower priority, both wait at ours.
    let ours = nice_of(std::process::id() as i32);
    assert_eq!(nice_of(p.shim_pid), ours, "the parked shim's nice value");
    assert_eq!(nice_of(p.pid), ours, "the parked PID 1's nice value");
    let mut adopting = pooled.clone();
    adopting.argv = [
        "sh",
        "-c",
        "echo $WHO $(hostname) $(pwd) $(id -u); cat /proc/self/cgroup; sleep 1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    adopting.env.push("WHO=adopter".into());
    adopting.hostname = "adopter-host".into();
    adopting.workdir = "/work/here".into();
    adopting.security.user = Some("65534".into());
    adopting.cgroup.limits.memory_bytes = Some(64 << 20);
    let report = adopt(p, &adopting).unwrap();
    let StartReport::Started { shim_pid, pid, .. } = report else {
        panic!("expected Started, got {report:?}");
    };
    env.started.push((shim_pid, 0));
    // v1: prepared in the shared memory cgroup (it had no limit), the
    // workload runs in its own.
    let host_view = memory_cgroup_of(pid);
    assert!(wait_exit(shim_pid, Duration::from_secs(20)));
    if let CgroupLayout::V1 { .. } = adopting.cgroup.layout {
        assert_eq!(host_view, format!("/{}", adopting.cgroup.path));
    }
    let rec = exitfile::read(&adopting.dir).unwrap().expect("exit.json");
    assert_eq!(rec.exit_code, 0, "{rec:?}");
    let lines = stdout_lines(&adopting.dir);
    assert_eq!(
        lines[0], "adopter adopter-host /work/here 65534",
        "{lines:?}"
    );
    // The limit was set on adoption (the cgroup stays until the daemon
    // removes it).
    let limit = match &adopting.cgroup.layout {
        CgroupLayout::V2 { root } => root.join(&adopting.cgroup.path).join("memory.max"),
        CgroupLayout::V1 { root } => root
            .join("memory")
            .join(&adopting.cgroup.path)
            .join("memory.limit_in_bytes"),
    };
    assert_eq!(
        std::fs::read_to_string(&limit).unwrap().trim(),
        (64u64 << 20).to_string()
    );
    // Its cgroup namespace is rooted at its cgroups, the memory one it was
    // moved to included.
    let cgroups = &lines[1..];
    assert!(
        !cgroups.is_empty() && cgroups.iter().all(|l| l.ends_with(":/")),
        "{lines:?}"
    );

    // Refused: another image root is another shape. The shim cleans up.
    let pooled = env.config(&[], Limits::default());
    let p = prepare(&pooled);
    let mut other = pooled.clone();
    other.argv = vec!["true".into()];
    other.security.read_only_rootfs = true;
    match adopt(p, &other).unwrap() {
        StartReport::Failed { exit_code, message } => {
            assert_eq!(exit_code, EXIT_SETUP);
            assert!(message.contains("shape"), "{message}");
        }
        r => panic!("expected Failed, got {r:?}"),
    }
    assert!(!cgroup_dir(&pooled).exists());
    assert!(!pooled.dir.exists());

    // A config larger than the pipe holds (written partly on the blocking
    // pool) reaches PID 1 whole.
    let pooled = env.config(&[], Limits::default());
    let p = prepare(&pooled);
    let mut large = pooled.clone();
    large.argv = ["sh", "-c", "echo $((${#A} + ${#B} + ${#C} + ${#D}))"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // Each under the kernel's limit on one string (128 KiB).
    for name in ["A", "B", "C", "D"] {
        large.env.push(format!("{name}={}", "x".repeat(50 << 10)));
    }
    let report = adopt(p, &large).unwrap();
    let StartReport::Started { shim_pid, .. } = report else {
        panic!("a large config did not start: {report:?}");
    };
    env.started.push((shim_pid, 0));
    assert!(wait_exit(shim_pid, Duration::from_secs(20)));
    assert_eq!(stdout_lines(&large.dir), [(200 << 10).to_string()]);

    // A command not found whose name is longer than the report's limit:
    // the failure is reported (its message cut), as on a cold start.
    let pooled = env.config(&[], Limits::default());
    let p = prepare(&pooled);
    let mut missing = pooled.clone();
    missing.argv = vec!["y".repeat(100 << 10)];
    match adopt(p, &missing).unwrap() {
        StartReport::Failed { exit_code, message } => {
            let shown = quilt_runtime::text::prefix(&message, 200);
            assert_eq!(exit_code, 127, "{shown}");
            assert!(message.len() < 5000, "a message of {}", message.len());
            assert!(message.ends_with("..."), "{shown}");
        }
        r => panic!("expected Failed, got {r:?}"),
    }

    // Discarded.
    let pooled = env.config(&[], Limits::default());
    let p = prepare(&pooled);
    let (shim, pid) = (p.shim_pid, p.pid);
    p.discard();
    assert!(proc::start_time(shim).is_none(), "the shim is reaped");
    assert!(proc::start_time(pid).is_none(), "its PID 1 is gone");
    assert!(!cgroup_dir(&pooled).exists());
    assert!(!pooled.dir.exists());
}

/// A gated start (`cfg`'s) whose workload creates `mark`: 300 ms at its
/// gate without running (`at_gate` checks more there), then let go, it
/// runs once (`mark` is removed after).
fn let_go_runs_once(
    rt: &tokio::runtime::Runtime,
    gated: launch::Gated,
    env: &mut Env,
    cfg: &ContainerConfig,
    mark: &Path,
    at_gate: impl FnOnce(),
) {
    std::thread::sleep(Duration::from_millis(300));
    assert!(!mark.exists(), "ran before the gate opened");
    at_gate();
    let report = rt.block_on(gated.go()).unwrap();
    let StartReport::Started { shim_pid, .. } = report else {
        panic!("expected Started, got {report:?}");
    };
    env.started.push((shim_pid, 0));
    assert!(wait_exit(shim_pid, Duration::from_secs(20)));
    assert_eq!(stdout_lines(&cfg.dir), ["ran"]);
    assert!(mark.exists());
    std::fs::remove_file(mark).unwrap();
}

#[test]
fn a_gated_start_runs_once_let_go_and_never_when_abandoned() {
    let mut env = Env::new();
    let host = tempfile::tempdir().unwrap();
    let with_mark = |env: &mut Env| {
        let mut cfg = env.config(&["sh", "-c", "touch /h/ran; echo ran"], Limits::default());
        cfg.mounts.push(quilt_runtime::mounts::MountConfig {
            target: "/h".into(),
            read_only: false,
            kind: quilt_runtime::mounts::MountKind::Bind {
                source: host.path().to_owned(),
                create: false,
            },
        });
        cfg
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // Let go: it runs as a start does.
    let cfg = with_mark(&mut env);
    let gated = launch::start_gated(Path::new(SHIM), &cfg, None).unwrap();
    // Its PID 1 waits at the gate, set up but not exec'd.
    let made = || assert!(cgroup_leaf(&cfg.cgroup).is_dir());
    let_go_runs_once(&rt, gated, &mut env, &cfg, &host.path().join("ran"), made);

    // Abandoned: the workload never runs; the shim reports why and is
    // reaped, and its cgroup and directory are removed.
    let cfg = with_mark(&mut env);
    let gated = launch::start_gated(Path::new(SHIM), &cfg, None).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    match gated.abandon().unwrap() {
        StartReport::Failed { exit_code, message } => {
            assert_eq!(exit_code, EXIT_ABANDONED, "{message}");
        }
        r => panic!("expected Failed, got {r:?}"),
    }
    assert!(!host.path().join("ran").exists(), "an abandoned start ran");
    assert!(!cgroup_leaf(&cfg.cgroup).exists());
    assert!(!cfg.dir.exists());

    // A PID 1 that fails before its gate: the shim reports why and exits
    // before the gate opens; opening it then still gets that report.
    let cfg = env.config(&["no-such-command"], Limits::default());
    let gated = launch::start_gated(Path::new(SHIM), &cfg, None).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    match rt.block_on(gated.go()).unwrap() {
        StartReport::Failed { exit_code, message } => {
            assert_eq!(exit_code, EXIT_NOT_FOUND, "{message}");
        }
        r => panic!("expected Failed, got {r:?}"),
    }

    // Dropped at once, its PID 1 perhaps not at the gate yet: the same, on
    // a thread of its own.
    let cfg = with_mark(&mut env);
    drop(launch::start_gated(Path::new(SHIM), &cfg, None).unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while (cfg.dir.exists() || cgroup_leaf(&cfg.cgroup).exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!cfg.dir.exists());
    assert!(!cgroup_leaf(&cfg.cgroup).exists());
    assert!(!host.path().join("ran").exists(), "a dropped start ran");
}

#[test]
fn a_gated_adoption_runs_once_let_go_and_never_when_abandoned() {
    let mut env = Env::new();
    let host = tempfile::tempdir().unwrap();
    let mark = quilt_runtime::mounts::MountConfig {
        target: "/h".into(),
        read_only: false,
        kind: quilt_runtime::mounts::MountKind::Bind {
            source: host.path().to_owned(),
            create: false,
        },
    };
    let mut pooled = env.config(&[], Limits::default());
    pooled.cgroup.own_memory = matches!(pooled.cgroup.layout, CgroupLayout::V2 { .. });
    pooled.mounts.push(mark.clone());
    let adopter = |pooled: &ContainerConfig| ContainerConfig {
        argv: ["sh", "-c", "touch /h/ran; echo ran"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        gated: true,
        ..pooled.clone()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let hand = |p: Box<launch::Prepared>, cfg: &ContainerConfig| {
        rt.block_on(p.send_gated(launch::Encoded::new(cfg).unwrap(), cfg))
            .expect("handed over")
    };

    // Let go: it runs as an adoption does, once the gate opens.
    let p = prepare(&pooled);
    let cfg = adopter(&pooled);
    let gated = hand(p, &cfg);
    let_go_runs_once(&rt, gated, &mut env, &cfg, &host.path().join("ran"), || {});

    // Abandoned: the workload never runs; the pooled processes end, and
    // its cgroup and directory are removed.
    let mut pooled = env.config(&[], Limits::default());
    pooled.cgroup.own_memory = matches!(pooled.cgroup.layout, CgroupLayout::V2 { .. });
    pooled.mounts.push(mark);
    let p = prepare(&pooled);
    let (shim, pid) = (p.shim_pid, p.pid);
    let cfg = adopter(&pooled);
    let gated = hand(p, &cfg);
    std::thread::sleep(Duration::from_millis(300));
    match gated.abandon().unwrap() {
        StartReport::Failed { exit_code, message } => {
            assert_eq!(exit_code, EXIT_ABANDONED, "{message}");
        }
        r => panic!("expected Failed, got {r:?}"),
    }
    assert!(
        !host.path().join("ran").exists(),
        "an abandoned adoption ran"
    );
    assert!(proc::start_time(shim).is_none(), "the shim is reaped");
    assert!(proc::start_time(pid).is_none(), "its PID 1 is gone");
    assert!(!cgroup_leaf(&cfg.cgroup).exists());
    assert!(!cfg.dir.exists());
}
