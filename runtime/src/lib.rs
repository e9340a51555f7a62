//! Quilt's container runtime. Everything that touches the kernel lives here;
//! only the `sys` module may use `unsafe`.
#![deny(unsafe_code)]

pub mod attach;
pub mod capability;
pub mod cgroup;
pub mod copy;
pub mod devnode;
pub mod execproto;
pub mod exitfile;
pub(crate) mod forkserver;
pub mod image;
pub mod launch;
pub mod layer;
pub mod logfile;
pub mod mntns;
pub mod mounts;
pub mod netns;
pub mod passwd;
pub mod proc;
pub mod procinfo;
pub mod rlimit;
pub mod seccomp;
#[doc(hidden)]
pub mod shim;
pub mod signal;
pub mod spec;
#[allow(unsafe_code)]
mod sys;
pub mod text;

pub use spec::*;
/// Resolves once the process behind a pidfd has exited (tokio reactor, no polling).
pub use sys::pidfd_exited;
pub use sys::release_free_memory;
/// `chattr +T` on a directory: ext4 spreads its subdirectories over block groups.
pub use sys::set_topdir;
