//! docker's stream framing and hijacked connections.
//!
//! Without a TTY, stdout and stderr travel multiplexed: each chunk behind an
//! 8-byte header (stream type, three zero bytes, big-endian length). A
//! hijacked request (attach, exec start) asked with `Upgrade: tcp` is
//! answered `101 Switching Protocols` and the connection becomes a raw
//! duplex stream: output out, stdin in. Without the upgrade header the
//! output is the body of a `200` response (and there is no stdin).
use crate::body::{self, Reply};
use bytes::{Bytes, BytesMut};
use http::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// The stream a chunk belongs to (docker's numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Stdout = 1,
    Stderr = 2,
}

/// The content type of a raw or multiplexed docker stream (API 1.41).
pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";

/// Largest chunk read from a hijacked client at once.
const READ_CHUNK: usize = 32 * 1024;
/// Chunks buffered each way.
const DEPTH: usize = 16;

/// One multiplexed frame.
pub fn frame(ch: Channel, data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + data.len());
    b.extend_from_slice(&[ch as u8, 0, 0, 0]);
    let len = u32::try_from(data.len()).expect("chunks are far below 4 GiB");
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(data);
    b.freeze()
}

/// The two ends a handler of a hijacked request uses.
#[derive(Debug)]
pub struct Hijacked {
    /// What to send to the client; dropping it ends the response (and,
    /// upgraded, closes the connection).
    pub out: mpsc::Sender<Bytes>,
    /// What the client sends (upgraded connections only); closed at the
    /// client's end of input.
    pub stdin: mpsc::Receiver<Bytes>,
}

/// Whether the client asked to upgrade the connection.
fn wants_upgrade<B>(req: &Request<B>) -> bool {
    let has = |name: header::HeaderName, want: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(want)))
        })
    };
    has(header::CONNECTION, "upgrade") && has(header::UPGRADE, "tcp")
}

/// Answers a hijacking request: the response to return, and the ends to use.
pub fn hijack<B>(req: &mut Request<B>) -> (Reply, Hijacked) {
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(DEPTH);
    let (in_tx, in_rx) = mpsc::channel::<Bytes>(DEPTH);
    if !wants_upgrade(req) {
        drop(in_tx);
        return (
            body::stream(out_rx, RAW_STREAM),
            Hijacked {
                out: out_tx,
                stdin: in_rx,
            },
        );
    }
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let io = match on_upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::debug!(error = %e, "docker api: the connection was not upgraded");
                return;
            }
        };
        let (mut r, mut w) = tokio::io::split(io);
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if in_tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        while let Some(chunk) = out_rx.recv().await {
            if w.write_all(&chunk).await.is_err() {
                break;
            }
            if w.flush().await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
        reader.abort();
    });
    let resp = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .header(header::CONTENT_TYPE, RAW_STREAM)
        .body(body::empty())
        .expect("static headers are valid");
    (
        resp,
        Hijacked {
            out: out_tx,
            stdin: in_rx,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_docker_headers() {
        assert_eq!(
            &frame(Channel::Stderr, b"ab")[..],
            b"\x02\0\0\0\0\0\0\x02ab"
        );
        assert_eq!(&frame(Channel::Stdout, b"")[..], b"\x01\0\0\0\0\0\0\0");
    }
}
