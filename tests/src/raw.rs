//! Raw gRPC calls: bytes sent as a request message as they are, to check how
//! quiltd handles input no well-behaved client would send.
use bytes::{Buf, BufMut};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

/// A codec that passes message bytes through untouched.
#[derive(Debug, Default, Clone, Copy)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut v = vec![0u8; buf.remaining()];
        buf.copy_to_slice(&mut v);
        Ok(Some(v))
    }
}

/// A unary call of `path` (e.g. "/quilt.v1.ContainerService/GetContainer")
/// whose request message is `body`, byte for byte.
pub async fn raw_unary(ch: Channel, path: &str, body: Vec<u8>) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path: http::uri::PathAndQuery = path.parse().map_err(|_| Status::internal("bad path"))?;
    grpc.unary(tonic::Request::new(body), path, RawCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// A server-streaming call with a raw request: the messages received until
/// the stream ends or `limit` passes (then Ok with what came).
pub async fn raw_server_streaming(
    ch: Channel,
    path: &str,
    body: Vec<u8>,
    limit: std::time::Duration,
) -> Result<usize, Status> {
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path: http::uri::PathAndQuery = path.parse().map_err(|_| Status::internal("bad path"))?;
    let call = async {
        let mut s = grpc
            .server_streaming(tonic::Request::new(body), path, RawCodec)
            .await?
            .into_inner();
        let mut n = 0usize;
        while s.message().await?.is_some() {
            n += 1;
        }
        Ok::<_, Status>(n)
    };
    tokio::time::timeout(limit, call).await.unwrap_or(Ok(0))
}

/// A client- or bidi-streaming call with raw request messages.
pub async fn raw_streaming(
    ch: Channel,
    path: &str,
    bodies: Vec<Vec<u8>>,
    limit: std::time::Duration,
) -> Result<usize, Status> {
    let mut grpc = tonic::client::Grpc::new(ch);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path: http::uri::PathAndQuery = path.parse().map_err(|_| Status::internal("bad path"))?;
    let call = async {
        let mut s = grpc
            .streaming(
                tonic::Request::new(tokio_stream::iter(bodies)),
                path,
                RawCodec,
            )
            .await?
            .into_inner();
        let mut n = 0usize;
        while s.message().await?.is_some() {
            n += 1;
        }
        Ok::<_, Status>(n)
    };
    tokio::time::timeout(limit, call).await.unwrap_or(Ok(0))
}
