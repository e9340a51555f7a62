//! quilt.v1.ImageService.
use crate::service::Stream_;
use quilt_proto::v1 as pb;
use quilt_proto::v1::image_service_server::ImageService;
use quilt_sync_engine::Engine;
use tonic::{Request, Response, Status};

pub struct Images {
    #[allow(dead_code)]
    engine: Engine,
}

impl Images {
    pub fn new(engine: Engine) -> Self {
        Images { engine }
    }
}

#[tonic::async_trait]
impl ImageService for Images {
    type ImportImageStream = Stream_<pb::ImportImageResponse>;

    async fn import_image(
        &self,
        _req: Request<pb::ImportImageRequest>,
    ) -> Result<Response<Self::ImportImageStream>, Status> {
        Err(Status::unimplemented("ImportImage is not implemented yet"))
    }

    type BuildImageStream = Stream_<pb::ImportImageResponse>;

    async fn build_image(
        &self,
        _req: Request<pb::BuildImageRequest>,
    ) -> Result<Response<Self::BuildImageStream>, Status> {
        Err(Status::unimplemented("BuildImage is not implemented yet"))
    }

    async fn list_images(
        &self,
        _req: Request<pb::ListImagesRequest>,
    ) -> Result<Response<pb::ListImagesResponse>, Status> {
        Err(Status::unimplemented("ListImages is not implemented yet"))
    }

    async fn inspect_image(
        &self,
        _req: Request<pb::InspectImageRequest>,
    ) -> Result<Response<pb::InspectImageResponse>, Status> {
        Err(Status::unimplemented("InspectImage is not implemented yet"))
    }

    async fn remove_image(
        &self,
        _req: Request<pb::RemoveImageRequest>,
    ) -> Result<Response<pb::RemoveImageResponse>, Status> {
        Err(Status::unimplemented("RemoveImage is not implemented yet"))
    }
}
