//! Rows of the image store: `images` (one per stored rootfs) and
//! `image_names` (name -> image). Containers reference images through
//! their `image` column ("sha256:<hex>" once resolved, or a name).
use super::{Db, DbRow, dialect};
use crate::error::{EngineError, Result};
use crate::model::{ImageInfo, State};
use crate::store::SqlStore;
use sqlx::{Connection, Row};
use std::sync::LazyLock;

static COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "i.id, i.source, i.layers, i.size_bytes, i.created_at, i.config, \
         (SELECT {} FROM (SELECT name FROM image_names \
             WHERE image_id = i.id ORDER BY name) n) AS names, \
         (SELECT CAST(COUNT(*) AS BIGINT) FROM containers c WHERE c.image = i.id \
             OR c.image IN (SELECT name FROM image_names WHERE image_id = i.id)) AS used",
        dialect::json_array_agg("n.name")
    )
});

fn from_row(r: &DbRow) -> Result<ImageInfo> {
    let bad = |what: &str| EngineError::Internal(format!("corrupt image row: {what}"));
    let layers: String = r.try_get("layers")?;
    let names: String = r.try_get("names")?;
    let size: i64 = r.try_get("size_bytes")?;
    let used: i64 = r.try_get("used")?;
    let config: String = r.try_get("config")?;
    Ok(ImageInfo {
        config: serde_json::from_str(&config).map_err(|_| bad("config"))?,
        id: r.try_get("id")?,
        source: r.try_get("source")?,
        layers: serde_json::from_str(&layers).map_err(|_| bad("layers"))?,
        names: serde_json::from_str(&names).map_err(|_| bad("names"))?,
        size_bytes: u64::try_from(size).unwrap_or(0),
        created_at_ns: r.try_get("created_at")?,
        containers: u32::try_from(used).unwrap_or(u32::MAX),
    })
}

impl SqlStore<Db> {
    /// Records an image (kept as is when the id exists) with its layers
    /// (`layer_sizes` in the same order; a layer row is shared by every image
    /// that uses it) and points NAME at it (taken from any other image).
    pub async fn image_add(
        &self,
        info: &ImageInfo,
        layer_sizes: &[u64],
        name: Option<&str>,
    ) -> Result<()> {
        let config = serde_json::to_string(&info.config)
            .map_err(|e| EngineError::Internal(format!("image config: {e}")))?;
        db_write!(self, |c| {
            let mut tx = c.begin().await?;
            let added = sqlx::query(
                "INSERT INTO images (id, source, layers, size_bytes, created_at, config) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&info.id)
            .bind(&info.source)
            .bind(serde_json::to_string(&info.layers).unwrap_or_else(|_| "[]".into()))
            .bind(i64::try_from(info.size_bytes).unwrap_or(i64::MAX))
            .bind(info.created_at_ns)
            .bind(&config)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if added && layer_sizes.len() == info.layers.len() {
                for (pos, (digest, size)) in info.layers.iter().zip(layer_sizes).enumerate() {
                    sqlx::query(
                        "INSERT INTO layers (digest, size_bytes, created_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (digest) DO NOTHING",
                    )
                    .bind(digest)
                    .bind(i64::try_from(*size).unwrap_or(i64::MAX))
                    .bind(info.created_at_ns)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO image_layers (image_id, position, digest) VALUES ($1, $2, $3)",
                    )
                    .bind(&info.id)
                    .bind(i64::try_from(pos).unwrap_or(i64::MAX))
                    .bind(digest)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            if let Some(name) = name {
                sqlx::query(
                    "INSERT INTO image_names (name, image_id) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET image_id = excluded.image_id",
                )
                .bind(name)
                .bind(&info.id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn image_list(&self) -> Result<Vec<ImageInfo>> {
        let sql = format!(
            "SELECT {} FROM images i ORDER BY i.created_at DESC, i.id",
            *COLUMNS
        );
        let rows = sqlx::query(&sql).fetch_all(&self.reader).await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn image_get(&self, id: &str) -> Result<Option<ImageInfo>> {
        let sql = format!("SELECT {} FROM images i WHERE i.id = $1", *COLUMNS);
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| from_row(&r)).transpose()
    }

    /// The id a reference names: a name, a full "sha256:<hex>" id, or a
    /// unique prefix of the hex (with or without "sha256:").
    pub async fn image_resolve(&self, reference: &str) -> Result<Option<String>> {
        let by_name: Option<String> =
            sqlx::query_scalar("SELECT image_id FROM image_names WHERE name = $1")
                .bind(reference)
                .fetch_optional(&self.reader)
                .await?;
        if by_name.is_some() {
            return Ok(by_name);
        }
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let pattern = format!("sha256:{}%", hex.to_ascii_lowercase());
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM images WHERE id LIKE $1 ORDER BY id LIMIT 2")
                .bind(pattern)
                .fetch_all(&self.reader)
                .await?;
        match ids.as_slice() {
            [one] => Ok(Some(one.clone())),
            [] => Ok(None),
            _ => Err(EngineError::InvalidArgument(format!(
                "image id prefix {} is ambiguous",
                crate::validate::echo(reference)
            ))),
        }
    }

    /// Drops NAME only (the image keeps its other names).
    /// Points NAME at the image (taken from any other image); false when
    /// the image is not recorded.
    pub async fn image_tag(&self, id: &str, name: &str) -> Result<bool> {
        db_write!(self, |c| {
            let mut tx = c.begin().await?;
            let known = sqlx::query("SELECT id FROM images WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if known {
                sqlx::query(
                    "INSERT INTO image_names (name, image_id) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET image_id = excluded.image_id",
                )
                .bind(name)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(known)
        })
    }

    pub async fn image_untag(&self, name: &str) -> Result<bool> {
        let r = db_write!(self, |c| {
            Ok(sqlx::query("DELETE FROM image_names WHERE name = $1")
                .bind(name)
                .execute(&mut *c)
                .await?)
        })?;
        Ok(r.rows_affected() > 0)
    }

    /// (id, state) of the containers that reference the image.
    pub async fn image_users(&self, id: &str) -> Result<Vec<(String, State)>> {
        let rows = sqlx::query(
            "SELECT c.id, c.state FROM containers c WHERE c.image = $1 \
             OR c.image IN (SELECT name FROM image_names WHERE image_id = $1)",
        )
        .bind(id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get("state")?;
                let state = State::parse(&state)
                    .ok_or_else(|| EngineError::Internal("corrupt container row: state".into()))?;
                Ok((r.try_get("id")?, state))
            })
            .collect()
    }

    /// Every image id the database knows: image rows, and the store images
    /// that containers name.
    pub async fn known_image_ids(&self) -> Result<std::collections::HashSet<String>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM images UNION SELECT image FROM containers WHERE image LIKE 'sha256:%'",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(ids.into_iter().collect())
    }

    /// Deletes the image row and its names unless a container references
    /// it (by id or any name); one transaction on the single writer, so no
    /// container row can slip in between the check and the delete. The
    /// layers no image uses any more are deleted with it: returns None when
    /// there was no such image, else those layers (digest, bytes), whose
    /// files the caller removes. Err(FailedPrecondition) when in use.
    pub async fn image_delete(&self, id: &str) -> Result<Option<Vec<(String, u64)>>> {
        db_write!(self, |c| {
            let mut tx = c.begin().await?;
            let users: Vec<String> = sqlx::query_scalar(
                "SELECT c.name FROM containers c WHERE c.image = $1 \
             OR c.image IN (SELECT name FROM image_names WHERE image_id = $1) \
             ORDER BY c.created_at LIMIT 5",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            if !users.is_empty() {
                return Err(EngineError::FailedPrecondition(format!(
                    "image {id} is in use by container(s) {} (remove them first)",
                    users.join(", ")
                )));
            }
            let r = sqlx::query("DELETE FROM images WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 0 {
                return Ok(None);
            }
            let orphans = delete_orphan_layers(&mut tx).await?;
            tx.commit().await?;
            Ok(Some(orphans))
        })
    }

    /// Deletes every image that has no name and no container, and the
    /// layers no image uses any more (see `image_delete`). Returns the
    /// image ids and the layers (digest, bytes).
    pub async fn image_prune(&self) -> Result<(Vec<String>, Vec<(String, u64)>)> {
        db_write!(self, |c| {
            let mut tx = c.begin().await?;
            let ids: Vec<String> = sqlx::query_scalar(
                "SELECT i.id FROM images i \
                 WHERE NOT EXISTS (SELECT 1 FROM image_names n WHERE n.image_id = i.id) \
                 AND NOT EXISTS (SELECT 1 FROM containers c WHERE c.image = i.id) \
                 ORDER BY i.id",
            )
            .fetch_all(&mut *tx)
            .await?;
            for id in &ids {
                sqlx::query("DELETE FROM images WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            let orphans = delete_orphan_layers(&mut tx).await?;
            tx.commit().await?;
            Ok((ids, orphans))
        })
    }

    /// (count, bytes) of the stored layers.
    pub async fn layer_usage(&self) -> Result<(u64, u64)> {
        let (n, bytes): (i64, i64) = sqlx::query_as(
            "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) \
                 FROM layers",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok((
            u64::try_from(n).unwrap_or(0),
            u64::try_from(bytes).unwrap_or(0),
        ))
    }

    /// The digests of every recorded layer.
    pub async fn layer_digests(&self) -> Result<std::collections::HashSet<String>> {
        let v: Vec<String> = sqlx::query_scalar("SELECT digest FROM layers")
            .fetch_all(&self.reader)
            .await?;
        Ok(v.into_iter().collect())
    }
}

/// Deletes the layer rows no image uses; returns them (digest, bytes).
async fn delete_orphan_layers(tx: &mut sqlx::Transaction<'_, Db>) -> Result<Vec<(String, u64)>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "DELETE FROM layers WHERE NOT EXISTS \
         (SELECT 1 FROM image_layers l WHERE l.digest = layers.digest) \
         RETURNING digest, size_bytes",
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(d, n)| (d, u64::try_from(n).unwrap_or(0)))
        .collect())
}
