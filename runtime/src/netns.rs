//! Network namespaces kept alive by a bind mount of their nsfs file (as
//! `ip netns` does), so that they outlive the threads and processes that
//! made or used them. The calls that switch namespaces act on the calling
//! *thread* only: the daemon makes them on a dedicated thread of its own,
//! never on a tokio worker, and never forks for them.
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

/// Moves the calling thread into a new, empty network namespace (loopback
/// only, down) and binds that namespace to `path`, a new empty file made
/// here (an existing file is refused). On failure nothing is left at `path`.
pub fn create_bound(path: &Path) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    let made = nix::sched::unshare(CloneFlags::CLONE_NEWNET)
        .map_err(io::Error::from)
        .and_then(|()| {
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(io::Error::from)
        });
    if let Err(e) = made {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(())
}

/// Opens a bound namespace (or `/proc/self/ns/net`) for `enter`.
pub fn open(path: &Path) -> io::Result<File> {
    File::open(path)
}

/// Moves the calling thread into the network namespace `ns` (a file of
/// `open`); refuses a file that is not a network namespace.
pub fn enter(ns: &File) -> io::Result<()> {
    nix::sched::setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// Whether `path` is a bound network namespace (an nsfs mount that is a
/// network namespace), checked without entering it.
pub fn is_bound(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    // An nsfs file has its own device; an unmounted placeholder is a plain
    // empty file of the data dir's file system.
    match (
        std::fs::metadata(path),
        path.parent().map(std::fs::metadata),
    ) {
        (Ok(f), Some(Ok(d))) => f.dev() != d.dev(),
        _ => false,
    }
}

/// Unbinds and removes `path`; the namespace goes once nothing else holds
/// it. Missing files and placeholders that were never bound are fine.
pub fn remove_bound(path: &Path) -> io::Result<()> {
    match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes a sysctl of the calling thread's network namespace, e.g.
/// `net/ipv4/ip_forward` (files under /proc/sys/net are those of the
/// namespace of the thread that opens them).
pub fn write_sysctl(key: &str, value: &str) -> io::Result<()> {
    if key
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad sysctl"));
    }
    std::fs::write(Path::new("/proc/sys").join(key), value)
}

/// Reads a sysctl of the calling thread's network namespace.
pub fn read_sysctl(key: &str) -> io::Result<String> {
    if key
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad sysctl"));
    }
    Ok(std::fs::read_to_string(Path::new("/proc/sys").join(key))?
        .trim()
        .to_owned())
}
