//! `quilt volume create|ls|inspect|rm`.

use quilt_proto::v1::volume_service_client::VolumeServiceClient;
use quilt_proto::v1::{
    CreateVolumeRequest, InspectVolumeRequest, ListVolumesRequest, RemoveVolumeRequest, Volume,
};
use serde_json::json;

use crate::args::volume::VolumeCommand;
use crate::client;
use crate::error::CliError;
use crate::output::stream::emit;

fn view(v: &Volume) -> serde_json::Value {
    json!({
        "name": v.name,
        "created_at": v.created_at.map(|t| t.seconds),
        "labels": v.labels.iter().collect::<std::collections::BTreeMap<_, _>>(),
        "used_by": v.used_by,
    })
}

pub async fn volume(target: &client::Target, cmd: VolumeCommand) -> Result<u8, CliError> {
    let mut c = VolumeServiceClient::new(client::connect_channel(target).await?);
    match cmd {
        VolumeCommand::Create { name, labels } => {
            let v = c
                .create_volume(CreateVolumeRequest {
                    name,
                    labels: labels.into_iter().collect(),
                })
                .await?
                .into_inner()
                .volume
                .ok_or_else(|| CliError::engine("the daemon answered without the volume"))?;
            emit(&format!("{}\n", v.name))?;
        }
        VolumeCommand::Ls { json } => {
            let vs = c
                .list_volumes(ListVolumesRequest {})
                .await?
                .into_inner()
                .volumes;
            if json {
                let arr: Vec<_> = vs.iter().map(view).collect();
                emit(&format!("{}\n", serde_json::Value::Array(arr)))?;
            } else {
                let mut text = format!("{:<32} {}\n", "NAME", "USED BY");
                for v in &vs {
                    text.push_str(&format!("{:<32} {}\n", v.name, v.used_by.len()));
                }
                emit(&text)?;
            }
        }
        VolumeCommand::Inspect { names } => {
            let mut arr = Vec::new();
            for name in names {
                let v = c
                    .inspect_volume(InspectVolumeRequest { name })
                    .await?
                    .into_inner()
                    .volume
                    .ok_or_else(|| CliError::engine("the daemon answered without the volume"))?;
                arr.push(view(&v));
            }
            let text = serde_json::to_string_pretty(&serde_json::Value::Array(arr))?;
            emit(&format!("{text}\n"))?;
        }
        VolumeCommand::Rm { force, names } => {
            for name in names {
                c.remove_volume(RemoveVolumeRequest {
                    name: name.clone(),
                    force,
                })
                .await?;
                emit(&format!("{name}\n"))?;
            }
        }
    }
    Ok(0)
}
