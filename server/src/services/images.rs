//! quilt.v1.ImageService.
use super::BoxStream;
use crate::convert::{self, non_empty};
use crate::status::to_status;
use quilt_proto::v1 as pb;
use quilt_proto::v1::image_service_server::ImageService;
use quilt_sync_engine::{Engine, EngineError, ImageInfo, ImageProgress};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

#[derive(Debug)]
pub struct Images {
    engine: Engine,
}

impl Images {
    pub fn new(engine: Engine) -> Self {
        Images { engine }
    }
}

/// Runs an import-like job, streaming its progress and then the image (or
/// the error). The job runs to completion even if the client goes away.
fn stream_job<F>(
    job: impl FnOnce(mpsc::Sender<ImageProgress>) -> F,
) -> BoxStream<pb::ImportImageResponse>
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
                    let _ = out_tx.send(Ok(convert::progress_item(p))).await;
                }
                r = &mut fut => break r,
            }
        };
        while let Ok(p) = p_rx.try_recv() {
            let _ = out_tx.send(Ok(convert::progress_item(p))).await;
        }
        let last = result.map_err(to_status).map(|i| pb::ImportImageResponse {
            item: Some(pb::import_image_response::Item::Image(convert::image(i))),
        });
        let _ = out_tx.send(last).await;
    });
    Box::pin(ReceiverStream::new(out_rx))
}

#[tonic::async_trait]
impl ImageService for Images {
    type ImportImageStream = BoxStream<pb::ImportImageResponse>;

    async fn import_image(
        &self,
        req: Request<pb::ImportImageRequest>,
    ) -> Result<Response<Self::ImportImageStream>, Status> {
        let r = req.into_inner();
        let engine = self.engine.clone();
        Ok(Response::new(stream_job(move |tx| async move {
            engine
                .import_image_tagged(&r.path, non_empty(&r.tag), non_empty(&r.name), tx)
                .await
        })))
    }

    type PullImageStream = BoxStream<pb::PullImageResponse>;

    async fn pull_image(
        &self,
        req: Request<pb::PullImageRequest>,
    ) -> Result<Response<Self::PullImageStream>, Status> {
        Ok(Response::new(super::pull::stream(
            self.engine.clone(),
            req.into_inner(),
        )))
    }

    type BuildImageStream = BoxStream<pb::ImportImageResponse>;

    async fn build_image(
        &self,
        req: Request<pb::BuildImageRequest>,
    ) -> Result<Response<Self::BuildImageStream>, Status> {
        let r = req.into_inner();
        let engine = self.engine.clone();
        Ok(Response::new(stream_job(move |tx| async move {
            engine
                .build_image(&r.name, r.binaries, r.ca_certs, tx)
                .await
        })))
    }

    async fn list_images(
        &self,
        _req: Request<pb::ListImagesRequest>,
    ) -> Result<Response<pb::ListImagesResponse>, Status> {
        let images = self.engine.list_images().await.map_err(to_status)?;
        Ok(Response::new(pb::ListImagesResponse {
            images: images.into_iter().map(convert::image).collect(),
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
            image: Some(convert::image(i)),
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

    async fn prune_images(
        &self,
        _req: Request<pb::PruneImagesRequest>,
    ) -> Result<Response<pb::PruneImagesResponse>, Status> {
        let p = self.engine.prune_images().await.map_err(to_status)?;
        Ok(Response::new(convert::pruned(p)))
    }

    async fn disk_usage(
        &self,
        _req: Request<pb::DiskUsageRequest>,
    ) -> Result<Response<pb::DiskUsageResponse>, Status> {
        let u = self.engine.disk_usage().await.map_err(to_status)?;
        Ok(Response::new(convert::disk_usage(u)))
    }

    async fn tag_image(
        &self,
        req: Request<pb::TagImageRequest>,
    ) -> Result<Response<pb::TagImageResponse>, Status> {
        super::image_io::tag(&self.engine, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn commit_container(
        &self,
        req: Request<pb::CommitContainerRequest>,
    ) -> Result<Response<pb::CommitContainerResponse>, Status> {
        super::image_io::commit(&self.engine, req.into_inner())
            .await
            .map(Response::new)
    }

    type SaveImagesStream = BoxStream<pb::SaveImagesResponse>;

    async fn save_images(
        &self,
        req: Request<pb::SaveImagesRequest>,
    ) -> Result<Response<Self::SaveImagesStream>, Status> {
        Ok(Response::new(super::image_io::save(
            &self.engine,
            req.into_inner(),
        )))
    }

    type LoadImagesStream = BoxStream<pb::LoadImagesResponse>;

    async fn load_images(
        &self,
        req: Request<tonic::Streaming<pb::LoadImagesRequest>>,
    ) -> Result<Response<Self::LoadImagesStream>, Status> {
        Ok(Response::new(super::image_io::load(
            &self.engine,
            req.into_inner(),
        )))
    }
}
