//! Quilt's sync engine: the SQLite state of every container and the
//! background services that move it along (starter, monitor, cleanup,
//! reconciliation), plus logs and exec on top of the runtime crate.
#![deny(unsafe_code)]

mod cleanup;
mod config;
mod copy;
mod engine;
mod env;
mod error;
mod exec;
mod execs;
mod fswatch;
mod ids;
mod image_store;
mod images;
mod lifecycle;
mod lock;
mod logs;
mod model;
mod monitor;
mod mounts;
mod reconcile;
mod signals;
mod starter;
mod store;
mod validate;
mod volumes;

pub use config::EngineConfig;
pub use copy::CopyDigest;
pub use engine::Engine;
pub use error::{EngineError, Result};
pub use exec::{ExecEvent, ExecInput, ExecSession, ExecSpec};
pub use execs::{ExecExit, ExecInfo};
pub use ids::short as short_id;
pub use image_store::ImageInfo;
pub use lifecycle::WaitResult;
pub use lock::InstanceLock;
pub use logs::{LogItem, LogLine};
pub use model::{Container, CreateSpec, Event, ExitInfo, ListFilter, Network, State, now_ns};
pub use mounts::{MountSource, MountSpec};
pub use quilt_runtime::image::Progress as ImageProgress;
pub use quilt_runtime::logfile::Stream as LogStream;
pub use volumes::Volume;
