//! Named volumes: one row each (their data lives at
//! DATA_DIR/volumes/<name>/data). A volume is used by the containers, not
//! being removed, whose mounts name it.
use super::{Conn, Db, dialect};
use crate::error::{EngineError, Result};
use crate::model::state::IN_USE;
use crate::model::{Container, MountSource, Volume, now_ns};
use crate::store::{SqlStore, json, states_sql};
use sqlx::Row;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// The ids of the containers using volume ?1, oldest first.
static USED_BY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT c.id FROM containers c, {} \
         WHERE c.state IN ({}) AND {} = $1 \
         ORDER BY c.created_at",
        dialect::json_elements("c.mounts", "m"),
        states_sql(IN_USE),
        dialect::json_text("m.value", &["source", "volume"])
    )
});

/// In a container's insert transaction (or before its start): the volumes
/// it names that do not exist yet are created (their directory is made when
/// the container starts).
pub(super) async fn insert_used(conn: &mut Conn, c: &Container) -> Result<()> {
    for m in &c.mounts {
        if let MountSource::Volume(name) = &m.source {
            sqlx::query(
                "INSERT INTO volumes (name, created_at, labels) VALUES ($1, $2, '{}') \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(now_ns())
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

impl SqlStore<Db> {
    /// Records a new volume; false when the name is taken.
    pub async fn volume_insert(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool> {
        let r = db_write!(self, |c| {
            Ok(sqlx::query(
                "INSERT INTO volumes (name, created_at, labels) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(now_ns())
            .bind(json(labels))
            .execute(&mut *c)
            .await?)
        })?;
        Ok(r.rows_affected() == 1)
    }

    /// Before a start: the volumes a container names that were
    /// force-removed since it was created get their rows back, so a volume
    /// directory never exists without a row.
    pub async fn volumes_ensure(&self, c: &Container) -> Result<()> {
        if !c.uses_volumes() {
            return Ok(());
        }
        db_write!(self, |conn| insert_used(conn, c).await)
    }

    /// Every volume name, in order.
    pub async fn volume_names(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT name FROM volumes ORDER BY name")
            .fetch_all(&self.reader)
            .await?)
    }

    /// A volume and the containers using it; None when there is no such row.
    pub async fn volume_get(&self, name: &str) -> Result<Option<Volume>> {
        let Some(row) = sqlx::query("SELECT name, created_at, labels FROM volumes WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
        else {
            return Ok(None);
        };
        let labels: String = row.try_get("labels")?;
        let used_by: Vec<String> = sqlx::query_scalar(&USED_BY)
            .bind(name)
            .fetch_all(&self.reader)
            .await?;
        Ok(Some(Volume {
            name: row.try_get("name")?,
            created_at_ns: row.try_get("created_at")?,
            labels: serde_json::from_str(&labels)
                .map_err(|_| EngineError::Internal("corrupt volume row: labels".into()))?,
            used_by,
        }))
    }

    /// Deletes the row; unless `force`, only when no container uses it (the
    /// check and the delete are one statement). False when nothing was
    /// deleted (no such volume, or in use).
    pub async fn volume_delete(&self, name: &str, force: bool) -> Result<bool> {
        let sql = if force {
            "DELETE FROM volumes WHERE name = $1".to_owned()
        } else {
            format!(
                "DELETE FROM volumes WHERE name = $1 AND NOT EXISTS ({})",
                *USED_BY
            )
        };
        let r = db_write!(self, |c| Ok(sqlx::query(&sql)
            .bind(name)
            .execute(&mut *c)
            .await?))?;
        Ok(r.rows_affected() == 1)
    }
}
