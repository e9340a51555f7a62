//! quilt.v1 stats and top messages: usage samples and processes.
use super::{state, ts};
use quilt_proto::v1 as pb;
use quilt_sync_engine::{ContainerStats, ProcessInfo};

pub fn stats(s: &ContainerStats) -> pb::ContainerStats {
    let (rx, tx) = s.net.unwrap_or((0, 0));
    pb::ContainerStats {
        id: s.id.clone(),
        name: s.name.clone(),
        state: s.state.map_or(pb::ContainerState::Unspecified, state) as i32,
        time: Some(ts(s.time_ns)),
        cpu_percent: s.cpu_percent,
        cpu_usage_ns: s.cpu_ns,
        memory_usage_bytes: s.memory_bytes,
        memory_limit_bytes: s.memory_limit,
        memory_percent: s.memory_percent,
        pids_current: s.pids,
        pids_limit: s.pids_limit,
        block_read_bytes: s.block_read,
        block_write_bytes: s.block_write,
        network_available: s.net.is_some(),
        network_rx_bytes: rx,
        network_tx_bytes: tx,
    }
}

pub fn stats_response(batch: &[ContainerStats]) -> pb::GetStatsResponse {
    pb::GetStatsResponse {
        stats: batch.iter().map(stats).collect(),
    }
}

pub fn process(p: &ProcessInfo) -> pb::ProcessInfo {
    pb::ProcessInfo {
        pid: p.pid,
        container_pid: p.ns_pid,
        ppid: p.ppid,
        uid: p.uid,
        container_uid: p.ns_uid,
        state: p.state.clone(),
        cpu_time_ns: p.cpu_ns,
        rss_bytes: p.rss_bytes,
        command: p.command.clone(),
    }
}
