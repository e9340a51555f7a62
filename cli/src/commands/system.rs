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

/// Where a utilization sits: below 0.7 healthy, to 0.8 plan, to 0.9 act,
/// above emergency.
fn rho_level(rho: f64) -> &'static str {
    match rho {
        r if r < 0.7 => "healthy",
        r if r < 0.8 => "plan",
        r if r < 0.9 => "act",
        _ => "emergency",
    }
}

/// A queue's fill: above 0.6 K act, above 0.9 K emergency.
fn queue_level(depth: u64, capacity: u64) -> &'static str {
    let fill = depth as f64 / capacity.max(1) as f64;
    match fill {
        f if f > 0.9 => "emergency",
        f if f > 0.6 => "act",
        _ => "healthy",
    }
}

/// The store's write p99: above 100 ms the single-writer store is outgrown.
fn db_level(p99: f64) -> &'static str {
    match p99 {
        p if p > 0.1 => "act",
        p if p > 0.05 => "plan",
        _ => "healthy",
    }
}

fn ms(v: f64) -> String {
    format!("{:.2} ms", v * 1000.0)
}

/// `quilt system info`: the headline figures, each with its level
/// (healthy / plan / act / emergency).
pub async fn system_info(target: &client::Target, format: Format) -> Result<u8, CliError> {
    let mut c = SystemServiceClient::new(client::connect_channel(target).await?);
    let i = c.get_info(GetInfoRequest {}).await?.into_inner();
    let rho = i.starts_in_flight as f64 / i.start_slots.max(1) as f64;
    let ttr = i.time_to_running.unwrap_or_default();
    let db = i.db_write.unwrap_or_default();
    let text = match format {
        Format::Json => format!(
            "{}\n",
            pretty(&json!({
                "server_version": i.version,
                "containers": i.containers,
                "containers_running": i.containers_running,
                "start_queue": {"depth": i.queue_depth, "capacity": i.queue_capacity,
                                "level": queue_level(i.queue_depth, i.queue_capacity)},
                "starter": {"in_flight": i.starts_in_flight, "slots": i.start_slots,
                            "utilization": rho, "level": rho_level(rho)},
                "time_to_running_seconds": i.time_to_running.map(|p| json!({"p50": p.p50, "p95": p.p95, "p99": p.p99})),
                "db_write_seconds": i.db_write.map(|p| json!({"p50": p.p50, "p95": p.p95, "p99": p.p99, "level": db_level(p.p99)})),
                "db_writes": i.db_writes,
                "db_write_busy_seconds": i.db_write_busy_seconds,
                "starts": i.starts,
                "start_failures": i.start_failures,
                "rejections": i.rejections,
            }))?
        ),
        Format::Table => {
            let mut out = format!(
                "quiltd {} ({} containers, {} running)\n",
                i.version, i.containers, i.containers_running
            );
            out.push_str(&format!(
                "start queue:      {}/{} waiting                 {}\n",
                i.queue_depth,
                i.queue_capacity,
                queue_level(i.queue_depth, i.queue_capacity)
            ));
            out.push_str(&format!(
                "starter:          {}/{} busy (rho {:.2})          {}\n",
                i.starts_in_flight,
                i.start_slots,
                rho,
                rho_level(rho)
            ));
            match i.time_to_running {
                Some(_) => out.push_str(&format!(
                    "time to running:  p50 {} p95 {} p99 {}\n",
                    ms(ttr.p50),
                    ms(ttr.p95),
                    ms(ttr.p99)
                )),
                None => out.push_str("time to running:  no start yet\n"),
            }
            match i.db_write {
                Some(_) => out.push_str(&format!(
                    "store writes:     p50 {} p95 {} p99 {}   {}\n",
                    ms(db.p50),
                    ms(db.p95),
                    ms(db.p99),
                    db_level(db.p99)
                )),
                None => out.push_str("store writes:     none yet\n"),
            }
            out.push_str(&format!(
                "                  {} since start, the writer held {:.1} s\n",
                i.db_writes, i.db_write_busy_seconds
            ));
            out.push_str(&format!(
                "starts: {} ok, {} failed; rejections: {}\n",
                i.starts, i.start_failures, i.rejections
            ));
            out
        }
    };
    emit(&text)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_capacity_notes() {
        assert_eq!(rho_level(0.5), "healthy");
        assert_eq!(rho_level(0.75), "plan");
        assert_eq!(rho_level(0.85), "act");
        assert_eq!(rho_level(1.0), "emergency");
        assert_eq!(queue_level(10, 100), "healthy");
        assert_eq!(queue_level(70, 100), "act");
        assert_eq!(queue_level(95, 100), "emergency");
        assert_eq!(db_level(0.2), "act");
    }
}
