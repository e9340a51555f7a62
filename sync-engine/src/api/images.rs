//! The image store as the API sees it: import, host builds, list, inspect
//! and remove, plus resolving the IMAGE of CreateContainer. Files live in
//! the runtime's ImageStore (all file work on the blocking pool); names and
//! metadata in SQLite (store/images.rs).
use crate::engine::{Engine, Shared, Waited};
use crate::error::{EngineError, Result};
use crate::model::{ImageInfo, now_ns};
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
        if let Some(n) = name {
            validate::image_name(n)?;
        }
        let p = PathBuf::from(path);
        if !p.is_absolute() {
            return Err(EngineError::InvalidArgument(format!(
                "the path to import must be absolute: {}",
                validate::echo(path)
            )));
        }
        let images = self.shared.images().clone();
        let data_dir = self.shared.cfg().data_dir.clone();
        let extra: Vec<PathBuf> = self.shared.cfg().socket_path.iter().cloned().collect();
        let imported = tokio::task::spawn_blocking(move || {
            check_source(&p)?;
            // Never read the host's root, /proc, the data dir (which would
            // also copy the store into itself) and the like as an image.
            if p.is_dir() {
                validate::host_path("import source", path_str(&p), &data_dir, &extra)?;
            }
            let mut fwd = forward(progress);
            images.import(&p, &mut fwd).map_err(EngineError::from)
        })
        .await??;
        self.record(imported, name).await
    }

    /// Builds image NAME from host programs.
    pub async fn build_image(
        &self,
        name: &str,
        binaries: Vec<String>,
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
            images.build_from_host(&binaries, &mut fwd)
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
        };
        self.shared.store().image_add(&info, name).await?;
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
        if info.names.len() > 1 && info.names.iter().any(|n| n == reference) {
            self.shared.store().image_untag(reference).await?;
            return Ok(id);
        }
        self.wait_for_removals(&id).await?;
        if !self.shared.store().image_delete(&id).await? {
            return Err(no_such_image(reference));
        }
        let images = self.shared.images().clone();
        let rm_id = id.clone();
        tokio::task::spawn_blocking(move || images.remove_stored(&rm_id))
            .await?
            .map_err(EngineError::from)?;
        Ok(id)
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

    async fn resolve_image(&self, reference: &str) -> Result<String> {
        if reference.is_empty() {
            return Err(EngineError::InvalidArgument("empty image reference".into()));
        }
        resolve_name(&self.shared, reference)
            .await?
            .ok_or_else(|| no_such_image(reference))
    }
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
