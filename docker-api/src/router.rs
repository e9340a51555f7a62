//! Paths to handlers. `/v1.NN/...` and the unversioned paths are the same
//! endpoints (answered in API 1.41's shapes); a version older than
//! `MIN_API_VERSION` is refused as docker refuses it.
use crate::body::Reply;
use crate::error::{ApiError, Result};
use crate::query::Query;
use crate::server::DockerApi;
use crate::{
    archive, containers, create, events, exec, image_io, images, logs, networks, pull, stats,
    system, unsupported, volumes,
};
use http::{Method, Request};
use hyper::body::Incoming;

pub async fn route(api: &DockerApi, req: Request<Incoming>) -> Result<Reply> {
    let raw_path = req.uri().path().to_owned();
    let path = strip_version(&raw_path)?;
    let q = Query::parse(req.uri().query());
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = req.method().clone();
    use Method as M;
    match (&m, s.as_slice()) {
        (&M::GET | &M::HEAD, ["_ping"]) => Ok(system::ping(&m)),
        (&M::GET, ["version"]) => system::version(api).await,
        (&M::GET, ["info"]) => system::info(api).await,
        (&M::GET, ["events"]) => events::events(api, &q).await,

        (&M::POST, ["containers", "create"]) => create::create(api, &q, req.into_body()).await,
        (&M::GET, ["containers", "json"]) => containers::list(api, &q).await,
        (&M::POST, ["containers", "prune"]) => containers::prune(api, &q).await,
        (&M::GET, ["containers", id, "json"]) => containers::inspect(api, id).await,
        (&M::POST, ["containers", id, "start"]) => containers::start(api, id, &q).await,
        (&M::POST, ["containers", id, "stop"]) => containers::stop(api, id, &q).await,
        (&M::POST, ["containers", id, "restart"]) => containers::restart(api, id, &q).await,
        (&M::POST, ["containers", id, "kill"]) => containers::kill(api, id, &q).await,
        (&M::POST, ["containers", id, "wait"]) => containers::wait(api, id, &q).await,
        (&M::DELETE, ["containers", id]) => containers::remove(api, id, &q).await,
        (&M::GET, ["containers", id, "logs"]) => logs::logs(api, id, &q).await,
        (&M::POST, ["containers", id, "attach"]) => {
            let id = id.to_string();
            logs::attach(api, &id, &q, req).await
        }
        (&M::POST, ["containers", id, "exec"]) => exec::create(api, id, req.into_body()).await,
        (&M::GET | &M::HEAD | &M::PUT, ["containers", id, "archive"]) => {
            let id = id.to_string();
            archive::archive(api, &id, &q, req).await
        }
        (&M::GET, ["containers", id, "export"]) => image_io::export(api, id).await,
        (&M::GET, ["containers", id, "stats"]) => stats::stats(api, id, &q).await,
        (&M::POST, ["containers", id, "pause"]) => stats::pause(api, id, true).await,
        (&M::POST, ["containers", id, "unpause"]) => stats::pause(api, id, false).await,
        (&M::POST, ["containers", id, "resize"]) => logs::resize(api, id, &q).await,
        (_, ["containers", _, what]) => Err(unsupported::container_endpoint(what)),

        (&M::POST, ["exec", id, "start"]) => {
            let id = id.to_string();
            exec::start(api, &id, req).await
        }
        (&M::POST, ["exec", id, "resize"]) => exec::resize(api, id, &q).await,
        (&M::GET, ["exec", id, "json"]) => exec::inspect(api, id).await,

        (&M::GET, ["images", "json"]) => images::list(api, &q).await,
        (&M::POST, ["images", "create"]) => pull::create(api, &q, req.headers()).await,
        (&M::POST, ["images", "load"]) => image_io::load(api, &q, req.into_body()).await,
        (&M::GET, ["images", "get"]) => {
            let names = q.all("names").into_iter().map(str::to_owned).collect();
            image_io::save(api, names).await
        }
        (&M::POST, ["images", "prune"]) => Err(unsupported::image_prune()),
        (_, ["images", rest @ ..]) if !rest.is_empty() => images::by_name(api, &m, rest, &q).await,
        (&M::POST, ["build"]) => Err(unsupported::build()),
        (&M::POST, ["commit"]) => image_io::commit(api, &q, req.into_body()).await,

        (&M::GET, ["volumes"]) => volumes::list(api, &q).await,
        (&M::POST, ["volumes", "create"]) => volumes::create(api, req.into_body()).await,
        (&M::POST, ["volumes", "prune"]) => volumes::prune(api, &q).await,
        (&M::GET, ["volumes", name]) => volumes::inspect(api, name).await,
        (&M::DELETE, ["volumes", name]) => volumes::remove(api, name, &q).await,

        (_, ["networks", rest @ ..]) => {
            let rest: Vec<&str> = rest.to_vec();
            networks::route(api, &m, &rest, &q, req.into_body()).await
        }
        (
            _,
            [
                "swarm" | "services" | "tasks" | "secrets" | "configs" | "nodes",
                ..,
            ],
        ) => Err(unsupported::swarm()),
        (_, ["plugins", ..]) => Err(unsupported::plugins()),
        (&M::POST, ["auth"]) => Err(unsupported::auth()),
        (&M::GET, ["system", "df"]) => Err(unsupported::disk_usage()),
        _ => Err(ApiError::NotFound(format!(
            "page not found: {m} {raw_path} is not part of Quilt's Docker API"
        ))),
    }
}

/// `/v1.41/containers/json` -> `/containers/json`.
fn strip_version(path: &str) -> Result<&str> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok(path);
    };
    let (ver, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let Some((major, minor)) = ver.split_once('.') else {
        return Ok(path);
    };
    let (Ok(major), Ok(minor)) = (major.parse::<u32>(), minor.parse::<u32>()) else {
        return Ok(path);
    };
    let min: (u32, u32) = (1, 24);
    if (major, minor) < min {
        return Err(ApiError::bad(format!(
            "client version {major}.{minor} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
            crate::MIN_API_VERSION
        )));
    }
    Ok(if tail.is_empty() { "/" } else { tail })
}

#[cfg(test)]
mod tests {
    use super::strip_version;

    #[test]
    fn versions_are_stripped_and_old_ones_refused() {
        assert_eq!(
            strip_version("/v1.41/containers/json").unwrap(),
            "/containers/json"
        );
        assert_eq!(
            strip_version("/containers/json").unwrap(),
            "/containers/json"
        );
        assert_eq!(strip_version("/volumes").unwrap(), "/volumes");
        assert!(strip_version("/v1.12/info").is_err());
    }
}
