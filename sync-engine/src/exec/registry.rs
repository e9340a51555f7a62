//! The exec registry: every exec the daemon started, running or finished,
//! with its state (a watch channel: waiters and log followers are woken by
//! the writer, no polling) and its output file
//! DATA/containers/<id>/execs/<exec_id>.log, framed like the helper's output
//! (see quilt_runtime::execproto) so stdout and stderr stay apart.
use crate::error::{EngineError, Result};
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Finished execs remembered per container; older ones (and their output
/// files) are forgotten.
const MAX_FINISHED_PER_CONTAINER: usize = 64;

/// How an exec ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecExit {
    /// 128 + signal when killed by a signal.
    pub exit_code: i32,
    pub signal: i32,
    pub oom_killed: bool,
}

/// A snapshot of one exec, for ListExecs and WaitExec.
#[derive(Debug, Clone)]
pub struct ExecInfo {
    pub id: String,
    pub container_id: String,
    pub command: Vec<String>,
    pub tty: bool,
    pub detached: bool,
    pub running: bool,
    pub exit: Option<ExecExit>,
    pub started_at_ns: i64,
    pub finished_at_ns: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ExecState {
    pub running: bool,
    pub exit: Option<ExecExit>,
    pub finished_at_ns: Option<i64>,
    /// Bytes of complete frames in the output file.
    pub log_len: u64,
    /// The command's pidfd, once the helper has reported its pid.
    pub pidfd: Option<Arc<OwnedFd>>,
    /// A detached exec's helper (it writes the frame file itself).
    pub helper_pid: Option<i32>,
}

#[derive(Debug)]
pub(crate) struct ExecRecord {
    pub id: String,
    pub container_id: String,
    pub command: Vec<String>,
    pub tty: bool,
    pub detached: bool,
    pub started_at_ns: i64,
    pub log_path: PathBuf,
    pub state: watch::Sender<ExecState>,
}

impl ExecRecord {
    pub fn info(&self) -> ExecInfo {
        let st = self.state.borrow();
        ExecInfo {
            id: self.id.clone(),
            container_id: self.container_id.clone(),
            command: self.command.clone(),
            tty: self.tty,
            detached: self.detached,
            running: st.running,
            exit: st.exit,
            started_at_ns: self.started_at_ns,
            finished_at_ns: st.finished_at_ns,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    map: Mutex<HashMap<String, Arc<ExecRecord>>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ExecRecord>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a record; returns the finished execs of the same container
    /// forgotten to keep the registry bounded (their files and rows are the
    /// caller's to remove).
    pub fn insert(&self, rec: Arc<ExecRecord>) -> Vec<Arc<ExecRecord>> {
        let mut map = self.lock();
        let cid = rec.container_id.clone();
        map.insert(rec.id.clone(), rec);
        let mut finished: Vec<(i64, String)> = map
            .values()
            .filter(|r| r.container_id == cid && !r.state.borrow().running)
            .map(|r| (r.started_at_ns, r.id.clone()))
            .collect();
        let mut dropped = Vec::new();
        if finished.len() > MAX_FINISHED_PER_CONTAINER {
            finished.sort();
            let excess = finished.len() - MAX_FINISHED_PER_CONTAINER;
            for (_, id) in finished.into_iter().take(excess) {
                if let Some(r) = map.remove(&id) {
                    dropped.push(r);
                }
            }
        }
        dropped
    }

    /// By full id or unique prefix.
    pub fn get(&self, reference: &str) -> Result<Arc<ExecRecord>> {
        let not_found =
            || EngineError::NotFound(format!("no such exec: {}", crate::validate::cut(reference)));
        if reference.is_empty() {
            return Err(EngineError::InvalidArgument(
                "an exec id is required".into(),
            ));
        }
        let map = self.lock();
        if let Some(r) = map.get(reference) {
            return Ok(r.clone());
        }
        let mut hits = map.values().filter(|r| r.id.starts_with(reference));
        match (hits.next(), hits.next()) {
            (Some(r), None) => Ok(r.clone()),
            (Some(_), Some(_)) => Err(EngineError::InvalidArgument(format!(
                "exec id prefix {reference} is ambiguous"
            ))),
            _ => Err(not_found()),
        }
    }

    /// The execs of a container, oldest first.
    pub fn of_container(&self, container_id: &str) -> Vec<Arc<ExecRecord>> {
        let mut v: Vec<_> = self
            .lock()
            .values()
            .filter(|r| r.container_id == container_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.started_at_ns, &a.id).cmp(&(b.started_at_ns, &b.id)));
        v
    }

    /// Forgets every exec of a removed container.
    pub fn drop_container(&self, container_id: &str) {
        self.lock().retain(|_, r| r.container_id != container_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, container: &str, started: i64, running: bool) -> Arc<ExecRecord> {
        Arc::new(ExecRecord {
            id: id.into(),
            container_id: container.into(),
            command: vec!["true".into()],
            tty: false,
            detached: true,
            started_at_ns: started,
            log_path: PathBuf::from(format!("/nonexistent/{id}.log")),
            state: watch::Sender::new(ExecState {
                running,
                ..Default::default()
            }),
        })
    }

    #[test]
    fn lookup_by_id_and_prefix() {
        let r = Registry::default();
        assert!(r.insert(rec("abc123", "c1", 1, true)).is_empty());
        assert!(r.insert(rec("abd456", "c1", 2, true)).is_empty());
        assert_eq!(r.get("abc123").unwrap().id, "abc123");
        assert_eq!(r.get("abd").unwrap().id, "abd456");
        assert!(matches!(r.get("ab"), Err(EngineError::InvalidArgument(_))));
        assert!(matches!(r.get("zz"), Err(EngineError::NotFound(_))));
        assert!(matches!(r.get(""), Err(EngineError::InvalidArgument(_))));
        let ids: Vec<_> = r.of_container("c1").iter().map(|x| x.id.clone()).collect();
        assert_eq!(ids, ["abc123", "abd456"]);
        r.drop_container("c1");
        assert!(matches!(r.get("abc123"), Err(EngineError::NotFound(_))));
    }

    #[test]
    fn finished_execs_are_bounded_per_container() {
        let r = Registry::default();
        r.insert(rec("live", "c1", 0, true));
        r.insert(rec("other", "c2", 0, false));
        let mut dropped = Vec::new();
        for i in 0..MAX_FINISHED_PER_CONTAINER + 3 {
            dropped.extend(r.insert(rec(&format!("f{i:03}"), "c1", 1 + i as i64, false)));
        }
        // The oldest finished ones went, with their files; running ones and
        // other containers' stay.
        assert_eq!(dropped.len(), 3);
        assert!(dropped[0].log_path.ends_with("f000.log"));
        assert_eq!(r.of_container("c1").len(), MAX_FINISHED_PER_CONTAINER + 1);
        assert!(r.get("live").is_ok() && r.get("other").is_ok());
        assert!(r.get("f000").is_err() && r.get("f003").is_ok());
    }
}
