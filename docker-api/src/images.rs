//! Images of the local store: list, inspect and remove (tag, save and load
//! in image_io.rs). Pull and push answer `unsupported`. Names without a tag are shown with
//! `:latest`, as docker shows them.
use crate::body::{self, Reply};
use crate::error::{ApiError, Result};
use crate::inspect::cut;
use crate::query::{self, Query};
use crate::server::DockerApi;
use crate::unsupported;
use http::Method;
use quilt_sync_engine::{EngineError, ImageInfo};
use serde_json::{Value, json};

pub(crate) fn repo_tags(i: &ImageInfo) -> Vec<String> {
    i.names
        .iter()
        .map(|n| {
            let last = n.rsplit('/').next().unwrap_or(n);
            if last.contains(':') {
                n.clone()
            } else {
                format!("{n}:latest")
            }
        })
        .collect()
}

fn summary(i: &ImageInfo) -> Value {
    json!({
        "Id": i.id,
        "ParentId": "",
        "RepoTags": repo_tags(i),
        "RepoDigests": [],
        "Created": i.created_at_ns / 1_000_000_000,
        "Size": i.size_bytes,
        "VirtualSize": i.size_bytes,
        "SharedSize": -1,
        "Labels": {},
        "Containers": i.containers,
    })
}

fn detail(i: &ImageInfo) -> Value {
    json!({
        "Id": i.id,
        "RepoTags": repo_tags(i),
        "RepoDigests": [],
        "Parent": "",
        "Comment": format!("imported from {}", i.source),
        "Created": crate::time::rfc3339(i.created_at_ns),
        "Container": "",
        "DockerVersion": "",
        "Author": "",
        "Config": { "Env": [], "Cmd": null, "Entrypoint": null, "WorkingDir": "", "Labels": {} },
        "Architecture": match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a },
        "Os": "linux",
        "Size": i.size_bytes,
        "VirtualSize": i.size_bytes,
        "GraphDriver": { "Name": "overlay", "Data": null },
        "RootFS": { "Type": "layers", "Layers": i.layers },
        "Metadata": { "LastTagTime": crate::time::ZERO },
    })
}

pub async fn list(api: &DockerApi, q: &Query) -> Result<Reply> {
    let filters = q.filters()?;
    query::only(&filters, &["reference"], "image")?;
    let refs = filters.get("reference").cloned().unwrap_or_default();
    let images = api.engine.list_images().await?;
    let out: Vec<Value> = images
        .iter()
        .filter(|i| {
            refs.is_empty()
                || refs.iter().any(|r| {
                    let r = r.strip_suffix(":latest").unwrap_or(r);
                    i.names.iter().any(|n| n == r)
                })
        })
        .map(summary)
        .collect();
    Ok(body::json(&Value::Array(out)))
}

/// The image a docker reference names (`x:latest` is also `x`).
pub(crate) async fn find(api: &DockerApi, name: &str) -> Result<ImageInfo> {
    match api.engine.inspect_image(name).await {
        Ok(i) => return Ok(i),
        Err(EngineError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    if let Some(short) = name.strip_suffix(":latest")
        && let Ok(i) = api.engine.inspect_image(short).await
    {
        return Ok(i);
    }
    Err(ApiError::NotFound(format!("No such image: {}", cut(name))))
}

pub async fn by_name(api: &DockerApi, m: &Method, rest: &[&str], q: &Query) -> Result<Reply> {
    let (last, name_parts) = rest.split_last().expect("not empty");
    let name = name_parts.join("/");
    match (m, *last) {
        (&Method::GET, "json") if !name.is_empty() => {
            Ok(body::json(&detail(&find(api, &name).await?)))
        }
        (&Method::POST, "tag") => crate::image_io::tag(api, &name, q).await,
        (&Method::POST, "push") => Err(unsupported::push()),
        (&Method::GET, "history") => Err(unsupported::image_history()),
        (&Method::GET, "get") => crate::image_io::save(api, vec![name]).await,
        (&Method::DELETE, _) => remove(api, &rest.join("/"), q).await,
        _ => Err(ApiError::NotFound(format!(
            "page not found: {m} /images/{}",
            cut(&rest.join("/"))
        ))),
    }
}

async fn remove(api: &DockerApi, name: &str, q: &Query) -> Result<Reply> {
    if q.flag("force", false) {
        return Err(ApiError::bad(
            "force removal of images is not supported: remove the containers using it first",
        ));
    }
    let i = find(api, name).await?;
    let given = name.strip_suffix(":latest").unwrap_or(name);
    let untag_only = i.names.len() > 1 && i.names.iter().any(|n| n == given);
    let target = if i.names.iter().any(|n| n == given) {
        given.to_owned()
    } else {
        i.id.clone()
    };
    let id = api.engine.remove_image(&target).await?;
    Ok(body::json(&if untag_only {
        json!([{ "Untagged": format!("{given}:latest") }])
    } else {
        let mut v: Vec<Value> = repo_tags(&i)
            .into_iter()
            .map(|t| json!({ "Untagged": t }))
            .collect();
        v.push(json!({ "Deleted": id }));
        Value::Array(v)
    }))
}
