//! TagImage, CommitContainer, SaveImages and LoadImages of
//! quilt.v1.ImageService: images in and out as streams.
use super::BoxStream;
use crate::convert::{self, non_empty};
use crate::status::{from_request_stream, to_status};
use quilt_proto::v1 as pb;
use quilt_sync_engine::{CommitOptions, Engine};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

/// Chunks buffered between the network and the archive file.
const DEPTH: usize = 4;

pub async fn tag(engine: &Engine, r: pb::TagImageRequest) -> Result<pb::TagImageResponse, Status> {
    let i = engine
        .tag_image(&r.source, &r.target)
        .await
        .map_err(to_status)?;
    Ok(pb::TagImageResponse {
        image: Some(convert::image(i)),
    })
}

pub async fn commit(
    engine: &Engine,
    r: pb::CommitContainerRequest,
) -> Result<pb::CommitContainerResponse, Status> {
    let opts = CommitOptions {
        name: non_empty(&r.name).map(|s| s.to_string()),
        changes: r.changes,
        message: r.message,
        author: r.author,
        pause: !r.no_pause,
    };
    let i = engine
        .commit_container(&r.container_id, opts)
        .await
        .map_err(to_status)?;
    Ok(pb::CommitContainerResponse {
        image: Some(convert::image(i)),
    })
}

pub fn save(engine: &Engine, r: pb::SaveImagesRequest) -> BoxStream<pb::SaveImagesResponse> {
    let (data_tx, mut data_rx) = mpsc::channel::<Vec<u8>>(DEPTH);
    let (out_tx, out_rx) = mpsc::channel(DEPTH);
    let engine = engine.clone();
    let job = tokio::spawn(async move { engine.save_images(&r.names, data_tx).await });
    tokio::spawn(async move {
        while let Some(data) = data_rx.recv().await {
            if out_tx
                .send(Ok(pb::SaveImagesResponse { data }))
                .await
                .is_err()
            {
                return; // the client went away: dropping data_rx ends the save
            }
        }
        if let Some(e) = match job.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(to_status(e)),
            Err(e) => Some(Status::internal(format!("save task: {e}"))),
        } {
            let _ = out_tx.send(Err(e)).await;
        }
    });
    Box::pin(ReceiverStream::new(out_rx))
}

pub fn load(
    engine: &Engine,
    mut input: tonic::Streaming<pb::LoadImagesRequest>,
) -> BoxStream<pb::LoadImagesResponse> {
    use pb::load_images_response::Item;
    let (data_tx, data_rx) = mpsc::channel::<Vec<u8>>(DEPTH);
    let (p_tx, mut p_rx) = mpsc::channel(64);
    let (out_tx, out_rx) = mpsc::channel(64);
    let engine = engine.clone();
    let mut job = tokio::spawn(async move { engine.load_images(data_rx, p_tx).await });
    tokio::spawn(async move {
        // The archive, until the client's stream ends. A broken stream
        // aborts the load: a truncated archive is never imported.
        let mut data_tx = Some(data_tx);
        let mut ended = None;
        while let Some(tx) = data_tx.as_ref() {
            let msg = tokio::select! {
                r = &mut job => { ended = Some(r); break; }
                m = input.message() => m.map_err(from_request_stream),
            };
            match msg {
                Ok(Some(m)) => {
                    if !m.data.is_empty() && tx.send(m.data).await.is_err() {
                        break;
                    }
                }
                Ok(None) => data_tx = None,
                Err(e) => {
                    job.abort();
                    let _ = out_tx.send(Err(e)).await;
                    return;
                }
            }
        }
        drop(data_tx);
        let result = match ended {
            Some(r) => r,
            None => loop {
                tokio::select! {
                    biased;
                    Some(p) = p_rx.recv() => {
                        let item = Item::Progress(convert::progress(p));
                        let _ = out_tx.send(Ok(pb::LoadImagesResponse { item: Some(item) })).await;
                    }
                    r = &mut job => break r,
                }
            },
        };
        match result {
            Ok(Ok(images)) => {
                for i in images {
                    let item = Item::Image(convert::image(i));
                    let _ = out_tx
                        .send(Ok(pb::LoadImagesResponse { item: Some(item) }))
                        .await;
                }
            }
            Ok(Err(e)) => {
                let _ = out_tx.send(Err(to_status(e))).await;
            }
            Err(e) => {
                let _ = out_tx
                    .send(Err(Status::internal(format!("load task: {e}"))))
                    .await;
            }
        }
    });
    Box::pin(ReceiverStream::new(out_rx))
}
