//! What can go wrong while pulling, in words a user can act on.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The reference (or platform, or option) given is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The registry has no such repository, tag, digest or platform.
    #[error("{0}")]
    NotFound(String),
    /// The registry wants credentials, or refused those given.
    #[error("{0}")]
    Unauthorized(String),
    /// The registry could not be reached or answered with an error.
    #[error("{0}")]
    Unavailable(String),
    /// A blob or manifest does not match its digest (or size): refused.
    #[error("{0}")]
    Verification(String),
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl RegistryError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RegistryError::Io {
            path: path.into(),
            source,
        }
    }
}
