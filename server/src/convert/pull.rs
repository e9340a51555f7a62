//! quilt.v1 PullImage messages: the request's credentials and the pull's
//! updates.
use quilt_proto::v1 as pb;
use quilt_sync_engine::{BlobKind, PullEvent, PullUpdate, RegistryCredentials};

/// The request's credentials (None when unset or without a user name).
pub fn registry_auth(a: Option<pb::RegistryAuth>) -> Option<RegistryCredentials> {
    a.filter(|a| !a.username.is_empty())
        .map(|a| RegistryCredentials {
            username: a.username,
            password: a.password,
        })
}

pub fn pull_update(u: PullUpdate) -> pb::PullImageResponse {
    use pb::pull_image_response::Item;
    let item = match u {
        PullUpdate::Registry(PullEvent::Resolved {
            reference,
            digest,
            platform,
            blobs,
        }) => Item::Resolved(pb::PullResolved {
            reference,
            digest,
            platform: platform.unwrap_or_default(),
            blobs: blobs
                .into_iter()
                .map(|(digest, size, kind)| pb::PullBlob {
                    digest,
                    size,
                    config: kind == BlobKind::Config,
                })
                .collect(),
        }),
        PullUpdate::Registry(PullEvent::Blob {
            digest,
            kind,
            done_bytes,
            total_bytes,
            resumed_bytes,
            done,
        }) => Item::Blob(pb::PullProgress {
            digest,
            done_bytes,
            total_bytes,
            resumed_bytes,
            done,
            config: kind == BlobKind::Config,
        }),
        PullUpdate::Import(p) => Item::Import(pb::ImportProgress {
            phase: p.phase,
            done_bytes: p.done_bytes,
            total_bytes: p.total_bytes,
        }),
    };
    pb::PullImageResponse { item: Some(item) }
}

pub fn pull_image_item(i: quilt_sync_engine::ImageInfo) -> pb::PullImageResponse {
    pb::PullImageResponse {
        item: Some(pb::pull_image_response::Item::Image(super::image(i))),
    }
}
