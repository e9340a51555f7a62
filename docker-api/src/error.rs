//! Errors as docker answers them: an HTTP status and `{"message": "..."}`.
use quilt_sync_engine::EngineError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ApiError {
    /// 400: the request is malformed or asks for something refused.
    #[error("{0}")]
    BadRequest(String),
    /// 403: never allowed (a pre-defined network).
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: the object's state does not allow it, or the name is taken.
    #[error("{0}")]
    Conflict(String),
    /// 501: a feature Quilt does not have yet (see `unsupported`).
    #[error("{0}")]
    NotImplemented(String),
    /// 503: quiltd is busy or shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// 500.
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

impl ApiError {
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            ApiError::BadRequest(_) => S::BAD_REQUEST,
            ApiError::Forbidden(_) => S::FORBIDDEN,
            ApiError::NotFound(_) => S::NOT_FOUND,
            ApiError::Conflict(_) => S::CONFLICT,
            ApiError::NotImplemented(_) => S::NOT_IMPLEMENTED,
            ApiError::Unavailable(_) => S::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => S::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn bad(msg: impl Into<String>) -> ApiError {
        ApiError::BadRequest(msg.into())
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::InvalidArgument(m) => ApiError::BadRequest(m),
            EngineError::NotFound(m) => ApiError::NotFound(m),
            EngineError::AlreadyExists(m)
            | EngineError::FailedPrecondition(m)
            | EngineError::Aborted(m) => ApiError::Conflict(m),
            // The Docker API does not forward to other nodes.
            e @ EngineError::Elsewhere { .. } => ApiError::Conflict(e.to_string()),
            EngineError::Busy { message: m, .. }
            | EngineError::ResourceExhausted(m)
            | EngineError::Unavailable(m)
            | EngineError::DeadlineExceeded(m) => ApiError::Unavailable(m),
            // Registry auth refused, a blob that does not match its digest:
            // the request cannot succeed as it is.
            EngineError::PermissionDenied(m) | EngineError::DataLoss(m) => ApiError::BadRequest(m),
            EngineError::Internal(m) => {
                tracing::error!(error = %m, "internal error (docker api)");
                ApiError::Internal(m)
            }
        }
    }
}
