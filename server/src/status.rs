//! Engine errors as gRPC statuses, and request decoding errors as
//! INVALID_ARGUMENT (tonic reports a message it cannot decode as INTERNAL,
//! which would blame the server for a client's bytes).
use quilt_sync_engine::{EngineError, MAX_MESSAGE, bounded_message as bounded};
use tonic::Status;

pub fn to_status(e: EngineError) -> Status {
    let s = engine_status(e);
    match s.message().len() > MAX_MESSAGE {
        true => {
            let mut cut = Status::new(s.code(), bounded(s.message().to_owned()));
            *cut.metadata_mut() = s.metadata().clone();
            cut
        }
        false => s,
    }
}

fn engine_status(e: EngineError) -> Status {
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
        EngineError::Aborted(m) => Status::aborted(m),
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

#[cfg(test)]
mod bounded_tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let short = to_status(EngineError::InvalidArgument("invalid signal \"X\"".into()));
        assert_eq!(short.message(), "invalid signal \"X\"");
        let long = "é".repeat(3000);
        let s = to_status(EngineError::InvalidArgument(format!(
            "invalid signal {long:?}"
        )));
        assert_eq!(s.code(), tonic::Code::InvalidArgument);
        assert!(
            s.message().len() < MAX_MESSAGE + 64,
            "{}",
            s.message().len()
        );
        assert!(
            s.message().ends_with("(6017 bytes in all)"),
            "{}",
            s.message()
        );
        let busy = to_status(EngineError::Busy {
            message: "x".repeat(5000),
            retry_after: std::time::Duration::from_millis(250),
        });
        assert_eq!(busy.metadata().get("retry-after-ms").unwrap(), "250");
        assert!(busy.message().len() < MAX_MESSAGE + 64);
    }
}
