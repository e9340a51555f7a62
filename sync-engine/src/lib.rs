//! Quilt's sync engine: the SQLite state of every container and the
//! background services that move it along (starter, monitor, cleanup,
//! reconciliation), plus logs and exec on top of the runtime crate.
#![deny(unsafe_code)]

mod cleanup;
mod config;
mod engine;
mod env;
mod error;
mod exec;
mod ids;
mod lifecycle;
mod lock;
mod logs;
mod model;
mod monitor;
mod reconcile;
mod starter;
mod store;
mod validate;

pub use config::EngineConfig;
pub use engine::Engine;
pub use error::{EngineError, Result};
pub use exec::ExecOutput;
pub use ids::short as short_id;
pub use lifecycle::WaitResult;
pub use lock::InstanceLock;
pub use logs::{LogItem, LogLine};
pub use model::{Container, CreateSpec, Event, ExitInfo, ListFilter, Network, State, now_ns};
pub use quilt_runtime::logfile::Stream as LogStream;
