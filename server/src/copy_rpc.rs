//! CopyIn / CopyOut: tar streams into and out of a container.
use crate::service::Stream_;
use quilt_proto::v1 as pb;
use quilt_sync_engine::Engine;
use tonic::{Response, Status};

pub async fn copy_in(
    _engine: &Engine,
    _input: tonic::Streaming<pb::CopyInRequest>,
) -> Result<pb::CopyInResponse, Status> {
    Err(Status::unimplemented("CopyIn is not implemented yet"))
}

pub async fn copy_out(
    _engine: &Engine,
    _req: pb::CopyOutRequest,
) -> Result<Response<Stream_<pb::CopyOutResponse>>, Status> {
    Err(Status::unimplemented("CopyOut is not implemented yet"))
}
