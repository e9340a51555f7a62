//! The workload's user: `--user` resolved in the container's own
//! /etc/passwd and /etc/group — read inside the container's root (after
//! the root switch, or after joining its mount namespace), so no symlink leads
//! out of it; magic links are refused, only regular files are read, at most
//! `passwd::MAX_FILE_BYTES` — and the switch to it.
use super::common::*;
use crate::passwd::{self, Id, UserSpec};
use crate::spec::IdMap;
use nix::errno::Errno;
use std::io::Read;

/// Who the workload runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// HOME unless the environment sets it.
    pub home: String,
}

impl Identity {
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// Reads `path` (absolute, inside the container's root). None when it does
/// not exist. Never through a /proc magic link, never anything but a
/// regular file (a FIFO or a device would block or never end), never more
/// than the bound.
fn read_file(path: &str) -> std::io::Result<Option<Vec<u8>>> {
    use nix::fcntl::{AT_FDCWD, OFlag, OpenHow, ResolveFlag, open, openat2};
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    let how = OpenHow::new()
        .flags(flags)
        .resolve(ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let opened = match openat2(AT_FDCWD, path, how) {
        // Before Linux 5.6: a magic link can only reach a descriptor of our
        // own, which the regular-file check below refuses.
        Err(Errno::ENOSYS) => open(path, flags, nix::sys::stat::Mode::empty()),
        r => r,
    };
    let fd = match opened {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(None),
        Err(Errno::ELOOP) => {
            return Err(std::io::Error::other(
                "a symlink loop, or a link through /proc",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let st = nix::sys::stat::fstat(&fd)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(std::io::Error::other("not a regular file"));
    }
    let too_big =
        || std::io::Error::other(format!("larger than {} MiB", passwd::MAX_FILE_BYTES >> 20));
    if st.st_size as u64 > passwd::MAX_FILE_BYTES {
        return Err(too_big());
    }
    let mut data = Vec::with_capacity(st.st_size.max(0) as usize);
    std::fs::File::from(fd)
        .take(passwd::MAX_FILE_BYTES + 1)
        .read_to_end(&mut data)?;
    if data.len() as u64 > passwd::MAX_FILE_BYTES {
        return Err(too_big());
    }
    Ok(Some(data))
}

/// The container's `path`, for a lookup. A lookup that names nothing in the
/// file (`strict` false: root by default, or numeric ids) does without it
/// when it cannot be read.
fn lookup_file(path: &str, strict: bool) -> SetupResult<Option<Vec<u8>>> {
    match read_file(path) {
        Ok(data) => Ok(data),
        Err(_) if !strict => Ok(None),
        Err(e) => Err(SetupError::new(
            EXIT_SETUP,
            format!("reading the container's {path}: {e}"),
        )),
    }
}

/// Resolves `user` ("UID[:GID]" or "NAME[:GROUP]"; None: root) in the
/// container's files. With a user namespace, the ids must be mapped.
pub fn resolve(user: Option<&str>, idmap: Option<&IdMap>) -> SetupResult<Identity> {
    let spec = match user {
        Some(u) => passwd::parse_spec(u).map_err(|e| SetupError::new(EXIT_SETUP, e.to_string()))?,
        None => UserSpec {
            user: Id::Num(0),
            group: None,
        },
    };
    let passwd_file = lookup_file("/etc/passwd", matches!(spec.user, Id::Name(_)))?;
    let group_file = lookup_file("/etc/group", matches!(spec.group, Some(Id::Name(_))))?;
    let r = passwd::resolve(&spec, passwd_file.as_deref(), group_file.as_deref())
        .map_err(|e| SetupError::new(EXIT_SETUP, e.to_string()))?;
    if let Some(map) = idmap {
        let shown = user.unwrap_or("root");
        let outside = |kind: &str, id: u32| {
            SetupError::new(
                EXIT_SETUP,
                format!(
                    "user {shown}: {kind} {id} is outside the container's user namespace (ids 0 to {})",
                    map.size.saturating_sub(1)
                ),
            )
        };
        if r.uid >= map.size {
            return Err(outside("uid", r.uid));
        }
        if let Some(g) = std::iter::once(r.gid)
            .chain(r.groups.iter().copied())
            .find(|&g| g >= map.size)
        {
            return Err(outside("gid", g));
        }
    }
    let home = r.home.unwrap_or_else(|| {
        if r.uid == 0 {
            "/root".to_owned()
        } else {
            "/".to_owned()
        }
    });
    Ok(Identity {
        uid: r.uid,
        gid: r.gid,
        groups: r.groups,
        home,
    })
}

/// HOME from the user's entry, unless the environment has one.
pub fn set_home(env: &mut Vec<String>, who: &Identity) {
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", who.home));
    }
}

/// Becomes `who`: supplementary groups, then gid, then uid (real, effective
/// and saved). Leaving uid 0 clears the permitted and effective
/// capabilities (the kernel's rule, as in execve).
pub fn switch(who: &Identity) -> SetupResult<()> {
    use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
    let groups: Vec<Gid> = who.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    setgroups(&groups).map_err(setup("setgroups"))?;
    let g = Gid::from_raw(who.gid);
    setresgid(g, g, g).map_err(setup(format!("setresgid {}", who.gid)))?;
    let u = Uid::from_raw(who.uid);
    setresuid(u, u, u).map_err(setup(format!("setresuid {}", who.uid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &std::path::Path) -> &str {
        p.to_str().unwrap()
    }

    #[test]
    fn files_of_the_image_are_read_with_care() {
        let d = tempfile::tempdir().unwrap();
        let ok = d.path().join("passwd");
        std::fs::write(&ok, "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        assert_eq!(
            read_file(path(&ok)).unwrap().unwrap(),
            b"root:x:0:0:root:/root:/bin/sh\n"
        );
        assert_eq!(read_file(path(&d.path().join("missing"))).unwrap(), None);
        // Bounded: one byte over is refused, not truncated.
        let big = d.path().join("big");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(passwd::MAX_FILE_BYTES + 1).unwrap();
        assert_eq!(
            read_file(path(&big)).unwrap_err().to_string(),
            "larger than 4 MiB"
        );
        f.set_len(passwd::MAX_FILE_BYTES).unwrap();
        assert_eq!(
            read_file(path(&big)).unwrap().unwrap().len() as u64,
            passwd::MAX_FILE_BYTES
        );
        // A FIFO would block a reader, a directory is no file: refused, at once.
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        assert_eq!(
            read_file(path(&fifo)).unwrap_err().to_string(),
            "not a regular file"
        );
        assert!(read_file(path(d.path())).is_err());
        // A link through /proc to a descriptor of ours (here: a pipe) is
        // never followed; a plain symlink is.
        let (r, _w) = nix::unistd::pipe().unwrap();
        use std::os::fd::AsRawFd;
        let magic = d.path().join("magic");
        std::os::unix::fs::symlink(format!("/proc/self/fd/{}", r.as_raw_fd()), &magic).unwrap();
        assert!(read_file(path(&magic)).is_err());
        let plain = d.path().join("plain");
        std::os::unix::fs::symlink(&ok, &plain).unwrap();
        assert!(read_file(path(&plain)).unwrap().is_some());
    }
}
