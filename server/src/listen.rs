//! Accepting connections. A connection must show it speaks gRPC within a
//! deadline: the HTTP/2 client preface on the Unix socket, the TLS handshake
//! and then the preface on TCP. One that never does is dropped, so
//! half-open connections cannot pile up; every check runs in its own task,
//! so a slow client never holds up the next accept. Socket connections are
//! handed on with their header blocks normalised (`authority`), so that
//! every gRPC client's default `:authority` for a Unix socket is accepted.
use crate::auth::Tls;
use crate::authority::Normalised;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

/// What an HTTP/2 client sends first (RFC 9113, 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// How long a new connection has to send it (and finish TLS).
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);
/// Connections whose checks are in flight, per listener, before accepting waits.
const PENDING: usize = 1024;

/// A stream whose first bytes were read ahead; they are given back first.
#[derive(Debug)]
pub struct Prefaced<S> {
    head: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefaced<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.head.len() {
            let n = (self.head.len() - self.pos).min(buf.remaining());
            let from = self.pos;
            buf.put_slice(&self.head[from..from + n]);
            self.pos += n;
            if self.pos == self.head.len() {
                self.head = Vec::new();
                self.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefaced<S> {
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

impl<S: Connected> Connected for Prefaced<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// Reads the HTTP/2 preface (refusing anything else), keeping it to give back.
async fn preface<S: AsyncRead + Unpin>(mut s: S) -> io::Result<Prefaced<S>> {
    let head = read_preface(&mut s).await?;
    Ok(Prefaced {
        head,
        pos: 0,
        inner: s,
    })
}

/// Reads the HTTP/2 preface, refusing anything else.
async fn read_preface<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<Vec<u8>> {
    let mut head = vec![0u8; PREFACE.len()];
    s.read_exact(&mut head).await?;
    if head != PREFACE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an HTTP/2 client",
        ));
    }
    Ok(head)
}

/// The preface, then the connection with its header blocks normalised.
async fn normalised<S: AsyncRead + Unpin>(mut s: S) -> io::Result<Normalised<S>> {
    let head = read_preface(&mut s).await?;
    Ok(Normalised::after_preface(s, &head))
}

pub type UnixIncoming = ReceiverStream<io::Result<Normalised<tokio::net::UnixStream>>>;
pub type TcpIncoming =
    ReceiverStream<io::Result<Prefaced<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>>>;

/// Connections of the Unix socket that sent the HTTP/2 preface in time.
pub fn unix(listener: UnixListener) -> UnixIncoming {
    let (tx, rx) = mpsc::channel(PENDING);
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept on the socket");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_DEADLINE, normalised(stream)).await {
                    Ok(Ok(s)) => {
                        let _ = tx.send(Ok(s)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, "dropped a connection"),
                    Err(_) => tracing::debug!("dropped a connection that sent nothing in time"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

/// TCP connections that finished TLS (with the client checks of `tls`) and
/// sent the HTTP/2 preface in time.
pub fn tcp(listener: TcpListener, tls: Tls) -> TcpIncoming {
    let (tx, rx) = mpsc::channel(PENDING);
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept on TCP");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (tx, acceptor) = (tx.clone(), tls.acceptor());
            tokio::spawn(async move {
                let shake = async {
                    let s = acceptor.accept(stream).await?;
                    preface(s).await
                };
                match tokio::time::timeout(HANDSHAKE_DEADLINE, shake).await {
                    Ok(Ok(s)) => {
                        let _ = tx.send(Ok(s)).await;
                    }
                    Ok(Err(e)) => tracing::info!(%peer, error = %e, "refused a TCP connection"),
                    Err(_) => {
                        tracing::info!(%peer, "dropped a TCP connection that did not finish its handshake in time")
                    }
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn the_preface_is_given_back() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(PREFACE).await.unwrap();
        a.write_all(b"rest").await.unwrap();
        drop(a);
        let mut p = preface(b).await.unwrap();
        let mut all = Vec::new();
        p.read_to_end(&mut all).await.unwrap();
        assert_eq!(&all[..PREFACE.len()], PREFACE);
        assert_eq!(&all[PREFACE.len()..], b"rest");
    }

    #[tokio::test]
    async fn anything_else_is_refused() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(preface(b).await.is_err());
    }
}
