//! quilt.v1.ImageService messages.
use super::ts;
use quilt_proto::v1 as pb;
use quilt_sync_engine::{ImageInfo, ImageProgress};

pub fn image(i: ImageInfo) -> pb::Image {
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

pub fn progress_item(p: ImageProgress) -> pb::ImportImageResponse {
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
