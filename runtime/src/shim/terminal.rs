//! Pseudo-terminals of a container's own devpts: made inside the container
//! (so that `tty` there names a node of its /dev/pts), the master side
//! handed to the supervisor over a socket.
use super::common::*;
use super::exec_io::set_winsize;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use std::os::fd::{AsFd, OwnedFd};

/// Opens a new pty pair on the devpts of the caller's /dev: the master and
/// the slave, both close-on-exec. The slave is reached from the master
/// (TIOCGPTPEER), never by its path: a mount over /dev/pts cannot
/// substitute another file. `rows`/`cols` 0: the default size.
pub fn open_pty(rows: u16, cols: u16) -> SetupResult<(OwnedFd, OwnedFd)> {
    use nix::pty::{grantpt, posix_openpt, unlockpt};
    use rustix::pty::{OpenptFlags, ioctl_tiocgptpeer};
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY).map_err(setup("open /dev/ptmx"))?;
    grantpt(&master).map_err(setup("grantpt"))?;
    unlockpt(&master).map_err(setup("unlockpt"))?;
    let master: OwnedFd = master.into();
    fcntl(&master, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(setup("fcntl"))?;
    if rows > 0 && cols > 0 {
        set_winsize(master.as_fd(), rows, cols).map_err(setup("TIOCSWINSZ"))?;
    }
    let slave = ioctl_tiocgptpeer(
        &master,
        OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
    )
    .map_err(|e| setup("TIOCGPTPEER")(std::io::Error::from(e)))?;
    Ok((master, slave))
}

/// Makes the slave `slave` the controlling terminal of the caller (a
/// session leader without one). It stays close-on-exec: dup it onto the
/// standard streams.
pub fn make_controlling(slave: &OwnedFd) -> SetupResult<()> {
    rustix::process::ioctl_tiocsctty(slave).map_err(|e| setup("TIOCSCTTY")(std::io::Error::from(e)))
}

/// In the container's first process (a session leader, inside its root):
/// a new terminal as its controlling terminal, the master sent on `sock`.
/// Returns the slave.
pub fn open_controlling(sock: &OwnedFd) -> SetupResult<OwnedFd> {
    let (master, slave) = open_pty(0, 0)?;
    make_controlling(&slave)?;
    super::fdpass::send(sock, MASTER, Some(master.as_fd()))
        .map_err(setup("handing the terminal to the shim"))?;
    Ok(slave)
}

/// Tag of the message that carries the master.
const MASTER: u8 = b'T';

/// In the shim, once the workload was exec'd: the master its first process
/// sent (received close-on-exec).
pub fn receive_master(sock: &OwnedFd) -> SetupResult<OwnedFd> {
    let got = super::fdpass::receive(sock, false).map_err(setup("receiving the terminal"))?;
    match got {
        Some((MASTER, mut fds)) if fds.len() == 1 => Ok(fds.remove(0)),
        _ => Err(SetupError::new(
            EXIT_SETUP,
            "the container's first process sent no terminal",
        )),
    }
}
