//! Seccomp: profiles (docker's JSON format and the built-in default), their
//! compilation into a classic BPF filter for the native architecture, and
//! the installation of the compiled filter right before a workload's
//! execve. The daemon compiles; `quilt-shim` only installs.
//!
//! - `profile.rs`: the profile model;
//! - `json.rs`: docker's JSON format;
//! - `default.rs`: the default profile (docker's policy);
//! - `arch.rs`: the native architecture, its names and syscall numbers;
//! - `compile.rs`: profile + capabilities -> what each syscall gets;
//! - `codegen.rs`: its BPF (a binary search on the syscall number);
//! - `bpf.rs` (tests): runs filters as the kernel would;
//! - `install.rs`: decoding and installing the filter in the shim.
mod arch;
#[cfg(test)]
mod bpf;
mod codegen;
mod compile;
mod default;
mod install;
mod json;
mod profile;

pub use arch::Arch;
pub use compile::compile;
pub use install::Program;
pub use json::MAX_PROFILE_BYTES;
pub use profile::{Action, ArgCheck, CmpOp, Profile, Rule, Scope};

/// Why a profile cannot be used, or its filters not installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeccompError {
    /// The profile is not a valid one (the caller's input).
    #[error("invalid seccomp profile: {0}")]
    Invalid(String),
    #[error("seccomp filters can only be built for x86_64 and aarch64")]
    UnsupportedArch,
    /// The compiled filter handed to the shim is damaged.
    #[error("bad compiled seccomp filter: {0}")]
    Decode(String),
    #[error("installing the seccomp filter: {0}")]
    Install(String),
}

/// Reads a profile in docker's JSON format.
pub fn parse(text: &str) -> Result<Profile, SeccompError> {
    json::parse(text)
}

/// Quilt's default profile (docker's default policy).
pub fn default_profile() -> Profile {
    default::profile()
}

#[cfg(test)]
mod tests;
