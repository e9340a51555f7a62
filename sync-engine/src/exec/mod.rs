//! Exec: commands run inside a running container through `quilt-shim exec`,
//! and the in-memory registry of every exec the daemon started.
mod registry;
pub(crate) mod session;

pub(crate) use registry::Registry;
pub use registry::{ExecExit, ExecInfo};
pub use session::{ExecEvent, ExecInput, ExecSession, ExecSpec};
