//! `quilt info` and `quilt version` (docker's habits), from
//! SystemService.GetInfo.

use quilt_proto::v1::GetInfoRequest;
use quilt_proto::v1::system_service_client::SystemServiceClient;
use serde_json::json;

use crate::args::Format;
use crate::client;
use crate::error::CliError;
use crate::output::json::pretty;
use crate::output::stream::emit;

pub async fn info(target: &client::Target, format: Format) -> Result<u8, CliError> {
    let mut c = SystemServiceClient::new(client::connect_channel(target).await?);
    let i = c.get_info(GetInfoRequest {}).await?.into_inner();
    let text = match format {
        Format::Json => format!(
            "{}\n",
            pretty(&json!({
                "server_version": i.version,
                "api_version": i.api_version,
                "containers": i.containers,
                "containers_running": i.containers_running,
                "containers_stopped": i.containers_stopped,
                "images": i.images,
                "volumes": i.volumes,
                "cgroup_version": i.cgroup_version,
                "kernel_version": i.kernel_version,
                "os": i.os,
                "arch": i.arch,
                "hostname": i.hostname,
                "cpus": i.cpus,
                "memory_bytes": i.memory_bytes,
                "data_dir": i.data_dir,
            }))?
        ),
        Format::Table => {
            let other = i
                .containers
                .saturating_sub(i.containers_running + i.containers_stopped);
            format!(
                "Server Version: {}\nAPI Version: {}\nContainers: {}\n Running: {}\n Stopped: {}\n Other: {}\nImages: {}\nVolumes: {}\nStorage Driver: overlay\nCgroup Version: {}\nKernel Version: {}\nOperating System: {}\nArchitecture: {}\nCPUs: {}\nTotal Memory: {}\nName: {}\nData Dir: {}\n",
                i.version,
                i.api_version,
                i.containers,
                i.containers_running,
                i.containers_stopped,
                other,
                i.images,
                i.volumes,
                i.cgroup_version,
                i.kernel_version,
                i.os,
                i.arch,
                i.cpus,
                quilt_proto::units::human_size(i.memory_bytes),
                i.hostname,
                i.data_dir,
            )
        }
    };
    emit(&text)?;
    Ok(0)
}

/// The client's version, then the daemon's (an unreachable daemon is an
/// error after the client's part is printed, as docker does).
pub async fn version(target: &client::Target) -> Result<u8, CliError> {
    emit(&format!(
        "Client:\n Version: {}\n OS/Arch: {}/{}\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    ))?;
    let mut c = SystemServiceClient::new(client::connect_channel(target).await?);
    let i = c.get_info(GetInfoRequest {}).await?.into_inner();
    emit(&format!(
        "\nServer:\n Version: {}\n API version: {}\n OS/Arch: {}/{}\n Kernel Version: {}\n",
        i.version, i.api_version, i.os, i.arch, i.kernel_version
    ))?;
    Ok(0)
}
