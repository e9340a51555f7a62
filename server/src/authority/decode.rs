//! Decoding the client's header blocks with h2's own HPACK decoder (its
//! `unstable` frame codec, the code the server runs on the same bytes). The
//! decoder sees every header block of the connection in order, so its
//! dynamic table follows the client's encoder; it is fed one complete block
//! at a time from memory and polled once.
use super::frame::{MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE};
use bytes::Bytes;
use futures::Stream;
use h2::frame::{Frame, Headers};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Why a header block could not be decoded; the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable(pub String);

/// The HPACK state of one connection's client-to-server direction.
#[derive(Debug)]
pub struct BlockDecoder {
    codec: h2::Codec<Feed, Bytes>,
}

impl Default for BlockDecoder {
    fn default() -> Self {
        let mut codec = h2::Codec::new(Feed::default());
        codec.set_max_recv_frame_size(MAX_FRAME_SIZE as usize);
        codec.set_max_recv_header_list_size(MAX_HEADER_LIST_SIZE as usize);
        BlockDecoder { codec }
    }
}

impl BlockDecoder {
    /// Decodes one header block: `frames` is its HEADERS frame and any
    /// CONTINUATION frames, exactly as the client sent them.
    pub fn decode(&mut self, frames: &[u8]) -> Result<Headers, Undecodable> {
        self.codec.get_mut().load(frames);
        let mut cx = Context::from_waker(Waker::noop());
        let got = Pin::new(&mut self.codec).poll_next(&mut cx);
        let left = self.codec.get_mut().left();
        match got {
            Poll::Ready(Some(Ok(Frame::Headers(h)))) if left == 0 => Ok(h),
            Poll::Ready(Some(Ok(f))) => Err(Undecodable(format!(
                "a header block decoded to {f:?} with {left} bytes left"
            ))),
            Poll::Ready(Some(Err(e))) => Err(Undecodable(format!("a header block: {e}"))),
            Poll::Ready(None) | Poll::Pending => {
                Err(Undecodable("an incomplete header block".into()))
            }
        }
    }
}

/// The codec's transport: reads what was loaded, then Pending; never written.
#[derive(Debug, Default)]
struct Feed {
    data: Vec<u8>,
    pos: usize,
}

impl Feed {
    fn load(&mut self, frames: &[u8]) {
        self.data.clear();
        self.data.extend_from_slice(frames);
        self.pos = 0;
    }

    fn left(&self) -> usize {
        self.data.len() - self.pos
    }
}

impl AsyncRead for Feed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.left() == 0 {
            // Not the end of the connection: the next block comes later.
            return Poll::Pending;
        }
        let n = self.left().min(buf.remaining());
        let from = self.pos;
        buf.put_slice(&self.data[from..from + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Feed {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::Error::other("the header decoder writes nothing")))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
