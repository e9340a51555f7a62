//! Descriptors over a seqpacket socket, between the shim and the
//! container's first process, and between quiltd and the shim fork server
//! (and once over a pooled container's stream socket, after the adopter's
//! config: see `pool::await_adoption`):
//! one message is a one-byte tag and at most `MAX_FDS` descriptors
//! (SCM_RIGHTS). Received descriptors are close-on-exec.
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// The most descriptors one message carries (a container's cgroup
/// membership files: one per v1 hierarchy).
pub const MAX_FDS: usize = 8;

/// Sends `tag`, with `fd` when given.
pub fn send(sock: &OwnedFd, tag: u8, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    send_fds(sock, tag, fd.as_slice())
}

/// Sends `tag` with `fds` (at most `MAX_FDS`).
pub fn send_fds(sock: &OwnedFd, tag: u8, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
    if fds.len() > MAX_FDS {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        control.push(SendAncillaryMessage::ScmRights(fds));
    }
    sendmsg(
        sock,
        &[io::IoSlice::new(&[tag])],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// Receives one message: its tag and the descriptors it carried. None at
/// the end of the socket (the other side closed it). `wait`: block until a
/// message comes; otherwise one that is not there yet is an error.
pub fn receive(sock: &OwnedFd, wait: bool) -> io::Result<Option<(u8, Vec<OwnedFd>)>> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut tag = [0u8; 1];
    let mut flags = RecvFlags::CMSG_CLOEXEC;
    if !wait {
        flags |= RecvFlags::DONTWAIT;
    }
    let msg = loop {
        match recvmsg(
            sock.as_fd(),
            &mut [io::IoSliceMut::new(&mut tag)],
            &mut control,
            flags,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            r => break r?,
        }
    };
    if msg.bytes == 0 {
        return Ok(None);
    }
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = m {
            fds.extend(received);
        }
    }
    Ok(Some((tag[0], fds)))
}
