//! The `Daemon` fixture: one private quiltd per test.

use std::collections::hash_map::RandomState;
use std::ffi::OsString;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use quilt_proto::v1::container_service_client::ContainerServiceClient;
use quilt_proto::v1::{
    Container, ContainerState, ContainerView, CreateContainerRequest, CreateContainerResponse,
    ExecStart, GetContainerRequest, ListContainersRequest, ListContainersResponse,
    RemoveContainerRequest,
};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::cli::{CliOutput, run_program};
use crate::host::{self, Footprint, Leftovers};
use crate::{ExecResult, exec_collect, retry};

/// How long quiltd may take to answer its health check after being spawned.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Default bound for one CLI invocation.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// Default bound for one gRPC call made through the helpers.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// The directory holding quiltd, quilt and quilt-shim: $QUILT_BIN_DIR, or
/// target/<profile>/ found from the test executable
/// (target/<profile>/deps/<test>-<hash>).
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("QUILT_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable is not in target/<profile>/deps")
        .to_path_buf()
}

fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} does not exist: run `cargo build --workspace` before the tests (or set QUILT_BIN_DIR)",
        p.display()
    );
    p
}

pub(crate) fn random_hex() -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

/// A gRPC channel over a Unix socket.
pub async fn connect_uds(path: &Path) -> Result<Channel, tonic::transport::Error> {
    quilt_proto::uds_channel(path).await
}

/// One grpc.health.v1 check; Ok(true) when SERVING.
pub async fn health_check(socket: &Path) -> anyhow::Result<bool> {
    let ch = connect_uds(socket).await?;
    let mut hc = HealthClient::new(ch);
    let resp = tokio::time::timeout(
        Duration::from_secs(2),
        hc.check(HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await??;
    Ok(resp.into_inner().status == ServingStatus::Serving as i32)
}

/// Options for a daemon before it starts.
#[derive(Debug, Default)]
pub struct DaemonBuilder {
    env: Vec<(String, String)>,
    args: Vec<String>,
    data_dir: Option<PathBuf>,
    netns: Option<PathBuf>,
}

impl DaemonBuilder {
    /// Run quiltd (and so its containers' networks) inside the network
    /// namespace `ns` (a file such as /run/netns/NAME).
    pub fn netns(mut self, ns: &crate::netns::TestNetns) -> Self {
        self.netns = Some(ns.path.clone());
        self
    }

    /// An extra environment variable for quiltd.
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    /// Extra command-line arguments for quiltd (e.g. `--log-max-size`).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Keep the data dir at `dir` (which the caller owns and removes)
    /// instead of inside the fixture's temp dir.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    pub fn start(self) -> Daemon {
        let tmp = tempfile::Builder::new()
            .prefix("quilt-test-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let root = tmp.path().to_path_buf();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut d = Daemon {
            socket: root.join("quilt.sock"),
            data_dir: self.data_dir.unwrap_or_else(|| root.join("data")),
            log_path: root.join("quiltd.log"),
            cgroup_parent: format!("quilt-test-{}", random_hex()),
            root,
            tmp: Some(tmp),
            env: self.env,
            args: self.args,
            netns: self.netns,
            child: None,
            past_children: Vec::new(),
            rt,
        };
        d.spawn_and_wait_ready();
        d
    }
}

/// A private quiltd: its own socket, data dir and cgroup parent, all torn
/// down (and checked) when dropped.
#[derive(Debug)]
pub struct Daemon {
    /// The temp dir everything lives in.
    pub root: PathBuf,
    pub socket: PathBuf,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    pub cgroup_parent: String,
    tmp: Option<tempfile::TempDir>,
    env: Vec<(String, String)>,
    /// Extra quiltd arguments.
    args: Vec<String>,
    /// The network namespace quiltd runs in (None: the test's own).
    netns: Option<PathBuf>,
    child: Option<Child>,
    /// PIDs of earlier quiltd processes (after restart), to check none is a zombie.
    past_children: Vec<i32>,
    rt: tokio::runtime::Runtime,
}

impl Daemon {
    /// A daemon with default options.
    pub fn start() -> Daemon {
        DaemonBuilder::default().start()
    }

    pub fn builder() -> DaemonBuilder {
        DaemonBuilder::default()
    }

    /// Spawns a quiltd with arbitrary paths (for the "second daemon" tests);
    /// its output is appended to `log`. The caller owns the child.
    pub fn spawn_quiltd(&self, socket: &Path, data_dir: &Path, log: &Path) -> Child {
        let logf = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open quiltd log");
        // nsenter execs quiltd in the namespace: the child is quiltd itself.
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", ns.display()))
                    .arg("--")
                    .arg(bin("quiltd"));
                c
            }
            None => Command::new(bin("quiltd")),
        };
        cmd.arg("--data-dir")
            .arg(data_dir)
            .arg("--socket")
            .arg(socket)
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .env("NO_COLOR", "1")
            .env_remove("QUILT_SOCKET")
            .env_remove("QUILT_DATA_DIR")
            .env_remove("QUILT_SHIM")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().expect("dup log"))
            .stderr(logf);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        // scripts/test.sh names the statically linked shim the release
        // build ships; without it, quiltd runs the one beside it.
        if let Some(shim) = std::env::var_os("QUILT_TEST_SHIM") {
            cmd.arg("--shim").arg(shim);
        }
        cmd.args(&self.args);
        cmd.spawn().expect("spawn quiltd")
    }

    fn spawn_and_wait_ready(&mut self) {
        assert!(self.child.is_none(), "a quiltd is already running");
        // Make sure the shim is where quiltd expects it.
        bin("quilt-shim");
        let child = self.spawn_quiltd(&self.socket, &self.data_dir, &self.log_path);
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut pause = Duration::from_millis(10);
        let mut last_err;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let pid = self.child.take().map(|c| c.id() as i32).unwrap_or(0);
                self.past_children.push(pid);
                panic!(
                    "quiltd exited with {status} before becoming ready\n{}",
                    self.log_tail(60)
                );
            }
            if self.socket.exists() {
                match self.rt.block_on(health_check(&self.socket)) {
                    Ok(true) => return,
                    Ok(false) => last_err = "health: not SERVING".into(),
                    Err(e) => last_err = format!("{e:#}"),
                }
            } else {
                last_err = "socket does not exist yet".into();
            }
            if Instant::now() >= deadline {
                panic!(
                    "quiltd was not ready within {READY_TIMEOUT:?} (last: {last_err})\n{}",
                    self.log_tail(60)
                );
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// PID of the running quiltd.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// SIGKILLs quiltd and reaps it. Containers (and their shims) live on.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            self.past_children.push(c.id() as i32);
        }
    }

    /// SIGTERMs quiltd and waits (bounded) for it to exit; SIGKILL after 20 s.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        self.past_children.push(c.id() as i32);
        let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGTERM);
        let status = retry(Duration::from_secs(20), || c.try_wait().ok().flatten());
        match status {
            Some(s) => Some(s),
            None => {
                eprintln!("quilt-tests: quiltd ignored SIGTERM for 20 s; killing it");
                let _ = c.kill();
                c.wait().ok()
            }
        }
    }

    /// Starts a new quiltd on the same socket and data dir (stopping the
    /// current one gracefully first if it still runs).
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn_and_wait_ready();
    }

    /// The whole quiltd log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last `n` lines of the quiltd log, framed for a failure message.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let from = lines.len().saturating_sub(n);
        format!(
            "--- quiltd.log ({}), last {} lines ---\n{}\n--- end of quiltd.log ---",
            self.log_path.display(),
            lines.len() - from,
            lines[from..].join("\n")
        )
    }

    /// Runs `quilt --socket SOCK args...` (bounded by `CLI_TIMEOUT`).
    pub fn cli<I, S>(&self, args: I) -> CliOutput
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.cli_timeout(args, CLI_TIMEOUT)
    }

    /// Runs the CLI with an explicit bound.
    pub fn cli_timeout<I, S>(&self, args: I, timeout: Duration) -> CliOutput
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut all: Vec<OsString> = vec!["--socket".into(), self.socket.clone().into()];
        all.extend(args.into_iter().map(Into::into));
        run_program(&bin("quilt"), &all, &[], timeout)
    }

    /// `quilt run -d ARGS...`: returns the id it printed.
    #[track_caller]
    pub fn run_detached(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        let id = self.cli(&all).ok();
        assert!(
            !id.is_empty() && !id.contains(char::is_whitespace),
            "run -d printed {id:?}"
        );
        id
    }

    /// `quilt status ID` parsed.
    #[track_caller]
    pub fn status_json(&self, id: &str) -> serde_json::Value {
        self.cli(["status", id]).expect_code(0).json()
    }

    /// Runs a future on the fixture's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// A fresh API client (call inside `block_on`).
    pub async fn client(&self) -> ContainerServiceClient<Channel> {
        let ch = connect_uds(&self.socket)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e:?}", self.socket.display()));
        ContainerServiceClient::new(ch)
    }

    /// One call on a fresh client, bounded by `RPC_TIMEOUT` (`what`
    /// names it in the timeout's error).
    fn bounded<T, Fut>(
        &self,
        what: &str,
        call: impl FnOnce(ContainerServiceClient<Channel>) -> Fut,
    ) -> Result<T, tonic::Status>
    where
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        self.block_on(async { within(RPC_TIMEOUT, what, call(self.client().await)).await })
    }

    /// CreateContainer (bounded).
    pub fn create(
        &self,
        req: CreateContainerRequest,
    ) -> Result<CreateContainerResponse, tonic::Status> {
        self.bounded("CreateContainer", |mut c| async move {
            c.create_container(req).await
        })
        .map(tonic::Response::into_inner)
    }

    /// GetContainer (bounded).
    pub fn get(&self, id: &str) -> Result<Container, tonic::Status> {
        let req = GetContainerRequest { id: id.to_string() };
        self.bounded(
            "GetContainer",
            |mut c| async move { c.get_container(req).await },
        )
        .map(|r| {
            r.into_inner()
                .container
                .expect("GetContainer without container")
        })
    }

    /// A non-interactive Exec, collected (bounded; see [`exec_collect`]).
    pub fn exec(&self, start: ExecStart) -> Result<ExecResult, tonic::Status> {
        self.bounded(
            "Exec",
            |mut c| async move { exec_collect(&mut c, start).await },
        )
    }

    /// One ListContainers call, its answer as sent (bounded).
    pub fn list_page(
        &self,
        req: ListContainersRequest,
    ) -> Result<ListContainersResponse, tonic::Status> {
        self.bounded("ListContainers", |mut c| async move {
            c.list_containers(req).await
        })
        .map(tonic::Response::into_inner)
    }

    /// Every stored container.
    pub fn list(&self) -> Vec<Container> {
        self.try_list()
            .unwrap_or_else(|e| panic!("ListContainers: {e}"))
    }

    /// ListContainers, every page (bounded).
    pub fn try_list(&self) -> Result<Vec<Container>, tonic::Status> {
        self.bounded("ListContainers", |mut c| async move {
            list_all(&mut c, ListContainersRequest::default()).await
        })
    }

    /// Polls GetContainer until the state is one of `states` (bounded).
    #[track_caller]
    pub fn wait_state(&self, id: &str, states: &[ContainerState], timeout: Duration) -> Container {
        let mut last = None;
        let got = retry(timeout, || match self.get(id) {
            Ok(c) if states.iter().any(|s| *s as i32 == c.state) => Some(c),
            Ok(c) => {
                last = Some(format!("{:?}", c.state()));
                None
            }
            Err(e) => {
                last = Some(format!("error {e}"));
                None
            }
        });
        got.unwrap_or_else(|| {
            panic!(
                "container {id} did not reach {states:?} within {timeout:?} (last: {last:?})\n{}",
                self.log_tail(40)
            )
        })
    }

    /// The directory of a container's cgroup in `controller` (v1) or the
    /// unified hierarchy (v2).
    pub fn cgroup_dir(&self, controller: &str, id: &str) -> PathBuf {
        host::cgroup_dir(controller, &format!("{}/{}", self.cgroup_parent, id))
    }

    /// Where this daemon lives on the host.
    fn footprint(&self) -> Footprint<'_> {
        Footprint {
            root: &self.root,
            data_dir: &self.data_dir,
            cgroup_parent: &self.cgroup_parent,
            quiltd: self.pid(),
        }
    }

    /// Mounts under the fixture's temp dir but the network namespaces
    /// quiltd keeps ready (`DATA/netns/*`, its own while it runs).
    pub fn mounts_but_netns_pool(&self) -> Vec<PathBuf> {
        let pool = self.data_dir.join("netns");
        host::mounts_under(&self.root)
            .into_iter()
            .filter(|m| m.parent() != Some(&pool) && *m != pool)
            .collect()
    }

    /// Everything the daemon may have left behind, as human-readable lines.
    /// Empty = clean. What counts as left behind on the host is
    /// [`Leftovers`]; the harness adds the rows, the volumes (tests remove
    /// the ones they create with `quilt volume rm`) and its own unreaped
    /// past daemons.
    pub fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.child.is_some() {
            match self.try_list() {
                Ok(containers) => {
                    for c in containers {
                        out.push(format!("row: {} ({}) {:?}", c.id, c.name, c.state()));
                    }
                }
                Err(e) => out.push(format!("ListContainers failed: {e}")),
            }
        }
        let found = Leftovers::scan(&self.footprint());
        for d in &found.container_dirs {
            out.push(format!("dir: {}", d.display()));
        }
        if let Ok(entries) = fs::read_dir(self.data_dir.join("volumes")) {
            for e in entries.flatten() {
                out.push(format!("volume dir: {}", e.path().display()));
            }
        }
        for d in &found.cgroups {
            out.push(format!("cgroup: {}", d.display()));
        }
        for p in &found.cgroup_pids {
            out.push(format!(
                "process in our cgroups: {p} {:?}",
                host::proc_cmdline(*p)
            ));
        }
        for m in &found.mounts {
            out.push(format!("mount: {}", m.display()));
        }
        for p in &found.shims {
            out.push(format!("quilt-shim: {p} {:?}", host::proc_cmdline(*p)));
        }
        // Our own past daemons, which the harness reaps itself.
        let me = std::process::id() as i32;
        let past = host::zombies_of(&[me])
            .into_iter()
            .filter(|z| self.past_children.contains(&z.pid));
        for z in found.zombies.iter().cloned().chain(past) {
            out.push(format!(
                "zombie: {} (child of {}) {:?}",
                z.pid, z.ppid, z.comm
            ));
        }
        out
    }

    /// Asserts that nothing is left: no rows, no container or volume dirs, no cgroups
    /// below our parent, no processes in them, no mounts under our temp dir,
    /// no shims of ours, no zombies. Cleanup may lag the last call a little,
    /// so it retries for up to 10 s before failing.
    #[track_caller]
    pub fn assert_no_leftovers(&self) {
        let mut last = Vec::new();
        let clean = retry(Duration::from_secs(10), || {
            last = self.leftovers();
            last.is_empty().then_some(())
        });
        if clean.is_none() {
            panic!(
                "leftovers after 10 s:\n  {}\n{}",
                last.join("\n  "),
                self.log_tail(40)
            );
        }
    }

    fn teardown(&mut self) {
        // 1. Remove every container through the API.
        if self.child.is_some() {
            let res = self.rt.block_on(async {
                let ch = tokio::time::timeout(Duration::from_secs(10), connect_uds(&self.socket))
                    .await
                    .map_err(|_| anyhow::anyhow!("connect timed out"))??;
                let mut c = ContainerServiceClient::new(ch);
                let list = tokio::time::timeout(
                    Duration::from_secs(30),
                    list_all(
                        &mut c,
                        ListContainersRequest {
                            view: ContainerView::Summary as i32,
                            ..Default::default()
                        },
                    ),
                )
                .await??;
                for ct in list {
                    let r = tokio::time::timeout(
                        Duration::from_secs(30),
                        c.remove_container(RemoveContainerRequest {
                            id: ct.id.clone(),
                            force: true,
                        }),
                    )
                    .await;
                    match r {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) if e.code() == tonic::Code::NotFound => {}
                        Ok(Err(e)) => eprintln!("quilt-tests: teardown rm -f {}: {e}", ct.id),
                        Err(_) => eprintln!("quilt-tests: teardown rm -f {} timed out", ct.id),
                    }
                }
                anyhow::Ok(())
            });
            if let Err(e) = res {
                eprintln!("quilt-tests: teardown could not remove containers: {e:#}");
            }
        }
        // 2. Stop the daemon.
        self.stop();
        // 3. Kill whatever is left in our cgroups and our shims.
        let shims = host::shims_of(&self.root, None);
        if !shims.is_empty() {
            eprintln!("quilt-tests: killing leftover shims {shims:?}");
            host::kill_all(shims.iter().copied());
        }
        for problem in host::remove_cgroups(&self.cgroup_parent) {
            eprintln!("quilt-tests: {problem}");
        }
        for p in &shims {
            host::wait_pid_gone(*p, Duration::from_secs(5));
        }
        // 4. Unmount anything left under the temp dir.
        let unmounted = host::umount_all_under(&self.root);
        if !unmounted.is_empty() {
            eprintln!("quilt-tests: unmounted leftovers {unmounted:?}");
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed {
            eprintln!("{}", self.log_tail(80));
        }
        self.teardown();
        if let Some(tmp) = self.tmp.take() {
            if failed && std::env::var_os("QUILT_TEST_KEEP").is_some() {
                let kept = tmp.keep();
                eprintln!("quilt-tests: kept {}", kept.display());
            } else if let Err(e) = tmp.close() {
                eprintln!("quilt-tests: removing {}: {e}", self.root.display());
            }
        }
    }
}

/// Every page of a listing, following next_page_token from `req`'s page.
pub async fn list_all(
    c: &mut ContainerServiceClient<Channel>,
    mut req: ListContainersRequest,
) -> Result<Vec<Container>, tonic::Status> {
    let mut all = Vec::new();
    loop {
        let page = c.list_containers(req.clone()).await?.into_inner();
        all.extend(page.containers);
        if page.next_page_token.is_empty() {
            return Ok(all);
        }
        req.page_token = page.next_page_token;
    }
}

/// Awaits `fut` for at most `limit`; a timeout becomes DEADLINE_EXCEEDED.
pub async fn within<T>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> Result<T, tonic::Status> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(tonic::Status::deadline_exceeded(format!(
            "{what} did not answer within {limit:?}"
        ))),
    }
}
