//! `quilt cp SRC ID:DEST` (CopyIn) and `quilt cp ID:SRC DEST` (CopyOut),
//! with docker's rules: a DEST that is an existing directory receives SRC
//! under its own name; any other DEST (a file, or a path that does not
//! exist yet) becomes SRC under DEST's name; `-` is a tar stream on stdin
//! or stdout. Tar streams are built and extracted on a helper thread,
//! chunk by chunk: memory stays bounded whatever the size of the files.

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
        (None, Some((id, dest))) => {
            if args.archive {
                return Err(CliError::engine(
                    "cp: -a is not supported for copies into a container (files belong to the container's root)",
                ));
            }
            if args.src == "-" {
                return copy_in_stream(client, id, dest).await;
            }
            copy_in(client, &args.src, id, dest, args.follow_link).await
        }
        (Some((id, path)), None) => copy_out(client, id, path, &args.dst, args.archive).await,
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

fn produce(
    src: PathBuf,
    name: Option<String>,
    follow: bool,
    tx: mpsc::Sender<CopyInRequest>,
) -> std::io::Result<()> {
    let meta = if follow {
        std::fs::metadata(&src)?
    } else {
        std::fs::symlink_metadata(&src)?
    };
    let name = name.map(PathBuf::from).unwrap_or_else(|| {
        src.file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
    });
    let w = FrameWriter {
        tx: tx.clone(),
        buf: Vec::with_capacity(CHUNK),
        hasher: Sha256::new(),
        size: 0,
    };
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    let src = if follow {
        std::fs::canonicalize(&src)?
    } else {
        src
    };
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

/// Docker's rule for DEST in the container: an existing directory gets SRC
/// under its own name; otherwise (nothing there, or a file) SRC is written
/// as DEST, in DEST's parent directory. A DEST ending in `/` must be a
/// directory.
async fn copy_in(
    client: &mut Client,
    src: &str,
    id: &str,
    dest: &str,
    follow: bool,
) -> Result<u8, CliError> {
    let src = PathBuf::from(src);
    let meta = if follow {
        std::fs::metadata(&src)
    } else {
        std::fs::symlink_metadata(&src)
    };
    if let Err(e) = meta {
        return Err(CliError::engine(format!("cp: {}: {e}", src.display())));
    }
    let first = send_tar(client, &src, id, dest, None, follow).await;
    match first {
        Err(status) if !dest.ends_with('/') && not_a_directory(&status) => {
            let (parent, name) = split_dest(dest)?;
            send_tar(client, &src, id, &parent, Some(name), follow)
                .await
                .map_err(CliError::from)?;
            Ok(0)
        }
        Err(status) => Err(CliError::from(status)),
        Ok(()) => Ok(0),
    }
}

/// The helper's answers for a DEST that is not an existing directory.
fn not_a_directory(status: &tonic::Status) -> bool {
    let m = status.message();
    (status.code() == tonic::Code::NotFound
        && m.ends_with("no such file or directory in the container"))
        || (status.code() == tonic::Code::InvalidArgument
            && m.ends_with("not a directory in the container"))
}

/// `/a/b/name` -> (`/a/b`, `name`).
fn split_dest(dest: &str) -> Result<(String, String), CliError> {
    let path = Path::new(dest);
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((
            parent.to_string_lossy().into_owned(),
            name.to_string_lossy().into_owned(),
        )),
        _ => Err(CliError::engine(format!(
            "cp: {dest}: not a path a file can be written to"
        ))),
    }
}

/// One CopyIn of `src` (named `name`, or its own name) into the directory `dir`.
async fn send_tar(
    client: &mut Client,
    src: &Path,
    id: &str,
    dir: &str,
    name: Option<String>,
    follow: bool,
) -> Result<(), tonic::Status> {
    let (tx, rx) = mpsc::channel(4);
    let header = CopyInRequest {
        frame: Some(copy_in_request::Frame::Header(CopyInHeader {
            container_id: id.to_owned(),
            path: dir.to_owned(),
        })),
    };
    if tx.send(header).await.is_err() {
        return Err(tonic::Status::internal("cp: internal channel closed"));
    }
    let src = src.to_owned();
    let producer = std::thread::spawn(move || produce(src, name, follow, tx));
    let res = client.copy_in(ReceiverStream::new(rx)).await;
    let produced = producer
        .join()
        .map_err(|_| tonic::Status::internal("cp: the tar writer panicked"))?;
    res?;
    produced.map_err(|e| tonic::Status::invalid_argument(format!("cp: reading the source: {e}")))
}

/// `quilt cp - ID:DIR`: a tar stream read from stdin, extracted into DIR.
async fn copy_in_stream(client: &mut Client, id: &str, dir: &str) -> Result<u8, CliError> {
    let (tx, rx) = mpsc::channel(4);
    tx.send(CopyInRequest {
        frame: Some(copy_in_request::Frame::Header(CopyInHeader {
            container_id: id.to_owned(),
            path: dir.to_owned(),
        })),
    })
    .await
    .map_err(|_| CliError::engine("cp: internal channel closed"))?;
    let reader = std::thread::spawn(move || -> std::io::Result<()> {
        let mut w = FrameWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
            hasher: Sha256::new(),
            size: 0,
        };
        std::io::copy(&mut std::io::stdin().lock(), &mut w)?;
        w.flush()?;
        let trailer = CopyTrailer {
            size: w.size,
            sha256: hex::encode(w.hasher.finalize()),
        };
        let _ = tx.blocking_send(CopyInRequest {
            frame: Some(copy_in_request::Frame::Trailer(trailer)),
        });
        Ok(())
    });
    let res = client.copy_in(ReceiverStream::new(rx)).await;
    let read = reader
        .join()
        .map_err(|_| CliError::engine("cp: the stdin reader panicked"))?;
    res.map_err(CliError::from)?;
    read.map_err(|e| CliError::engine(format!("cp: reading stdin: {e}")))?;
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

/// Where a copy out lands, by docker's rule.
enum Landing {
    /// The tar stream itself, on stdout.
    Stdout,
    /// Into an existing directory, under SRC's own name.
    Into(PathBuf),
    /// As DEST itself: extracted next to it, then renamed over it.
    As(PathBuf),
}

fn landing(dst: &str) -> Result<Landing, CliError> {
    if dst == "-" {
        return Ok(Landing::Stdout);
    }
    let path = PathBuf::from(dst);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => Ok(Landing::Into(path)),
        _ if dst.ends_with('/') => Err(CliError::engine(format!("cp: {dst}: no such directory"))),
        Ok(_) => Ok(Landing::As(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                _ => PathBuf::from("."),
            };
            if !parent.is_dir() {
                return Err(CliError::engine(format!(
                    "cp: {}: no such directory",
                    parent.display()
                )));
            }
            Ok(Landing::As(path))
        }
        Err(e) => Err(CliError::engine(format!("cp: {dst}: {e}"))),
    }
}

async fn copy_out(
    client: &mut Client,
    id: &str,
    path: &str,
    dst: &str,
    archive: bool,
) -> Result<u8, CliError> {
    let landing = landing(dst)?;
    let mut stream = client
        .copy_out(CopyOutRequest {
            container_id: id.to_owned(),
            path: path.to_owned(),
        })
        .await
        .map_err(CliError::from)?
        .into_inner();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
    let sink = match &landing {
        Landing::Stdout => None,
        Landing::Into(dir) => Some(dir.clone()),
        Landing::As(dest) => Some(staging_dir(dest)?),
    };
    let target = sink.clone();
    let extractor = std::thread::spawn(move || match target {
        Some(dir) => extract(&dir, rx, archive),
        None => relay(rx),
    });
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
        .map_err(|_| CliError::engine("cp: the tar reader panicked"));
    let outcome = (|| {
        let extracted = extracted?;
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
        extracted.map_err(|e| CliError::engine(format!("cp: extracting into {dst}: {e}")))?;
        if let (Landing::As(dest), Some(staging)) = (&landing, &sink) {
            settle(staging, dest)?;
        }
        Ok(0)
    })();
    if let (Landing::As(_), Some(staging)) = (&landing, &sink) {
        let _ = std::fs::remove_dir_all(staging);
    }
    outcome
}

/// A fresh directory next to `dest` (same filesystem, so the rename is atomic).
fn staging_dir(dest: &Path) -> Result<PathBuf, CliError> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    for attempt in 0..100u32 {
        let dir = parent.join(format!(".quilt-cp-{}-{attempt}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(CliError::engine(format!("cp: {}: {e}", parent.display())));
            }
        }
    }
    Err(CliError::engine("cp: could not make a staging directory"))
}

/// Moves the one entry extracted into `staging` to `dest` (replacing a file
/// there, as docker does).
fn settle(staging: &Path, dest: &Path) -> Result<(), CliError> {
    let err = |e: std::io::Error| CliError::engine(format!("cp: {}: {e}", dest.display()));
    let mut entries = std::fs::read_dir(staging).map_err(err)?;
    let Some(entry) = entries.next() else {
        return Err(CliError::engine("cp: the container sent nothing"));
    };
    let from = entry.map_err(err)?.path();
    if let Ok(m) = std::fs::symlink_metadata(dest)
        && !m.is_dir()
        && from.is_dir()
    {
        return Err(CliError::engine(format!(
            "cp: cannot copy a directory to {}: it is a file",
            dest.display()
        )));
    }
    std::fs::rename(&from, dest).map_err(err)
}

/// `-`: the tar stream as it came, on stdout.
fn relay(rx: std::sync::mpsc::Receiver<Vec<u8>>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut res = Ok(());
    for chunk in rx {
        if res.is_ok() {
            res = out.write_all(&chunk);
        }
    }
    res.and_then(|()| out.flush())
}

fn extract(
    dst: &Path,
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    archive: bool,
) -> std::io::Result<()> {
    let mut a = tar::Archive::new(ChunkReader {
        rx,
        cur: Vec::new(),
        pos: 0,
    });
    // Permission bits are kept, but not setuid/setgid/sticky: the CLI runs as
    // root, and a container must not be able to plant a setuid binary on the
    // host through `quilt cp`.
    a.set_preserve_permissions(false);
    // -a: the files' uid/gid as the container has them.
    a.set_preserve_ownerships(archive);
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
