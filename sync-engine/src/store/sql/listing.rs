//! Listing containers: on SQLite, pages come from the in-memory index
//! (`index.rs`), which the store keeps in step with the table; on
//! PostgreSQL (other nodes write too) they are read from the table, in the
//! same order with the same cursor. The full list read from the table
//! serves start-up reconciliation. Pages are cut by count and by an
//! estimate of their wire size.
use super::containers::{COLUMNS, from_row};
use super::{Db, dialect};
use crate::error::Result;
use crate::model::{Container, ListCursor, ListFilter, ListPage, ListQuery, ListView, State};
use crate::store::{SqlStore, states_sql};
use std::collections::HashMap;
use std::sync::Arc;

type Arguments<'q> = <Db as sqlx::Database>::Arguments<'q>;

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
        // The next placeholder: $1, $2, ... in bind order.
        let next = |binds: &Vec<Bind>, k: usize| format!("${}", binds.len() + k);
        if let Some(n) = &f.name_contains {
            terms.push(dialect::contains("c.name", &next(&binds, 1)));
            binds.push(Bind::Text(n.clone()));
        }
        for (k, v) in &f.labels {
            terms.push(format!(
                "c.id IN (SELECT container_id FROM labels WHERE key = {} AND value = {})",
                next(&binds, 1),
                next(&binds, 2)
            ));
            binds.push(Bind::Text(k.clone()));
            binds.push(Bind::Text(v.clone()));
        }
        if let Some(n) = &f.node {
            terms.push(format!("c.node = {}", next(&binds, 1)));
            binds.push(Bind::Text(n.clone()));
        }
        if let Some(a) = after {
            terms.push(format!(
                "(c.created_at, c.id) < ({}, {})",
                next(&binds, 1),
                next(&binds, 2)
            ));
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
        mut q: sqlx::query::Query<'q, Db, Arguments<'q>>,
    ) -> sqlx::query::Query<'q, Db, Arguments<'q>> {
        for b in &self.binds {
            q = match b {
                Bind::Text(s) => q.bind(s.clone()),
                Bind::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

impl SqlStore<Db> {
    /// Every container matching `filter`, newest first, fully loaded (from
    /// the table itself: start-up reconciliation uses it).
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<Container>> {
        let w = Where::of(filter, None);
        let sql = format!("SELECT {} FROM containers c {} {ORDER}", COLUMNS, w.sql);
        let rows = w.bind(sqlx::query(&sql)).fetch_all(&self.reader).await?;
        rows.iter().map(|r| from_row(r, ListView::Full)).collect()
    }

    /// The listing index, rebuilt from the table first if it went stale
    /// (SQLite); None on PostgreSQL.
    pub(super) async fn fresh_index(&self) -> Result<Option<&super::super::index::Index>> {
        let Some(index) = &self.index else {
            return Ok(None);
        };
        if index.is_stale() {
            // With the writes held off: every write updates the index under
            // the writer, and one that committed while the table was read
            // would be lost when the rebuild replaces the entries. Another
            // call may have rebuilt it meanwhile.
            let _writes = match &self.held {
                Some(held) => Some(held.lock().await),
                None => None,
            };
            if index.is_stale() {
                let all = self.list(&ListFilter::default()).await?;
                index.load(all);
            }
        }
        Ok(Some(index))
    }

    /// (SQLite) Loads the listing index from the table.
    pub(super) async fn reload_index(&self) -> Result<()> {
        if let Some(index) = &self.index {
            index.load(self.list(&ListFilter::default()).await?);
        }
        Ok(())
    }

    /// How many containers are in each state.
    pub async fn count_by_state(&self) -> Result<HashMap<State, usize>> {
        if let Some(index) = self.fresh_index().await? {
            return Ok(index.count_by_state());
        }
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, CAST(COUNT(*) AS BIGINT) FROM containers GROUP BY state")
                .fetch_all(&self.reader)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(s, n)| Some((State::parse(&s)?, usize::try_from(n).ok()?)))
            .collect())
    }

    /// One page of a listing (see `ListQuery`): from the in-memory index
    /// where there is one, else from the table.
    pub async fn list_page(&self, q: &ListQuery) -> Result<ListPage> {
        let limit = q.limit.max(1);
        let mut total = 0usize;
        let mut fits = |weight: usize| {
            total = total.saturating_add(weight);
            total <= q.max_bytes
        };
        if let Some(index) = self.fresh_index().await? {
            let after = q
                .after
                .as_ref()
                .map(|a| super::super::index::cursor_key(a.created_at_ns, &a.id));
            let (entries, more, version) =
                index.page(&q.filter, after.as_ref(), limit, q.view, fits);
            return Ok(ListPage {
                containers: entries,
                more,
                version: Some(version),
            });
        }
        let w = Where::of(&q.filter, q.after.as_ref());
        // One row more than the page, to know whether another follows.
        let sql = format!(
            "SELECT {} FROM containers c {} {ORDER} LIMIT {}",
            COLUMNS,
            w.sql,
            i64::try_from(limit)
                .unwrap_or(i64::MAX - 1)
                .saturating_add(1)
        );
        let rows = w.bind(sqlx::query(&sql)).fetch_all(&self.reader).await?;
        let mut containers = Vec::with_capacity(rows.len().min(limit));
        let mut more = false;
        for r in &rows {
            let c = from_row(r, q.view)?;
            if containers.len() == limit || (!containers.is_empty() && !fits(c.weight(q.view))) {
                more = true;
                break;
            }
            if containers.is_empty() {
                fits(c.weight(q.view));
            }
            containers.push(Arc::new(c));
        }
        Ok(ListPage {
            containers,
            more,
            version: None,
        })
    }
}
