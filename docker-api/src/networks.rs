//! `/networks`: Quilt's bridge networks in docker's shapes (list, inspect,
//! create, remove, prune), plus docker's `host` and `none` (which are
//! modes, not stored networks). A container is on one network: connect
//! and disconnect answer 501.
use crate::body::{self, Reply};
use crate::error::{ApiError, Result};
use crate::inspect::cut;
use crate::query::{self, Query};
use crate::server::DockerApi;
use http::{Method, StatusCode};
use hyper::body::Incoming;
use quilt_sync_engine::model::{DEFAULT_NETWORK, NetworkInfo, NetworkSpec};
use quilt_sync_engine::{Container, EngineError, Network};
use serde_json::{Value, json};

/// docker's ids are 64 hex digits; Quilt's network ids are shorter:
/// padded the same way every time.
fn docker_id(id: &str) -> String {
    format!("{id:0<64}")
}

/// A container's endpoint on its bridge network (for inspect).
pub(crate) fn endpoint(c: &Container, net_id: &str) -> Value {
    let n = &c.net;
    json!({
        "IPAMConfig": null,
        "Links": null,
        "Aliases": if n.aliases.is_empty() { Value::Null } else { json!(n.aliases) },
        "NetworkID": docker_id(net_id),
        "EndpointID": "",
        "Gateway": n.gateway.map(|g| g.to_string()).unwrap_or_default(),
        "IPAddress": n.address.map(|a| a.to_string()).unwrap_or_default(),
        "IPPrefixLen": n.prefix,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "MacAddress": n.address.map(quilt_sync_engine::mac_text).unwrap_or_default(),
    })
}

/// The published ports as docker shows them: `{"80/tcp": [{"HostIp", "HostPort"}]}`.
pub(crate) fn ports(c: &Container) -> Value {
    let mut m = serde_json::Map::new();
    for p in &c.net.ports {
        let key = format!("{}/{}", p.container_port, p.proto.as_str());
        let entry = json!({ "HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string() });
        match m.get_mut(&key) {
            Some(Value::Array(a)) => a.push(entry),
            _ => {
                m.insert(key, json!([entry]));
            }
        }
    }
    Value::Object(m)
}

/// The container's NetworkSettings.
pub(crate) async fn settings(api: &DockerApi, c: &Container) -> Value {
    let n = &c.net;
    let mut networks = serde_json::Map::new();
    if c.network == Network::Bridge {
        let id = api
            .engine
            .inspect_network(&n.network)
            .await
            .map(|i| i.id)
            .unwrap_or_default();
        networks.insert(n.network.clone(), endpoint(c, &id));
    }
    json!({
        "Bridge": "",
        "SandboxID": "",
        "HairpinMode": false,
        "Ports": ports(c),
        "SandboxKey": "",
        "Gateway": n.gateway.map(|g| g.to_string()).unwrap_or_default(),
        "IPAddress": n.address.map(|a| a.to_string()).unwrap_or_default(),
        "IPPrefixLen": n.prefix,
        "MacAddress": n.address.map(quilt_sync_engine::mac_text).unwrap_or_default(),
        "Networks": networks,
    })
}

async fn shape(api: &DockerApi, i: &NetworkInfo) -> Value {
    let mut containers = serde_json::Map::new();
    for id in &i.containers {
        if let Ok(c) = api.engine.get(id).await {
            containers.insert(
                id.clone(),
                json!({
                    "Name": c.name,
                    "EndpointID": "",
                    "MacAddress": c.net.address.map(quilt_sync_engine::mac_text).unwrap_or_default(),
                    "IPv4Address": c.net.address.map(|a| format!("{a}/{}", c.net.prefix)).unwrap_or_default(),
                    "IPv6Address": "",
                }),
            );
        }
    }
    json!({
        "Name": i.name,
        "Id": docker_id(&i.id),
        "Created": crate::time::rfc3339(i.created_at_ns),
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": null,
            "Config": [{ "Subnet": i.subnet.to_string(), "Gateway": i.gateway().to_string() }],
        },
        "Internal": i.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": { "Network": "" },
        "ConfigOnly": false,
        "Containers": containers,
        "Options": { "com.docker.network.bridge.name": i.bridge },
        "Labels": {},
    })
}

/// docker's `host` and `none`: modes of Quilt, shown as docker shows them.
fn pseudo(name: &str) -> Value {
    json!({
        "Name": name,
        "Id": docker_id(&hex_of(name)),
        "Created": crate::time::ZERO,
        "Scope": "local",
        "Driver": if name == "host" { "host" } else { "null" },
        "EnableIPv6": false,
        "IPAM": { "Driver": "default", "Options": null, "Config": [] },
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": { "Network": "" },
        "ConfigOnly": false,
        "Containers": {},
        "Options": {},
        "Labels": {},
    })
}

fn hex_of(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

/// A network by name, id, or unique id prefix (docker's padded ids too).
async fn find(api: &DockerApi, key: &str) -> Result<NetworkInfo> {
    match api.engine.inspect_network(key).await {
        Ok(i) => return Ok(i),
        Err(EngineError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let all = api.engine.list_networks().await?;
    let hits: Vec<NetworkInfo> = all
        .into_iter()
        .filter(|n| !key.is_empty() && docker_id(&n.id).starts_with(key))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ApiError::NotFound(format!(
            "network {} not found",
            cut(key)
        ))),
        _ => Err(ApiError::bad(format!(
            "network {} is ambiguous ({} matches)",
            cut(key),
            hits.len()
        ))),
    }
}

pub async fn route(
    api: &DockerApi,
    m: &Method,
    rest: &[&str],
    q: &Query,
    req_body: Incoming,
) -> Result<Reply> {
    match (m, rest) {
        (&Method::GET, []) => list(api, q).await,
        (&Method::POST, ["create"]) => create(api, req_body).await,
        (&Method::POST, ["prune"]) => prune(api).await,
        (&Method::GET, [key]) => {
            if matches!(*key, "host" | "none") {
                return Ok(body::json(&pseudo(key)));
            }
            let i = find(api, key).await?;
            Ok(body::json(&shape(api, &i).await))
        }
        (&Method::DELETE, [key]) => {
            if matches!(*key, "host" | "none" | DEFAULT_NETWORK) {
                return Err(ApiError::Forbidden(format!(
                    "{key} is a pre-defined network and cannot be removed"
                )));
            }
            let i = find(api, key).await?;
            api.engine.remove_network(&i.name).await?;
            Ok(body::status(StatusCode::NO_CONTENT))
        }
        (&Method::POST, [_, "connect" | "disconnect"]) => Err(ApiError::NotImplemented(
            "connecting a container to another network is not supported: a Quilt container is on one network, chosen at create (--network)".into(),
        )),
        _ => Err(ApiError::NotFound(format!(
            "page not found: {m} /networks/{}",
            cut(&rest.join("/"))
        ))),
    }
}

async fn list(api: &DockerApi, q: &Query) -> Result<Reply> {
    let filters = q.filters()?;
    query::only(&filters, &["name", "id", "driver"], "networks")?;
    let mut out = Vec::new();
    for i in api.engine.list_networks().await? {
        out.push(shape(api, &i).await);
    }
    out.push(pseudo("host"));
    out.push(pseudo("none"));
    out.retain(|n| {
        let field = |k: &str| n[k].as_str().unwrap_or_default().to_owned();
        filters
            .get("name")
            .is_none_or(|v| v.iter().any(|x| field("Name").contains(x.as_str())))
            && filters
                .get("id")
                .is_none_or(|v| v.iter().any(|x| field("Id").starts_with(x.as_str())))
            && filters
                .get("driver")
                .is_none_or(|v| v.iter().any(|x| field("Driver") == *x))
    });
    Ok(body::json(&Value::Array(out)))
}

async fn create(api: &DockerApi, req_body: Incoming) -> Result<Reply> {
    let v = body::read_json(req_body).await?;
    let name = v["Name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad("Name is required"))?
        .to_owned();
    match v["Driver"].as_str().unwrap_or_default() {
        "" | "bridge" => {}
        d => {
            return Err(ApiError::bad(format!(
                "network driver {} is not supported (bridge only)",
                quilt_sync_engine::echo(d)
            )));
        }
    }
    if v["EnableIPv6"].as_bool() == Some(true) {
        return Err(ApiError::bad("IPv6 networks are not supported"));
    }
    for k in ["Labels", "Options"] {
        if v[k].as_object().is_some_and(|o| !o.is_empty()) {
            return Err(ApiError::bad(format!("network {k} are not supported")));
        }
    }
    let configs = v["IPAM"]["Config"].as_array().cloned().unwrap_or_default();
    let subnet = match configs.as_slice() {
        [] => None,
        [c] => c["Subnet"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        _ => {
            return Err(ApiError::bad(
                "one IPAM config (one IPv4 subnet) per network",
            ));
        }
    };
    let i = api
        .engine
        .create_network(NetworkSpec {
            name,
            subnet,
            internal: v["Internal"].as_bool().unwrap_or(false),
        })
        .await
        .map_err(|e| match e {
            EngineError::AlreadyExists(m) => ApiError::Conflict(m),
            e => e.into(),
        })?;
    Ok(body::json_with(
        StatusCode::CREATED,
        &json!({ "Id": docker_id(&i.id), "Warning": "" }),
    ))
}

async fn prune(api: &DockerApi) -> Result<Reply> {
    let mut deleted = Vec::new();
    for i in api.engine.list_networks().await? {
        if i.name != DEFAULT_NETWORK
            && i.containers.is_empty()
            && api.engine.remove_network(&i.name).await.is_ok()
        {
            deleted.push(i.name);
        }
    }
    Ok(body::json(&json!({ "NetworksDeleted": deleted })))
}
