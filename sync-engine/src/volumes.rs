//! Named volumes: rows in `volumes`, data at DATA_DIR/volumes/<name>/data.
//! They outlive containers and go only with RemoveVolume (refused while a
//! container uses one, unless forced).
use crate::config::EngineConfig;
use crate::engine::{Engine, Inner};
use crate::error::{EngineError, Result};
use crate::model::{Container, now_ns};
use crate::mounts::{self, MountSource, MountSpec};
use quilt_runtime::mounts::{MountConfig, MountKind};
use sqlx::Row;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A named volume and the containers that mount it.
#[derive(Debug, Clone)]
pub struct Volume {
    pub name: String,
    pub created_at_ns: i64,
    pub labels: BTreeMap<String, String>,
    pub used_by: Vec<String>,
}

pub(crate) fn volumes_dir(cfg: &EngineConfig) -> PathBuf {
    cfg.data_dir.join("volumes")
}

pub(crate) fn volume_data(cfg: &EngineConfig, name: &str) -> PathBuf {
    volumes_dir(cfg).join(name).join("data")
}

/// Containers (not being removed) whose mounts name the volume.
const USED_BY: &str = "SELECT c.id FROM containers c, json_each(c.mounts) m \
     WHERE c.state != 'removing' AND json_extract(m.value, '$.source.volume') = ?1 \
     ORDER BY c.created_at";

/// Checks the mounts of a CreateContainer request (bind sources are
/// canonicalised on the blocking pool). Nothing is written.
pub(crate) async fn check_mounts(inner: &Inner, m: &[MountSpec]) -> Result<Vec<MountSpec>> {
    if m.is_empty() {
        return Ok(Vec::new());
    }
    let m = m.to_vec();
    let data_dir = inner.cfg.data_dir.clone();
    let extra: Vec<PathBuf> = inner.cfg.socket_path.iter().cloned().collect();
    tokio::task::spawn_blocking(move || mounts::validate_all(&m, &data_dir, &extra)).await?
}

/// In the container's insert transaction: volumes it names that do not exist
/// yet are created (their directory is made when the container starts).
pub(crate) async fn insert_used(tx: &mut sqlx::SqliteConnection, c: &Container) -> Result<()> {
    for m in &c.mounts {
        if let MountSource::Volume(name) = &m.source {
            sqlx::query(
                "INSERT OR IGNORE INTO volumes (name, created_at, labels) VALUES (?, ?, '{}')",
            )
            .bind(name)
            .bind(now_ns())
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}

/// Before a start: a volume the container names that was force-removed since
/// it was created is created again (as `run -v NAME:/dst` would), so its
/// directory never exists without a row.
pub(crate) async fn recreate_missing(inner: &Inner, c: &Container) -> Result<()> {
    if !c
        .mounts
        .iter()
        .any(|m| matches!(m.source, MountSource::Volume(_)))
    {
        return Ok(());
    }
    let (writer, _) = inner.store.pools();
    let mut conn = writer.acquire().await?;
    insert_used(&mut conn, c).await
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
        mounts::volume_name(name)?;
        let (writer, _) = self.inner.store.pools();
        let labels_json = serde_json::to_string(&labels)
            .map_err(|e| EngineError::internal("encode labels", e))?;
        let r = sqlx::query(
            "INSERT OR IGNORE INTO volumes (name, created_at, labels) VALUES (?, ?, ?)",
        )
        .bind(name)
        .bind(now_ns())
        .bind(labels_json)
        .execute(writer)
        .await?;
        if r.rows_affected() == 0 {
            return Err(EngineError::AlreadyExists(format!(
                "volume {name:?} already exists"
            )));
        }
        let dir = volume_data(&self.inner.cfg, name);
        let made = tokio::task::spawn_blocking(move || std::fs::create_dir_all(&dir)).await?;
        if let Err(e) = made {
            let _ = sqlx::query("DELETE FROM volumes WHERE name = ?")
                .bind(name)
                .execute(writer)
                .await;
            return Err(EngineError::internal("create volume directory", e));
        }
        self.inspect_volume(name).await
    }

    pub async fn list_volumes(&self) -> Result<Vec<Volume>> {
        let (_, reader) = self.inner.store.pools();
        let rows = sqlx::query("SELECT name FROM volumes ORDER BY name")
            .fetch_all(reader)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let name: String = r.try_get("name")?;
            match self.inspect_volume(&name).await {
                Ok(v) => out.push(v),
                Err(EngineError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    pub async fn inspect_volume(&self, name: &str) -> Result<Volume> {
        mounts::volume_name(name)?;
        let (_, reader) = self.inner.store.pools();
        let row = sqlx::query("SELECT name, created_at, labels FROM volumes WHERE name = ?")
            .bind(name)
            .fetch_optional(reader)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no such volume: {name}")))?;
        let labels: String = row.try_get("labels")?;
        let used_by = sqlx::query(USED_BY)
            .bind(name)
            .fetch_all(reader)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Volume {
            name: row.try_get("name")?,
            created_at_ns: row.try_get("created_at")?,
            labels: serde_json::from_str(&labels).unwrap_or_default(),
            used_by,
        })
    }

    /// Removes the volume and its data. Refused while a container uses it
    /// unless `force`. The in-use check and the delete are one statement.
    pub async fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        mounts::volume_name(name)?;
        let (writer, _) = self.inner.store.pools();
        let r = if force {
            sqlx::query("DELETE FROM volumes WHERE name = ?1")
                .bind(name)
                .execute(writer)
                .await?
        } else {
            sqlx::query(&format!(
                "DELETE FROM volumes WHERE name = ?1 AND NOT EXISTS ({USED_BY})"
            ))
            .bind(name)
            .execute(writer)
            .await?
        };
        if r.rows_affected() == 0 {
            // Missing, or in use: tell which.
            let v = self.inspect_volume(name).await?;
            return Err(EngineError::FailedPrecondition(format!(
                "volume {name} is in use by {} container(s) ({}): remove them first or force the removal (volume rm -f)",
                v.used_by.len(),
                v.used_by
                    .iter()
                    .map(|id| crate::ids::short(id))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let dir = volumes_dir(&self.inner.cfg).join(name);
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
