//! The mount namespace supervisors start from. A container's mount
//! namespace begins as a copy of its supervisor's (CLONE_NEWNS), and
//! pivot_root's detach of the old root then tears that copy down: both walk
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
    /// to bind (see [`shared_sysfs`]); why not, when it has none.
    pub sysfs: io::Result<PathBuf>,
    /// That network namespace, held for as long as the sysfs is used: a
    /// sysfs holds only a passive reference to the namespace it shows, whose
    /// loopback goes once nothing else holds it.
    pub sysfs_netns: Option<OwnedFd>,
}

/// The template: a new mount namespace, a copy of the caller's made a
/// slave of it, without the mount at `exclude` (a private mount point, see
/// `private_mount_point`) and what is below it; with a shared sysfs at
/// `sysfs_at` (an existing empty directory) when one can be made. Made on
/// a thread of its own (the caller's namespaces are untouched) and held by
/// the descriptor.
pub fn template_without(exclude: &Path, sysfs_at: &Path) -> io::Result<Template> {
    let exclude = exclude.to_path_buf();
    let sysfs_at = sysfs_at.to_path_buf();
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
            let (sysfs, sysfs_netns) = match shared_sysfs(&sysfs_at) {
                Ok(netns) => (Ok(sysfs_at), Some(netns)),
                Err(e) => (Err(e), None),
            };
            Ok(Template {
                ns: ns.into(),
                sysfs,
                sysfs_netns,
            })
        })?
        .join()
        .map_err(|_| io::Error::other("the mount namespace thread panicked"))?
}

/// Mounts, at `dir` in the calling thread's mount namespace, a read-only
/// sysfs of a new network namespace whose loopback is up, and returns that
/// namespace; the thread stays in it.
///
/// A container without a network of its own (`--network none`) sees in its
/// sysfs what every other one does, but for `/sys/class/net`, where it
/// finds only a loopback interface. Binding this one instead of mounting
/// its own saves the kernel's search of every sysfs superblock (one per
/// network namespace on the host) that each new sysfs mount makes: a cost
/// that grew with the number of live containers. Its `lo` is not the
/// container's own (its counters are not the container's).
fn shared_sysfs(dir: &Path) -> io::Result<OwnedFd> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNET)?;
    let netns = std::fs::File::open("/proc/thread-self/ns/net")?;
    crate::sys::interface_up("lo")?;
    nix::mount::mount(
        Some("sysfs"),
        dir,
        Some("sysfs"),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )?;
    Ok(netns.into())
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
