//! Listing containers: filters, order and pages in SQL. A page is read in
//! one read transaction, in two steps: first the weight of each candidate
//! (its stored text, measured with `octet_length`, which SQLite answers
//! without reading the values), to see how many fit the page's byte budget;
//! then those rows, with the columns of the view asked for.
use super::Store;
use super::containers::{COLUMNS, from_row};
use super::states_sql;
use crate::error::Result;
use crate::model::{Container, ListCursor, ListFilter, ListPage, ListQuery, ListView};
use sqlx::Row;
use sqlx::sqlite::{Sqlite, SqliteArguments};

/// Columns of the summary view (no env, mounts, security, supervisor).
const SUMMARY_COLUMNS: &str = "c.id, c.name, c.image, c.command, c.working_dir, c.hostname, \
    c.memory_mb, c.cpus, c.pids_limit, c.network, c.auto_remove, c.autostart, c.init, c.state, \
    c.pid, c.exit_code, c.exit_signal, c.oom_killed, c.failure_reason, c.created_at, \
    c.started_at, c.finished_at, c.disk_bytes, \
    (SELECT json_group_object(l.key, l.value) FROM labels l WHERE l.container_id = c.id) AS labels";

/// The order of every listing: newest first, the id breaking ties.
const ORDER: &str = "ORDER BY c.created_at DESC, c.id DESC";

/// What a row weighs in a view: its text columns and labels, plus a fixed
/// allowance for the rest.
fn weight(view: ListView) -> &'static str {
    match view {
        ListView::Full => {
            "octet_length(c.env) + octet_length(c.mounts) + octet_length(c.security) + \
             octet_length(c.command) + octet_length(c.name) + octet_length(c.image) + \
             octet_length(c.working_dir) + octet_length(c.hostname) + \
             coalesce(octet_length(c.failure_reason), 0) + 256 + \
             (SELECT coalesce(sum(octet_length(l.key) + octet_length(l.value) + 8), 0) \
              FROM labels l WHERE l.container_id = c.id)"
        }
        ListView::Summary => {
            "octet_length(c.command) + octet_length(c.name) + octet_length(c.image) + \
             octet_length(c.working_dir) + octet_length(c.hostname) + \
             coalesce(octet_length(c.failure_reason), 0) + 256 + \
             (SELECT coalesce(sum(octet_length(l.key) + octet_length(l.value) + 8), 0) \
              FROM labels l WHERE l.container_id = c.id)"
        }
    }
}

/// A WHERE clause and the values it binds, in order.
#[derive(Debug, Default)]
struct Where {
    sql: String,
    binds: Vec<Bind>,
}

#[derive(Debug, Clone)]
enum Bind {
    Text(String),
    Int(i64),
}

impl Where {
    fn of(f: &ListFilter, after: Option<&ListCursor>) -> Where {
        let mut terms = Vec::new();
        let mut binds = Vec::new();
        if !f.states.is_empty() {
            terms.push(format!("c.state IN ({})", states_sql(&f.states)));
        }
        if let Some(n) = &f.name_contains {
            terms.push("instr(c.name, ?) > 0".to_owned());
            binds.push(Bind::Text(n.clone()));
        }
        for (k, v) in &f.labels {
            terms.push(
                "c.id IN (SELECT container_id FROM labels WHERE key = ? AND value = ?)".to_owned(),
            );
            binds.push(Bind::Text(k.clone()));
            binds.push(Bind::Text(v.clone()));
        }
        if let Some(a) = after {
            terms.push("(c.created_at, c.id) < (?, ?)".to_owned());
            binds.push(Bind::Int(a.created_at_ns));
            binds.push(Bind::Text(a.id.clone()));
        }
        let sql = if terms.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", terms.join(" AND "))
        };
        Where { sql, binds }
    }

    fn bind<'q>(
        &self,
        mut q: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
    ) -> sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>> {
        for b in &self.binds {
            q = match b {
                Bind::Text(s) => q.bind(s.clone()),
                Bind::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

impl Store {
    /// Every container matching `filter`, newest first, fully loaded.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<Container>> {
        let w = Where::of(filter, None);
        let sql = format!("SELECT {COLUMNS} FROM containers c {} {ORDER}", w.sql);
        let rows = w.bind(sqlx::query(&sql)).fetch_all(&self.reader).await?;
        rows.iter().map(|r| from_row(r, ListView::Full)).collect()
    }

    /// One page of a listing (see `ListQuery`).
    pub async fn list_page(&self, q: &ListQuery) -> Result<ListPage> {
        let w = Where::of(&q.filter, q.after.as_ref());
        let limit = q.limit.max(1);
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let mut tx = self.reader.begin().await?;
        // 1. What the candidates weigh, one more than asked for.
        let sql = format!(
            "SELECT {} FROM containers c {} {ORDER} LIMIT ?",
            weight(q.view),
            w.sql
        );
        let weights: Vec<i64> = w
            .bind(sqlx::query(&sql))
            .bind(fetch)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<std::result::Result<_, _>>()?;
        let mut take = 0;
        let mut total = 0usize;
        for wt in weights.iter().take(limit) {
            total = total.saturating_add(usize::try_from(*wt).unwrap_or(usize::MAX));
            if take > 0 && total > q.max_bytes {
                break;
            }
            take += 1;
        }
        if take == 0 {
            tx.commit().await?;
            return Ok(ListPage::default());
        }
        // 2. Those rows, as of the same snapshot.
        let columns = match q.view {
            ListView::Full => COLUMNS,
            ListView::Summary => SUMMARY_COLUMNS,
        };
        let sql = format!(
            "SELECT {columns} FROM containers c {} {ORDER} LIMIT ?",
            w.sql
        );
        let rows = w
            .bind(sqlx::query(&sql))
            .bind(take as i64)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let containers = rows
            .iter()
            .map(|r| from_row(r, q.view))
            .collect::<Result<Vec<_>>>()?;
        Ok(ListPage {
            more: weights.len() > containers.len(),
            containers,
        })
    }
}
