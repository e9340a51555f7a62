//! quilt.v1.VolumeService messages.
use super::ts;
use quilt_proto::v1 as pb;
use quilt_sync_engine::Volume;

pub fn volume(v: &Volume) -> pb::Volume {
    pb::Volume {
        name: v.name.clone(),
        created_at: Some(ts(v.created_at_ns)),
        labels: v.labels.clone().into_iter().collect(),
        used_by: v.used_by.clone(),
    }
}
