//! `quilt pool set|rm|ls`: the daemon's warm pools.
use quilt_proto::v1::system_service_client::SystemServiceClient;
use quilt_proto::v1::{ListWarmPoolsRequest, SetWarmPoolRequest, WarmPoolSpec};
use serde_json::json;

use crate::args::{Format, PoolCommand, PoolShapeArgs};
use crate::client;
use crate::error::CliError;
use crate::output::json::pretty;
use crate::output::stream::emit;

fn spec(shape: PoolShapeArgs, size: u32) -> WarmPoolSpec {
    WarmPoolSpec {
        image: shape.image,
        size,
        init: shape.init,
        read_only: shape.read_only,
    }
}

pub async fn pool(target: &client::Target, cmd: PoolCommand) -> Result<u8, CliError> {
    let mut c = SystemServiceClient::new(client::connect_channel(target).await?);
    match cmd {
        PoolCommand::Set(a) => {
            c.set_warm_pool(SetWarmPoolRequest {
                spec: Some(spec(a.shape, a.size)),
            })
            .await?;
        }
        PoolCommand::Rm(shape) => {
            let image = shape.image.clone();
            let known = c
                .list_warm_pools(ListWarmPoolsRequest {})
                .await?
                .into_inner()
                .pools
                .into_iter()
                .filter_map(|p| p.spec)
                .any(|p| {
                    p.image == image && p.init == shape.init && p.read_only == shape.read_only
                });
            if !known {
                return Err(CliError::engine(format!(
                    "no warm pool of {image} with these options"
                )));
            }
            c.set_warm_pool(SetWarmPoolRequest {
                spec: Some(spec(shape, 0)),
            })
            .await?;
        }
        PoolCommand::Ls { format } => {
            let pools = c
                .list_warm_pools(ListWarmPoolsRequest {})
                .await?
                .into_inner()
                .pools;
            let text = match format {
                Format::Json => {
                    let rows: Vec<_> = pools
                        .iter()
                        .map(|p| {
                            let s = p.spec.clone().unwrap_or_default();
                            json!({
                                "image": s.image,
                                "size": s.size,
                                "init": s.init,
                                "read_only": s.read_only,
                                "ready": p.ready,
                                "hits": p.hits,
                                "misses": p.misses,
                                "last_error": p.last_error,
                            })
                        })
                        .collect();
                    format!("{}\n", pretty(&json!(rows))?)
                }
                Format::Table => {
                    let mut out = format!(
                        "{:<30} {:<16} {:>5} {:>5} {:>8} {:>8}  {}\n",
                        "IMAGE", "OPTIONS", "SIZE", "READY", "HITS", "MISSES", "LAST ERROR"
                    );
                    for p in &pools {
                        let s = p.spec.clone().unwrap_or_default();
                        let opts: Vec<&str> = [(s.init, "init"), (s.read_only, "read-only")]
                            .iter()
                            .filter(|(on, _)| *on)
                            .map(|(_, n)| *n)
                            .collect();
                        let opts = if opts.is_empty() {
                            "-".to_string()
                        } else {
                            opts.join(",")
                        };
                        out.push_str(&format!(
                            "{:<30} {:<16} {:>5} {:>5} {:>8} {:>8}  {}\n",
                            s.image, opts, s.size, p.ready, p.hits, p.misses, p.last_error
                        ));
                    }
                    out
                }
            };
            emit(&text)?;
        }
    }
    Ok(0)
}
