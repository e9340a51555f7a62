//! AttachInput and ResizeContainer: input for a container's terminal or
//! stdin. The first frame names the container; the engine waits for it to
//! run, then each frame is relayed as it comes. The client's half-close
//! without close_stdin detaches.
use crate::status::{from_request_stream, to_status};
use quilt_proto::v1 as pb;
use quilt_proto::v1::attach_input_request::Frame;
use quilt_sync_engine::Engine;
use tonic::Status;

/// A terminal size from the wire: both sides 1 to 65535.
fn size(s: Option<pb::TerminalSize>) -> Result<(u16, u16), Status> {
    let s = s.ok_or_else(|| Status::invalid_argument("a terminal size is required"))?;
    match (u16::try_from(s.rows), u16::try_from(s.cols)) {
        (Ok(r), Ok(c)) if r > 0 && c > 0 => Ok((r, c)),
        _ => Err(Status::invalid_argument(format!(
            "terminal size {}x{} is out of range (1 to 65535 rows and columns)",
            s.rows, s.cols
        ))),
    }
}

pub async fn attach_input(
    engine: &Engine,
    peers: &crate::forward::Peers,
    mut frames: tonic::Streaming<pb::AttachInputRequest>,
) -> Result<pb::AttachInputResponse, Status> {
    let Some(pb::AttachInputRequest {
        frame: Some(Frame::ContainerId(id)),
    }) = frames.message().await.map_err(from_request_stream)?
    else {
        return Err(Status::invalid_argument(
            "the first AttachInput frame must name the container",
        ));
    };
    if let Some(node) = peers.owner(&id).await {
        use tokio_stream::StreamExt;
        let first = pb::AttachInputRequest {
            frame: Some(Frame::ContainerId(id)),
        };
        let rest = frames.filter_map(|m| m.ok());
        return Ok(peers
            .client(&node)
            .await?
            .attach_input(tokio_stream::once(first).chain(rest))
            .await?
            .into_inner());
    }
    // Frames that arrive while the container has not started wait in the
    // stream; a client gone meanwhile (its stream ended or broke) is not
    // waited for: the next read of the stream tells.
    let mut input = engine
        .attach_input(&id, std::future::pending())
        .await
        .map_err(to_status)?;
    loop {
        let frame = match frames.message().await {
            Ok(Some(pb::AttachInputRequest { frame: Some(f) })) => f,
            Ok(Some(pb::AttachInputRequest { frame: None })) => continue,
            // Half-close: detached. A broken transport too.
            Ok(None) | Err(_) => return Ok(pb::AttachInputResponse {}),
        };
        let sent = match frame {
            Frame::ContainerId(_) => {
                return Err(Status::invalid_argument(
                    "the container is named once, in the first frame",
                ));
            }
            Frame::Stdin(data) => input.stdin(&data).await,
            Frame::Resize(s) => {
                let (rows, cols) = size(Some(s))?;
                input.resize(rows, cols).await
            }
            Frame::CloseStdin(true) => input.close_stdin().await,
            Frame::CloseStdin(false) => Ok(()),
        };
        sent.map_err(to_status)?;
    }
}

pub async fn resize(
    engine: &Engine,
    r: pb::ResizeContainerRequest,
) -> Result<pb::ResizeContainerResponse, Status> {
    let (rows, cols) = size(r.size)?;
    engine
        .resize_terminal(&r.id, rows, cols)
        .await
        .map_err(to_status)?;
    Ok(pb::ResizeContainerResponse {})
}
