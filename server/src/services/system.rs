//! quilt.v1.SystemService.
use crate::status::to_status;
use quilt_proto::v1 as pb;
use quilt_proto::v1::system_service_server::SystemService;
use quilt_sync_engine::Engine;
use tonic::{Request, Response, Status};

#[derive(Debug)]
pub struct System {
    engine: Engine,
}

impl System {
    pub fn new(engine: Engine) -> Self {
        System { engine }
    }
}

#[tonic::async_trait]
impl SystemService for System {
    async fn get_info(
        &self,
        _req: Request<pb::GetInfoRequest>,
    ) -> Result<Response<pb::GetInfoResponse>, Status> {
        let i = self.engine.system_info().await.map_err(to_status)?;
        let n = |v: usize| v as u64;
        Ok(Response::new(pb::GetInfoResponse {
            version: i.version.to_owned(),
            api_version: "v1".to_owned(),
            kernel_version: i.kernel_version,
            os: i.os.to_owned(),
            arch: i.arch.to_owned(),
            hostname: i.hostname,
            cpus: u32::try_from(i.cpus).unwrap_or(u32::MAX),
            memory_bytes: i.memory_bytes,
            cgroup_version: i.cgroup_version,
            data_dir: i.data_dir.display().to_string(),
            containers: n(i.containers),
            containers_running: n(i.running),
            containers_stopped: n(i.stopped),
            images: n(i.images),
            volumes: n(i.volumes),
        }))
    }
}
