//! Images as streams and new names: `commit` (a container's filesystem and
//! settings as a new image), `save` (images as a `docker save` archive
//! streamed to the client), `load` (an archive streamed from the client)
//! and `tag`. Archives are spooled in a private scratch directory of the
//! image store (removed afterwards; a crash leaves it to the start-up
//! sweep), every file operation on the blocking pool.
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::model::{ImageConfig, ImageInfo, State};
use crate::validate;
use quilt_runtime::image::archive::{self, ArchiveImage};
use quilt_runtime::image::{Progress, manifest};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// At most this many images in one save, changes in one commit.
const MAX_SAVE: usize = 64;
const MAX_CHANGES: usize = 64;
const MAX_CHANGE_LEN: usize = 64 * 1024;
const CHUNK: usize = super::copy::CHUNK;

/// What `commit` makes of a container besides its files.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The new image's name ("repo[:tag]"; ":latest" when no tag).
    pub name: Option<String>,
    /// Dockerfile instructions applied to the configuration: CMD,
    /// ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL.
    pub changes: Vec<String>,
    pub message: String,
    pub author: String,
    /// Freeze a running container while its files are read.
    pub pause: bool,
}

/// A user-given image name in docker's short form (`app` is `app:latest`).
pub(crate) fn image_name(name: &str) -> Result<String> {
    // "default", "sha256:..." and malformed names are refused as given.
    validate::image_name(name)?;
    let name = match quilt_registry::ImageRef::parse(name) {
        Ok(r) => r.familiar(),
        Err(_) => name.to_owned(),
    };
    validate::image_name(&name)?;
    Ok(name)
}

impl Engine {
    /// Gives the image SOURCE (name, id or unique prefix) the name TARGET.
    pub async fn tag_image(&self, source: &str, target: &str) -> Result<ImageInfo> {
        let target = image_name(target)?;
        let id = self.resolve_image(source).await?;
        if !self.shared.store().image_tag(&id, &target).await? {
            return Err(EngineError::NotFound(format!(
                "no such image: {}",
                validate::cut(source)
            )));
        }
        self.inspect_image(&id).await
    }

    /// A new image of the container's root filesystem (its image and what
    /// it changed, volumes and other mounts left out) and its settings.
    pub async fn commit_container(
        &self,
        reference: &str,
        opts: CommitOptions,
    ) -> Result<ImageInfo> {
        let name = opts.name.as_deref().map(image_name).transpose()?;
        if opts.changes.len() > MAX_CHANGES {
            return Err(EngineError::InvalidArgument(format!(
                "at most {MAX_CHANGES} changes"
            )));
        }
        let c = self.shared.resolve_here(reference).await?;
        let base = if quilt_runtime::image::parse_id(&c.image).is_some() {
            self.shared
                .store()
                .image_get(&c.image)
                .await?
                .map(|i| i.config)
                .unwrap_or_default()
        } else {
            ImageConfig::default()
        };
        let mut config = commit_config(&base, &c);
        for change in &opts.changes {
            apply_change(&mut config, change)?;
        }
        let images = self.shared.images().clone();
        let scratch = scratch_dir(&images, "commit").await?;
        let result = async {
            let paused = if opts.pause && c.state == State::Running {
                match self.pause(&c.id).await {
                    Ok(_) => true,
                    // It stopped or was paused meanwhile: read as it is.
                    Err(EngineError::FailedPrecondition(_)) => false,
                    Err(e) => return Err(e),
                }
            } else {
                false
            };
            let layer = scratch.join("layer.tar");
            let exported = self.export_to_file(&c.id, &layer).await;
            if paused && let Err(e) = self.unpause(&c.id).await {
                tracing::warn!(container = %c.id, error = %e, "cannot unpause after commit");
                return Err(EngineError::Internal(format!(
                    "container {} could not be unpaused after its files were read ({e}): unpause it; no image was made",
                    c.name
                )));
            }
            exported?;
            let mut rt = config.to_runtime();
            rt.created = Some(rfc3339(crate::model::now_ns()));
            if !opts.author.is_empty() {
                rt.author = Some(opts.author.clone());
            }
            rt.history = vec![manifest::History {
                created: rt.created.clone(),
                created_by: Some(format!("quilt commit {}", c.name)),
                author: rt.author.clone(),
                comment: (!opts.message.is_empty()).then(|| opts.message.clone()),
                empty_layer: false,
            }];
            let archive_path = scratch.join("image.tar");
            let img = ArchiveImage {
                layer: layer.clone(),
                config: rt,
                repo_tags: name.iter().cloned().collect(),
            };
            let (images2, path2) = (images.clone(), archive_path.clone());
            tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                let f = std::fs::File::create(&path2)?;
                let w = archive::write_docker_archive(std::io::BufWriter::new(f), &[img])?;
                w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                std::fs::remove_file(&layer)?;
                drop(images2);
                Ok(())
            })
            .await?
            .map_err(|e| EngineError::internal("write the committed image", e))?;
            let (tx, _rx) = mpsc::channel(1);
            self.import_fetched_layout(&archive_path, None, name.as_deref(), tx)
                .await
        }
        .await;
        remove_scratch(scratch).await;
        result
    }

    /// Streams a `docker save` archive of the images (names, ids or unique
    /// prefixes) into `tx`: each image as one layer (its root filesystem)
    /// and its configuration, named by the name it was asked by (or all its
    /// names when asked by id).
    pub async fn save_images(
        &self,
        references: &[String],
        tx: mpsc::Sender<Vec<u8>>,
    ) -> Result<()> {
        if references.is_empty() {
            return Err(EngineError::InvalidArgument(
                "name at least one image to save".into(),
            ));
        }
        if references.len() > MAX_SAVE {
            return Err(EngineError::InvalidArgument(format!(
                "at most {MAX_SAVE} images in one save"
            )));
        }
        // id -> (info, tags), in the order first asked.
        let mut chosen: Vec<(ImageInfo, Vec<String>)> = Vec::new();
        for r in references {
            let id = self.resolve_image(r).await?;
            let info = self.inspect_image(&id).await?;
            let by_id = info
                .id
                .trim_start_matches("sha256:")
                .starts_with(r.trim_start_matches("sha256:"));
            let tags: Vec<String> = if by_id {
                info.names.clone()
            } else {
                vec![image_name(r).unwrap_or_else(|_| r.clone())]
                    .into_iter()
                    .filter(|n| info.names.contains(n))
                    .collect()
            };
            match chosen.iter_mut().find(|(i, _)| i.id == info.id) {
                Some((_, t)) => {
                    for n in tags {
                        if !t.contains(&n) {
                            t.push(n);
                        }
                    }
                }
                None => chosen.push((info, tags)),
            }
        }
        let images = self.shared.images().clone();
        let scratch = scratch_dir(&images, "save").await?;
        let result = async {
            let path = scratch.join("archive.tar");
            let (images2, path2, dir) = (images.clone(), path.clone(), scratch.clone());
            tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                let mut parts = Vec::with_capacity(chosen.len());
                for (n, (info, tags)) in chosen.into_iter().enumerate() {
                    let rootfs = images2
                        .stored_rootfs(&info.id)
                        .map_err(std::io::Error::other)?;
                    let layer = dir.join(format!("layer-{n}.tar"));
                    let f = std::fs::File::create(&layer)?;
                    archive::tar_tree(&rootfs, false, std::io::BufWriter::new(f))?
                        .into_inner()
                        .map_err(|e| e.into_error())?;
                    let mut config = info.config.to_runtime();
                    config.created = Some(rfc3339(info.created_at_ns));
                    parts.push(ArchiveImage {
                        layer,
                        config,
                        repo_tags: tags,
                    });
                }
                let f = std::fs::File::create(&path2)?;
                archive::write_docker_archive(std::io::BufWriter::new(f), &parts)?
                    .into_inner()
                    .map_err(|e| e.into_error())?;
                for p in parts {
                    std::fs::remove_file(p.layer)?;
                }
                Ok(())
            })
            .await?
            .map_err(|e| EngineError::internal("write the archive", e))?;
            stream_file(&path, &tx, self.shared.cfg().copy_idle_timeout).await
        }
        .await;
        remove_scratch(scratch).await;
        result
    }

    /// Reads an archive from `rx` (a `docker save` archive, an OCI image
    /// layout tar or a rootfs tarball, optionally gzipped) and imports
    /// every image it holds, named as the archive names them.
    pub async fn load_images(
        &self,
        mut rx: mpsc::Receiver<Vec<u8>>,
        progress: mpsc::Sender<Progress>,
    ) -> Result<Vec<ImageInfo>> {
        let images = self.shared.images().clone();
        let scratch = scratch_dir(&images, "load").await?;
        let result = async {
            let path = scratch.join("archive");
            let mut f = tokio::fs::File::create(&path)
                .await
                .map_err(|e| EngineError::internal("spool the archive", e))?;
            let idle = self.shared.cfg().copy_idle_timeout;
            let mut size = 0u64;
            loop {
                match tokio::time::timeout(idle, rx.recv()).await {
                    Ok(Some(chunk)) => {
                        size += chunk.len() as u64;
                        f.write_all(&chunk)
                            .await
                            .map_err(|e| EngineError::internal("spool the archive", e))?;
                    }
                    Ok(None) => break,
                    Err(_) => {
                        return Err(EngineError::DeadlineExceeded(format!(
                            "the load was idle for {} s: the client sent nothing",
                            idle.as_secs_f64()
                        )));
                    }
                }
            }
            f.flush()
                .await
                .map_err(|e| EngineError::internal("spool the archive", e))?;
            drop(f);
            if size == 0 {
                return Err(EngineError::InvalidArgument("the archive is empty".into()));
            }
            let names = {
                let (images, path) = (images.clone(), path.clone());
                tokio::task::spawn_blocking(move || images.archive_names(&path))
                    .await?
                    .map_err(EngineError::from)?
            };
            let mut loaded = Vec::new();
            if names.len() <= 1 {
                let tags = names.into_iter().next().unwrap_or_default();
                let info = self
                    .import_fetched_layout(&path, None, None, progress.clone())
                    .await?;
                loaded.push(self.name_loaded(info, &tags).await?);
            } else {
                for tags in names {
                    let Some(first) = tags.first() else {
                        return Err(EngineError::InvalidArgument(
                            "the archive holds several images and one of them has no name".into(),
                        ));
                    };
                    let info = self
                        .import_fetched_layout(&path, Some(first), None, progress.clone())
                        .await?;
                    loaded.push(self.name_loaded(info, &tags).await?);
                }
            }
            Ok(loaded)
        }
        .await;
        remove_scratch(scratch).await;
        result
    }

    /// Names a loaded image as the archive does (names that are not valid
    /// image names are refused).
    async fn name_loaded(&self, info: ImageInfo, tags: &[String]) -> Result<ImageInfo> {
        for t in tags {
            let name = image_name(t)?;
            self.shared.store().image_tag(&info.id, &name).await?;
        }
        self.inspect_image(&info.id).await
    }

    /// Writes the container's root filesystem as a tar file.
    async fn export_to_file(&self, id: &str, path: &Path) -> Result<()> {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4);
        let p: PathBuf = path.to_path_buf();
        let writer = tokio::spawn(async move {
            let mut f = tokio::fs::File::create(&p).await?;
            while let Some(chunk) = rx.recv().await {
                f.write_all(&chunk).await?;
            }
            f.flush().await?;
            f.sync_all().await
        });
        let exported = self.export_container(id, tx).await;
        let written = writer.await?;
        exported?;
        written.map_err(|e| EngineError::internal("write the container's files", e))
    }
}

/// Streams a file into `tx` in chunks; the client has `idle` to take each.
async fn stream_file(
    path: &Path,
    tx: &mpsc::Sender<Vec<u8>>,
    idle: std::time::Duration,
) -> Result<()> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| EngineError::internal("read the archive", e))?;
    loop {
        let mut buf = vec![0u8; CHUNK];
        let n = f
            .read(&mut buf)
            .await
            .map_err(|e| EngineError::internal("read the archive", e))?;
        if n == 0 {
            return Ok(());
        }
        buf.truncate(n);
        match tokio::time::timeout(idle, tx.send(buf)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(EngineError::Unavailable("the client went away".into())),
            Err(_) => {
                return Err(EngineError::DeadlineExceeded(format!(
                    "the save was idle for {} s: the client read nothing",
                    idle.as_secs_f64()
                )));
            }
        }
    }
}

/// A private scratch directory of the image store (blocking pool).
async fn scratch_dir(
    images: &quilt_runtime::image::ImageStore,
    what: &'static str,
) -> Result<PathBuf> {
    let images = images.clone();
    tokio::task::spawn_blocking(move || images.scratch_dir(what))
        .await?
        .map_err(|e| EngineError::internal("make a scratch directory", e))
}

async fn remove_scratch(dir: PathBuf) {
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
}

/// Unix nanoseconds as RFC 3339 (UTC).
fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The configuration a committed image starts from: the base image's, with
/// the container's command, environment, working directory, user and
/// labels (docker's commit does the same).
fn commit_config(base: &ImageConfig, c: &crate::model::Container) -> ImageConfig {
    let mut config = base.clone();
    // The container's argv is the image's entrypoint followed by its
    // arguments: kept apart when it still starts with that entrypoint.
    if !base.entrypoint.is_empty() && c.command.starts_with(&base.entrypoint) {
        config.cmd = c.command[base.entrypoint.len()..].to_vec();
    } else {
        config.entrypoint = Vec::new();
        config.cmd = c.command.clone();
    }
    config.env = c.env.clone();
    config.working_dir = c.working_dir.clone();
    if let Some(u) = &c.security.user {
        config.user = u.clone();
    }
    config
        .labels
        .extend(c.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    config
}

/// Applies one Dockerfile instruction of `commit --change`.
fn apply_change(config: &mut ImageConfig, change: &str) -> Result<()> {
    let bad = |why: &str| {
        EngineError::InvalidArgument(format!("invalid change {}: {why}", validate::echo(change)))
    };
    if change.len() > MAX_CHANGE_LEN || change.contains('\0') {
        return Err(bad("too long or holds a NUL byte"));
    }
    let change = change.trim();
    let (word, rest) = change
        .split_once(char::is_whitespace)
        .map(|(w, r)| (w, r.trim()))
        .unwrap_or((change, ""));
    if rest.is_empty() {
        return Err(bad("an instruction and its arguments are expected"));
    }
    // The exec (JSON) form, or the shell form run by /bin/sh -c.
    let argv = |rest: &str| -> Result<Vec<String>> {
        if rest.starts_with('[') {
            serde_json::from_str::<Vec<String>>(rest)
                .map_err(|_| bad("a JSON list of strings is expected"))
        } else {
            Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
        }
    };
    match word.to_ascii_uppercase().as_str() {
        "CMD" => config.cmd = argv(rest)?,
        "ENTRYPOINT" => config.entrypoint = argv(rest)?,
        "WORKDIR" => {
            if !rest.starts_with('/') {
                return Err(bad("WORKDIR must be absolute"));
            }
            config.working_dir = rest.into();
        }
        "USER" => config.user = rest.into(),
        "STOPSIGNAL" => config.stop_signal = rest.into(),
        "ENV" => {
            for (k, v) in pairs(rest).ok_or_else(|| bad("KEY=VALUE pairs are expected"))? {
                let entry = format!("{k}={v}");
                validate::env_entry(&entry)?;
                config
                    .env
                    .retain(|e| e.split('=').next() != Some(k.as_str()));
                config.env.push(entry);
            }
        }
        "LABEL" => {
            for (k, v) in pairs(rest).ok_or_else(|| bad("KEY=VALUE pairs are expected"))? {
                config.labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            for p in rest.split_whitespace() {
                let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                if port.parse::<u16>().map_or(true, |n| n == 0)
                    || !matches!(proto, "tcp" | "udp" | "sctp")
                {
                    return Err(bad("EXPOSE takes PORT[/tcp|udp|sctp]"));
                }
                let key = format!("{port}/{proto}");
                if !config.exposed_ports.contains(&key) {
                    config.exposed_ports.push(key);
                }
            }
        }
        _ => {
            return Err(bad(
                "only CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER and WORKDIR can be changed",
            ));
        }
    }
    Ok(())
}

/// `K=V K2="v 2"` pairs (double quotes group), or the legacy `K V` form.
fn pairs(s: &str) -> Option<Vec<(String, String)>> {
    if !s.contains('=') {
        let (k, v) = s.split_once(char::is_whitespace)?;
        return Some(vec![(k.to_owned(), v.trim().to_owned())]);
    }
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        chars.next()?; // '='
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())));
        }
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            return None;
        }
        out.insert(key, value);
    }
    Some(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes() {
        let mut c = ImageConfig::default();
        apply_change(&mut c, r#"CMD ["python", "-m", "http.server"]"#).unwrap();
        assert_eq!(c.cmd, ["python", "-m", "http.server"]);
        apply_change(&mut c, "ENTRYPOINT echo hi").unwrap();
        assert_eq!(c.entrypoint, ["/bin/sh", "-c", "echo hi"]);
        apply_change(&mut c, r#"ENV A=1 B="two words""#).unwrap();
        apply_change(&mut c, "ENV A 3").unwrap();
        assert_eq!(c.env, ["B=two words", "A=3"]);
        apply_change(&mut c, "EXPOSE 80 53/udp").unwrap();
        assert_eq!(c.exposed_ports, ["80/tcp", "53/udp"]);
        apply_change(&mut c, "LABEL x=y").unwrap();
        assert_eq!(c.labels.get("x").map(String::as_str), Some("y"));
        for bad in [
            "RUN rm -rf /",
            "CMD",
            "WORKDIR rel",
            "EXPOSE 0",
            "CMD [1, 2]",
            "ENV =x",
        ] {
            assert!(apply_change(&mut c, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn short_names() {
        assert_eq!(image_name("app").unwrap(), "app:latest");
        assert_eq!(image_name("docker.io/library/app:1").unwrap(), "app:1");
        assert!(image_name("default").is_err());
        assert!(image_name("a b").is_err());
    }
}
