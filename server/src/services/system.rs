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
        let h = self.engine.metrics_headline().await.map_err(to_status)?;
        let pct = |p: Option<[f64; 3]>| p.map(|[p50, p95, p99]| pb::Percentiles { p50, p95, p99 });
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
            queue_depth: h.queue_depth,
            queue_capacity: h.queue_capacity,
            starts_in_flight: h.starts_in_flight,
            start_slots: h.start_slots,
            time_to_running: pct(h.time_to_running),
            db_write: pct(h.db_write),
            starts: h.starts,
            start_failures: h.start_failures,
            rejections: h.rejections,
            db_writes: h.db_writes,
            db_write_busy_seconds: h.db_write_busy_s,
        }))
    }

    async fn set_warm_pool(
        &self,
        req: Request<pb::SetWarmPoolRequest>,
    ) -> Result<Response<pb::SetWarmPoolResponse>, Status> {
        let spec = req
            .into_inner()
            .spec
            .ok_or_else(|| Status::invalid_argument("spec is required"))?;
        let spec = quilt_sync_engine::PoolSpec {
            image: spec.image,
            size: spec.size as usize,
            init: spec.init,
            read_only: spec.read_only,
        };
        self.engine.set_warm_pool(spec).await.map_err(to_status)?;
        Ok(Response::new(pb::SetWarmPoolResponse {}))
    }

    async fn list_nodes(
        &self,
        _req: Request<pb::ListNodesRequest>,
    ) -> Result<Response<pb::ListNodesResponse>, Status> {
        let (nodes, me) = self.engine.nodes().await.map_err(to_status)?;
        let ts = |ns: i64| Some(crate::convert::ts(ns));
        let nodes = nodes
            .into_iter()
            .map(|n| pb::Node {
                this_node: me.as_deref() == Some(n.name.as_str()),
                id: n.id,
                name: n.name,
                address: n.address,
                up: n.up,
                cpus: n.cpus,
                memory_mb: n.memory_mb,
                labels: n.labels.into_iter().collect(),
                started_at: ts(n.started_at_ns),
                renewed_at: ts(n.renewed_at_ns),
                lease_until: ts(n.lease_until_ns),
                containers: n.active,
                reserved_memory_mb: n.reserved_memory_mb,
                reserved_cpus: n.reserved_cpus,
            })
            .collect();
        Ok(Response::new(pb::ListNodesResponse { nodes }))
    }

    async fn list_warm_pools(
        &self,
        _req: Request<pb::ListWarmPoolsRequest>,
    ) -> Result<Response<pb::ListWarmPoolsResponse>, Status> {
        let pools = self
            .engine
            .warm_pools()
            .into_iter()
            .map(|p| pb::WarmPool {
                spec: Some(pb::WarmPoolSpec {
                    image: p.spec.image,
                    size: p.spec.size as u32,
                    init: p.spec.init,
                    read_only: p.spec.read_only,
                }),
                ready: p.ready as u32,
                hits: p.hits,
                misses: p.misses,
                last_error: p.last_error.unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(pb::ListWarmPoolsResponse { pools }))
    }
}
