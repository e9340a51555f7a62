//! Listing containers: pages come from the in-memory index (`index.rs`),
//! which the store keeps in step with the table; the full list read from
//! the table serves start-up reconciliation. Pages are cut by count and by
//! an estimate of their wire size.
use super::Store;
use super::containers::{COLUMNS, from_row};
use super::states_sql;
use crate::error::Result;
use crate::model::{Container, ListCursor, ListFilter, ListPage, ListQuery, ListView};
use sqlx::sqlite::{Sqlite, SqliteArguments};

/// The order of every listing: newest first, the id breaking ties.
const ORDER: &str = "ORDER BY c.created_at DESC, c.id DESC";

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
    /// Every container matching `filter`, newest first, fully loaded (from
    /// the table itself: start-up reconciliation uses it).
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<Container>> {
        let w = Where::of(filter, None);
        let sql = format!("SELECT {COLUMNS} FROM containers c {} {ORDER}", w.sql);
        let rows = w.bind(sqlx::query(&sql)).fetch_all(&self.reader).await?;
        rows.iter().map(|r| from_row(r, ListView::Full)).collect()
    }

    /// How many containers are in each state (from the in-memory index).
    pub async fn count_by_state(
        &self,
    ) -> Result<std::collections::HashMap<crate::model::State, usize>> {
        if self.index.is_stale() {
            let all = self.list(&ListFilter::default()).await?;
            self.index.load(all);
        }
        Ok(self.index.count_by_state())
    }

    /// One page of a listing (see `ListQuery`), served from the in-memory
    /// index (rebuilt from the table first if it went stale).
    pub async fn list_page(&self, q: &ListQuery) -> Result<ListPage> {
        if self.index.is_stale() {
            let all = self.list(&ListFilter::default()).await?;
            self.index.load(all);
        }
        let after = q
            .after
            .as_ref()
            .map(|a| super::index::cursor_key(a.created_at_ns, &a.id));
        let mut total = 0usize;
        let (entries, more) = self
            .index
            .page(&q.filter, after.as_ref(), q.limit.max(1), |c| {
                total = total.saturating_add(weight(c, q.view));
                total <= q.max_bytes
            });
        Ok(ListPage {
            containers: entries,
            more,
        })
    }
}

/// What a container weighs on the wire in a view: its text, roughly.
fn weight(c: &Container, view: ListView) -> usize {
    let strings = |v: &[String]| v.iter().map(|s| s.len() + 2).sum::<usize>();
    let mut w = 256
        + c.id.len()
        + c.name.len()
        + c.image.len()
        + c.working_dir.len()
        + c.hostname.len()
        + strings(&c.command)
        + c.failure_reason.as_ref().map_or(0, String::len)
        + c.labels
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum::<usize>();
    if view == ListView::Full {
        w += strings(&c.env) + 128 * c.mounts.len() + 512;
    }
    w
}
