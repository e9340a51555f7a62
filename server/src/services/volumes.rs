//! quilt.v1.VolumeService.
use crate::convert;
use crate::status::to_status;
use quilt_proto::v1 as pb;
use quilt_proto::v1::volume_service_server::VolumeService;
use quilt_sync_engine::Engine;
use tonic::{Request, Response, Status};

#[derive(Debug)]
pub struct Volumes {
    engine: Engine,
}

impl Volumes {
    pub fn new(engine: Engine) -> Self {
        Volumes { engine }
    }
}

#[tonic::async_trait]
impl VolumeService for Volumes {
    async fn create_volume(
        &self,
        req: Request<pb::CreateVolumeRequest>,
    ) -> Result<Response<pb::CreateVolumeResponse>, Status> {
        let r = req.into_inner();
        let v = self
            .engine
            .create_volume(&r.name, r.labels.into_iter().collect())
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CreateVolumeResponse {
            volume: Some(convert::volume(&v)),
        }))
    }

    async fn list_volumes(
        &self,
        _req: Request<pb::ListVolumesRequest>,
    ) -> Result<Response<pb::ListVolumesResponse>, Status> {
        let v = self.engine.list_volumes().await.map_err(to_status)?;
        Ok(Response::new(pb::ListVolumesResponse {
            volumes: v.iter().map(convert::volume).collect(),
        }))
    }

    async fn inspect_volume(
        &self,
        req: Request<pb::InspectVolumeRequest>,
    ) -> Result<Response<pb::InspectVolumeResponse>, Status> {
        let v = self
            .engine
            .inspect_volume(&req.into_inner().name)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::InspectVolumeResponse {
            volume: Some(convert::volume(&v)),
        }))
    }

    async fn remove_volume(
        &self,
        req: Request<pb::RemoveVolumeRequest>,
    ) -> Result<Response<pb::RemoveVolumeResponse>, Status> {
        let r = req.into_inner();
        self.engine
            .remove_volume(&r.name, r.force)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::RemoveVolumeResponse {}))
    }
}
