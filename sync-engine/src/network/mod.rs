//! The engine's side of networking (the plumbing is `quilt-network`):
//! - `create.rs`: a container's network request checked and completed at
//!   create (its peer resolved, free host ports chosen);
//! - `setup.rs`: the start path (a namespace from the pool, put on its
//!   network; hosts and resolv.conf);
//! - `egress.rs`: egress policies checked, put in force, changed live;
//! - `hosts.rs`: /etc/hosts (siblings named only for containers that do
//!   not ask the network's resolver) and /etc/resolv.conf;
//! - `release.rs`: the removal path;
//! - `dns.rs`: the networks' resolvers started and stopped, and the
//!   containers' names kept in them;
//! - `startup.rs`: bridges, namespaces and the ruleset made true again
//!   when quiltd starts.
mod create;
pub(crate) mod dns;
pub(crate) mod egress;
mod hosts;
mod release;
mod setup;
mod startup;

pub(crate) use create::check_create;
pub(crate) use hosts::Files as HostsFiles;
pub(crate) use hosts::for_launch as hosts_for_launch;
pub(crate) use hosts::refresh as refresh_hosts;
pub(crate) use hosts::renamed as hosts_renamed;
pub(crate) use hosts::write as hosts_files;
pub(crate) use release::{refuse_joined, release};
pub(crate) use setup::{early_slot, give_back_early, prepare, ready_slot};
pub(crate) use startup::startup;

use crate::error::EngineError;
use quilt_network::NetError;

impl From<NetError> for EngineError {
    fn from(e: NetError) -> Self {
        match e {
            NetError::Invalid(m) => EngineError::InvalidArgument(m),
            NetError::Conflict(m) => EngineError::FailedPrecondition(m),
            e => EngineError::Internal(format!("network: {e}")),
        }
    }
}

/// Whether a container may change its network namespace (CAP_NET_ADMIN
/// over it): then the namespace is never handed to anyone else.
pub(crate) fn can_change_netns(c: &crate::model::Container) -> bool {
    c.security.userns != crate::model::UsernsMode::Private
        && c.security
            .cap_add
            .iter()
            .any(|n| n == "NET_ADMIN" || n == "ALL")
        && !c.security.cap_drop.iter().any(|n| n == "NET_ADMIN")
}
