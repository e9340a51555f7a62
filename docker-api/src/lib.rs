//! A documented subset of the Docker Engine API (version 1.41, the one
//! docker 20.10 speaks) served over HTTP/1.1 on a Unix socket, translated to
//! the same in-process `Engine` the gRPC service uses: no second state.
//!
//! - `server`: the accept loop and the per-connection HTTP/1.1 service.
//! - `router`: paths (versioned and not) to handlers.
//! - `error`: docker's error shape (`{"message": ...}`) and status codes.
//! - `unsupported`: the one place naming what is not supported yet.
//! - `system`, `containers`, `create`, `inspect`, `logs`, `exec`,
//!   `archive`, `images`, `image_io`, `volumes`, `events`: the endpoints.
//! - `body`, `query`, `mux`, `time`: HTTP bodies, query strings, docker's
//!   stream framing and timestamps.
#![deny(unsafe_code)]
#![recursion_limit = "256"]

mod archive;
mod body;
mod containers;
mod create;
mod error;
mod events;
mod exec;
mod image_io;
mod images;
mod inspect;
mod logs;
mod mux;
mod networks;
mod pull;
mod query;
mod router;
mod server;
mod stats;
mod system;
mod time;
mod unsupported;
mod volumes;

pub use error::ApiError;
pub use server::{DockerApi, serve};

/// The API version served (docker 20.10).
pub const API_VERSION: &str = "1.41";
/// The oldest API version a client may ask for.
pub const MIN_API_VERSION: &str = "1.24";
