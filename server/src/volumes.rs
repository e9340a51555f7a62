//! quilt.v1.VolumeService.
use quilt_proto::v1 as pb;
use quilt_proto::v1::volume_service_server::VolumeService;
use quilt_sync_engine::Engine;
use tonic::{Request, Response, Status};

pub struct Volumes {
    #[allow(dead_code)]
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
        _req: Request<pb::CreateVolumeRequest>,
    ) -> Result<Response<pb::CreateVolumeResponse>, Status> {
        Err(Status::unimplemented("CreateVolume is not implemented yet"))
    }

    async fn list_volumes(
        &self,
        _req: Request<pb::ListVolumesRequest>,
    ) -> Result<Response<pb::ListVolumesResponse>, Status> {
        Err(Status::unimplemented("ListVolumes is not implemented yet"))
    }

    async fn inspect_volume(
        &self,
        _req: Request<pb::InspectVolumeRequest>,
    ) -> Result<Response<pb::InspectVolumeResponse>, Status> {
        Err(Status::unimplemented(
            "InspectVolume is not implemented yet",
        ))
    }

    async fn remove_volume(
        &self,
        _req: Request<pb::RemoveVolumeRequest>,
    ) -> Result<Response<pb::RemoveVolumeResponse>, Status> {
        Err(Status::unimplemented("RemoveVolume is not implemented yet"))
    }
}
