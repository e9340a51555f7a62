//! The gRPC services, one pattern for all: a struct holding the engine, each
//! handler decoding its request (`convert`), calling one engine verb and
//! encoding the answer; errors through `status::to_status`.
mod attach;
mod containers;
mod copy;
mod exec;
mod health;
mod image_io;
mod images;
mod listing;
mod networks;
mod pull;
mod system;
mod volumes;

pub use containers::Containers;
pub use health::{HealthService, health};
pub use images::Images;
pub use listing::{Listing, WithListing};
pub use networks::Networks;
pub use system::System;
pub use volumes::Volumes;

/// A boxed server stream, as the streaming RPCs return.
pub type BoxStream<T> = futures::stream::BoxStream<'static, Result<T, tonic::Status>>;
