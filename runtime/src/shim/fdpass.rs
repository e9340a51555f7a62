//! Descriptors between the shim and the container's first process over a
//! seqpacket socket: one message is a one-byte tag and at most one
//! descriptor (SCM_RIGHTS). Received descriptors are close-on-exec.
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Sends `tag`, with `fd` when given.
pub fn send(sock: &OwnedFd, tag: u8, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let one;
    if let Some(fd) = fd {
        one = [fd];
        control.push(SendAncillaryMessage::ScmRights(&one));
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
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
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
