//! The id ranges of private user namespaces: one per container, allocated
//! in the transaction that inserts the container (so two containers never
//! get the same one), released with its row (ON DELETE CASCADE), checked at
//! start-up.
use super::{Conn, Db, dialect};
use crate::config::UsernsIds;
use crate::error::{EngineError, Result};
use crate::model::IdRange;
use crate::store::SqlStore;

/// Gives container `id` a free range of the window `ids`: the one above the
/// highest range in use (found through the index), or, once the top of the
/// window is reached, the lowest free one (a scan). A range is free when no
/// stored range (also one from another window, after a change of
/// --userns-base) overlaps it. Released ranges are thus reused only after
/// the window has been gone through, as pids are.
pub(super) async fn allocate(conn: &mut Conn, id: &str, ids: &UsernsIds) -> Result<IdRange> {
    let size = i64::from(IdRange::SIZE);
    let base = i64::from(ids.base);
    let end = base + i64::from(ids.count) * size;
    let top: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(host_id) FROM userns_ranges WHERE host_id >= $1 AND host_id < $2",
    )
    .bind(base)
    .bind(end)
    .fetch_one(&mut *conn)
    .await?;
    let next = top.map_or(base, |t| align_up(base, size, t + size));
    let host_id = if next + size <= end && is_free(conn, next, size).await? {
        next
    } else {
        let taken: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT host_id, size FROM userns_ranges \
             WHERE host_id < $1 AND host_id + size > $2 ORDER BY host_id",
        )
        .bind(end)
        .bind(base)
        .fetch_all(&mut *conn)
        .await?;
        first_free(base, end, size, &taken).ok_or_else(|| {
            EngineError::FailedPrecondition(format!(
                "all {} user namespace id ranges are in use: remove containers that have a \
                 private user namespace, or start quiltd with more --userns-ranges",
                ids.count
            ))
        })?
    };
    sqlx::query("INSERT INTO userns_ranges (container_id, host_id, size) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(host_id)
        .bind(size)
        .execute(&mut *conn)
        .await?;
    Ok(IdRange {
        host_id: u32::try_from(host_id).expect("inside a window of u32 ids"),
        size: IdRange::SIZE,
    })
}

/// No stored range meets [start, start+size) (every range has `size` ids,
/// so only those starting less than `size` away can).
async fn is_free(conn: &mut Conn, start: i64, size: i64) -> Result<bool> {
    let used: Option<i64> = sqlx::query_scalar(
        "SELECT host_id FROM userns_ranges WHERE host_id > $1 AND host_id < $2 LIMIT 1",
    )
    .bind(start - size)
    .bind(start + size)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(used.is_none())
}

/// The first start base + k*size at or above `at`.
fn align_up(base: i64, size: i64, at: i64) -> i64 {
    if at <= base {
        return base;
    }
    base + (at - base + size - 1) / size * size
}

/// The lowest start base + k*size (< end) whose [start, start+size) meets
/// none of `taken` (sorted by start).
fn first_free(base: i64, end: i64, size: i64, taken: &[(i64, i64)]) -> Option<i64> {
    let mut cand = base;
    for &(start, len) in taken {
        if start >= cand + size {
            break;
        }
        let after = start + len;
        if after > cand {
            // The next aligned start past this range.
            cand = align_up(base, size, after);
        }
    }
    (cand + size <= end).then_some(cand)
}

impl SqlStore<Db> {
    /// Start-up check of the ranges: drops those whose container is gone
    /// (none while foreign keys hold) and gives one to each container with a
    /// private user namespace that has none. Returns (dropped, given).
    pub async fn userns_reconcile(&self, ids: &UsernsIds) -> Result<(u64, usize)> {
        db_write!(self, |c| {
            use sqlx::Connection;
            let mut tx = c.begin().await?;
            let dropped = sqlx::query(
                "DELETE FROM userns_ranges WHERE container_id NOT IN (SELECT id FROM containers)",
            )
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let missing: Vec<(String,)> = sqlx::query_as(&format!(
                "SELECT id FROM containers WHERE {} = 'private' \
                 AND id NOT IN (SELECT container_id FROM userns_ranges)",
                dialect::json_text("security", &["userns"])
            ))
            .fetch_all(&mut *tx)
            .await?;
            for (id,) in &missing {
                allocate(&mut tx, id, ids).await?;
            }
            tx.commit().await?;
            // The ranges given are part of the rows the index holds.
            if let (false, Some(index)) = (missing.is_empty(), &self.index) {
                index.mark_stale();
            }
            Ok((dropped, missing.len()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 65536;

    #[test]
    fn aligned_starts() {
        let base = 100 * S;
        assert_eq!(align_up(base, S, 0), base);
        assert_eq!(align_up(base, S, base), base);
        assert_eq!(align_up(base, S, base + 1), base + S);
        assert_eq!(align_up(base, S, base + S), base + S);
    }

    #[test]
    fn first_free_range() {
        let base = 100 * S;
        let end = base + 4 * S;
        assert_eq!(first_free(base, end, S, &[]), Some(base));
        assert_eq!(first_free(base, end, S, &[(base, S)]), Some(base + S));
        // A hole is reused.
        assert_eq!(
            first_free(base, end, S, &[(base, S), (base + 2 * S, S)]),
            Some(base + S)
        );
        // Full.
        let full: Vec<_> = (0..4).map(|k| (base + k * S, S)).collect();
        assert_eq!(first_free(base, end, S, &full), None);
        // A range of another window (not aligned) blocks the slots it meets.
        assert_eq!(
            first_free(base, end, S, &[(base + S / 2, S)]),
            Some(base + 2 * S)
        );
        // One that ends before the window starts, or a big one covering
        // everything but the last slot.
        assert_eq!(first_free(base, end, S, &[(base - S, S)]), Some(base));
        assert_eq!(
            first_free(base, end, S, &[(base - S, 4 * S)]),
            Some(base + 3 * S)
        );
        // Nested ranges sorted by start: the longer one counts.
        assert_eq!(
            first_free(base, end, S, &[(base, 3 * S), (base + S, S)]),
            Some(base + 3 * S)
        );
    }
}
