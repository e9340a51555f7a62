//! The errors of this crate.
use std::io;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Bad input (a CIDR, a port, a name): the caller's mistake.
    #[error("{0}")]
    Invalid(String),
    /// Refused in the present state (a port in use, a subnet taken).
    #[error("{0}")]
    Conflict(String),
    /// A netlink request the kernel refused.
    #[error("{what}: {source}")]
    Netlink {
        what: String,
        #[source]
        source: io::Error,
    },
    /// `nft` failed to apply the ruleset.
    #[error("nftables: {0}")]
    Nft(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

impl NetError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> NetError {
        let what = what.into();
        move |source| NetError::Io { what, source }
    }

    pub fn netlink(what: impl Into<String>) -> impl FnOnce(io::Error) -> NetError {
        let what = what.into();
        move |source| NetError::Netlink { what, source }
    }

    /// The errno of a netlink or I/O failure.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetError::Netlink { source, .. } | NetError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

pub type Result<T, E = NetError> = std::result::Result<T, E>;
