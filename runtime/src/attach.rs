//! The attach socket of a container whose workload has a terminal or an
//! open stdin (`-t`, `-i`): `quilt-shim run` listens on `attach.sock` in the
//! container's directory for as long as the workload runs, so that clients
//! (through the daemon, which may restart meanwhile) can type into it.
//!
//! A client sends frames of [`crate::execproto`]: `Stdin` (bytes for the
//! workload), `Resize` (the terminal's rows and columns) and `CloseStdin`
//! (end of input: the stdin pipe is closed, or ^D is typed on a terminal).
//! The shim sends nothing back: the output is the container's log.
//! A client that goes away without `CloseStdin` detaches and leaves the
//! workload's stdin open.
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The socket's name in the container's directory.
pub const SOCKET_NAME: &str = "attach.sock";

/// Opens a container's directory (not through a symlink) to reach its
/// socket by [`socket_path`].
pub fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// The socket's path through the open directory `dir`: short enough for a
/// socket address however long the data directory's path is.
pub fn socket_path(dir: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/{SOCKET_NAME}", dir.as_raw_fd()))
}
