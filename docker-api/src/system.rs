//! `_ping`, `version` and `info`.
use crate::body::{self, Reply};
use crate::error::Result;
use crate::server::DockerApi;
use http::{Method, header};
use quilt_sync_engine::{ListFilter, State};
use serde_json::json;

pub fn ping(m: &Method) -> Reply {
    let b = if m == Method::HEAD {
        body::empty()
    } else {
        body::full("OK")
    };
    let mut r = http::Response::new(b);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        "cache-control",
        header::HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert("pragma", header::HeaderValue::from_static("no-cache"));
    h.insert("builder-version", header::HeaderValue::from_static("1"));
    r
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

pub async fn version(_api: &DockerApi) -> Result<Reply> {
    let v = env!("CARGO_PKG_VERSION");
    Ok(body::json(&json!({
        "Platform": { "Name": "Quilt" },
        "Components": [{
            "Name": "Engine",
            "Version": v,
            "Details": {
                "ApiVersion": crate::API_VERSION,
                "MinAPIVersion": crate::MIN_API_VERSION,
                "Os": "linux",
                "Arch": arch(),
                "KernelVersion": kernel(),
            },
        }],
        "Version": v,
        "ApiVersion": crate::API_VERSION,
        "MinAPIVersion": crate::MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": arch(),
        "KernelVersion": kernel(),
        "BuildTime": "",
    })))
}

pub async fn info(api: &DockerApi) -> Result<Reply> {
    let all = api.engine.list(&ListFilter::default()).await?;
    let running = all.iter().filter(|c| c.state == State::Running).count();
    let stopped = all
        .iter()
        .filter(|c| matches!(c.state, State::Exited | State::Failed | State::Created))
        .count();
    let images = api.engine.list_images().await?.len();
    let cgroup_v2 = format!("{:?}", api.engine.cgroup_layout()).starts_with("V2");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem_total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    Ok(body::json(&json!({
        "ID": "",
        "Containers": all.len(),
        "ContainersRunning": running,
        "ContainersPaused": 0,
        "ContainersStopped": stopped,
        "Images": images,
        "Driver": "overlay",
        "DriverStatus": [],
        "Plugins": { "Volume": ["local"], "Network": [], "Authorization": null, "Log": [] },
        "MemoryLimit": true,
        "SwapLimit": false,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "PidsLimit": true,
        "IPv4Forwarding": false,
        "Debug": false,
        "NFd": 0,
        "NGoroutines": 0,
        "SystemTime": crate::time::rfc3339(quilt_sync_engine::now_ns()),
        "LoggingDriver": "quilt",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": if cgroup_v2 { "2" } else { "1" },
        "NEventsListener": 0,
        "KernelVersion": kernel(),
        "OperatingSystem": "Quilt",
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "",
        "RegistryConfig": null,
        "NCPU": ncpu,
        "MemTotal": mem_total,
        "DockerRootDir": api.data_dir.display().to_string(),
        "Name": host,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": { "quilt": { "path": "quilt-shim" } },
        "DefaultRuntime": "quilt",
        "Swarm": { "LocalNodeState": "inactive" },
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": ["name=seccomp,profile=default"],
        "Warnings": [],
    })))
}
