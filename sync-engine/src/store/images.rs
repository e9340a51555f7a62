//! Rows of the image store: `images` (one per stored rootfs) and
//! `image_names` (name -> image). Containers reference images through
//! their `image` column ("sha256:<hex>" once resolved, or a name).
use super::Store;
use crate::error::{EngineError, Result};
use crate::model::{ImageInfo, State};
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, Row};

const COLUMNS: &str = "i.id, i.source, i.layers, i.size_bytes, i.created_at, \
    (SELECT json_group_array(n.name) FROM (SELECT name FROM image_names \
        WHERE image_id = i.id ORDER BY name) n) AS names, \
    (SELECT COUNT(*) FROM containers c WHERE c.image = i.id \
        OR c.image IN (SELECT name FROM image_names WHERE image_id = i.id)) AS used";

fn from_row(r: &SqliteRow) -> Result<ImageInfo> {
    let bad = |what: &str| EngineError::Internal(format!("corrupt image row: {what}"));
    let layers: String = r.try_get("layers")?;
    let names: String = r.try_get("names")?;
    let size: i64 = r.try_get("size_bytes")?;
    let used: i64 = r.try_get("used")?;
    Ok(ImageInfo {
        id: r.try_get("id")?,
        source: r.try_get("source")?,
        layers: serde_json::from_str(&layers).map_err(|_| bad("layers"))?,
        names: serde_json::from_str(&names).map_err(|_| bad("names"))?,
        size_bytes: u64::try_from(size).unwrap_or(0),
        created_at_ns: r.try_get("created_at")?,
        containers: u32::try_from(used).unwrap_or(u32::MAX),
    })
}

impl Store {
    /// Records an image (kept as is when the id exists) and points NAME at
    /// it (taken from any other image).
    pub async fn image_add(&self, info: &ImageInfo, name: Option<&str>) -> Result<()> {
        db_write!(self, |c| {
            let mut tx = c.begin().await?;
            sqlx::query(
            "INSERT INTO images (id, source, layers, size_bytes, created_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&info.id)
        .bind(&info.source)
        .bind(serde_json::to_string(&info.layers).unwrap_or_else(|_| "[]".into()))
        .bind(i64::try_from(info.size_bytes).unwrap_or(i64::MAX))
        .bind(info.created_at_ns)
        .execute(&mut *tx)
        .await?;
            if let Some(name) = name {
                sqlx::query(
                    "INSERT INTO image_names (name, image_id) VALUES (?, ?) \
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
        let sql = format!("SELECT {COLUMNS} FROM images i ORDER BY i.created_at DESC, i.id");
        let rows = sqlx::query(&sql).fetch_all(&self.reader).await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn image_get(&self, id: &str) -> Result<Option<ImageInfo>> {
        let sql = format!("SELECT {COLUMNS} FROM images i WHERE i.id = ?");
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
            sqlx::query_scalar("SELECT image_id FROM image_names WHERE name = ?")
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
            sqlx::query_scalar("SELECT id FROM images WHERE id LIKE ? ORDER BY id LIMIT 2")
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
    pub async fn image_untag(&self, name: &str) -> Result<bool> {
        let r = db_write!(self, |c| {
            Ok(sqlx::query("DELETE FROM image_names WHERE name = ?")
                .bind(name)
                .execute(&mut *c)
                .await?)
        })?;
        Ok(r.rows_affected() > 0)
    }

    /// (id, state) of the containers that reference the image.
    pub async fn image_users(&self, id: &str) -> Result<Vec<(String, State)>> {
        let rows = sqlx::query(
            "SELECT c.id, c.state FROM containers c WHERE c.image = ?1 \
             OR c.image IN (SELECT name FROM image_names WHERE image_id = ?1)",
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
    /// container row can slip in between the check and the delete.
    /// Err(FailedPrecondition) when in use.
    pub async fn image_delete(&self, id: &str) -> Result<bool> {
        db_write!(self, |c| {
            let mut tx = c.begin().await?;
            let users: Vec<String> = sqlx::query_scalar(
                "SELECT c.name FROM containers c WHERE c.image = ?1 \
             OR c.image IN (SELECT name FROM image_names WHERE image_id = ?1) \
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
            let r = sqlx::query("DELETE FROM images WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(r.rows_affected() > 0)
        })
    }
}
