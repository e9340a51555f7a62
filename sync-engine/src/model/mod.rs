//! The engine's view of containers, images and volumes, independent of the
//! wire format and of the database.
mod container;
mod event;
mod image;
pub mod lifetime;
mod mount;
mod network;
mod node;
pub mod restart;
mod security;
pub mod state;
mod stats;
mod stdio;
mod volume;

pub use container::{
    Container, CreateSpec, ExitInfo, ListCursor, ListFilter, ListPage, ListQuery, ListView,
    WaitResult,
};
pub use event::{Event, EventFilter, EventText, now_ns};
pub use image::{DiskUsage, ImageConfig, ImageInfo, Pruned};
pub use lifetime::{IdleAction, Lifetime};
pub use mount::{MountSource, MountSpec};
pub use network::{DEFAULT_NETWORK, NetSettings, Network, NetworkInfo, NetworkSpec};
pub use node::{Expired, NodeInfo, NodeSpec};
pub use restart::RestartPolicy;
pub use security::{DeviceMapping, IdRange, Seccomp, Security, Ulimit, UsernsMode};
pub use state::State;
pub use stats::ContainerStats;
pub use stdio::Stdio;
pub use volume::Volume;
