//! Quilt's sync engine: the SQLite state of every container and the
//! background services that move it along, plus logs, exec, copies, images
//! and volumes on top of the runtime crate.
//!
//! - `model/`: containers, images, volumes, events; `model/state.rs` is the
//!   state machine (what each verb may do in each state).
//! - `store/`: every SQL statement.
//! - `engine/`: the `Engine` handle and the state its parts share, including
//!   the one `wait_until` every waiter uses.
//! - `api/`, `exec/`, `logs/`: the verbs the gRPC server calls.
//! - `services/`: what runs in the background (starter, monitor, cleanup,
//!   reconciliation, the image sweep).
//! - `network/`: networking on the create, start and removal paths and at
//!   start-up (the plumbing is the `quilt-network` crate).
//! - `validate/`: checks on API input; `support/`: small shared pieces.
#![deny(unsafe_code)]

mod api;
mod cluster;
mod config;
mod engine;
mod error;
mod exec;
mod logs;
pub mod metrics;
pub mod model;
mod network;
mod pool;
mod security;
mod services;
mod store;
mod support;
mod validate;

pub use api::attach::AttachInput;
pub use api::copy::CopyDigest;
pub use api::image_io::CommitOptions;
pub use api::prune::ContainersPruned;
pub use api::pull::PullUpdate;
pub use api::stats::StatsStream;
pub use api::system::SystemInfo;
pub use config::{
    ClusterConfig, DEFAULT_LAYER_POOL, DEFAULT_NETNS_POOL, DEFAULT_NODE_LEASE, DEFAULT_PIDS_LIMIT,
    DEFAULT_USERNS_BASE, DEFAULT_USERNS_RANGES, EngineConfig, MAX_LAYER_POOL, NetworkConfig,
    UsernsIds,
};
pub use engine::{Engine, Requester, StartClass};
pub use error::{EngineError, Result};
pub use exec::{ExecEvent, ExecExit, ExecInfo, ExecInput, ExecSession, ExecSpec};
pub use logs::{LogItem, LogLine};
pub use model::{
    Container, CreateSpec, DiskUsage, Event, ExitInfo, ImageConfig, ImageInfo, ListCursor,
    ListFilter, ListPage, ListQuery, ListView, MountSource, MountSpec, NetSettings, Network,
    NetworkInfo, NetworkSpec, NodeInfo, Pruned, State, Stdio, Volume, WaitResult, now_ns,
};
pub use model::{ContainerStats, EventFilter};
pub use pool::{MAX_POOL_SIZE, PoolSpec, PoolStatus};
pub use quilt_network::mac_text;
pub use quilt_network::ports::DEFAULT_HOST_IP as DEFAULT_PORT_HOST_IP;
pub use quilt_network::{HostEntry, PortBinding, Proto as PortProto};
pub use quilt_registry::{
    BlobKind, Credentials as RegistryCredentials, PullEvent, RegistryOptions,
};
pub use quilt_runtime::image::Progress as ImageProgress;
pub use quilt_runtime::logfile::Stream as LogStream;
pub use quilt_runtime::procinfo::ProcessInfo;
pub use store::is_postgres_url;
pub use support::ids::short as short_id;
pub use support::lock::InstanceLock;
pub use validate::names::node_name as validate_node_name;
pub use validate::{MAX_MESSAGE, bounded_message, echo};
