//! Quilt's registry client: pulls an image reference from an OCI
//! distribution registry (through `oci-client`) into an OCI image layout
//! directory whose every blob has been verified against its digest, ready
//! for the engine's OCI-layout import. Also owns docker-style reference
//! normalisation, platform selection, and the docker-compatible credentials
//! file (`~/.docker/config.json`).
mod blob;
mod credentials;
mod error;
mod layout;
mod options;
mod platform;
mod progress;
mod pull;
mod reference;

pub use credentials::{Credentials, DockerConfig};
pub use error::RegistryError;
pub use options::RegistryOptions;
pub use platform::Platform;
pub use progress::{BlobKind, PullEvent};
pub use pull::{PullRequest, Pulled, Puller};
pub use reference::{ImageRef, looks_like_reference};
