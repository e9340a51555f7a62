//! Formatting of everything the CLI prints.

pub mod docker;
pub mod json;
pub mod mounts;
pub mod stream;
pub mod table;
pub mod template;
pub mod timefmt;
