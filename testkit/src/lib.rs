//! Shared test and benchmark toolkit for Quilt.
//!
//! - [`host`]: looking at the host from the outside (/proc, /sys/fs/cgroup,
//!   mountinfo) to see what a daemon really left behind, with one
//!   definition of a leak ([`host::Leftovers`]) for the end-to-end tests and
//!   the benchmark alike.
//! - [`postgres`]: a real PostgreSQL server in a temporary directory
//!   ([`postgres::Postgres`]), for the PostgreSQL store's tests.
//! - [`retry()`]: polling with a deadline.
//! - [`tar`]: archive fixtures for tests.
//!
//! It never depends on the engine's crates: it checks them from outside.

pub mod host;
pub mod postgres;
mod retry;
pub mod tar;

pub use retry::retry;
