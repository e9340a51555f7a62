//! The engine's view of containers, images and volumes, independent of the
//! wire format and of the database.
mod container;
mod event;
mod image;
pub mod lifetime;
mod mount;
pub mod restart;
mod security;
pub mod state;
mod stats;
mod volume;

pub use container::{
    Container, CreateSpec, ExitInfo, ListCursor, ListFilter, ListPage, ListQuery, ListView,
    Network, WaitResult,
};
pub use event::{Event, EventFilter, now_ns};
pub use image::ImageInfo;
pub use lifetime::{IdleAction, Lifetime};
pub use mount::{MountSource, MountSpec};
pub use restart::RestartPolicy;
pub use security::{DeviceMapping, IdRange, Seccomp, Security, Ulimit, UsernsMode};
pub use state::State;
pub use stats::ContainerStats;
pub use volume::Volume;
