//! The PullImage stream: the engine's pull runs as its own task (to the end
//! even if the client goes away, so that its layout is imported or kept for
//! a retry consistently), its updates and then the image are sent on.
use super::BoxStream;
use crate::convert;
use crate::status::to_status;
use quilt_proto::v1 as pb;
use quilt_sync_engine::Engine;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

pub fn stream(engine: Engine, r: pb::PullImageRequest) -> BoxStream<pb::PullImageResponse> {
    let (out_tx, out_rx) = mpsc::channel(64);
    let (u_tx, mut u_rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let creds = convert::registry_auth(r.auth);
        let fut = engine.pull_image(&r.reference, &r.platform, creds, u_tx);
        let mut fut = std::pin::pin!(fut);
        let result = loop {
            tokio::select! {
                biased;
                Some(u) = u_rx.recv() => {
                    let _ = out_tx.try_send(Ok(convert::pull_update(u)));
                }
                r = &mut fut => break r,
            }
        };
        while let Ok(u) = u_rx.try_recv() {
            let _ = out_tx.send(Ok(convert::pull_update(u))).await;
        }
        let last = result.map_err(to_status).map(convert::pull_image_item);
        let _ = out_tx.send(last).await;
    });
    Box::pin(ReceiverStream::new(out_rx))
}
