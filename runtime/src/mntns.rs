//! The mount namespace supervisors start from. A container's mount
//! namespace begins as a copy of its supervisor's (CLONE_NEWNS), and
//! the detach of the host's root then tears that copy down: both walk
//! every mount of it. The daemon's namespace holds one nsfs bind per
//! network namespace (`DATA/netns`), so with N containers every start
//! copied and dropped N mounts. The template is the daemon's namespace
//! without that directory's mounts: a slave of it (mounts made on the host
//! later, say a file system a volume lives on, still appear in it), while
//! `DATA/netns` is a private mount point whose binds propagate nowhere.
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Whether `dir` (an absolute, canonical path) is a mount point of the
/// calling thread's namespace.
pub fn is_mount_point(dir: &Path) -> io::Result<bool> {
    let want = escape(&dir.to_string_lossy());
    let info = std::fs::read_to_string("/proc/thread-self/mountinfo")?;
    Ok(info.lines().any(|l| l.split(' ').nth(4) == Some(&want)))
}

/// A path as mountinfo writes it (space, tab, newline and backslash as
/// octal escapes).
fn escape(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        match c {
            ' ' => out.push_str("\\040"),
            '\t' => out.push_str("\\011"),
            '\n' => out.push_str("\\012"),
            '\\' => out.push_str("\\134"),
            c => out.push(c),
        }
    }
    out
}

/// Makes `dir` a mount point of its own (a bind onto itself that carries
/// the mounts already below it, unless it is one already), private: what
/// is mounted below it from now on propagates into no other namespace.
pub fn private_mount_point(dir: &Path) -> io::Result<()> {
    if !is_mount_point(dir)? {
        // A bind over them would hide mounts already below it (a daemon of
        // an earlier version left its namespaces there): their removal
        // would then unmount only the copy.
        if has_mounts_below(dir)? {
            return Err(io::Error::other(format!(
                "{} has mounts below it and is not a mount point: left as it is until none is left",
                dir.display()
            )));
        }
        nix::mount::mount(
            Some(dir),
            dir,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )?;
    }
    nix::mount::mount(
        None::<&str>,
        dir,
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    Ok(())
}

/// Whether anything is mounted below `dir`.
fn has_mounts_below(dir: &Path) -> io::Result<bool> {
    let info = std::fs::read_to_string("/proc/thread-self/mountinfo")?;
    let below = format!("{}/", escape(&dir.to_string_lossy()));
    Ok(info
        .lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&below))))
}

/// Removes what `private_mount_point` made when nothing is mounted below
/// it any more; true when it did.
pub fn release_mount_point(dir: &Path) -> io::Result<bool> {
    if has_mounts_below(dir)? {
        return Ok(false);
    }
    if !is_mount_point(dir)? {
        return Ok(false);
    }
    nix::mount::umount2(dir, MntFlags::MNT_DETACH)?;
    Ok(true)
}

/// The template (see [`template_without`]) and its shared sysfs.
#[derive(Debug)]
pub struct Template {
    /// The mount namespace, held by this descriptor.
    pub ns: OwnedFd,
    /// Where the template has a read-only sysfs of a network namespace with
    /// nothing but loopback, for containers without a network of their own
    /// to bind (see `shared_sysfs`); why not, when it has none.
    pub sysfs: io::Result<PathBuf>,
}

/// Where the template's shared sysfs is mounted, and the file its network
/// namespace is bound on (see `shared_sysfs`). Both must exist.
#[derive(Debug, Clone)]
pub struct SysfsAt {
    pub dir: PathBuf,
    pub netns_pin: PathBuf,
}

/// The template: a new mount namespace, a copy of the caller's made a
/// slave of it, without the mount at `exclude` (a private mount point, see
/// `private_mount_point`) and what is below it; with a shared sysfs where
/// `sysfs_at` says, when one can be made (the error of preparing its paths
/// is the template's `sysfs`). Made on a thread of its own (the caller's
/// namespaces are untouched) and held by the descriptor.
pub fn template_without(exclude: &Path, sysfs_at: io::Result<SysfsAt>) -> io::Result<Template> {
    let exclude = exclude.to_path_buf();
    std::thread::Builder::new()
        .name("quilt-mntns".into())
        .spawn(move || -> io::Result<Template> {
            // This thread only: its own fs context and mount namespace.
            nix::sched::unshare(CloneFlags::CLONE_NEWNS)?;
            nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_SLAVE,
                None::<&str>,
            )?;
            nix::mount::umount2(&exclude, MntFlags::MNT_DETACH)?;
            let ns = std::fs::File::open("/proc/thread-self/ns/mnt")?;
            // Last: it leaves this thread in a network namespace of its own.
            let sysfs = sysfs_at.and_then(|at| shared_sysfs(&at).map(|()| at.dir));
            Ok(Template {
                ns: ns.into(),
                sysfs,
            })
        })?
        .join()
        .map_err(|_| io::Error::other("the mount namespace thread panicked"))?
}

/// Mounts, at `at.dir` in the calling thread's mount namespace, a
/// read-only sysfs of a new network namespace whose loopback is up; the
/// thread stays in that namespace. A sysfs holds only a passive reference to
/// the namespace it shows, whose loopback would go with the thread: the
/// namespace is bound on `at.netns_pin` in the same mount namespace, so it
/// lives as long as the template (every supervisor that entered it), not
/// just as long as the daemon.
///
/// A container without a network of its own (`--network none`) sees in its
/// sysfs what every other one does, but for `/sys/class/net`, where it
/// finds only a loopback interface. Binding this one instead of mounting
/// its own saves the kernel's search of every sysfs superblock (one per
/// network namespace on the host) that each new sysfs mount makes: a cost
/// that grew with the number of live containers. Its `lo` is not the
/// container's own (its counters are not the container's).
fn shared_sysfs(at: &SysfsAt) -> io::Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNET)?;
    crate::sys::interface_up("lo")?;
    nix::mount::mount(
        Some("/proc/thread-self/ns/net"),
        &at.netns_pin,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )?;
    nix::mount::mount(
        Some("sysfs"),
        &at.dir,
        Some("sysfs"),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )?;
    Ok(())
}

/// Moves the calling process (single-threaded) into the mount namespace
/// `path` names (for a supervisor: `/proc/PID/fd/N` of the daemon's
/// template). Its root and working directory become that namespace's root.
pub fn enter(path: &Path) -> io::Result<()> {
    let f = std::fs::File::open(path)?;
    nix::sched::setns(&f, CloneFlags::CLONE_NEWNS)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_escaped_as_mountinfo_writes_them() {
        assert_eq!(escape("/a b/c\\d"), "/a\\040b/c\\134d");
        assert_eq!(escape("/plain"), "/plain");
    }
}
