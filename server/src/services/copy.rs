//! CopyIn / CopyOut: tar streams into and out of a container.
use super::BoxStream;
use crate::status::{from_request_stream, to_status};
use quilt_proto::v1 as pb;
use quilt_sync_engine::{CopyDigest, Engine, EngineError};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Response, Status};

/// Frames buffered between the network and the copy helper (bounded memory:
/// a few chunks of at most 256 KiB each).
const DEPTH: usize = 4;

pub async fn copy_in(
    engine: &Engine,
    peers: &crate::forward::Peers,
    mut input: tonic::Streaming<pb::CopyInRequest>,
) -> Result<pb::CopyInResponse, Status> {
    use pb::copy_in_request::Frame;
    let header = match input.message().await.map_err(from_request_stream)? {
        Some(pb::CopyInRequest {
            frame: Some(Frame::Header(h)),
        }) => h,
        _ => {
            return Err(Status::invalid_argument(
                "the first CopyIn frame must be a header",
            ));
        }
    };
    if let Some(node) = peers.owner(&header.container_id).await {
        return forward_copy_in(peers, &node, header, input).await;
    }
    let (tx, rx) = mpsc::channel::<Vec<u8>>(DEPTH);
    let engine = engine.clone();
    let mut copy =
        tokio::spawn(async move { engine.copy_in(&header.container_id, &header.path, rx).await });
    let mut trailer = None;
    let mut stream_err = None;
    // Set when the copy ended before the client's stream did (an error, or
    // its idle deadline): that result is the answer, at once.
    let mut ended = None;
    loop {
        let msg = tokio::select! {
            r = &mut copy => {
                ended = Some(r);
                break;
            }
            m = input.message() => m.map_err(from_request_stream),
        };
        match msg {
            Ok(Some(pb::CopyInRequest { frame })) => match frame {
                Some(Frame::Data(d)) if trailer.is_none() => {
                    // A full queue waits here; the copy's own idle deadline
                    // bounds how long.
                    let sent = tx.send(d).await;
                    if sent.is_err() {
                        break; // the copy ended early: its error is reported below
                    }
                }
                Some(Frame::Trailer(t)) if trailer.is_none() => trailer = Some(t),
                Some(Frame::Header(_)) => {
                    stream_err = Some(Status::invalid_argument("a second CopyIn header"));
                    break;
                }
                Some(_) => {
                    stream_err = Some(Status::invalid_argument(
                        "no CopyIn frame may follow the trailer",
                    ));
                    break;
                }
                None => {}
            },
            Ok(None) => break,
            Err(e) => {
                stream_err = Some(e);
                break;
            }
        }
    }
    if let Some(e) = stream_err {
        // The client's stream broke: closing the helper's stdin would look
        // like a complete tar. Kill it instead (the task's child is
        // kill_on_drop), so a truncated stream is never extracted as if whole.
        copy.abort();
        let _ = copy.await;
        return Err(e);
    }
    drop(tx);
    let result = match ended {
        Some(r) => r,
        None => copy.await,
    };
    let digest = result
        .map_err(|e| Status::internal(format!("copy task: {e}")))?
        .map_err(to_status)?;
    if let Some(t) = trailer
        && (t.size != digest.size || !t.sha256.eq_ignore_ascii_case(&digest.sha256))
    {
        return Err(Status::data_loss(format!(
            "the tar stream was damaged: the client sent {} bytes with sha256 {}, the server received {} bytes with sha256 {}",
            t.size, t.sha256, digest.size, digest.sha256
        )));
    }
    Ok(pb::CopyInResponse {
        size: digest.size,
        sha256: digest.sha256,
    })
}

pub async fn copy_out(
    engine: &Engine,
    req: pb::CopyOutRequest,
) -> Result<Response<BoxStream<pb::CopyOutResponse>>, Status> {
    let engine = engine.clone();
    Ok(stream_out(move |tx| async move {
        engine.copy_out(&req.container_id, &req.path, tx).await
    }))
}

pub async fn export(
    engine: &Engine,
    req: pb::ExportContainerRequest,
) -> Result<Response<BoxStream<pb::CopyOutResponse>>, Status> {
    let engine = engine.clone();
    Ok(stream_out(move |tx| async move {
        engine.export_container(&req.container_id, tx).await
    }))
}

/// Streams what `job` writes as data frames, then its trailer (or error).
fn stream_out<F>(
    job: impl FnOnce(mpsc::Sender<Vec<u8>>) -> F,
) -> Response<BoxStream<pb::CopyOutResponse>>
where
    F: Future<Output = Result<CopyDigest, EngineError>> + Send + 'static,
{
    use pb::copy_out_response::Frame;
    let (data_tx, mut data_rx) = mpsc::channel::<Vec<u8>>(DEPTH);
    let (out_tx, out_rx) = mpsc::channel::<Result<pb::CopyOutResponse, Status>>(DEPTH);
    let copy = tokio::spawn(job(data_tx));
    tokio::spawn(async move {
        while let Some(d) = data_rx.recv().await {
            let frame = pb::CopyOutResponse {
                frame: Some(Frame::Data(d)),
            };
            if out_tx.send(Ok(frame)).await.is_err() {
                return; // the client went away; dropping data_rx stops the copy
            }
        }
        let last = match copy.await {
            Ok(Ok(d)) => Ok(pb::CopyOutResponse {
                frame: Some(Frame::Trailer(pb::CopyTrailer {
                    size: d.size,
                    sha256: d.sha256,
                })),
            }),
            Ok(Err(e)) => Err(to_status(e)),
            Err(e) => Err(Status::internal(format!("copy task: {e}"))),
        };
        let _ = out_tx.send(last).await;
    });
    Response::new(Box::pin(ReceiverStream::new(out_rx)))
}

/// A copy into a container of another node: the frames go there as they
/// come. A broken client stream must not look like the end of a complete
/// archive there: the forwarded call is then dropped (the other node sees
/// it cancelled and writes nothing), and the client gets the error.
async fn forward_copy_in(
    peers: &crate::forward::Peers,
    node: &str,
    header: pb::CopyInHeader,
    mut input: tonic::Streaming<pb::CopyInRequest>,
) -> Result<pb::CopyInResponse, Status> {
    use pb::copy_in_request::Frame;
    let (tx, rx) = mpsc::channel::<pb::CopyInRequest>(DEPTH);
    let (broken_tx, broken_rx) = tokio::sync::oneshot::channel::<Status>();
    let reader = tokio::spawn(async move {
        if tx
            .send(pb::CopyInRequest {
                frame: Some(Frame::Header(header)),
            })
            .await
            .is_err()
        {
            return;
        }
        let broken = loop {
            match input.message().await {
                Ok(Some(m)) => {
                    if tx.send(m).await.is_err() {
                        return;
                    }
                }
                // The client's end: the forwarded stream ends too.
                Ok(None) => return,
                Err(e) => break e,
            }
        };
        // The forwarded stream is never ended (an end would read as a
        // complete archive there): `tx` stays open until the call below is
        // dropped, which resets the stream, and the other node sees it
        // cancelled.
        let _ = broken_tx.send(from_request_stream(broken));
        tx.closed().await;
    });
    let mut client = peers.client(node).await?;
    let call = client.copy_in(tokio_stream::wrappers::ReceiverStream::new(rx));
    tokio::select! {
        r = call => {
            reader.abort();
            r.map(tonic::Response::into_inner)
        }
        // Returning drops the call (a reset, not an end); the reader then
        // sees its channel closed and returns.
        Ok(e) = broken_rx => Err(e),
    }
}
