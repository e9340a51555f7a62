//! Engine errors as gRPC statuses.
use quilt_sync_engine::EngineError;
use tonic::Status;

pub fn to_status(e: EngineError) -> Status {
    match e {
        EngineError::InvalidArgument(m) => Status::invalid_argument(m),
        EngineError::NotFound(m) => Status::not_found(m),
        EngineError::AlreadyExists(m) => Status::already_exists(m),
        EngineError::FailedPrecondition(m) => Status::failed_precondition(m),
        EngineError::ResourceExhausted(m) => Status::resource_exhausted(m),
        EngineError::Unavailable(m) => Status::unavailable(m),
        EngineError::DeadlineExceeded(m) => Status::deadline_exceeded(m),
        EngineError::Internal(m) => {
            tracing::error!(error = %m, "internal error");
            Status::internal(m)
        }
    }
}
