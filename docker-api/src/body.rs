//! Response bodies: JSON, empty, and streams of chunks; reading bounded
//! request bodies.
use crate::error::{ApiError, Result};
use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

pub type Body = BoxBody<Bytes, std::io::Error>;
pub type Reply = Response<Body>;

/// The largest JSON request body accepted (a create at the engine's 1 MiB
/// argument budget fits).
pub const MAX_JSON: usize = 4 * 1024 * 1024;

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

pub fn status(code: StatusCode) -> Reply {
    let mut r = Response::new(empty());
    *r.status_mut() = code;
    r
}

pub fn json_with(code: StatusCode, v: &serde_json::Value) -> Reply {
    let mut bytes = serde_json::to_vec(v).expect("a JSON value always serialises");
    bytes.push(b'\n');
    let mut r = Response::new(full(bytes));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

pub fn json(v: &serde_json::Value) -> Reply {
    json_with(StatusCode::OK, v)
}

pub fn error(e: &ApiError) -> Reply {
    let message = quilt_sync_engine::bounded_message(e.to_string());
    json_with(e.status(), &serde_json::json!({ "message": message }))
}

/// A body fed from a channel of chunks, with the given content type.
pub fn stream(rx: mpsc::Receiver<Bytes>, content_type: &'static str) -> Reply {
    let s = ReceiverStream::new(rx).map(|b| Ok(Frame::data(b)));
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(s)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

/// Reads a whole request body of at most `max` bytes.
pub async fn read(body: Incoming, max: usize) -> Result<Bytes> {
    let limited = http_body_util::Limited::new(body, max);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::bad(format!(
            "the request body is larger than {max} bytes"
        ))),
        Err(e) => Err(ApiError::bad(format!("reading the request body: {e}"))),
    }
}

/// A JSON request body (an empty body reads as `null`).
pub async fn read_json(body: Incoming) -> Result<serde_json::Value> {
    let b = read(body, MAX_JSON).await?;
    if b.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&b).map_err(|e| ApiError::bad(format!("invalid JSON body: {e}")))
}

/// A body fed from a channel whose last item may be an error (the
/// connection is then cut, so a client never takes a truncated stream for a
/// whole one).
pub fn stream_result(
    rx: mpsc::Receiver<std::result::Result<Bytes, std::io::Error>>,
    content_type: &'static str,
) -> Reply {
    let s = ReceiverStream::new(rx).map(|r| r.map(Frame::data));
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(s)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}
