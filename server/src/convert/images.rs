//! quilt.v1.ImageService messages.
use super::ts;
use quilt_proto::v1 as pb;
use quilt_sync_engine::{DiskUsage, ImageConfig, ImageInfo, ImageProgress, Pruned};

pub fn image(i: ImageInfo) -> pb::Image {
    let config = (i.config != ImageConfig::default()).then(|| config(i.config));
    pb::Image {
        config,
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
        item: Some(pb::import_image_response::Item::Progress(progress(p))),
    }
}

pub fn progress(p: ImageProgress) -> pb::ImportProgress {
    pb::ImportProgress {
        phase: p.phase,
        done_bytes: p.done_bytes,
        total_bytes: p.total_bytes,
    }
}

fn config(c: ImageConfig) -> pb::ImageConfig {
    pb::ImageConfig {
        env: c.env,
        entrypoint: c.entrypoint,
        cmd: c.cmd,
        working_dir: c.working_dir,
        user: c.user,
        exposed_ports: c.exposed_ports,
        labels: c.labels.into_iter().collect(),
        stop_signal: c.stop_signal,
        architecture: c.architecture,
        os: c.os,
    }
}

pub fn pruned(p: Pruned) -> pb::PruneImagesResponse {
    pb::PruneImagesResponse {
        images: p.images,
        layers: p.layers,
        reclaimed_bytes: p.reclaimed_bytes,
    }
}

pub fn disk_usage(u: Vec<DiskUsage>) -> pb::DiskUsageResponse {
    pb::DiskUsageResponse {
        usage: u
            .into_iter()
            .map(|d| pb::DiskUsage {
                kind: d.kind.to_owned(),
                count: d.count,
                size_bytes: d.size_bytes,
                unique_bytes: d.unique_bytes,
            })
            .collect(),
    }
}
