//! A real PostgreSQL server for tests: Debian's binaries, a fresh cluster in
//! a temporary directory, TCP on 127.0.0.1, removed when dropped.
//!
//! - Binaries: `$QUILT_PG_BIN` (a bin directory) or the highest major under
//!   `/usr/lib/postgresql/<major>/bin` (Debian's `postgresql` package; see
//!   scripts/deps.sh). No reliance on `/usr/bin` wrappers or symlinks.
//! - PostgreSQL refuses to run as root: as root, `initdb` and `postgres` run
//!   as the `postgres` system user (through `setpriv`), and the temporary
//!   directory is handed to that user.
//! - Cleanup is [`Drop`]'s: a fast shutdown, then SIGKILL, then the
//!   directory is removed. A test process killed outright (SIGKILL) leaves
//!   the server running: `setpriv --pdeathsig` would not help, because the
//!   death signal follows the *thread* that spawned the child, and test
//!   threads exit long before the process does.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User, geteuid};

use crate::host::{all_pids, kill_all, pid_alive, proc_refers_to};
use crate::retry;

/// The environment variable naming a PostgreSQL bin directory to use
/// instead of Debian's `/usr/lib/postgresql/<major>/bin`.
pub const PG_BIN_ENV: &str = "QUILT_PG_BIN";

/// The database role every cluster is made with (`initdb -U`), trusted
/// without a password.
pub const PG_USER: &str = "quilt";

/// The system user PostgreSQL runs as when the tests run as root.
const PG_SYSTEM_USER: &str = "postgres";

/// How long `start` and `restart` wait for the server to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a fast shutdown may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Fresh ports tried when the chosen one is taken meanwhile.
const PORT_TRIES: usize = 5;

/// A running PostgreSQL server (see the module docs).
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    /// Holds the cluster (`data/`), the Unix socket and `postgres.log`.
    dir: Option<tempfile::TempDir>,
    port: u16,
    /// The uid/gid to run the server as, when we are root.
    run_as: Option<User>,
    settings: Vec<(String, String)>,
    /// The postmaster, None after `kill`.
    child: Option<Child>,
}

impl Postgres {
    /// `initdb` a fresh cluster and start it with the default settings
    /// (fsync on, `max_connections=200`). Err with a clear message when
    /// PostgreSQL is not installed or does not come up.
    pub fn start() -> io::Result<Postgres> {
        Postgres::start_with(&[])
    }

    /// Like [`start`](Self::start), with extra server settings
    /// (`-c name=value`), e.g. `&[("fsync", "off")]`.
    pub fn start_with(settings: &[(&str, &str)]) -> io::Result<Postgres> {
        for (name, _) in settings {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            {
                return Err(invalid(format!("bad PostgreSQL setting name {name:?}")));
            }
        }
        let bin = find_bin()?;
        let run_as = if geteuid().is_root() {
            Some(
                User::from_name(PG_SYSTEM_USER)
                    .map_err(io::Error::other)?
                    .ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::NotFound,
                            format!(
                                "running as root, PostgreSQL needs the `{PG_SYSTEM_USER}` system \
                                 user (made by Debian's postgresql-common package)"
                            ),
                        )
                    })?,
            )
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("quilt-pg-")
            .tempdir_in(temp_parent(run_as.is_some()))?;
        if let Some(u) = &run_as {
            std::os::unix::fs::chown(dir.path(), Some(u.uid.as_raw()), Some(u.gid.as_raw()))?;
        }
        let mut pg = Postgres {
            bin,
            dir: Some(dir),
            port: 0,
            run_as,
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
        };
        pg.initdb()?;
        let mut last = None;
        for _ in 0..PORT_TRIES {
            pg.port = free_port()?;
            match pg.spawn_and_wait() {
                Ok(()) => return Ok(pg),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free port")))
    }

    /// `postgres://quilt@127.0.0.1:PORT/DB`. `db` is put in as it is: use
    /// names of letters, digits and `_`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{PG_USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// `CREATE DATABASE name` through psql; returns `url(name)`. Names are
    /// 1 to 63 ASCII letters, digits or `_`.
    pub fn create_database(&self, name: &str) -> io::Result<String> {
        if name.is_empty()
            || name.len() > 63
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(invalid(format!(
                "bad database name {name:?}: use 1 to 63 ASCII letters, digits or _"
            )));
        }
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.url(name))
    }

    /// Runs `sql` with psql (`-X -A -t -v ON_ERROR_STOP=1`) against `db`;
    /// returns its standard output, Err with psql's messages on failure.
    pub fn psql(&self, db: &str, sql: &str) -> io::Result<String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url(db))
            .args(["-c", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| with_context(e, "cannot run psql"))?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "psql {sql:?} on {}: {}: {}",
                self.url(db),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// SIGKILLs the postmaster and every backend at once, as in a crash
    /// (no shutdown checkpoint), and waits until they are all gone. Does
    /// nothing if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.kill_leftovers();
    }

    /// Starts the server again on the same cluster and port after
    /// [`kill`](Self::kill) (crash recovery runs first). Err if it is
    /// running, or does not come up.
    pub fn restart(&mut self) -> io::Result<()> {
        if self.child.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "PostgreSQL is still running: kill() it first",
            ));
        }
        self.spawn_and_wait()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary directory holding the cluster (`data/`), the Unix
    /// socket and the server log (`postgres.log`).
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    /// The postmaster's pid, None after `kill`.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Live processes (other than us) using the temporary directory: the
    /// postmaster and its backends, found by their working directory.
    pub fn processes(&self) -> Vec<i32> {
        processes_in(self.dir())
    }

    /// The last lines of the server log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path(), 0)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir().join("postgres.log")
    }

    /// A command for a server program, run as `postgres` when we are root.
    fn server_command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(_) => {
                let mut c = Command::new("setpriv");
                c.args([
                    "--reuid",
                    PG_SYSTEM_USER,
                    "--regid",
                    PG_SYSTEM_USER,
                    "--init-groups",
                    "--",
                ])
                .arg(path);
                c
            }
            None => Command::new(path),
        };
        // The caller's working directory may be closed to `postgres`.
        cmd.current_dir(self.dir()).stdin(Stdio::null());
        cmd
    }

    fn initdb(&self) -> io::Result<()> {
        let out = self
            .server_command("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                PG_USER,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg("-D")
            .arg(self.data_dir())
            .output()
            .map_err(|e| with_context(e, "cannot run initdb (setpriv from util-linux as root)"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "initdb failed ({}): {}",
                out.status,
                output_text(&out)
            )))
        }
    }

    /// Spawns the postmaster on `self.port` and waits until it accepts
    /// connections. Err(AddrInUse) if the port was taken.
    fn spawn_and_wait(&mut self) -> io::Result<()> {
        let log_path = self.log_path();
        let log = File::options().create(true).append(true).open(&log_path)?;
        let from = log.metadata()?.len();
        let mut cmd = self.server_command("postgres");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(self.dir())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
            ]);
        for (k, v) in &self.settings {
            cmd.arg("-c").arg(format!("{k}={v}"));
        }
        let child = cmd
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| with_context(e, "cannot start postgres"))?;
        self.child = Some(child);
        let started = Instant::now();
        let ready = retry(READY_TIMEOUT, || {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                return Some(Err(status));
            }
            self.accepts().then_some(Ok(()))
        });
        let failure = match ready {
            Some(Ok(())) => return Ok(()),
            Some(Err(status)) => format!("postgres exited ({status})"),
            None => format!(
                "postgres did not accept connections within {:?}",
                started.elapsed()
            ),
        };
        self.kill();
        let tail = log_tail(&log_path, from);
        let kind = if tail.contains("Address already in use") {
            io::ErrorKind::AddrInUse
        } else {
            io::ErrorKind::Other
        };
        Err(io::Error::new(
            kind,
            format!(
                "{failure} on 127.0.0.1:{} ({}); server log:\n{tail}",
                self.port,
                self.data_dir().display()
            ),
        ))
    }

    /// True once our postmaster says it is ready (its `postmaster.pid`:
    /// so a server another fixture started on the same port meanwhile is
    /// not taken for ours), answers on TCP, and `pg_isready` says it
    /// accepts connections (not just that it is starting up).
    fn accepts(&self) -> bool {
        let pid_file =
            fs::read_to_string(self.data_dir().join("postmaster.pid")).unwrap_or_default();
        let lines: Vec<&str> = pid_file.lines().map(str::trim).collect();
        let ours = self
            .pid()
            .is_some_and(|p| lines.first() == Some(&p.to_string().as_str()))
            && lines.get(3) == Some(&self.port.to_string().as_str())
            && lines.last() == Some(&"ready");
        if !ours {
            return false;
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err() {
            return false;
        }
        Command::new(self.bin.join("pg_isready"))
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-t",
                "2",
                "-U",
                PG_USER,
                "-d",
                "postgres",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// SIGKILLs whatever still runs in the directory (backends outliving
    /// their postmaster) and waits for it to be gone.
    fn kill_leftovers(&self) {
        if self.dir.is_none() {
            return;
        }
        let dir = self.dir().to_path_buf();
        retry(STOP_TIMEOUT, || {
            let left = processes_in(&dir);
            kill_all(left.iter().copied());
            left.is_empty().then_some(())
        });
    }

    /// Fast shutdown (SIGINT), then SIGKILL if it takes too long.
    fn stop(&mut self) {
        if let Some(child) = &mut self.child {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
            }
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                if !matches!(child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.kill();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if let Err(e) = dir.close() {
                eprintln!("cannot remove {}: {e}", path.display());
            }
        }
    }
}

/// `$QUILT_PG_BIN`, or the highest `/usr/lib/postgresql/<major>/bin` with
/// a `postgres` in it.
fn find_bin() -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(PG_BIN_ENV) {
        let dir = PathBuf::from(dir);
        if !dir.join("postgres").is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{PG_BIN_ENV}={} has no `postgres` in it", dir.display()),
            ));
        }
        return Ok(dir);
    }
    let root = Path::new("/usr/lib/postgresql");
    let best = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|major| root.join(format!("{major}/bin/postgres")).is_file())
        .max();
    match best {
        Some(major) => Ok(root.join(format!("{major}/bin"))),
        None => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "PostgreSQL is not installed: no {}/<major>/bin/postgres (install Debian's \
                 `postgresql` package, see scripts/deps.sh, or set {PG_BIN_ENV} to a bin directory)",
                root.display()
            ),
        )),
    }
}

/// Where the temporary directory goes: `$TMPDIR` (or /tmp); as root, /tmp
/// when `$TMPDIR` is not reachable by others (the `postgres` user must
/// traverse every directory above it).
fn temp_parent(as_root: bool) -> PathBuf {
    let tmp = std::env::temp_dir();
    if !as_root || traversable_by_others(&tmp) {
        tmp
    } else {
        PathBuf::from("/tmp")
    }
}

fn traversable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(path) = fs::canonicalize(path) else {
        return false;
    };
    path.ancestors()
        .all(|p| fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> io::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

/// Live processes other than us whose working directory, arguments or open
/// files are in `dir`.
fn processes_in(dir: &Path) -> Vec<i32> {
    if dir.as_os_str().is_empty() {
        return Vec::new();
    }
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    all_pids()
        .into_iter()
        .filter(|&p| p != me && pid_alive(p) && proc_refers_to(p, dir))
        .collect()
}

/// The last 30 lines of the log written since byte `from`.
fn log_tail(path: &Path, from: u64) -> String {
    let mut text = String::new();
    let read = File::open(path).and_then(|mut f| {
        f.seek(SeekFrom::Start(from))?;
        f.read_to_string(&mut text)
    });
    if let Err(e) = read {
        return format!("(cannot read {}: {e})", path.display());
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    for l in &lines[lines.len().saturating_sub(30)..] {
        let _ = writeln!(out, "{l}");
    }
    out
}

fn output_text(out: &Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s.trim().to_string()
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn with_context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_crashes_restarts_and_cleans_up() {
        let t = Instant::now();
        let mut pg = Postgres::start().expect("start PostgreSQL");
        eprintln!("started in {:?} on port {}", t.elapsed(), pg.port());
        let dir = pg.dir().to_path_buf();
        assert!(dir.join("data/PG_VERSION").is_file());

        let url = pg.create_database("quilt_unit").unwrap();
        assert_eq!(
            url,
            format!("postgres://quilt@127.0.0.1:{}/quilt_unit", pg.port())
        );
        assert_eq!(pg.psql("quilt_unit", "SELECT 1").unwrap().trim(), "1");
        // psql by the URL alone, as a client outside the fixture would.
        let out = Command::new(pg.bin.join("psql"))
            .args(["-X", "-A", "-t", "-c", "SELECT current_database()"])
            .arg(&url)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", output_text(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "quilt_unit");
        // fsync stays on unless asked.
        assert_eq!(pg.psql("postgres", "SHOW fsync").unwrap().trim(), "on");
        assert_eq!(
            pg.psql("postgres", "SHOW max_connections").unwrap().trim(),
            "200"
        );
        assert!(pg.create_database("bad\"name").is_err());
        assert!(pg.create_database("quilt_unit").is_err(), "exists already");

        // A committed row survives a crash.
        pg.psql(
            "quilt_unit",
            "CREATE TABLE t (v int); INSERT INTO t VALUES (42)",
        )
        .unwrap();
        // Hold a backend open across the kill.
        let mut idle = Command::new(pg.bin.join("psql"))
            .args(["-X", "-c", "SELECT pg_sleep(60)"])
            .arg(&url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let postmaster = i32::try_from(pg.pid().unwrap()).unwrap();
        assert!(
            retry(Duration::from_secs(10), || (pg.processes().len() >= 3)
                .then_some(()))
            .is_some(),
            "postmaster and its backends: {:?}",
            pg.processes()
        );
        let port = pg.port();
        pg.kill();
        assert!(!pid_alive(postmaster));
        assert!(pg.processes().is_empty(), "{:?}", pg.processes());
        assert!(pg.psql("postgres", "SELECT 1").is_err());
        let _ = idle.wait();

        // The port taken meanwhile: a clear AddrInUse, the server gone.
        let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
        let err = pg.restart().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
        assert!(pg.pid().is_none() && pg.processes().is_empty());
        drop(squatter);

        let t = Instant::now();
        pg.restart().unwrap();
        eprintln!("restarted in {:?}", t.elapsed());
        assert_eq!(pg.port(), port);
        assert_eq!(
            pg.psql("quilt_unit", "SELECT v FROM t").unwrap().trim(),
            "42"
        );
        assert!(pg.restart().is_err(), "already running");

        drop(pg);
        assert!(processes_in(&dir).is_empty(), "{:?}", processes_in(&dir));
        assert!(!pid_alive(postmaster));
        assert!(!dir.exists(), "{} is left", dir.display());
    }

    #[test]
    fn several_at_once() {
        let servers: Vec<Postgres> = std::thread::scope(|s| {
            let started: Vec<_> = (0..3).map(|_| s.spawn(Postgres::start)).collect();
            started
                .into_iter()
                .map(|h| h.join().unwrap().expect("start PostgreSQL"))
                .collect()
        });
        let mut ports: Vec<u16> = servers.iter().map(Postgres::port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 3);
        for pg in &servers {
            // Each URL reaches its own cluster.
            let dir = pg.psql("postgres", "SHOW data_directory").unwrap();
            assert_eq!(dir.trim(), pg.data_dir().to_str().unwrap());
        }
    }

    #[test]
    fn extra_settings_and_bad_names() {
        let pg = Postgres::start_with(&[("fsync", "off")]).expect("start PostgreSQL");
        assert_eq!(pg.psql("postgres", "SHOW fsync").unwrap().trim(), "off");
        let dir = pg.dir().to_path_buf();
        drop(pg);
        assert!(!dir.exists());
        assert!(Postgres::start_with(&[("fsync=off -c x", "y")]).is_err());
        // A server that does not come up: the error carries its log, and
        // nothing is left behind.
        let err = Postgres::start_with(&[("shared_buffers", "bogus")]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("postgres exited"), "{msg}");
        assert!(msg.contains("shared_buffers"), "{msg}");
    }
}
