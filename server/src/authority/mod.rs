//! The Unix socket's client-to-server HTTP/2 byte stream, with every
//! request's `:authority` made one the server accepts. gRPC C-core clients
//! (Python's grpcio among them) send a Unix socket's path percent-encoded as
//! the authority, grpc-java the raw path; h2 resets such a stream as
//! malformed. The wrapper splits the client's bytes into frames: every frame
//! but HEADERS and CONTINUATION passes through untouched (DATA payloads are
//! read straight into the server's buffer); each header block is gathered
//! (bounded), decoded with an HPACK decoder that follows the client's
//! dynamic table (`decode`), and passed on as it came while its authority
//! (if any) is valid. From the first block whose authority is not, every
//! block of the connection is re-encoded (`encode`) with that authority
//! replaced by `localhost`. The server-to-client direction is untouched.
//!
//! Anything a conforming client never sends (a frame over the frame size, a
//! header block interrupted or too large, one that does not decode, a
//! PUSH_PROMISE) closes the connection, as h2 would.
mod decode;
mod encode;
pub mod frame;

use decode::BlockDecoder;
use frame::{CONTINUATION, END_HEADERS, END_STREAM, HEAD_LEN, HEADERS, Head, PUSH_PROMISE};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// Read-ahead: one frame of the largest size with its head always fits.
const READ_AHEAD: usize = HEAD_LEN + frame::MAX_FRAME_SIZE as usize;

/// A client connection whose header blocks are normalised (see the module doc).
#[derive(Debug)]
pub struct Normalised<S> {
    inner: S,
    /// Client bytes read ahead, `ahead[start..end]`.
    ahead: Box<[u8]>,
    start: usize,
    end: usize,
    /// Bytes of the current frame still to pass through as they are.
    pass: usize,
    /// Bytes for the server, `out[out_pos..]`: the preface, header blocks.
    out: Vec<u8>,
    out_pos: usize,
    /// The header block being gathered: its frames as they came.
    block: Vec<u8>,
    /// Its stream and whether its HEADERS frame ended the stream.
    block_stream: Option<(u32, bool)>,
    decoder: BlockDecoder,
    /// A block has been re-encoded: every later one is too.
    rewriting: bool,
    /// The client closed its side.
    eof: bool,
    /// Why the connection is being closed.
    failed: Option<String>,
}

impl<S> Normalised<S> {
    /// Wraps a connection whose client preface has been read and checked;
    /// the server reads it first, as sent.
    pub fn after_preface(inner: S, preface: &[u8]) -> Self {
        Normalised {
            inner,
            ahead: vec![0; READ_AHEAD].into_boxed_slice(),
            start: 0,
            end: 0,
            pass: 0,
            out: preface.to_vec(),
            out_pos: 0,
            block: Vec::new(),
            block_stream: None,
            decoder: BlockDecoder::default(),
            rewriting: false,
            eof: false,
            failed: None,
        }
    }

    /// Takes in the next frame read ahead, if it is all there (a frame
    /// passed through only needs its head). Ok(false): more bytes needed.
    fn next_frame(&mut self) -> Result<bool, String> {
        let Some(head) = self.ahead[self.start..self.end].first_chunk::<HEAD_LEN>() else {
            return Ok(false);
        };
        let head = Head::parse(head);
        if head.len > frame::MAX_FRAME_SIZE as usize {
            return Err(format!("a frame of {} bytes", head.len));
        }
        let in_block = self.block_stream.map(|(s, _)| s);
        match head.kind {
            HEADERS | CONTINUATION => {
                let expected = if head.kind == HEADERS {
                    in_block.is_none() && head.stream != 0
                } else {
                    in_block == Some(head.stream)
                };
                if !expected {
                    return Err("a header block out of sequence".into());
                }
                if self.end - self.start < head.total() {
                    return Ok(false);
                }
                if self.block.len() + head.total() > frame::MAX_BLOCK_BYTES {
                    return Err("a header block over the size limit".into());
                }
                let frame = &self.ahead[self.start..self.start + head.total()];
                self.block.extend_from_slice(frame);
                self.start += head.total();
                if head.kind == HEADERS {
                    self.block_stream = Some((head.stream, head.flags & END_STREAM != 0));
                }
                if head.flags & END_HEADERS != 0 {
                    self.finish_block()?;
                }
            }
            PUSH_PROMISE => return Err("a PUSH_PROMISE from the client".into()),
            _ if in_block.is_some() => return Err("a header block interrupted".into()),
            _ => self.pass = head.total(),
        }
        Ok(true)
    }

    /// A whole header block is in: passed on as it came, or re-encoded.
    fn finish_block(&mut self) -> Result<(), String> {
        let (stream, end_stream) = self
            .block_stream
            .take()
            .ok_or("a header block without HEADERS")?;
        let mut h = self.decoder.decode(&self.block).map_err(|e| e.0)?;
        let bad = h
            .pseudo_mut()
            .authority
            .as_ref()
            .is_some_and(|a| !encode::is_valid_authority(a.as_bytes()));
        if !self.rewriting && !bad {
            self.out.extend_from_slice(&self.block);
        } else {
            if h.is_over_size() {
                return Err("a header list over the size limit".into());
            }
            encode::block(h, stream, end_stream, !self.rewriting, &mut self.out);
            self.rewriting = true;
        }
        self.block.clear();
        if self.block.capacity() > 4 * READ_AHEAD {
            self.block = Vec::new();
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Normalised<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.out_pos < this.out.len() {
                let n = (this.out.len() - this.out_pos).min(buf.remaining());
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if let Some(why) = &this.failed {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, why.clone())));
            }
            if this.pass > 0 {
                if this.start < this.end {
                    let n = this.pass.min(this.end - this.start).min(buf.remaining());
                    buf.put_slice(&this.ahead[this.start..this.start + n]);
                    this.start += n;
                    this.pass -= n;
                    return Poll::Ready(Ok(()));
                }
                if this.eof {
                    return Poll::Ready(Ok(()));
                }
                // The rest of a frame passed through: straight into the
                // server's buffer.
                let want = this.pass.min(buf.remaining());
                let mut direct = ReadBuf::new(buf.initialize_unfilled_to(want));
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut direct))?;
                let n = direct.filled().len();
                buf.advance(n);
                this.pass -= n;
                this.eof = n == 0;
                return Poll::Ready(Ok(()));
            }
            match this.next_frame() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(why) => {
                    tracing::debug!(reason = %why, "closing a connection: malformed HTTP/2 from the client");
                    this.failed = Some(format!("closed the connection: {why}"));
                    continue;
                }
            }
            if this.eof {
                // A partial frame at the end goes nowhere: the server sees
                // the connection end.
                return Poll::Ready(Ok(()));
            }
            if this.start == this.end {
                (this.start, this.end) = (0, 0);
            } else if this.end == this.ahead.len() {
                this.ahead.copy_within(this.start..this.end, 0);
                (this.start, this.end) = (0, this.end - this.start);
            }
            let mut more = ReadBuf::new(&mut this.ahead[this.end..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut more))?;
            let n = more.filled().len();
            this.end += n;
            this.eof = n == 0;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Normalised<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<S: Connected> Connected for Normalised<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests;
