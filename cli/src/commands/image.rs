//! `quilt image import|build|ls|inspect|rm`.

use quilt_proto::units::human_size;
use quilt_proto::v1::image_service_client::ImageServiceClient;
use quilt_proto::v1::import_image_response::Item;
use quilt_proto::v1::{
    BuildImageRequest, DiskUsageRequest, Image, ImportImageRequest, ImportImageResponse,
    InspectImageRequest, ListImagesRequest, PruneImagesRequest, RemoveImageRequest,
};
use serde_json::json;

use super::image_progress::ProgressBar;
use crate::args::image::{ImageCommand, ImageFormat};
use crate::client;
use crate::error::CliError;
use crate::output::stream::emit;
use crate::output::table::render;
use crate::output::timefmt::{Fraction, human_duration, now_seconds, rfc3339, seconds_since};

fn view(i: &Image) -> serde_json::Value {
    json!({
        "id": i.id,
        "names": i.names,
        "size_bytes": i.size_bytes,
        "created_at": i.created_at.as_ref().map(|t| rfc3339(t, Fraction::Trimmed)),
        "source": i.source,
        "layers": i.layers,
        "containers": i.containers,
        "config": i.config.as_ref().map(|c| json!({
            "env": c.env,
            "entrypoint": c.entrypoint,
            "cmd": c.cmd,
            "working_dir": c.working_dir,
            "user": c.user,
            "exposed_ports": c.exposed_ports,
            "labels": c.labels.iter().collect::<std::collections::BTreeMap<_, _>>(),
            "stop_signal": c.stop_signal,
            "architecture": c.architecture,
            "os": c.os,
        })),
    })
}

/// Resolves a `--bin` name with this shell's PATH (pyenv, conda and nvm
/// put theirs there): the first ELF executable wins over earlier scripts
/// (such as version-manager shims), else the first executable; a path is
/// made absolute against the current directory. The daemon gets absolute
/// paths; a name not found is sent as is (the daemon reports it).
fn resolve_bin(name: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = std::path::Path::new(name);
    if name.contains('/') {
        return std::path::absolute(path)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| name.to_owned());
    }
    let Some(dirs) = std::env::var_os("PATH") else {
        return name.to_owned();
    };
    let mut first = None;
    for dir in std::env::split_paths(&dirs) {
        if !dir.is_absolute() {
            continue;
        }
        let p = dir.join(name);
        if !std::fs::metadata(&p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        {
            continue;
        }
        let mut magic = [0u8; 4];
        let elf = std::fs::File::open(&p)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
            .is_ok()
            && magic == *b"\x7fELF";
        if elf {
            return p.to_string_lossy().into_owned();
        }
        first.get_or_insert(p);
    }
    first.map_or_else(|| name.to_owned(), |p| p.to_string_lossy().into_owned())
}

pub(super) fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..12).unwrap_or(hex)
}

/// Reads an import-like stream to its end: progress on a terminal, then
/// the image.
async fn follow(mut stream: tonic::Streaming<ImportImageResponse>) -> Result<Image, CliError> {
    let mut bar = ProgressBar::new();
    while let Some(msg) = stream.message().await? {
        match msg.item {
            Some(Item::Progress(p)) => bar.update(&p.phase, p.done_bytes, p.total_bytes),
            Some(Item::Image(i)) => {
                bar.finish();
                return Ok(i);
            }
            None => {}
        }
    }
    bar.finish();
    Err(CliError::engine("quiltd ended the stream without an image"))
}

pub async fn image(target: &client::Target, cmd: ImageCommand) -> Result<u8, CliError> {
    let mut c = ImageServiceClient::new(client::connect_channel(target).await?);
    match cmd {
        ImageCommand::Tag(args) => return super::image_io::tag(&mut c, args).await,
        ImageCommand::Save(args) => return super::image_io::save(&mut c, args).await,
        ImageCommand::Load(args) => return super::image_io::load(&mut c, args).await,
        ImageCommand::Import { path, name, tag } => {
            let abs = std::path::absolute(&path)
                .map_err(|e| CliError::engine(format!("{}: {e}", path.display())))?;
            let stream = c
                .import_image(ImportImageRequest {
                    path: abs.to_string_lossy().into_owned(),
                    name: name.unwrap_or_default(),
                    tag: tag.unwrap_or_default(),
                })
                .await?
                .into_inner();
            let i = follow(stream).await?;
            emit(&format!("{}\n", i.id))?;
        }
        ImageCommand::Build {
            name,
            binaries,
            ca_certs,
        } => {
            let binaries = binaries.iter().map(|b| resolve_bin(b)).collect();
            let stream = c
                .build_image(BuildImageRequest {
                    name,
                    binaries,
                    ca_certs,
                })
                .await?
                .into_inner();
            let i = follow(stream).await?;
            emit(&format!("{}\n", i.id))?;
        }
        ImageCommand::Ls { format } => {
            let images = c
                .list_images(ListImagesRequest {})
                .await?
                .into_inner()
                .images;
            match format {
                ImageFormat::Json => {
                    let arr: Vec<_> = images.iter().map(view).collect();
                    emit(&format!("{}\n", serde_json::Value::Array(arr)))?;
                }
                ImageFormat::Table => {
                    let now = now_seconds();
                    let rows: Vec<Vec<String>> = images
                        .iter()
                        .map(|i| {
                            vec![
                                if i.names.is_empty() {
                                    "<none>".to_owned()
                                } else {
                                    i.names.join(",")
                                },
                                short(&i.id).to_owned(),
                                i.source.clone(),
                                human_size(i.size_bytes),
                                i.created_at
                                    .as_ref()
                                    .map(|t| {
                                        format!("{} ago", human_duration(seconds_since(t, now)))
                                    })
                                    .unwrap_or_default(),
                                i.containers.to_string(),
                            ]
                        })
                        .collect();
                    emit(&render(
                        &[
                            "NAME",
                            "IMAGE ID",
                            "SOURCE",
                            "SIZE",
                            "CREATED",
                            "CONTAINERS",
                        ],
                        &rows,
                    ))?;
                }
            }
        }
        ImageCommand::Inspect { names } => {
            let mut arr = Vec::new();
            for name in names {
                let i = c
                    .inspect_image(InspectImageRequest { name })
                    .await?
                    .into_inner()
                    .image
                    .ok_or_else(|| CliError::engine("the daemon answered without the image"))?;
                arr.push(view(&i));
            }
            let text = serde_json::to_string_pretty(&serde_json::Value::Array(arr))?;
            emit(&format!("{text}\n"))?;
        }
        ImageCommand::Rm { names } => {
            for name in names {
                let id = c
                    .remove_image(RemoveImageRequest { name })
                    .await?
                    .into_inner()
                    .id;
                emit(&format!("{id}\n"))?;
            }
        }
        ImageCommand::Prune => {
            let p = c.prune_images(PruneImagesRequest {}).await?.into_inner();
            for id in &p.images {
                emit(&format!("deleted image {id}\n"))?;
            }
            for l in &p.layers {
                emit(&format!("deleted layer {l}\n"))?;
            }
            emit(&format!(
                "reclaimed {} of layers\n",
                human_size(p.reclaimed_bytes)
            ))?;
        }
    }
    Ok(0)
}

/// `quilt system df`.
pub async fn system_df(target: &client::Target) -> Result<u8, CliError> {
    let mut c = ImageServiceClient::new(client::connect_channel(target).await?);
    let usage = c.disk_usage(DiskUsageRequest {}).await?.into_inner().usage;
    let rows: Vec<Vec<String>> = usage
        .iter()
        .map(|u| {
            vec![
                u.kind.clone(),
                u.count.to_string(),
                human_size(u.size_bytes),
                u.size_bytes.to_string(),
                u.unique_bytes.to_string(),
            ]
        })
        .collect();
    emit(&render(
        &["TYPE", "COUNT", "SIZE", "BYTES", "UNIQUE BYTES"],
        &rows,
    ))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn ids() {
        assert_eq!(
            short(&format!("sha256:{}", "ab".repeat(32))),
            "abababababab"
        );
        assert_eq!(short("abc"), "abc");
    }
}
