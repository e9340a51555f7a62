//! `quilt node ls`: the nodes of the cluster this daemon belongs to.
use quilt_proto::v1::ListNodesRequest;
use quilt_proto::v1::system_service_client::SystemServiceClient;
use serde_json::json;

use crate::args::{Format, NodeCommand};
use crate::client;
use crate::error::CliError;
use crate::output::json::pretty;
use crate::output::stream::emit;
use crate::output::timefmt::{Fraction, rfc3339};

pub async fn node(target: &client::Target, cmd: NodeCommand) -> Result<u8, CliError> {
    let mut c = SystemServiceClient::new(client::connect_channel(target).await?);
    let NodeCommand::Ls { format } = cmd;
    let nodes = c.list_nodes(ListNodesRequest {}).await?.into_inner().nodes;
    let rfc = |t: &Option<prost_types::Timestamp>| {
        t.as_ref()
            .map(|t| rfc3339(t, Fraction::Trimmed))
            .unwrap_or_default()
    };
    let text = match format {
        Format::Json => {
            let rows: Vec<_> = nodes
                .iter()
                .map(|n| {
                    json!({
                        "id": n.id,
                        "name": n.name,
                        "address": n.address,
                        "status": if n.up { "up" } else { "down" },
                        "this_node": n.this_node,
                        "cpus": n.cpus,
                        "memory_mb": n.memory_mb,
                        "labels": n.labels,
                        "containers": n.containers,
                        "reserved_memory_mb": n.reserved_memory_mb,
                        "reserved_cpus": n.reserved_cpus,
                        "started_at": rfc(&n.started_at),
                        "renewed_at": rfc(&n.renewed_at),
                        "lease_until": rfc(&n.lease_until),
                    })
                })
                .collect();
            format!("{}\n", pretty(&json!(rows))?)
        }
        Format::Table => {
            if nodes.is_empty() {
                "this quiltd is not a node of a cluster (it has no --database postgres://...)\n"
                    .to_owned()
            } else {
                let mut out = format!(
                    "{:<20} {:<6} {:<22} {:>5} {:>9} {:>10} {:>12}  {}\n",
                    "NAME",
                    "STATUS",
                    "ADDRESS",
                    "CPUS",
                    "MEMORY",
                    "CONTAINERS",
                    "RESERVED MB",
                    "LEASE UNTIL"
                );
                for n in &nodes {
                    let name = if n.this_node {
                        format!("{} *", n.name)
                    } else {
                        n.name.clone()
                    };
                    out.push_str(&format!(
                        "{:<20} {:<6} {:<22} {:>5} {:>8}M {:>10} {:>12}  {}\n",
                        name,
                        if n.up { "up" } else { "down" },
                        n.address,
                        n.cpus,
                        n.memory_mb,
                        n.containers,
                        n.reserved_memory_mb,
                        rfc(&n.lease_until)
                    ));
                }
                out
            }
        }
    };
    emit(&text)?;
    Ok(0)
}
