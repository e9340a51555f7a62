//! Engine errors as gRPC statuses, and request decoding errors as
//! INVALID_ARGUMENT (tonic reports a message it cannot decode as INTERNAL,
//! which would blame the server for a client's bytes).
use quilt_sync_engine::EngineError;
use tonic::Status;

pub fn to_status(e: EngineError) -> Status {
    match e {
        EngineError::InvalidArgument(m) => Status::invalid_argument(m),
        EngineError::NotFound(m) => Status::not_found(m),
        EngineError::AlreadyExists(m) => Status::already_exists(m),
        EngineError::FailedPrecondition(m) => Status::failed_precondition(m),
        EngineError::ResourceExhausted(m) => Status::resource_exhausted(m),
        EngineError::Busy {
            message,
            retry_after,
        } => {
            let mut s = Status::resource_exhausted(message);
            // As HTTP's Retry-After, in milliseconds.
            if let Ok(v) = retry_after.as_millis().to_string().parse() {
                s.metadata_mut().insert("retry-after-ms", v);
            }
            s
        }
        EngineError::Unavailable(m) => Status::unavailable(m),
        e @ EngineError::Elsewhere { .. } => Status::failed_precondition(e.to_string()),
        EngineError::DeadlineExceeded(m) => Status::deadline_exceeded(m),
        EngineError::PermissionDenied(m) => Status::permission_denied(m),
        EngineError::DataLoss(m) => Status::data_loss(m),
        EngineError::Internal(m) => {
            tracing::error!(error = %m, "internal error");
            Status::internal(m)
        }
    }
}

/// What tonic's protobuf decoder says when a request does not decode.
const DECODE_FAILED: &str = "failed to decode Protobuf message";

/// A status from reading a request stream: a message that does not decode
/// is the client's error.
pub fn from_request_stream(s: Status) -> Status {
    if s.code() == tonic::Code::Internal && s.message().starts_with(DECODE_FAILED) {
        Status::invalid_argument(format!("undecodable request: {}", s.message()))
    } else {
        s
    }
}

/// The same for unary calls, whose decoding fails before any handler runs:
/// the trailers-only response is rewritten on its way out.
pub fn fix_decode_status<B>(mut resp: http::Response<B>) -> http::Response<B> {
    let h = resp.headers();
    let internal = h.get("grpc-status").is_some_and(|v| v == "13");
    let decode = h
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|m| m.replace("%20", " ").starts_with(DECODE_FAILED));
    if internal && decode {
        resp.headers_mut()
            .insert("grpc-status", http::HeaderValue::from_static("3"));
    }
    resp
}
