//! Named volumes: list, create, inspect, remove and prune.
use crate::body::{self, Reply};
use crate::error::{ApiError, Result};
use crate::query::{self, Query};
use crate::server::DockerApi;
use http::StatusCode;
use hyper::body::Incoming;
use quilt_sync_engine::{EngineError, Volume, echo};
use serde_json::{Value, json};

fn volume(api: &DockerApi, v: &Volume) -> Value {
    json!({
        "Name": v.name,
        "Driver": "local",
        "Mountpoint": api.data_dir.join("volumes").join(&v.name).display().to_string(),
        "CreatedAt": crate::time::rfc3339(v.created_at_ns),
        "Labels": v.labels,
        "Scope": "local",
        "Options": {},
        "UsageData": { "Size": -1, "RefCount": v.used_by.len() },
    })
}

fn label_matches(v: &Volume, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
        None => v.labels.contains_key(want),
    }
}

pub async fn list(api: &DockerApi, q: &Query) -> Result<Reply> {
    let filters = q.filters()?;
    query::only(&filters, &["name", "label", "dangling"], "volume")?;
    let all = api.engine.list_volumes().await?;
    let out: Vec<Value> = all
        .iter()
        .filter(|v| {
            filters
                .get("name")
                .is_none_or(|n| n.iter().any(|n| v.name.contains(n.as_str())))
        })
        .filter(|v| {
            filters
                .get("label")
                .is_none_or(|l| l.iter().all(|l| label_matches(v, l)))
        })
        .filter(|v| {
            filters.get("dangling").is_none_or(|d| {
                d.iter().all(|d| {
                    let dangling = matches!(d.as_str(), "true" | "1");
                    v.used_by.is_empty() == dangling
                })
            })
        })
        .map(|v| volume(api, v))
        .collect();
    Ok(body::json(&json!({ "Volumes": out, "Warnings": [] })))
}

pub async fn create(api: &DockerApi, b: Incoming) -> Result<Reply> {
    let v = body::read_json(b).await?;
    let driver = v["Driver"].as_str().unwrap_or_default();
    if !matches!(driver, "" | "local") {
        return Err(ApiError::bad(format!(
            "volume driver {} is not supported (only local)",
            echo(driver)
        )));
    }
    if !crate::create::is_default(&v["DriverOpts"]) {
        return Err(ApiError::bad("volume driver options are not supported"));
    }
    let name = match v["Name"].as_str().filter(|n| !n.is_empty()) {
        Some(n) => n.to_owned(),
        None => {
            let mut b = [0u8; 32];
            getrandom::fill(&mut b).expect("kernel random source");
            hex::encode(b)
        }
    };
    let labels = match &v["Labels"] {
        Value::Null => Default::default(),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::bad("Labels must map strings to strings"))?,
        _ => return Err(ApiError::bad("Labels must be an object")),
    };
    let vol = match api.engine.create_volume(&name, labels).await {
        Ok(v) => v,
        // docker: creating an existing volume returns it.
        Err(EngineError::AlreadyExists(_)) => api.engine.inspect_volume(&name).await?,
        Err(e) => return Err(e.into()),
    };
    Ok(body::json_with(StatusCode::CREATED, &volume(api, &vol)))
}

pub async fn inspect(api: &DockerApi, name: &str) -> Result<Reply> {
    let v = api.engine.inspect_volume(name).await?;
    Ok(body::json(&volume(api, &v)))
}

pub async fn remove(api: &DockerApi, name: &str, q: &Query) -> Result<Reply> {
    api.engine
        .remove_volume(name, q.flag("force", false))
        .await?;
    Ok(body::status(StatusCode::NO_CONTENT))
}

pub async fn prune(api: &DockerApi, q: &Query) -> Result<Reply> {
    let filters = q.filters()?;
    query::only(&filters, &["label"], "prune")?;
    let mut deleted = Vec::new();
    for v in api.engine.list_volumes().await? {
        if !v.used_by.is_empty()
            || !filters
                .get("label")
                .is_none_or(|l| l.iter().all(|l| label_matches(&v, l)))
        {
            continue;
        }
        match api.engine.remove_volume(&v.name, false).await {
            Ok(()) => deleted.push(v.name),
            Err(EngineError::NotFound(_) | EngineError::FailedPrecondition(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(body::json(
        &json!({ "VolumesDeleted": deleted, "SpaceReclaimed": 0 }),
    ))
}
