//! `quilt network create|ls|inspect|rm` and `quilt port`.

use quilt_proto::v1::network_service_client::NetworkServiceClient;
use quilt_proto::v1::{
    CreateNetworkRequest, EgressPolicy, GetContainerRequest, InspectNetworkRequest,
    ListNetworksRequest, NetworkInfo, RemoveNetworkRequest, UpdateNetworkPolicyRequest,
};
use serde_json::json;

use crate::args::IdArg;
use crate::args::network::NetworkCommand;
use crate::client::{self, Client};
use crate::error::CliError;
use crate::output::json::port_text;
use crate::output::stream::emit;

fn view(n: &NetworkInfo) -> serde_json::Value {
    json!({
        "name": n.name,
        "id": n.id,
        "subnet": n.subnet,
        "gateway": n.gateway,
        "bridge": n.bridge,
        "internal": n.internal,
        "created_at": n.created_at.map(|t| t.seconds),
        "containers": n.containers,
    })
}

/// An egress policy as `inspect` and `network policy` print it.
pub fn policy_view(p: &EgressPolicy) -> serde_json::Value {
    json!({
        "default_action": if p.default_action.is_empty() { "allow" } else { p.default_action.as_str() },
        "allow": p.allow,
        "deny": p.deny,
    })
}

fn missing() -> CliError {
    CliError::engine("the daemon answered without the network")
}

pub async fn network(target: &client::Target, cmd: NetworkCommand) -> Result<u8, CliError> {
    let mut c = NetworkServiceClient::new(client::connect_channel(target).await?);
    match cmd {
        NetworkCommand::Create {
            name,
            subnet,
            internal,
        } => {
            let n = c
                .create_network(CreateNetworkRequest {
                    name,
                    subnet: subnet.unwrap_or_default(),
                    internal,
                })
                .await?
                .into_inner()
                .network
                .ok_or_else(missing)?;
            emit(&format!("{}\n", n.name))?;
        }
        NetworkCommand::Ls { json } => {
            let ns = c
                .list_networks(ListNetworksRequest {})
                .await?
                .into_inner()
                .networks;
            if json {
                let arr: Vec<_> = ns.iter().map(view).collect();
                emit(&format!("{}\n", serde_json::Value::Array(arr)))?;
            } else {
                let mut text = format!(
                    "{:<24} {:<18} {:<16} {:<9} {}\n",
                    "NAME", "SUBNET", "BRIDGE", "INTERNAL", "CONTAINERS"
                );
                for n in &ns {
                    text.push_str(&format!(
                        "{:<24} {:<18} {:<16} {:<9} {}\n",
                        n.name,
                        n.subnet,
                        n.bridge,
                        if n.internal { "yes" } else { "no" },
                        n.containers.len()
                    ));
                }
                emit(&text)?;
            }
        }
        NetworkCommand::Inspect { names } => {
            let mut arr = Vec::new();
            for name in names {
                let n = c
                    .inspect_network(InspectNetworkRequest { name })
                    .await?
                    .into_inner()
                    .network
                    .ok_or_else(missing)?;
                arr.push(view(&n));
            }
            let text = serde_json::to_string_pretty(&serde_json::Value::Array(arr))?;
            emit(&format!("{text}\n"))?;
        }
        NetworkCommand::Policy {
            id,
            default,
            allow,
            deny,
        } => {
            let p = if default.is_none() && allow.is_empty() && deny.is_empty() {
                let mut cc = client::connect(target).await?;
                cc.get_container(GetContainerRequest { id: id.clone() })
                    .await?
                    .into_inner()
                    .container
                    .ok_or_else(|| CliError::engine(format!("no such container: {id}")))?
                    .egress
                    .map(|e| *e)
                    .unwrap_or_default()
            } else {
                c.update_network_policy(UpdateNetworkPolicyRequest {
                    id,
                    policy: Some(EgressPolicy {
                        default_action: default.unwrap_or_default(),
                        allow,
                        deny,
                    }),
                })
                .await?
                .into_inner()
                .policy
                .unwrap_or_default()
            };
            let text = serde_json::to_string_pretty(&policy_view(&p))?;
            emit(&format!("{text}\n"))?;
        }
        NetworkCommand::Rm { names } => {
            for name in names {
                c.remove_network(RemoveNetworkRequest { name: name.clone() })
                    .await?;
                emit(&format!("{name}\n"))?;
            }
        }
    }
    Ok(0)
}

/// `quilt port ID`: the container's published ports, one a line.
pub async fn port(client: &mut Client, args: IdArg) -> Result<u8, CliError> {
    let c = client
        .get_container(GetContainerRequest {
            id: args.id.clone(),
        })
        .await?
        .into_inner()
        .container
        .ok_or_else(|| CliError::engine(format!("no such container: {}", args.id)))?;
    let mut text = String::new();
    for p in c.network_settings.iter().flat_map(|n| n.ports.iter()) {
        text.push_str(&port_text(p));
        text.push('\n');
    }
    emit(&text)?;
    Ok(0)
}
