//! Everything Quilt's Docker API does not do yet, in one place: each answer
//! is docker's error shape with 501 (an endpoint) or 400 (a field of a
//! request), naming what is missing. Filling one in means replacing its
//! function here with the translation.
use crate::error::ApiError;

fn missing(what: &str) -> ApiError {
    ApiError::NotImplemented(format!("{what} is not supported by Quilt's Docker API yet"))
}

pub fn container_endpoint(what: &str) -> ApiError {
    missing(&format!(
        "the container endpoint {}",
        quilt_sync_engine::echo(what)
    ))
}

pub fn import_from_source() -> ApiError {
    missing(
        "importing an image from a URL or a request body (fromSrc; use `quilt image import` or `docker load`)",
    )
}

pub fn push() -> ApiError {
    missing("pushing images")
}

pub fn image_history() -> ApiError {
    missing("image history")
}

pub fn image_prune() -> ApiError {
    missing("pruning images")
}

pub fn build() -> ApiError {
    missing("building images (docker build)")
}

pub fn swarm() -> ApiError {
    missing("swarm mode")
}

pub fn plugins() -> ApiError {
    missing("plugins")
}

pub fn disk_usage() -> ApiError {
    missing("disk usage (system df)")
}

/// A create field Quilt does not support with a non-default value.
pub fn field(section: &str, name: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "{section}.{name} is not supported by Quilt's Docker API (leave it unset)"
    ))
}

/// Port publishing (`-p`, `PortBindings`, `PublishAllPorts`, `ExposedPorts`).
pub fn publish_all() -> ApiError {
    ApiError::BadRequest(
        "publishing every exposed port (-P, PublishAllPorts) is not supported by Quilt's Docker API yet: publish them with -p".into(),
    )
}

pub fn auth() -> ApiError {
    missing(
        "checking registry credentials (`docker login`; `quilt login` stores them, and `docker pull` sends them in X-Registry-Auth)",
    )
}
