//! The image store as the API sees it: import, host builds, list, inspect
//! and remove, plus resolving the IMAGE of CreateContainer. Files live in
//! the runtime's ImageStore (all file work on the blocking pool); names and
//! metadata in SQLite (store/images.rs).
use crate::engine::{Engine, Shared, Waited};
use crate::error::{EngineError, Result};
use crate::model::{DiskUsage, ImageConfig, ImageInfo, Pruned, now_ns};
use crate::validate;
use quilt_runtime::image::{DEFAULT_IMAGE, Imported, Progress};
use std::path::PathBuf;
use tokio::sync::mpsc;

/// How long RemoveImage waits for containers already being removed.
const REMOVAL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// What CreateContainer stores as the container's image: "default" and
/// absolute paths as given, a stored image's name or id as its full id (so
/// that re-pointing the name later does not change the container).
pub(crate) async fn resolve_for_create(shared: &Shared, image: &str) -> Result<String> {
    if image == DEFAULT_IMAGE || image.starts_with('/') || image.is_empty() {
        return Ok(image.to_owned());
    }
    if let Some(id) = resolve_name(shared, image).await? {
        return Ok(id);
    }
    if quilt_registry::looks_like_reference(image) {
        return Err(EngineError::NotFound(format!(
            "no such image: {} (pull it first: quilt pull {0})",
            validate::cut(image)
        )));
    }
    if image.contains('/')
        || image.ends_with(".tar")
        || image.ends_with(".tgz")
        || image.ends_with(".gz")
    {
        // A relative path: the runtime explains what is expected.
        return Ok(image.to_owned());
    }
    Err(EngineError::NotFound(format!(
        "no such image: {} (see `quilt image ls`)",
        validate::cut(image)
    )))
}

/// Applies a stored image's configuration to a container about to be
/// created, with docker's rules: the entrypoint is the caller's
/// (`--entrypoint`, an empty one clearing the image's) or the image's; the
/// arguments are the caller's command, or when it is empty the image's Cmd
/// (not used when the caller replaced the entrypoint); the image's Env comes
/// first and the caller's entries override it per key; WorkingDir and User
/// apply when the caller gave none. Other images have no configuration: the
/// entrypoint alone is prepended.
pub(crate) async fn apply_config(
    shared: &Shared,
    image: &str,
    spec: &mut crate::model::CreateSpec,
) -> Result<()> {
    let config = if quilt_runtime::image::parse_id(image).is_some() {
        shared
            .store()
            .image_get(image)
            .await?
            .map(|i| i.config)
            .unwrap_or_default()
    } else {
        ImageConfig::default()
    };
    let entrypoint = spec
        .entrypoint
        .clone()
        .unwrap_or_else(|| config.entrypoint.clone());
    let args = if !spec.command.is_empty() {
        std::mem::take(&mut spec.command)
    } else if spec.entrypoint.is_some() {
        Vec::new()
    } else {
        config.cmd.clone()
    };
    spec.command = entrypoint.into_iter().chain(args).collect();
    if spec.command.is_empty() {
        return Err(EngineError::InvalidArgument(format!(
            "the command is empty: image {} sets no Entrypoint or Cmd; give the program to run",
            validate::cut(&spec.image)
        )));
    }
    if !config.env.is_empty() {
        // An image entry that is not KEY=VALUE cannot be set: left out.
        let mine = std::mem::take(&mut spec.env);
        spec.env = config
            .env
            .into_iter()
            .filter(|e| validate::env_entry(e).is_ok())
            .chain(mine)
            .collect();
    }
    if spec.working_dir.is_none() && !config.working_dir.is_empty() {
        let w = config.working_dir;
        spec.working_dir = Some(if w.starts_with('/') {
            w
        } else {
            format!("/{w}")
        });
    }
    if spec.security.user.is_none() && !config.user.is_empty() {
        spec.security.user = Some(config.user);
    }
    Ok(())
}

/// A stored image by name or id, or by the short name of a registry
/// reference (`docker.io/library/python:3.12` and `python` find the image
/// pulled as `python:3.12` and `python:latest`).
async fn resolve_name(shared: &Shared, image: &str) -> Result<Option<String>> {
    if let Some(id) = shared.store().image_resolve(image).await? {
        return Ok(Some(id));
    }
    match quilt_registry::ImageRef::parse(image) {
        Ok(r) if r.familiar() != image => shared.store().image_resolve(&r.familiar()).await,
        _ => Ok(None),
    }
}

/// Forwards progress to the API stream; a slow reader loses reports, never
/// stalls the import.
fn forward(tx: mpsc::Sender<Progress>) -> impl FnMut(Progress) + Send {
    move |p| {
        let _ = tx.try_send(p);
    }
}

impl Engine {
    /// Imports the file or directory at PATH (absolute, on this host),
    /// optionally naming it.
    pub async fn import_image(
        &self,
        path: &str,
        name: Option<&str>,
        progress: mpsc::Sender<Progress>,
    ) -> Result<ImageInfo> {
        self.import_image_tagged(path, None, name, progress).await
    }

    /// `import_image` choosing the image of a multi-image OCI layout or
    /// `docker save` archive by TAG (see `ImageStore::import_tagged`).
    /// Without a tag, a PATH that does not exist but whose "PATH:TAG"
    /// split does is taken as that.
    pub async fn import_image_tagged(
        &self,
        path: &str,
        tag: Option<&str>,
        name: Option<&str>,
        progress: mpsc::Sender<Progress>,
    ) -> Result<ImageInfo> {
        if let Some(n) = name {
            validate::image_name(n)?;
        }
        if let Some(t) = tag
            && (t.is_empty() || t.len() > 512 || t.chars().any(char::is_control))
        {
            return Err(EngineError::InvalidArgument(format!(
                "invalid image tag {}",
                validate::echo(t)
            )));
        }
        let (path, tag) = match tag {
            Some(t) => (path.to_owned(), Some(t.to_owned())),
            None => split_tag(path),
        };
        let path = path.as_str();
        let p = PathBuf::from(path);
        if !p.is_absolute() {
            return Err(EngineError::InvalidArgument(format!(
                "the path to import must be absolute: {}",
                validate::echo(path)
            )));
        }
        let images = self.shared.images().clone();
        let data_dir = self.shared.cfg().data_dir.clone();
        let extra: Vec<PathBuf> = self.shared.cfg().sockets();
        // Held until the image (and so its layers) is recorded.
        let _gc = self.shared.layer_gc().read().await;
        let imported = tokio::task::spawn_blocking(move || {
            check_source(&p)?;
            // Never read the host's root, /proc, the data dir (which would
            // also copy the store into itself) and the like as an image.
            if p.is_dir() {
                validate::host_path("import source", path_str(&p), &data_dir, &extra)?;
            }
            let mut fwd = forward(progress);
            images
                .import_tagged(&p, tag.as_deref(), &mut fwd)
                .map_err(EngineError::from)
        })
        .await??;
        self.record(imported, name).await
    }

    /// Imports an OCI image layout the daemon itself wrote (a registry
    /// pull's download directory, which may be under the data dir), choosing
    /// the image by `tag` when the layout holds several, and names it. The
    /// caller's checks on user-given paths do not apply; everything else
    /// (digests, layer store, configuration, refcounts) is as `import_image`.
    pub async fn import_fetched_layout(
        &self,
        layout: &std::path::Path,
        tag: Option<&str>,
        name: Option<&str>,
        progress: mpsc::Sender<Progress>,
    ) -> Result<ImageInfo> {
        if let Some(n) = name {
            validate::image_name(n)?;
        }
        let images = self.shared.images().clone();
        let layout = layout.to_path_buf();
        let tag = tag.map(str::to_owned);
        let _gc = self.shared.layer_gc().read().await;
        let imported = tokio::task::spawn_blocking(move || {
            let mut fwd = forward(progress);
            images
                .import_tagged(&layout, tag.as_deref(), &mut fwd)
                .map_err(EngineError::from)
        })
        .await??;
        self.record(imported, name).await
    }

    /// Builds image NAME from host programs.
    pub async fn build_image(
        &self,
        name: &str,
        binaries: Vec<String>,
        ca_certs: bool,
        progress: mpsc::Sender<Progress>,
    ) -> Result<ImageInfo> {
        validate::image_name(name)?;
        if binaries.is_empty() {
            return Err(EngineError::InvalidArgument(
                "name at least one host binary to include".into(),
            ));
        }
        let images = self.shared.images().clone();
        let imported = tokio::task::spawn_blocking(move || {
            let mut fwd = forward(progress);
            images.build_from_host(&binaries, ca_certs, &mut fwd)
        })
        .await?
        .map_err(EngineError::from)?;
        self.record(imported, Some(name)).await
    }

    pub(crate) async fn record(&self, imported: Imported, name: Option<&str>) -> Result<ImageInfo> {
        let info = ImageInfo {
            id: imported.id,
            names: Vec::new(),
            size_bytes: imported.size_bytes,
            created_at_ns: now_ns(),
            source: imported.source.to_owned(),
            layers: imported.layers,
            containers: 0,
            config: imported
                .config
                .as_ref()
                .map(ImageConfig::from_runtime)
                .unwrap_or_default(),
        };
        self.shared
            .store()
            .image_add(&info, &imported.layer_sizes, name)
            .await?;
        self.shared
            .store()
            .image_get(&info.id)
            .await?
            .ok_or_else(|| EngineError::Internal(format!("image {} vanished", info.id)))
    }

    pub async fn list_images(&self) -> Result<Vec<ImageInfo>> {
        self.shared.store().image_list().await
    }

    /// By name, "sha256:<hex>" id, or unique hex prefix.
    pub async fn inspect_image(&self, reference: &str) -> Result<ImageInfo> {
        let id = self.resolve_image(reference).await?;
        self.shared
            .store()
            .image_get(&id)
            .await?
            .ok_or_else(|| no_such_image(reference))
    }

    /// Removes a name when the image has others; otherwise the image and
    /// its files, refused (FAILED_PRECONDITION) while a container uses it.
    /// Returns the image id.
    pub async fn remove_image(&self, reference: &str) -> Result<String> {
        let id = self.resolve_image(reference).await?;
        let info = self
            .shared
            .store()
            .image_get(&id)
            .await?
            .ok_or_else(|| no_such_image(reference))?;
        // The name as given, or in docker's short form (`app` for
        // `app:latest`): only that name goes when the image has others.
        let short = super::image_io::image_name(reference).ok();
        let named = info
            .names
            .iter()
            .find(|n| *n == reference || short.as_deref() == Some(n.as_str()));
        if info.names.len() > 1
            && let Some(name) = named
        {
            self.shared.store().image_untag(name).await?;
            return Ok(id);
        }
        self.wait_for_removals(&id).await?;
        let _gc = self.shared.layer_gc().write().await;
        let Some(orphans) = self.shared.store().image_delete(&id).await? else {
            return Err(no_such_image(reference));
        };
        self.remove_files(vec![id.clone()], orphans).await?;
        Ok(id)
    }

    /// Removes the images that have no name and no container, then the
    /// layers no image uses.
    pub async fn prune_images(&self) -> Result<Pruned> {
        let _gc = self.shared.layer_gc().write().await;
        let (ids, orphans) = self.shared.store().image_prune().await?;
        let pruned = Pruned {
            images: ids.clone(),
            layers: orphans.iter().map(|(d, _)| d.clone()).collect(),
            reclaimed_bytes: orphans.iter().map(|(_, n)| n).sum(),
        };
        self.remove_files(ids, orphans).await?;
        Ok(pruned)
    }

    /// Deletes the files of removed images and layers (their rows are gone).
    async fn remove_files(&self, ids: Vec<String>, layers: Vec<(String, u64)>) -> Result<()> {
        // Warm pools' waiting containers use these files as their root,
        // and so do layers made ahead.
        self.shared.pool().discard_images(&self.shared, &ids).await;
        let images = self.shared.images().clone();
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            let roots: Vec<_> = ids
                .iter()
                .filter_map(|id| images.stored_rootfs(id).ok())
                .collect();
            shared.layers().forget(&roots);
            for id in &ids {
                images.remove_stored(id).map_err(EngineError::from)?;
            }
            let digests: Vec<String> = layers.into_iter().map(|(d, _)| d).collect();
            images
                .remove_layers(&digests)
                .map_err(|e| EngineError::Internal(format!("remove layers: {e}")))
        })
        .await?
    }

    /// Disk use of images, layers, containers and volumes.
    pub async fn disk_usage(&self) -> Result<Vec<DiskUsage>> {
        let store = self.shared.store();
        let images = store.image_list().await?;
        let (layer_count, layer_bytes) = store.layer_usage().await?;
        let containers = store.list(&crate::model::ListFilter::default()).await?;
        let volumes = self.list_volumes().await?;
        let roots = (
            self.shared.images().root().to_path_buf(),
            self.shared.cfg().containers_dir(),
            super::volumes::volumes_dir(self.shared.cfg()),
            self.shared.cfg().trash_dir(),
        );
        let (store_bytes, container_bytes, volume_bytes) = tokio::task::spawn_blocking(move || {
            use quilt_runtime::image::disk_bytes;
            (
                disk_bytes(&roots.0),
                // Removed containers' files not deleted yet are theirs.
                disk_bytes(&roots.1) + disk_bytes(&roots.3),
                disk_bytes(&roots.2),
            )
        })
        .await?;
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Ok(vec![
            DiskUsage {
                kind: "images",
                count: count(images.len()),
                size_bytes: store_bytes,
                unique_bytes: store_bytes.saturating_sub(layer_bytes),
            },
            DiskUsage {
                kind: "layers",
                count: layer_count,
                size_bytes: layer_bytes,
                unique_bytes: 0,
            },
            DiskUsage {
                kind: "containers",
                count: count(containers.len()),
                size_bytes: container_bytes,
                unique_bytes: container_bytes,
            },
            DiskUsage {
                kind: "volumes",
                count: count(volumes.len()),
                size_bytes: volume_bytes,
                unique_bytes: volume_bytes,
            },
        ])
    }

    /// When every container using the image is already being removed (as
    /// right after `run --rm`), waits (bounded) for the removals to finish.
    async fn wait_for_removals(&self, id: &str) -> Result<()> {
        let shared = &self.shared;
        let deadline = tokio::time::Instant::now() + REMOVAL_WAIT;
        let mut watch = shared.watch();
        let users = shared.store().image_users(id).await?;
        if users.is_empty() || !users.iter().all(|(_, s)| s.is_removing()) {
            return Ok(());
        }
        for (user, _) in users {
            let gone = |row: Option<&crate::model::Container>| row.is_none();
            let waited = shared
                .wait_until(
                    &mut watch,
                    &user,
                    gone,
                    Some(deadline),
                    std::future::pending(),
                )
                .await?;
            if !matches!(waited, Waited::Met(_)) {
                return Ok(()); // the delete below reports who still uses it
            }
        }
        Ok(())
    }

    pub(crate) async fn resolve_image(&self, reference: &str) -> Result<String> {
        if reference.is_empty() {
            return Err(EngineError::InvalidArgument("empty image reference".into()));
        }
        resolve_name(&self.shared, reference)
            .await?
            .ok_or_else(|| no_such_image(reference))
    }
}

/// "PATH:TAG" -> (PATH, TAG) when PATH exists and PATH:TAG does not;
/// otherwise the path as given, without a tag.
fn split_tag(path: &str) -> (String, Option<String>) {
    let exists = |p: &str| std::path::Path::new(p).symlink_metadata().is_ok();
    if exists(path) {
        return (path.to_owned(), None);
    }
    // The first split whose path exists: a docker tag ("repo:tag") may
    // hold a ':' itself.
    for (i, _) in path.match_indices(':') {
        let (p, t) = (&path[..i], &path[i + 1..]);
        if !t.is_empty() && !p.is_empty() && exists(p) {
            return (p.to_owned(), Some(t.to_owned()));
        }
    }
    (path.to_owned(), None)
}

fn no_such_image(reference: &str) -> EngineError {
    EngineError::NotFound(format!("no such image: {}", validate::cut(reference)))
}

/// An import source must be a readable regular file or directory: a
/// device, FIFO or socket (which could be read for ever, or block) is the
/// caller's mistake, and so is a path that cannot be read.
fn check_source(p: &std::path::Path) -> Result<()> {
    let shown = validate::echo(path_str(p));
    let meta = std::fs::metadata(p).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            EngineError::NotFound(format!("import source {shown} does not exist"))
        }
        _ => EngineError::InvalidArgument(format!("cannot read the import source {shown}: {e}")),
    })?;
    if !meta.is_file() && !meta.is_dir() {
        return Err(EngineError::InvalidArgument(format!(
            "the import source {shown} is not a regular file or a directory"
        )));
    }
    let readable = if meta.is_dir() {
        std::fs::read_dir(p).map(drop)
    } else {
        std::fs::File::open(p).map(drop)
    };
    readable.map_err(|e| {
        EngineError::InvalidArgument(format!("cannot read the import source {shown}: {e}"))
    })
}

fn path_str(p: &std::path::Path) -> &str {
    p.to_str().unwrap_or_default()
}
