//! Named volumes (rows in `volumes`, data at DATA_DIR/volumes/<name>/data)
//! and the mounts of a container as the runtime makes them. Volumes outlive
//! containers and go only with RemoveVolume (refused while a container uses
//! one, unless forced).
use crate::config::EngineConfig;
use crate::engine::{Engine, Shared};
use crate::error::{EngineError, Result};
use crate::model::{MountSource, MountSpec, Volume};
use crate::validate;
use quilt_runtime::mounts::{MountConfig, MountKind};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub(crate) fn volumes_dir(cfg: &EngineConfig) -> PathBuf {
    cfg.data_dir.join("volumes")
}

pub(crate) fn volume_data(cfg: &EngineConfig, name: &str) -> PathBuf {
    volumes_dir(cfg).join(name).join("data")
}

/// Checks the mounts of a CreateContainer request (bind sources are
/// canonicalised on the blocking pool). Nothing is written.
pub(crate) async fn check_mounts(shared: &Shared, m: &[MountSpec]) -> Result<Vec<MountSpec>> {
    if m.is_empty() {
        return Ok(Vec::new());
    }
    let m = m.to_vec();
    let data_dir = shared.cfg().data_dir.clone();
    let extra: Vec<PathBuf> = shared.cfg().sockets();
    tokio::task::spawn_blocking(move || validate::mounts(&m, &data_dir, &extra)).await?
}

/// The mounts as the shim makes them.
pub(crate) fn runtime_mounts(cfg: &EngineConfig, m: &[MountSpec]) -> Vec<MountConfig> {
    m.iter()
        .map(|m| MountConfig {
            target: m.target.clone(),
            read_only: m.read_only,
            kind: match &m.source {
                MountSource::Volume(n) => MountKind::Bind {
                    source: volume_data(cfg, n),
                    create: true,
                },
                MountSource::Bind(p) => MountKind::Bind {
                    source: PathBuf::from(p),
                    create: false,
                },
                MountSource::Tmpfs { size_bytes } => MountKind::Tmpfs {
                    size_bytes: *size_bytes,
                },
            },
        })
        .collect()
}

/// Blocking: creates the data directories of the volumes among `mounts`;
/// bind sources must still exist.
pub(crate) fn ensure_sources(mounts: &[MountConfig]) -> std::result::Result<(), String> {
    for m in mounts {
        match &m.kind {
            MountKind::Bind {
                source,
                create: true,
            } => std::fs::create_dir_all(source)
                .map_err(|e| format!("create volume directory {}: {e}", source.display()))?,
            MountKind::Bind { source, .. } if !source.exists() => {
                return Err(format!("bind mount source {} is gone", source.display()));
            }
            _ => {}
        }
    }
    Ok(())
}

impl Engine {
    pub async fn create_volume(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<Volume> {
        validate::volume_name(name)?;
        let store = self.shared.store();
        if !store.volume_insert(name, &labels).await? {
            return Err(EngineError::AlreadyExists(format!(
                "volume {name:?} already exists"
            )));
        }
        let dir = volume_data(self.shared.cfg(), name);
        let made = tokio::task::spawn_blocking(move || std::fs::create_dir_all(&dir)).await?;
        if let Err(e) = made {
            let _ = store.volume_delete(name, true).await;
            return Err(EngineError::internal("create volume directory", e));
        }
        self.inspect_volume(name).await
    }

    pub async fn list_volumes(&self) -> Result<Vec<Volume>> {
        let store = self.shared.store();
        let mut out = Vec::new();
        for name in store.volume_names().await? {
            // Removed between the two reads: skipped.
            out.extend(store.volume_get(&name).await?);
        }
        Ok(out)
    }

    pub async fn inspect_volume(&self, name: &str) -> Result<Volume> {
        validate::volume_name(name)?;
        self.shared
            .store()
            .volume_get(name)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no such volume: {name}")))
    }

    /// Removes the volume and its data. Refused while a container uses it
    /// unless `force`. The in-use check and the delete are one statement.
    pub async fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        validate::volume_name(name)?;
        if !self.shared.store().volume_delete(name, force).await? {
            // Missing, or in use: tell which.
            let v = self.inspect_volume(name).await?;
            return Err(EngineError::FailedPrecondition(format!(
                "volume {name} is in use by {} container(s) ({}): remove them first or force the removal (volume rm -f)",
                v.used_by.len(),
                v.used_by
                    .iter()
                    .map(|id| crate::support::ids::short(id))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let dir = volumes_dir(self.shared.cfg()).join(name);
        tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(EngineError::internal(
                &format!("remove {}", dir.display()),
                e,
            )),
        })
        .await?
    }
}
