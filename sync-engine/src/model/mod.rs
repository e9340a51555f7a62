//! The engine's view of containers, images and volumes, independent of the
//! wire format and of the database.
mod container;
mod event;
mod image;
mod mount;
mod network;
mod security;
pub mod state;
mod volume;

pub use container::{
    Container, CreateSpec, ExitInfo, ListCursor, ListFilter, ListPage, ListQuery, ListView,
    WaitResult,
};
pub use event::{Event, now_ns};
pub use image::{DiskUsage, ImageConfig, ImageInfo, Pruned};
pub use mount::{MountSource, MountSpec};
pub use network::{DEFAULT_NETWORK, NetSettings, Network, NetworkInfo, NetworkSpec};
pub use security::{DeviceMapping, IdRange, Seccomp, Security, Ulimit, UsernsMode};
pub use state::State;
pub use volume::Volume;
