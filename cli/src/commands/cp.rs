//! `quilt cp SRC ID:DIR` (CopyIn) and `quilt cp ID:PATH DIR` (CopyOut).
//! Tar streams are built and extracted on a helper thread, chunk by chunk:
//! memory stays bounded whatever the size of the files.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use quilt_proto::v1::{
    CopyInHeader, CopyInRequest, CopyOutRequest, CopyTrailer, copy_in_request, copy_out_response,
};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::args::cp::CpArgs;
use crate::client::Client;
use crate::error::CliError;

const CHUNK: usize = 256 * 1024;

/// `ID:PATH` -> (ID, PATH); a host path (with a `/` before any `:`, or no `:`) -> None.
fn container_ref(s: &str) -> Option<(&str, &str)> {
    let (id, path) = s.split_once(':')?;
    (!id.is_empty() && !id.contains('/')).then_some((id, path))
}

pub async fn cp(client: &mut Client, args: CpArgs) -> Result<u8, CliError> {
    match (container_ref(&args.src), container_ref(&args.dst)) {
        (None, Some((id, dir))) => copy_in(client, &args.src, id, dir).await,
        (Some((id, path)), None) => copy_out(client, id, path, &args.dst).await,
        _ => Err(CliError::engine(
            "cp: exactly one of SRC and DST must be ID:PATH (a container path)",
        )),
    }
}

/// A Write that hashes and sends fixed-size chunks as CopyIn data frames.
struct FrameWriter {
    tx: mpsc::Sender<CopyInRequest>,
    buf: Vec<u8>,
    hasher: Sha256,
    size: u64,
}

impl FrameWriter {
    fn send_buf(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.hasher.update(&data);
        self.size += data.len() as u64;
        self.tx
            .blocking_send(CopyInRequest {
                frame: Some(copy_in_request::Frame::Data(data)),
            })
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "copy aborted"))
    }
}

impl Write for FrameWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = b.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&b[..n]);
        if self.buf.len() == CHUNK {
            self.send_buf()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send_buf()
    }
}

fn produce(src: PathBuf, tx: mpsc::Sender<CopyInRequest>) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(&src)?;
    let name = src
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let w = FrameWriter {
        tx: tx.clone(),
        buf: Vec::with_capacity(CHUNK),
        hasher: Sha256::new(),
        size: 0,
    };
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    if meta.is_dir() {
        b.append_dir_all(&name, &src)?;
    } else {
        b.append_path_with_name(&src, &name)?;
    }
    let mut w = b.into_inner()?;
    w.flush()?;
    let trailer = CopyTrailer {
        size: w.size,
        sha256: hex::encode(w.hasher.finalize()),
    };
    let _ = tx.blocking_send(CopyInRequest {
        frame: Some(copy_in_request::Frame::Trailer(trailer)),
    });
    Ok(())
}

async fn copy_in(client: &mut Client, src: &str, id: &str, dir: &str) -> Result<u8, CliError> {
    let src = PathBuf::from(src);
    if let Err(e) = std::fs::symlink_metadata(&src) {
        return Err(CliError::engine(format!("cp: {}: {e}", src.display())));
    }
    let (tx, rx) = mpsc::channel(4);
    tx.send(CopyInRequest {
        frame: Some(copy_in_request::Frame::Header(CopyInHeader {
            container_id: id.to_owned(),
            path: dir.to_owned(),
        })),
    })
    .await
    .map_err(|_| CliError::engine("cp: internal channel closed"))?;
    let producer = std::thread::spawn(move || produce(src, tx));
    let res = client.copy_in(ReceiverStream::new(rx)).await;
    let produced = producer
        .join()
        .map_err(|_| CliError::engine("cp: the tar writer panicked"))?;
    res.map_err(CliError::from)?;
    produced.map_err(|e| CliError::engine(format!("cp: reading the source: {e}")))?;
    Ok(0)
}

/// A Read fed with chunks by the async side.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.cur = c;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

async fn copy_out(client: &mut Client, id: &str, path: &str, dst: &str) -> Result<u8, CliError> {
    let dst = PathBuf::from(dst);
    std::fs::create_dir_all(&dst)
        .map_err(|e| CliError::engine(format!("cp: {}: {e}", dst.display())))?;
    let mut stream = client
        .copy_out(CopyOutRequest {
            container_id: id.to_owned(),
            path: path.to_owned(),
        })
        .await
        .map_err(CliError::from)?
        .into_inner();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
    let target: PathBuf = dst.clone();
    let extractor = std::thread::spawn(move || extract(&target, rx));
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut trailer = None;
    let mut failure = None;
    loop {
        match stream.message().await {
            Ok(Some(m)) => match m.frame {
                Some(copy_out_response::Frame::Data(d)) => {
                    hasher.update(&d);
                    size += d.len() as u64;
                    // A failed extractor hangs up: its error is reported below.
                    let _ = tx.send(d);
                }
                Some(copy_out_response::Frame::Trailer(t)) => trailer = Some(t),
                None => {}
            },
            Ok(None) => break,
            Err(s) => {
                failure = Some(CliError::from(s));
                break;
            }
        }
    }
    drop(tx);
    let extracted = extractor
        .join()
        .map_err(|_| CliError::engine("cp: the tar reader panicked"))?;
    if let Some(f) = failure {
        return Err(f);
    }
    let Some(t) = trailer else {
        return Err(CliError::engine("cp: the stream ended without a trailer"));
    };
    let sha = hex::encode(hasher.finalize());
    if t.size != size || !t.sha256.eq_ignore_ascii_case(&sha) {
        return Err(CliError::engine(format!(
            "cp: the tar stream was damaged: received {size} bytes with sha256 {sha}, the server sent {} bytes with sha256 {}",
            t.size, t.sha256
        )));
    }
    extracted
        .map_err(|e| CliError::engine(format!("cp: extracting into {}: {e}", dst.display())))?;
    Ok(0)
}

fn extract(dst: &Path, rx: std::sync::mpsc::Receiver<Vec<u8>>) -> std::io::Result<()> {
    let mut a = tar::Archive::new(ChunkReader {
        rx,
        cur: Vec::new(),
        pos: 0,
    });
    // Permission bits are kept, but not setuid/setgid/sticky: the CLI runs as
    // root, and a container must not be able to plant a setuid binary on the
    // host through `quilt cp`.
    a.set_preserve_permissions(false);
    a.set_overwrite(true);
    let res = a.unpack(dst);
    // Drain the rest so the sender never blocks.
    let mut r = a.into_inner();
    let _ = std::io::copy(&mut r, &mut std::io::sink());
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_refs() {
        assert_eq!(container_ref("abc:/tmp"), Some(("abc", "/tmp")));
        assert_eq!(container_ref("./a:b"), None);
        assert_eq!(container_ref("/x/y"), None);
        assert_eq!(container_ref("file"), None);
    }
}
