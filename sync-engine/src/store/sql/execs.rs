//! Detached execs: one row each while their container exists (removed with
//! it), so their ids, helpers and exits survive a restart of the daemon.
use super::{Store, json};
use crate::error::{EngineError, Result};
use sqlx::Row;

/// A detached exec as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRow {
    pub id: String,
    pub container_id: String,
    pub command: Vec<String>,
    pub tty: bool,
    pub started_at_ns: i64,
    pub helper_pid: i32,
    pub helper_start_time: u64,
    /// (exit code, signal, oom killed, finished at) once recorded.
    pub exit: Option<(i32, i32, bool, i64)>,
}

impl Store {
    pub async fn exec_insert(&self, e: &ExecRow) -> Result<()> {
        db_write!(self, |c| {
            sqlx::query(
                "INSERT INTO execs (id, container_id, command, tty, started_at, helper_pid, \
                 helper_start_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
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
                "UPDATE execs SET exit_code = ?, exit_signal = ?, oom_killed = ?, finished_at = ? \
                 WHERE id = ? AND exit_code IS NULL",
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
            sqlx::query("DELETE FROM execs WHERE id = ?")
                .bind(id)
                .execute(&mut *c)
                .await?;
            Ok(())
        })
    }

    /// Every stored detached exec, oldest first.
    pub async fn execs_detached(&self) -> Result<Vec<ExecRow>> {
        let rows = sqlx::query(
            "SELECT id, container_id, command, tty, started_at, helper_pid, helper_start_time, \
             exit_code, exit_signal, oom_killed, finished_at FROM execs ORDER BY started_at, id",
        )
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
