//! Quilt's container runtime. Everything that touches the kernel lives here;
//! only the `sys` module may use `unsafe`.
#![deny(unsafe_code)]

pub mod cgroup;
pub mod exitfile;
pub mod image;
pub mod launch;
pub mod logfile;
pub mod proc;
pub mod spec;
#[allow(unsafe_code)]
mod sys;

pub use spec::*;
