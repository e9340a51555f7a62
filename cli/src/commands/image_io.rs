//! `quilt tag`, `commit`, `export`, `save` and `load`: images and root
//! filesystems as files or tar streams on stdin/stdout, as docker's
//! commands of the same names.

use std::io::IsTerminal;
use std::path::Path;

use quilt_proto::v1::image_service_client::ImageServiceClient;
use quilt_proto::v1::{
    CommitContainerRequest, ExportContainerRequest, LoadImagesRequest, SaveImagesRequest,
    TagImageRequest, copy_out_response, load_images_response,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::image_progress::ProgressBar;
use crate::args::image::{CommitArgs, ExportArgs, LoadArgs, SaveArgs, TagArgs};
use crate::client::{self, Client, Transport};
use crate::error::CliError;
use crate::output::stream::emit;

const CHUNK: usize = 256 * 1024;

type Images = ImageServiceClient<Transport>;

pub async fn tag(c: &mut Images, args: TagArgs) -> Result<u8, CliError> {
    c.tag_image(TagImageRequest {
        source: args.source,
        target: args.target,
    })
    .await?;
    Ok(0)
}

pub async fn commit(target: &client::Target, args: CommitArgs) -> Result<u8, CliError> {
    let mut c = ImageServiceClient::new(client::connect_channel(target).await?);
    let i = c
        .commit_container(CommitContainerRequest {
            container_id: args.id,
            name: args.name.unwrap_or_default(),
            changes: args.changes,
            message: args.message.unwrap_or_default(),
            author: args.author.unwrap_or_default(),
            no_pause: !args.pause,
        })
        .await?
        .into_inner()
        .image
        .ok_or_else(|| CliError::engine("the daemon answered without the image"))?;
    emit(&format!("{}\n", i.id))?;
    Ok(0)
}

/// Where a tar stream goes: a file (created, removed again on failure) or
/// stdout (refused when it is a terminal).
enum Out {
    File(tokio::fs::File, std::path::PathBuf),
    Stdout(tokio::io::Stdout),
}

impl Out {
    async fn open(output: Option<&Path>, what: &str) -> Result<Out, CliError> {
        match output {
            Some(p) if p != Path::new("-") => {
                let f = tokio::fs::File::create(p)
                    .await
                    .map_err(|e| CliError::engine(format!("{what}: {}: {e}", p.display())))?;
                Ok(Out::File(f, p.to_path_buf()))
            }
            _ => {
                if std::io::stdout().is_terminal() {
                    return Err(CliError::engine(format!(
                        "{what}: refusing to write a tar stream to a terminal: use -o FILE or redirect stdout"
                    )));
                }
                Ok(Out::Stdout(tokio::io::stdout()))
            }
        }
    }

    async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Out::File(f, _) => f.write_all(data).await,
            Out::Stdout(s) => s.write_all(data).await,
        }
    }

    async fn finish(self, ok: bool) -> std::io::Result<()> {
        match self {
            Out::File(mut f, path) => {
                if ok {
                    f.flush().await?;
                    f.sync_all().await
                } else {
                    drop(f);
                    let _ = tokio::fs::remove_file(path).await;
                    Ok(())
                }
            }
            Out::Stdout(mut s) => s.flush().await,
        }
    }
}

pub async fn export(client: &mut Client, args: ExportArgs) -> Result<u8, CliError> {
    let mut out = Out::open(args.output.as_deref(), "export").await?;
    let result = async {
        let mut stream = client
            .export_container(ExportContainerRequest {
                container_id: args.id,
            })
            .await?
            .into_inner();
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(m) = stream.message().await? {
            match m.frame {
                Some(copy_out_response::Frame::Data(d)) => {
                    hasher.update(&d);
                    size += d.len() as u64;
                    out.write(&d)
                        .await
                        .map_err(|e| CliError::engine(format!("export: writing: {e}")))?;
                }
                Some(copy_out_response::Frame::Trailer(t)) => {
                    let sha = hex::encode(hasher.finalize());
                    if t.size != size || !t.sha256.eq_ignore_ascii_case(&sha) {
                        return Err(CliError::engine(format!(
                            "export: the tar stream was damaged: received {size} bytes with sha256 {sha}, the server sent {} bytes with sha256 {}",
                            t.size, t.sha256
                        )));
                    }
                    return Ok(());
                }
                None => {}
            }
        }
        Err(CliError::engine("export: the stream ended without a trailer"))
    }
    .await;
    let ok = result.is_ok();
    out.finish(ok)
        .await
        .map_err(|e| CliError::engine(format!("export: writing: {e}")))?;
    result.map(|()| 0)
}

pub async fn save(c: &mut Images, args: SaveArgs) -> Result<u8, CliError> {
    let mut out = Out::open(args.output.as_deref(), "save").await?;
    let result = async {
        let mut stream = c
            .save_images(SaveImagesRequest { names: args.names })
            .await?
            .into_inner();
        while let Some(m) = stream.message().await? {
            out.write(&m.data)
                .await
                .map_err(|e| CliError::engine(format!("save: writing: {e}")))?;
        }
        Ok::<(), CliError>(())
    }
    .await;
    let ok = result.is_ok();
    out.finish(ok)
        .await
        .map_err(|e| CliError::engine(format!("save: writing: {e}")))?;
    result.map(|()| 0)
}

pub async fn load(c: &mut Images, args: LoadArgs) -> Result<u8, CliError> {
    let input: Box<dyn AsyncRead + Unpin + Send> = match &args.input {
        Some(p) if p != Path::new("-") => Box::new(
            tokio::fs::File::open(p)
                .await
                .map_err(|e| CliError::engine(format!("load: {}: {e}", p.display())))?,
        ),
        _ => {
            if std::io::stdin().is_terminal() {
                return Err(CliError::engine(
                    "load: the archive is read from stdin, which is a terminal: use -i FILE or redirect stdin",
                ));
            }
            Box::new(tokio::io::stdin())
        }
    };
    let (tx, rx) = mpsc::channel::<LoadImagesRequest>(4);
    // Reads the archive until its end. On a read error the sender is kept
    // (the request stream stays open) until the call is cancelled, so the
    // daemon never takes a truncated archive for a whole one.
    let mut reader = tokio::spawn(async move {
        let mut input = input;
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = match input.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => return Err((e, tx)),
            };
            if n == 0 {
                return Ok(());
            }
            buf.truncate(n);
            if tx.send(LoadImagesRequest { data: buf }).await.is_err() {
                return Ok(()); // the daemon answered early (an error)
            }
        }
    });
    let mut stream = c.load_images(ReceiverStream::new(rx)).await?.into_inner();
    let mut bar = (!args.quiet).then(ProgressBar::new);
    let mut loaded = Vec::new();
    let mut failure = None;
    let mut reading = true;
    loop {
        let msg = tokio::select! {
            r = &mut reader, if reading => {
                reading = false;
                if let Ok(Err((e, tx))) = r {
                    drop(stream); // cancels the call
                    drop(tx);
                    if let Some(b) = bar.as_mut() {
                        b.finish();
                    }
                    return Err(CliError::engine(format!("load: reading the archive: {e}")));
                }
                continue;
            }
            m = stream.message() => m,
        };
        match msg {
            Ok(Some(m)) => match m.item {
                Some(load_images_response::Item::Progress(p)) => {
                    if let Some(b) = bar.as_mut() {
                        b.update(&p.phase, p.done_bytes, p.total_bytes);
                    }
                }
                Some(load_images_response::Item::Image(i)) => loaded.push(i),
                None => {}
            },
            Ok(None) => break,
            Err(s) => {
                failure = Some(CliError::from(s));
                break;
            }
        }
    }
    if let Some(b) = bar.as_mut() {
        b.finish();
    }
    reader.abort();
    if let Some(f) = failure {
        return Err(f);
    }
    let mut text = String::new();
    for i in &loaded {
        if i.names.is_empty() {
            text.push_str(&format!("Loaded image ID: {}\n", i.id));
        }
        for n in &i.names {
            text.push_str(&format!("Loaded image: {n}\n"));
        }
    }
    emit(&text)?;
    Ok(0)
}
