//! quilt.v1.ImageService.
use crate::convert::non_empty;
use crate::convert::ts;
use crate::service::Stream_;
use crate::status::to_status;
use quilt_proto::v1 as pb;
use quilt_proto::v1::image_service_server::ImageService;
use quilt_sync_engine::{Engine, EngineError, ImageInfo, ImageProgress};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

pub struct Images {
    engine: Engine,
}

impl Images {
    pub fn new(engine: Engine) -> Self {
        Images { engine }
    }
}

fn image(i: ImageInfo) -> pb::Image {
    pb::Image {
        id: i.id,
        names: i.names,
        size_bytes: i.size_bytes,
        created_at: Some(ts(i.created_at_ns)),
        source: i.source,
        layers: i.layers,
        containers: i.containers,
    }
}

fn progress_item(p: ImageProgress) -> pb::ImportImageResponse {
    pb::ImportImageResponse {
        item: Some(pb::import_image_response::Item::Progress(
            pb::ImportProgress {
                phase: p.phase,
                done_bytes: p.done_bytes,
                total_bytes: p.total_bytes,
            },
        )),
    }
}

/// Runs an import-like job, streaming its progress and then the image (or
/// the error). The job runs to completion even if the client goes away.
fn stream_job<F>(
    job: impl FnOnce(mpsc::Sender<ImageProgress>) -> F,
) -> Stream_<pb::ImportImageResponse>
where
    F: Future<Output = Result<ImageInfo, EngineError>> + Send + 'static,
{
    let (out_tx, out_rx) = mpsc::channel(64);
    let (p_tx, mut p_rx) = mpsc::channel(64);
    let fut = job(p_tx);
    tokio::spawn(async move {
        let mut fut = std::pin::pin!(fut);
        let result = loop {
            tokio::select! {
                biased;
                Some(p) = p_rx.recv() => {
                    let _ = out_tx.send(Ok(progress_item(p))).await;
                }
                r = &mut fut => break r,
            }
        };
        while let Ok(p) = p_rx.try_recv() {
            let _ = out_tx.send(Ok(progress_item(p))).await;
        }
        let last = result.map_err(to_status).map(|i| pb::ImportImageResponse {
            item: Some(pb::import_image_response::Item::Image(image(i))),
        });
        let _ = out_tx.send(last).await;
    });
    Box::pin(ReceiverStream::new(out_rx))
}

#[tonic::async_trait]
impl ImageService for Images {
    type ImportImageStream = Stream_<pb::ImportImageResponse>;

    async fn import_image(
        &self,
        req: Request<pb::ImportImageRequest>,
    ) -> Result<Response<Self::ImportImageStream>, Status> {
        let r = req.into_inner();
        let engine = self.engine.clone();
        Ok(Response::new(stream_job(move |tx| async move {
            engine.import_image(&r.path, non_empty(&r.name), tx).await
        })))
    }

    type BuildImageStream = Stream_<pb::ImportImageResponse>;

    async fn build_image(
        &self,
        req: Request<pb::BuildImageRequest>,
    ) -> Result<Response<Self::BuildImageStream>, Status> {
        let r = req.into_inner();
        let engine = self.engine.clone();
        Ok(Response::new(stream_job(move |tx| async move {
            engine.build_image(&r.name, r.binaries, tx).await
        })))
    }

    async fn list_images(
        &self,
        _req: Request<pb::ListImagesRequest>,
    ) -> Result<Response<pb::ListImagesResponse>, Status> {
        let images = self.engine.list_images().await.map_err(to_status)?;
        Ok(Response::new(pb::ListImagesResponse {
            images: images.into_iter().map(image).collect(),
        }))
    }

    async fn inspect_image(
        &self,
        req: Request<pb::InspectImageRequest>,
    ) -> Result<Response<pb::InspectImageResponse>, Status> {
        let i = self
            .engine
            .inspect_image(&req.into_inner().name)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::InspectImageResponse {
            image: Some(image(i)),
        }))
    }

    async fn remove_image(
        &self,
        req: Request<pb::RemoveImageRequest>,
    ) -> Result<Response<pb::RemoveImageResponse>, Status> {
        let id = self
            .engine
            .remove_image(&req.into_inner().name)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::RemoveImageResponse { id }))
    }
}
