//! Detached execs: one row each while their container exists (removed with
//! it), so their ids, helpers and exits survive a restart of the daemon.
use super::super::ExecRow;
use crate::error::{EngineError, Result};
use crate::store::{SqlStore, json};
use sqlx::Row;

impl SqlStore<super::Db> {
    pub async fn exec_insert(&self, e: &ExecRow) -> Result<()> {
        db_write!(self, |c| {
            sqlx::query(
                "INSERT INTO execs (id, container_id, command, tty, started_at, helper_pid, \
                 helper_start_time) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&e.id)
            .bind(&e.container_id)
            .bind(json(&e.command))
            .bind(e.tty)
            .bind(e.started_at_ns)
            .bind(e.helper_pid)
            .bind(i64::try_from(e.helper_start_time).unwrap_or(i64::MAX))
            .execute(&mut *c)
            .await?;
            Ok(())
        })
    }

    /// Records how a detached exec ended (once; later calls change nothing).
    pub async fn exec_finish(
        &self,
        id: &str,
        exit_code: i32,
        signal: i32,
        oom_killed: bool,
        at: i64,
    ) -> Result<()> {
        db_write_critical!(self, |c| {
            sqlx::query(
                "UPDATE execs SET exit_code = $1, exit_signal = $2, oom_killed = $3, finished_at = $4 \
                 WHERE id = $5 AND exit_code IS NULL",
            )
            .bind(exit_code)
            .bind(signal)
            .bind(oom_killed)
            .bind(at)
            .bind(id)
            .execute(&mut *c)
            .await?;
            Ok(())
        })
    }

    /// Forgets a detached exec (pushed out of the bounded registry).
    pub async fn exec_delete(&self, id: &str) -> Result<()> {
        db_write!(self, |c| {
            sqlx::query("DELETE FROM execs WHERE id = $1")
                .bind(id)
                .execute(&mut *c)
                .await?;
            Ok(())
        })
    }

    /// Every stored detached exec, oldest first.
    pub async fn execs_detached(&self, node: Option<&str>) -> Result<Vec<ExecRow>> {
        let rows = sqlx::query(
            "SELECT e.id, e.container_id, e.command, e.tty, e.started_at, e.helper_pid, \
             e.helper_start_time, e.exit_code, e.exit_signal, e.oom_killed, e.finished_at \
             FROM execs e JOIN containers c ON c.id = e.container_id \
             WHERE $1 IS NULL OR c.node = $1 ORDER BY e.started_at, e.id",
        )
        .bind(node)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let command: String = r.try_get("command")?;
                let exit_code: Option<i32> = r.try_get("exit_code")?;
                let exit = match exit_code {
                    Some(code) => Some((
                        code,
                        r.try_get::<Option<i32>, _>("exit_signal")?.unwrap_or(0),
                        r.try_get("oom_killed")?,
                        r.try_get::<Option<i64>, _>("finished_at")?.unwrap_or(0),
                    )),
                    None => None,
                };
                Ok(ExecRow {
                    id: r.try_get("id")?,
                    container_id: r.try_get("container_id")?,
                    command: serde_json::from_str(&command)
                        .map_err(|_| EngineError::Internal("corrupt exec row: command".into()))?,
                    tty: r.try_get("tty")?,
                    started_at_ns: r.try_get("started_at")?,
                    helper_pid: r.try_get("helper_pid")?,
                    helper_start_time: u64::try_from(r.try_get::<i64, _>("helper_start_time")?)
                        .unwrap_or(0),
                    exit,
                })
            })
            .collect()
    }
}
