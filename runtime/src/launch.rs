//! Starting a container: starts `quilt-shim run` (forked by the shim fork
//! server, see `forkserver`, or else spawned), hands it the config and
//! waits for its StartReport. Blocking; call off the reactor. The
//! exceptions are the hand-over to a pooled container ([`Prepared::send`],
//! [`Prepared::send_gated`], [`HandedOver::wait`]) and a gate's opening
//! ([`Gated::go`]): writes that cannot wait and a report read as it comes,
//! on the async runtime.
//!
//! The config travels on the shim's stdin as one frame (a little-endian u32
//! length, then the JSON). A pooled container's shim keeps its stdin open:
//! the config of the container that adopts it is a second frame, and the
//! end of its stdin (the daemon discarded it, or is gone) discards it.
use crate::spec::{ContainerConfig, StartReport};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};

/// The largest config a shim accepts.
pub const MAX_CONFIG: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot spawn {0}: {1}")]
    Spawn(String, std::io::Error),
    #[error("shim protocol error: {0}")]
    Protocol(String),
}

fn encode(config: &ContainerConfig) -> Result<Vec<u8>, LaunchError> {
    let json = serde_json::to_vec(config)
        .map_err(|e| LaunchError::Protocol(format!("cannot encode config: {e}")))?;
    if json.len() > MAX_CONFIG {
        return Err(LaunchError::Protocol(format!(
            "config of {} bytes is over {MAX_CONFIG}",
            json.len()
        )));
    }
    Ok(frame(&json))
}

/// A config as it travels to a pooled container's shim (see
/// [`Prepared::send`]): encoded ahead, off the hand-over's path.
#[derive(Debug, Clone)]
pub struct Encoded(Vec<u8>);

impl Encoded {
    pub fn new(config: &ContainerConfig) -> Result<Encoded, LaunchError> {
        encode(config).map(Encoded)
    }
}

/// `body` as one frame: its length (u32, little-endian), then itself. At
/// most [`MAX_CONFIG`] bytes (the caller's check).
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(body);
    frame
}

/// Reads one frame (None at EOF before its first byte).
pub fn read_frame(r: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_CONFIG {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes is over {MAX_CONFIG}"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Some(body))
}

/// A shim with its pipes: the config written, the report not read yet.
#[derive(Debug)]
struct Spawned {
    child: Shim,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    write_res: std::io::Result<()>,
}

/// A shim process, quiltd's child either way: forked by the fork server
/// (see `forkserver`), or spawned directly.
#[derive(Debug)]
enum Shim {
    Spawned(Child),
    /// Its pid, and its status once reaped (the pid is not ours after).
    Forked(i32, Option<ExitStatus>),
}

impl Shim {
    fn kill(&mut self) -> std::io::Result<()> {
        match self {
            Shim::Spawned(c) => c.kill(),
            // Unreaped, the pid cannot have been given to another process.
            Shim::Forked(pid, None) => Ok(nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            )?),
            Shim::Forked(_, Some(_)) => Ok(()),
        }
    }

    fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self {
            Shim::Spawned(c) => c.wait(),
            Shim::Forked(pid, status) => Ok(match status {
                Some(s) => *s,
                None => *status.insert(crate::proc::wait_blocking(*pid)?),
            }),
        }
    }

    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        match self {
            Shim::Spawned(c) => c.try_wait(),
            Shim::Forked(pid, status) => Ok(match status {
                Some(s) => Some(*s),
                None => {
                    if let Some(s) = crate::proc::try_wait_status(*pid)? {
                        *status = Some(s);
                    }
                    *status
                }
            }),
        }
    }
}

/// `SHIM run`, as quiltd spawns it (a shim, or the fork server): stdio
/// still to be set.
pub(crate) fn shim_run_command(shim: &Path) -> Command {
    let mut cmd = Command::new(shim);
    cmd.arg("run")
        // Until it redirects its stderr to DIR/shim.log, early failures of
        // a shim (e.g. a panic) show up in the daemon's own stderr.
        .stderr(Stdio::inherit())
        .env_clear()
        // Not in quiltd's process group: nothing sent to that group reaches
        // a supervisor. (Being a group leader, a shim spawned this way
        // cannot make a session of its own: its setsid() fails; one forked
        // by the fork server makes one.)
        .process_group(0);
    cmd
}

/// `root`: the container's root made ahead (see `crate::layer`), handed
/// to a shim the fork server forks. A shim spawned directly gets none:
/// the root is closed first, and its container mounts one over the same
/// directories.
fn spawn(
    shim: &Path,
    config: &ContainerConfig,
    keep_stdin: bool,
    root: Option<OwnedFd>,
) -> Result<Spawned, LaunchError> {
    let frame = encode(config)?;
    // A gated config runs nothing before its gate opens: it may be in the
    // new shim's stdin before the fork server has answered (see
    // `forkserver::spawn_run`).
    let early = config.gated.then_some(frame.as_slice());
    let forked = crate::forkserver::spawn_run(shim, root.as_ref().map(|r| r.as_fd()), early);
    drop(root);
    let mut sent = 0;
    let (child, mut stdin, stdout) = match forked {
        Some(f) => {
            sent = f.written;
            (
                Shim::Forked(f.pid, None),
                ChildStdin::from(f.stdin),
                ChildStdout::from(f.stdout),
            )
        }
        None => {
            let mut child = shim_run_command(shim)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .map_err(|e| LaunchError::Spawn(shim.display().to_string(), e))?;
            let stdin = child.stdin.take().expect("stdin piped");
            let stdout = child.stdout.take().expect("stdout piped");
            (Shim::Spawned(child), stdin, stdout)
        }
    };
    let write_res = stdin.write_all(&frame[sent..]);
    Ok(Spawned {
        child,
        stdin: keep_stdin.then_some(stdin),
        stdout: BufReader::new(stdout),
        write_res,
    })
}

impl Spawned {
    /// Reads the next report line. On a protocol error the shim is killed
    /// and reaped.
    fn report(&mut self) -> Result<StartReport, LaunchError> {
        let mut line = Vec::with_capacity(256);
        let read_res = self.stdout.read_until(b'\n', &mut line).map(drop);
        judge(&mut self.child, &self.write_res, read_res, &line)
    }

    /// Started or Failed: the end of the launch.
    fn finish(mut self, report: StartReport) -> Result<StartReport, LaunchError> {
        finish(&mut self.child, self.stdin.take(), report)
    }
}

/// The report in `line` (what reading it answered: `read_res`), or why the
/// shim gave none; a shim that misbehaved is killed and reaped (blocking).
fn judge(
    child: &mut Shim,
    write_res: &std::io::Result<()>,
    read_res: std::io::Result<()>,
    line: &[u8],
) -> Result<StartReport, LaunchError> {
    let fail = |child: &mut Shim, what: String| {
        // The shim misbehaved: make sure it is gone and reaped.
        let _ = child.kill();
        let status = child
            .wait()
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string());
        LaunchError::Protocol(format!("{what} (shim {status})"))
    };
    if let Err(e) = read_res {
        return Err(fail(child, format!("reading the start report: {e}")));
    }
    if line.is_empty() {
        let what = match write_res {
            Err(e) => format!("shim exited without a start report (writing config: {e})"),
            Ok(()) => "shim exited without a start report".to_string(),
        };
        return Err(fail(child, what));
    }
    if line.len() as u64 >= MAX_REPORT && line.last() != Some(&b'\n') {
        return Err(fail(child, "a start report over its size".into()));
    }
    match serde_json::from_slice(line) {
        Ok(r) => Ok(r),
        Err(e) => {
            let text = String::from_utf8_lossy(line).trim().to_string();
            Err(fail(child, format!("bad start report {text:?}: {e}")))
        }
    }
}

/// Started or Failed: the end of the launch (blocking, but for Started).
fn finish(
    child: &mut Shim,
    stdin: Option<ChildStdin>,
    report: StartReport,
) -> Result<StartReport, LaunchError> {
    match &report {
        StartReport::Failed { .. } => {
            // The shim exits right after reporting a failure (a pooled
            // one once it has cleaned up).
            drop(stdin);
            let _ = child.wait();
        }
        StartReport::Started { .. } => {
            // The shim supervises the container from now on; the caller
            // reaps it (dropping a std Child neither waits for nor kills
            // it).
        }
        StartReport::Prepared { .. } => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(LaunchError::Protocol(
                "the shim prepared a container it was asked to start".into(),
            ));
        }
    }
    Ok(report)
}

/// The longest start report read: a line of a few numbers, or a failure's
/// message (which the shim keeps short).
const MAX_REPORT: u64 = 64 << 10;

/// Ends the shim fork server (see `forkserver`) and reaps it: for a
/// daemon's shutdown, once nothing starts shims any more (a later start
/// would start another). Blocking, briefly.
pub fn stop_fork_server() {
    crate::forkserver::shutdown();
}

/// Starts `SHIM run`, writes `config` to its stdin, reads the one-line
/// JSON StartReport from its stdout. The shim stays the daemon's child; the
/// caller reaps it later with `proc::try_reap` once its pidfd is readable.
/// When the report is Failed the shim has already exited; it is reaped here.
/// `root`: the container's root, made ahead (see `crate::layer`); its
/// directories are in the container's already.
pub fn start(
    shim: &Path,
    config: &ContainerConfig,
    root: Option<OwnedFd>,
) -> Result<StartReport, LaunchError> {
    let mut s = spawn(shim, config, false, root)?;
    let report = s.report()?;
    s.finish(report)
}

/// A start whose workload waits at its gate (see
/// [`ContainerConfig::gated`]): spawned (or a pooled container handed
/// over, [`Prepared::send_gated`]) while the daemon records the
/// container, let go once it has ([`Gated::go`]), or abandoned
/// ([`Gated::abandon`], or dropped) should the record fail. Holds the
/// shim's stdin (the gate), its stdout and its process, and what an
/// abandoned start leaves to remove.
#[derive(Debug)]
pub struct Gated {
    shim: Option<Spawned>,
    cgroup: crate::spec::CgroupSpec,
    dir: std::path::PathBuf,
}

/// Starts `SHIM run` for `config` with its gate closed (`config.gated` is
/// set here) and `root` as [`start`] does; returns once the config is
/// written, without waiting for a report. Blocking.
pub fn start_gated(
    shim: &Path,
    config: &ContainerConfig,
    root: Option<OwnedFd>,
) -> Result<Gated, LaunchError> {
    let config = ContainerConfig {
        gated: true,
        ..config.clone()
    };
    Ok(Gated {
        shim: Some(spawn(shim, &config, true, root)?),
        cgroup: config.cgroup.clone(),
        dir: config.dir.clone(),
    })
}

impl Gated {
    /// Opens the gate (one byte, and the pipe closed) and waits for the
    /// start's report, as [`start`] would have. On the async runtime: see
    /// [`HandedOver::wait`]. A shim that ended the start before its gate
    /// (its PID 1 failed: the byte finds no reader) reports why all the
    /// same.
    pub async fn go(mut self) -> Result<StartReport, LaunchError> {
        let mut s = self.shim.take().expect("a gated shim");
        let opened = match s.stdin.take() {
            Some(w) => write_frame(w.into(), vec![1]).await,
            None => Err(std::io::Error::other("no stdin")),
        };
        match (HandedOver { shim: s }.wait().await, opened) {
            (Err(LaunchError::Protocol(why)), Err(e)) => Err(LaunchError::Protocol(format!(
                "{why} (opening the gate: {e})"
            ))),
            (report, _) => report,
        }
    }

    /// Closes the gate: the workload never runs. Waits for the shim to
    /// end the start and reaps it, then removes the container's cgroup and
    /// directory (the shim leaves them: closed by a daemon that died, the
    /// gate leaves them to the next, which may start the container again).
    /// Blocking.
    pub fn abandon(mut self) -> Result<StartReport, LaunchError> {
        let mut s = self.shim.take().expect("a gated shim");
        drop(s.stdin.take());
        let ended = match s.report() {
            // Cannot be, the gate being closed: ended all the same.
            Ok(StartReport::Started { .. }) => {
                let _ = s.child.kill();
                let _ = s.child.wait();
                Err(LaunchError::Protocol(
                    "an abandoned start reported its workload started".into(),
                ))
            }
            Ok(report) => s.finish(report),
            Err(e) => Err(e),
        };
        remove_abandoned(&self.cgroup, &self.dir);
        ended
    }
}

/// What an abandoned start made (its `cgroup` and `dir`), once its shim
/// is reaped.
fn remove_abandoned(cgroup: &crate::spec::CgroupSpec, dir: &Path) {
    if let Err(e) = crate::cgroup::remove(cgroup) {
        tracing::warn!(cgroup = %cgroup.path, error = %e, "cannot remove an abandoned start's cgroup");
    }
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot remove an abandoned start's directory");
    }
}

impl Drop for Gated {
    /// Never blocks (it may run on an async runtime): the gate is closed
    /// and a thread reaps the shim once it has ended the start, then
    /// removes what the start made.
    fn drop(&mut self) {
        if let Some(mut s) = self.shim.take() {
            drop(s.stdin.take());
            let (cgroup, dir) = (self.cgroup.clone(), self.dir.clone());
            let _ = std::thread::Builder::new()
                .name("reap-gated".into())
                .spawn(move || {
                    let _ = s.report();
                    let _ = s.child.wait();
                    remove_abandoned(&cgroup, &dir);
                });
        }
    }
}

/// A warm pool's container, prepared and waiting for the config of the
/// container that adopts it. Discarding or dropping it closes the shim's
/// stdin: the shim then ends the container, removes its cgroup and
/// directory, and exits; it is reaped here. Holds two pipes and the shim's
/// process.
#[derive(Debug)]
pub struct Prepared {
    shim: Option<Spawned>,
    /// The config it was prepared with.
    pub config: ContainerConfig,
    pub shim_pid: i32,
    pub pid: i32,
    /// The shim's start time (its identity, with its pid): the adopted
    /// container's report says the same.
    pub shim_start_time: u64,
}

/// A pooled container whose adopter's config was handed over: its workload
/// is being started (see [`HandedOver::wait`]).
#[derive(Debug)]
pub struct HandedOver {
    shim: Spawned,
}

impl HandedOver {
    /// Waits for the workload's start, as [`start`] reports it (the
    /// processes are the pooled ones: [`Prepared`]'s `pid` and `shim_pid`).
    /// A Failed report: the shim has cleaned up and exited. The report is
    /// read on the async runtime as it comes; only the end of a start that
    /// failed (reaping the shim) runs on the blocking pool.
    pub async fn wait(self) -> Result<StartReport, LaunchError> {
        let Spawned {
            mut child,
            stdin,
            stdout,
            write_res,
        } = self.shim;
        let mut line = Vec::with_capacity(256);
        let read_res = read_report(stdout, &mut line).await;
        if read_res.is_ok()
            && let Ok(report @ StartReport::Started { .. }) = serde_json::from_slice(&line)
        {
            return Ok(report);
        }
        tokio::task::spawn_blocking(move || {
            let report = judge(&mut child, &write_res, read_res, &line)?;
            finish(&mut child, stdin, report)
        })
        .await
        .unwrap_or_else(|e| Err(LaunchError::Protocol(format!("ending the start: {e}"))))
    }
}

/// Reads the next report line from a shim's `stdout` into `line`, on the
/// async runtime (the pipe is made non-blocking), at most [`MAX_REPORT`]
/// bytes of it.
async fn read_report(stdout: BufReader<ChildStdout>, line: &mut Vec<u8>) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    // What the blocking reader took ahead of the prepared report (nothing,
    // from a shim that keeps to its protocol) comes first.
    let ahead = std::io::Cursor::new(stdout.buffer().to_vec());
    let pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(stdout.into_inner()))?;
    let mut r = tokio::io::BufReader::new(AsyncReadExt::chain(ahead, pipe).take(MAX_REPORT));
    r.read_until(b'\n', line).await.map(drop)
}

/// Writes `frame` to a pooled shim's stdin without waiting: the pipe is
/// made non-blocking (the shim waits on it, so it is empty, and a config
/// fits in it). Should it fill all the same, the rest is written on the
/// blocking pool. `fd` (the pipe, or a copy of it) is closed after.
async fn write_frame(fd: OwnedFd, frame: Vec<u8>) -> std::io::Result<()> {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    let flags = fcntl_getfl(&fd)?;
    fcntl_setfl(&fd, flags | OFlags::NONBLOCK)?;
    let mut off = 0;
    while off < frame.len() {
        match rustix::io::write(&fd, &frame[off..]) {
            Ok(n) => off += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                fcntl_setfl(&fd, flags)?;
                return tokio::task::spawn_blocking(move || {
                    std::fs::File::from(fd).write_all(&frame[off..])
                })
                .await
                .map_err(std::io::Error::other)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// What came of [`prepare`]: a container in the pool, or why not.
#[derive(Debug)]
pub enum PrepareOutcome {
    Ready(Box<Prepared>),
    Failed { exit_code: i32, message: String },
}

/// Spawns a shim for a pooled container (`config.pooled` is set here) and
/// waits until it is prepared.
pub fn prepare(shim: &Path, config: &ContainerConfig) -> Result<PrepareOutcome, LaunchError> {
    let config = ContainerConfig {
        pooled: true,
        volatile_rootfs: false,
        ..config.clone()
    };
    let mut s = spawn(shim, &config, true, None)?;
    match s.report()? {
        StartReport::Prepared {
            shim_pid,
            pid,
            shim_start_time,
        } => Ok(PrepareOutcome::Ready(Box::new(Prepared {
            shim: Some(s),
            config,
            shim_pid,
            pid,
            shim_start_time,
        }))),
        r @ StartReport::Failed { .. } => match s.finish(r)? {
            StartReport::Failed { exit_code, message } => {
                Ok(PrepareOutcome::Failed { exit_code, message })
            }
            other => Err(LaunchError::Protocol(format!(
                "unexpected report {other:?}"
            ))),
        },
        StartReport::Started { .. } => {
            let _ = s.child.kill();
            let _ = s.child.wait();
            Err(LaunchError::Protocol(
                "the shim started a container it was asked to prepare".into(),
            ))
        }
    }
}

impl Prepared {
    /// Hands the container over to the config `encoded` (checked by the
    /// shim to be of the same shape: see [`ContainerConfig::adoptable_by`]),
    /// without waiting for the start ([`HandedOver::wait`]). Err: not handed
    /// over; the pooled container is gone (its shim reaped on the blocking
    /// pool) and nothing of the adopter ran. On the async runtime.
    pub async fn send(
        mut self,
        encoded: Result<Encoded, LaunchError>,
    ) -> Result<HandedOver, LaunchError> {
        let mut s = self.shim.take().expect("a prepared shim");
        let stdin = s.stdin.take();
        let sent = match (encoded.map(|e| e.0), stdin) {
            // Closed right after: the shim reads no more.
            (Ok(frame), Some(w)) => write_frame(w.into(), frame)
                .await
                .map_err(|e| LaunchError::Protocol(format!("handing the config over: {e}"))),
            (Ok(_), None) => Err(LaunchError::Protocol("no stdin".into())),
            (Err(e), stdin) => {
                drop(stdin);
                Err(e)
            }
        };
        if let Err(e) = sent {
            // Not handed over: the pooled container goes.
            let _ = tokio::task::spawn_blocking(move || s.child.wait()).await;
            return Err(e);
        }
        Ok(HandedOver { shim: s })
    }

    /// Hands the container over to `encoded` as [`Prepared::send`] does,
    /// with its gate closed (`encoded` is of a config with
    /// [`ContainerConfig::gated`] set; `config` says its cgroup and
    /// directory, removed should it be abandoned): the shim hands PID 1
    /// the gate with the config, and PID 1 makes the workload's last
    /// settings, then waits at it before its execve. Err: not handed over;
    /// the pooled container is gone (its shim reaped on the blocking pool)
    /// and nothing of the adopter ran. On the async runtime.
    pub async fn send_gated(
        mut self,
        encoded: Encoded,
        config: &ContainerConfig,
    ) -> Result<Gated, LaunchError> {
        let mut s = self.shim.take().expect("a prepared shim");
        // Written through a copy: the pipe stays open, as the gate.
        let sent = match s.stdin.as_ref().map(|w| w.as_fd().try_clone_to_owned()) {
            Some(Ok(w)) => write_frame(w, encoded.0).await,
            Some(Err(e)) => Err(e),
            None => Err(std::io::Error::other("no stdin")),
        };
        if let Err(e) = sent {
            drop(s.stdin.take());
            let _ = tokio::task::spawn_blocking(move || s.child.wait()).await;
            return Err(LaunchError::Protocol(format!(
                "handing the config over: {e}"
            )));
        }
        Ok(Gated {
            shim: Some(s),
            cgroup: config.cgroup.clone(),
            dir: config.dir.clone(),
        })
    }

    /// Ends the pooled container and waits until its shim has cleaned up.
    /// Blocking.
    pub fn discard(mut self) {
        if let Some(mut s) = self.shim.take() {
            drop(s.stdin.take());
            let _ = s.child.wait();
        }
    }

    /// Whether the shim has exited (a pooled container that died).
    pub fn exited(&mut self) -> bool {
        match &mut self.shim {
            Some(s) => !matches!(s.child.try_wait(), Ok(None)),
            None => true,
        }
    }
}

impl Drop for Prepared {
    /// Never blocks (it may run on an async runtime): the shim's stdin is
    /// closed and a thread reaps it once it has cleaned up.
    fn drop(&mut self) {
        if let Some(mut s) = self.shim.take() {
            drop(s.stdin.take());
            if matches!(s.child.try_wait(), Ok(None)) {
                let _ = std::thread::Builder::new()
                    .name("reap-pooled".into())
                    .spawn(move || {
                        let _ = s.child.wait();
                    });
            }
        }
    }
}
