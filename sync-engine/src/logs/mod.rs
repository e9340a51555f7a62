//! GetLogs: a container's captured output, read from the files its shim
//! writes, optionally followed until it exits.
pub(crate) mod follow;

pub use follow::{LogItem, LogLine};
