//! Pieces shared by `run` (container PID 1) and `exec`: the final hardening
//! steps before execve, PATH lookup and error reporting.
use crate::capability::Capability;
use crate::sys;
use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use std::ffi::CString;
use std::fmt::Display;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicI32, Ordering};

pub use crate::spec::{DEFAULT_PATH, EXIT_ABANDONED, EXIT_CANNOT_EXEC, EXIT_NOT_FOUND, EXIT_SETUP};

/// A failure before the workload runs: exit code + message.
#[derive(Debug)]
pub struct SetupError {
    pub code: i32,
    pub message: String,
}

impl SetupError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// `ctx: err` as a 125 setup error.
pub fn setup<E: Display>(ctx: impl Display) -> impl FnOnce(E) -> SetupError {
    move |e| SetupError::new(EXIT_SETUP, format!("{ctx}: {e}"))
}

pub type SetupResult<T> = Result<T, SetupError>;

/// In a container's child process: reports `err` on the close-on-exec error
/// pipe as "CODE:MESSAGE" for the shim, and exits with its code.
pub fn report_and_exit(errp_w: &std::os::fd::OwnedFd, err: SetupError) -> ! {
    let msg = format!("{}:{}", err.code, err.message);
    let _ = nix::unistd::write(errp_w, msg.as_bytes());
    sys::exit_now(err.code)
}

/// Sets the parent-death signal (SIGKILL) again: a change of the effective
/// or filesystem ids (entering a user namespace's root, switching to the
/// workload's user) clears it, and a process whose supervisor is gone must
/// go too. Then checks that the parent did not die before it was set:
/// `lifeline` is the write end of a pipe whose read end only the parent
/// holds (POLLERR once nobody can read it).
pub fn rearm_parent_death(lifeline: std::os::fd::BorrowedFd<'_>) -> SetupResult<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(setup("prctl(PR_SET_PDEATHSIG)"))?;
    let mut fds = [PollFd::new(lifeline, PollFlags::POLLOUT)];
    let gone = match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLNVAL)),
        Err(_) => false,
    };
    if gone {
        return Err(SetupError::new(EXIT_SETUP, "the supervisor is gone"));
    }
    Ok(())
}

/// Opens `/proc/PID/ns/NAME` for each of `names`, then checks that `pid` is
/// still a child of the container's supervisor `shim_pid`. The open fds pin
/// the namespaces, so once the check passes they are the container's, never
/// those of a process that reused its pid. Without the supervisor's pid
/// nothing can be checked: refused.
pub fn open_container_namespaces(
    pid: i32,
    shim_pid: Option<i32>,
    names: &[&str],
) -> SetupResult<Vec<std::fs::File>> {
    let gone = || {
        SetupError::new(
            EXIT_SETUP,
            format!("container process {pid} is not running"),
        )
    };
    let shim_pid = match shim_pid {
        Some(shim_pid) if pid > 0 && shim_pid > 0 => shim_pid,
        _ => {
            return Err(SetupError::new(
                EXIT_SETUP,
                "the container's pid and its supervisor's pid are both needed",
            ));
        }
    };
    let mut fds = Vec::with_capacity(names.len());
    for name in names {
        let p = format!("/proc/{pid}/ns/{name}");
        match std::fs::File::open(&p) {
            Ok(f) => fds.push(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(gone()),
            Err(e) => return Err(setup(format!("open {p}"))(e)),
        }
    }
    if crate::proc::parent_pid(pid) != Some(shim_pid) {
        return Err(gone());
    }
    Ok(fds)
}

/// The workload's limits: `limits` exactly, and RLIMIT_NOFILE soft = hard =
/// min(1048576, current hard) unless `limits` sets it. Hard limits above
/// the current ones need CAP_SYS_RESOURCE in the host's user namespace: the
/// shim raises its own first (`rlimit::raise_hard_limits`), so a child in a
/// user namespace can set them.
pub fn set_rlimits(limits: &[crate::spec::Rlimit]) -> SetupResult<()> {
    if !limits
        .iter()
        .any(|l| crate::rlimit::resource(&l.resource) == Some(Resource::RLIMIT_NOFILE))
        && let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
    {
        let v = hard.min(1 << 20);
        let _ = setrlimit(Resource::RLIMIT_NOFILE, v, v);
    }
    crate::rlimit::apply(limits).map_err(|e| SetupError::new(EXIT_SETUP, e.to_string()))
}

/// The same error as nix's, so messages read as they always did.
fn errno(e: rustix::io::Errno) -> Errno {
    Errno::from_raw(e.raw_os_error())
}

/// The capabilities `caps` names (numbers; None: docker's default set).
fn capability_set(caps: Option<&[u8]>) -> rustix::thread::CapabilitySet {
    use rustix::thread::CapabilitySet;
    match caps {
        Some(nums) => nums.iter().fold(CapabilitySet::empty(), |set, &n| {
            set | CapabilitySet::from_bits_retain(1u64.checked_shl(u32::from(n)).unwrap_or(0))
        }),
        None => Capability::set_of(&Capability::DEFAULT),
    }
}

/// The bounding set reduced to `caps` (numbers; None: docker's default
/// set). The first of `drop_privileges`' steps; a pooled container takes it
/// while it waits (its adopter's capabilities are the pooled ones: they are
/// part of its shape).
pub fn limit_bounding_set(caps: Option<&[u8]>) -> SetupResult<()> {
    use rustix::io::Errno as E;
    use rustix::thread::{CapabilitySet, remove_capability_from_bounding_set};
    let keep = capability_set(caps);
    // Every bit, not only the capabilities named here: a newer kernel may
    // know more. Each is dropped without asking first whether it is in
    // the set (one call each, not two: dropping one that is not is a
    // no-op), until the kernel says there is no such capability.
    for cap in 0..64u32 {
        let bit = CapabilitySet::from_bits_retain(1 << cap);
        if keep.contains(bit) {
            continue;
        }
        match remove_capability_from_bounding_set(bit) {
            Ok(()) => {}
            // Past the last capability the kernel knows.
            Err(E::INVAL) => break,
            Err(e) => {
                return Err(setup(format!(
                    "dropping capability {cap} from the bounding set"
                ))(errno(e)));
            }
        }
    }
    Ok(())
}

/// The last steps before execve, as docker does them: no_new_privs; the
/// bounding set reduced to `caps` (numbers; None: docker's default set),
/// unless `bounded` says it already is; no ambient capabilities; the switch
/// to `who`; then, for root, `caps` as its effective and permitted sets,
/// and for any other user none at all (capabilities stay in the bounding
/// set only). The inheritable set is always empty (CVE-2022-24769).
pub fn drop_privileges(
    caps: Option<&[u8]>,
    who: &super::user::Identity,
    bounded: bool,
) -> SetupResult<()> {
    use rustix::io::Errno as E;
    use rustix::thread::{
        CapabilitySet, CapabilitySets, capabilities, clear_ambient_capability_set, set_capabilities,
    };
    nix::sys::prctl::set_no_new_privs().map_err(setup("prctl(PR_SET_NO_NEW_PRIVS)"))?;
    if !bounded {
        limit_bounding_set(caps)?;
    }
    let keep = capability_set(caps);
    // Ambient capabilities may not be supported (old kernels): ignore EINVAL.
    match clear_ambient_capability_set() {
        Ok(()) | Err(E::INVAL) => {}
        Err(e) => return Err(setup("clearing ambient capabilities")(errno(e))),
    }
    super::user::switch(who)?;
    // Only keep what we actually have (capset cannot add to permitted).
    let have = capabilities(None)
        .map_err(|e| setup("capget")(errno(e)))?
        .permitted;
    let caps = if who.is_root() {
        keep & have
    } else {
        CapabilitySet::empty()
    };
    set_capabilities(
        None,
        CapabilitySets {
            effective: caps,
            permitted: caps,
            inheritable: CapabilitySet::empty(),
        },
    )
    .map_err(|e| setup("capset")(errno(e)))
}

/// The compiled seccomp filter of a config, decoded (125 if damaged).
pub fn seccomp_program(
    filter: Option<&crate::spec::SeccompFilter>,
) -> SetupResult<crate::seccomp::Program> {
    crate::seccomp::Program::decode(filter).map_err(|e| SetupError::new(EXIT_SETUP, e.to_string()))
}

/// The serial of the session keyring the fork server made for itself when
/// it started (0: none), which every shim it forks inherits: one empty
/// keyring, the engine's, never the daemon's (the host's).
static ENGINE_KEYRING: AtomicI32 = AtomicI32::new(0);

/// In the fork server, at its start: a session keyring of its own, for the
/// shims it forks to inherit (see `session_keyring`).
pub fn make_engine_keyring() -> std::io::Result<()> {
    let serial = sys::join_new_session_keyring()?;
    ENGINE_KEYRING.store(serial, Ordering::Relaxed);
    Ok(())
}

/// The session keyring of a container's (or an exec'd command's) process,
/// never the daemon's (the host's). One whose seccomp filter refuses every
/// keyring call (the default profile does, without CAP_SYS_ADMIN) keeps
/// the engine's, inherited from the fork server: it can neither read nor
/// add a key, so a keyring of its own would isolate nothing. Any other,
/// and any process of a shim executed directly (exec helpers, and shims
/// when no fork server can be had), whose keyring is the daemon's, joins a
/// new one. A keyring per container cost the host more than its memory:
/// each one that goes makes the kernel's key collector walk every key on
/// the host, thousands with thousands of containers.
pub fn session_keyring(filter: Option<&crate::spec::SeccompFilter>) -> SetupResult<()> {
    let refused = filter.is_some_and(|f| f.keyring_refused);
    if refused && ENGINE_KEYRING.load(Ordering::Relaxed) != 0 {
        return Ok(());
    }
    sys::join_new_session_keyring()
        .map(drop)
        .map_err(setup("new session keyring"))
}

/// Installs the seccomp filter: the last step before execve, after
/// no_new_privs and the capabilities.
pub fn install_seccomp(program: &crate::seccomp::Program) -> SetupResult<()> {
    program
        .install()
        .map_err(|e| SetupError::new(EXIT_SETUP, e.to_string()))
}

/// Finds the executable for argv[0]: as given if it contains a slash,
/// otherwise the first executable regular file in PATH (from `env`).
pub fn resolve(argv0: &str, env: &[String]) -> SetupResult<CString> {
    if argv0.is_empty() {
        return Err(SetupError::new(EXIT_NOT_FOUND, "exec: empty command"));
    }
    if argv0.contains('/') {
        return cstring(argv0);
    }
    let path = env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let mut not_executable = None;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = format!("{}/{argv0}", dir.trim_end_matches('/'));
        match std::fs::metadata(&cand) {
            Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => {
                return cstring(&cand);
            }
            Ok(meta) if meta.is_file() => {
                not_executable.get_or_insert(cand);
            }
            _ => {}
        }
    }
    if not_executable.is_some() {
        return Err(SetupError::new(
            EXIT_CANNOT_EXEC,
            format!("exec {argv0:?}: permission denied"),
        ));
    }
    Err(SetupError::new(
        EXIT_NOT_FOUND,
        format!("exec {argv0:?}: executable file not found in $PATH"),
    ))
}

pub fn cstring(s: &str) -> SetupResult<CString> {
    CString::new(s).map_err(|_| SetupError::new(EXIT_SETUP, format!("{s:?} contains a NUL byte")))
}

pub fn cstrings(v: &[String]) -> SetupResult<Vec<CString>> {
    v.iter().map(|s| cstring(s)).collect()
}

/// execve; only returns on failure, with the error classified.
pub fn execve(path: &CString, argv: &[CString], env: &[CString], argv0: &str) -> SetupError {
    let e = match nix::unistd::execve(path, argv, env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    let code = match e {
        Errno::ENOENT | Errno::ENOTDIR => EXIT_NOT_FOUND,
        Errno::EACCES | Errno::ENOEXEC | Errno::EISDIR | Errno::EPERM | Errno::ETXTBSY => {
            EXIT_CANNOT_EXEC
        }
        _ => EXIT_SETUP,
    };
    let is_dir = || {
        std::fs::metadata(std::ffi::OsStr::from_bytes(path.as_bytes()))
            .map(|m| m.is_dir())
            .unwrap_or(false)
    };
    let what = match e {
        Errno::ENOENT => "no such file or directory".to_string(),
        Errno::EISDIR => "is a directory".to_string(),
        Errno::EACCES if is_dir() => "is a directory".to_string(),
        other => other.desc().to_lowercase(),
    };
    SetupError::new(code, format!("exec {argv0:?}: {what}"))
}

/// Common prologue of a process about to become the workload: default signal
/// dispositions and an empty signal mask.
pub fn reset_signals() {
    sys::reset_signal_dispositions();
    unblock_signals();
}

/// Every signal blocked (but SIGKILL and SIGSTOP, which cannot be).
pub fn block_signals() {
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&nix::sys::signal::SigSet::all()),
        None,
    );
}

/// The second half of `reset_signals`: no signal blocked.
pub fn unblock_signals() {
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// mount(2), failing with "mount SOURCE on TARGET: errno".
pub fn mnt<S: AsRef<std::ffi::OsStr> + ?Sized>(
    src: Option<&S>,
    target: &std::path::Path,
    fstype: Option<&str>,
    flags: nix::mount::MsFlags,
    data: Option<&str>,
) -> SetupResult<()> {
    let src = src.map(|s| s.as_ref());
    let what = fstype
        .map(str::to_owned)
        .or_else(|| src.map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "-".into());
    nix::mount::mount(src, target, fstype, flags, data)
        .map_err(setup(format!("mount {what} on {}", target.display())))
}

/// Remounts the bind mount at `target` read-only, adding `flags`
/// (MS_NOSUID, ...). Only that mount: not the mounts below it.
pub fn remount_read_only(target: &std::path::Path, flags: nix::mount::MsFlags) -> SetupResult<()> {
    use nix::mount::MsFlags;
    mnt(
        None::<&str>,
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags,
        None,
    )
}

/// Bind mounts `src` (with the mounts below it) on `target`, read-only.
pub fn bind_read_only(
    src: &std::path::Path,
    target: &std::path::Path,
    flags: nix::mount::MsFlags,
) -> SetupResult<()> {
    use nix::mount::MsFlags;
    mnt(
        Some(src),
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    remount_read_only(target, flags)
}

pub use crate::layer::overlay_escape;

/// Removes the mark overlayfs leaves in a work directory it mounted
/// `volatile` (DIR/work/work/incompat/volatile/dirty), for which it
/// refuses any later mount of the layer (it may have lost writes in a
/// crash).
/// Only a `--rm` container's layer is mounted so, and nothing of it is
/// kept past its container; it may be mounted again before it goes: a
/// start requeued after quiltd died during the first, a start or a copy
/// between its exit and its removal. Opened from DIR/work without
/// following links (the directory is quilt's; the container never sees
/// it).
pub fn clear_volatile_mark(dir: &std::path::Path) -> SetupResult<()> {
    use rustix::fs::{AtFlags, CWD, Mode, OFlags, openat, unlinkat};
    use rustix::io::Errno;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let err = |e: Errno| setup("clearing the volatile mark of the layer")(std::io::Error::from(e));
    let gone = |r: Result<(), Errno>| match r {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(err(e)),
    };
    let open_in = |at: std::os::fd::BorrowedFd<'_>, name: &std::path::Path| match openat(
        at,
        name,
        flags,
        Mode::empty(),
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(err(e)),
    };
    use std::os::fd::AsFd;
    let Some(work) = open_in(CWD, &dir.join("work"))? else {
        return Ok(());
    };
    let Some(inner) = open_in(work.as_fd(), std::path::Path::new("work"))? else {
        return Ok(());
    };
    let Some(incompat) = open_in(inner.as_fd(), std::path::Path::new("incompat"))? else {
        return Ok(());
    };
    if let Some(volatile) = open_in(incompat.as_fd(), std::path::Path::new("volatile"))? {
        gone(match unlinkat(&volatile, "dirty", AtFlags::REMOVEDIR) {
            Err(Errno::NOTDIR) => unlinkat(&volatile, "dirty", AtFlags::empty()),
            r => r,
        })?;
    }
    gone(unlinkat(&incompat, "volatile", AtFlags::REMOVEDIR))?;
    gone(unlinkat(&inner, "incompat", AtFlags::REMOVEDIR))
}

/// The overlayfs options of a container's rootfs: the image as the lower
/// layer, the container's DIR/upper and DIR/work (',' ':' '\\' escaped),
/// and `volatile` (see `ContainerConfig::volatile_rootfs`).
pub fn overlay_options(lower: &std::path::Path, dir: &std::path::Path, volatile: bool) -> String {
    format!(
        "lowerdir={},upperdir={},workdir={}{}",
        overlay_escape(lower),
        overlay_escape(&dir.join("upper")),
        overlay_escape(&dir.join("work")),
        if volatile { ",volatile" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root (mounts), as the shim does: fails without it.
    #[test]
    fn a_volatile_layer_mounts_again_once_its_mark_is_cleared() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (it mounts overlays)"
        );
        let t = tempfile::tempdir().unwrap();
        let (lower, dir) = (t.path().join("lower"), t.path().join("c"));
        for d in [
            &lower,
            &dir.join("upper"),
            &dir.join("work"),
            &dir.join("rootfs"),
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        let target = dir.join("rootfs");
        let mount = |volatile| {
            let opts = overlay_options(&lower, &dir, volatile);
            nix::mount::mount(
                Some("overlay"),
                &target,
                Some("overlay"),
                nix::mount::MsFlags::empty(),
                Some(opts.as_str()),
            )
        };
        let umount = || nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH).unwrap();
        // Nothing to clear on a layer never mounted.
        clear_volatile_mark(&dir).unwrap();
        mount(true).expect("a volatile overlay");
        umount();
        let mark = dir.join("work/work/incompat/volatile");
        assert!(mark.is_dir(), "overlayfs left no mark");
        // The kernel refuses the layer while the mark is there.
        assert!(mount(true).is_err() && mount(false).is_err());
        clear_volatile_mark(&dir).unwrap();
        assert!(!mark.exists() && !dir.join("work/work/incompat").exists());
        mount(true).expect("mounted again");
        umount();
        clear_volatile_mark(&dir).unwrap();
        mount(false).expect("mounted again, not volatile");
        umount();
        // A link in the way is not followed.
        let work = dir.join("work");
        std::fs::remove_dir_all(&work).unwrap();
        std::os::unix::fs::symlink(t.path(), &work).unwrap();
        assert!(clear_volatile_mark(&dir).is_err());
    }
}
