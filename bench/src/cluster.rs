//! A cluster: nodes sharing one PostgreSQL. Create acknowledgement through
//! one node (placed on all of them), status of those containers through
//! another node, starts per second with 1, 2 and 3 nodes running them (the
//! same creates, through the first node, placed round-robin on the first k
//! nodes), and each store's write-commit percentiles (PostgreSQL on the
//! nodes, SQLite on the single daemon of the same run).
use crate::client::{self, code_name, with_timeout};
use crate::report::{ClusterBench, ClusterStarts, StoreWrites};
use crate::stats::Samples;
use anyhow::{Context, Result, bail};
use quilt_proto::v1::system_service_client::SystemServiceClient;
use quilt_proto::v1::{
    ContainerState, ContainerView, GetContainerRequest, GetInfoRequest, ListContainersRequest,
    ListNodesRequest,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CALL: Duration = Duration::from_secs(30);
/// How long the containers of one throughput step may take to finish.
const DRAIN: Duration = Duration::from_secs(300);
/// Clients creating at once in the throughput steps.
const CLIENTS: usize = 8;

/// This node's name, as it says itself.
async fn name_of(socket: &Path) -> Result<String> {
    let mut sys = SystemServiceClient::new(client::channel(socket).await?);
    let nodes = with_timeout(CALL, sys.list_nodes(ListNodesRequest {}))
        .await?
        .nodes;
    nodes
        .into_iter()
        .find(|n| n.this_node)
        .map(|n| n.name)
        .with_context(|| format!("{} is not a node of a cluster", socket.display()))
}

async fn store_writes(socket: &Path) -> Result<Option<f64>> {
    let mut sys = SystemServiceClient::new(client::channel(socket).await?);
    let info = with_timeout(CALL, sys.get_info(GetInfoRequest {})).await?;
    Ok(info
        .db_write
        .map(|p| (p.p99 * 1000.0 * 1000.0).round() / 1000.0))
}

pub async fn cluster(
    nodes: &[PathBuf],
    sqlite: Option<&Path>,
    n: usize,
    starts: usize,
) -> Result<ClusterBench> {
    if nodes.len() < 2 {
        bail!("a cluster benchmark needs at least two nodes' sockets");
    }
    let mut names = Vec::new();
    for s in nodes {
        names.push(name_of(s).await?);
    }
    // Acknowledgement through the first node, status through the second.
    let mut a = client::connect(&nodes[0]).await?;
    let mut b = client::connect(&nodes[1]).await?;
    let mut ack = Samples::default();
    let mut ids = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        match with_timeout(
            CALL,
            a.create_container(client::create_request(&["/bin/true"], false, true)),
        )
        .await
        {
            Ok(r) => {
                ack.ok(t.elapsed());
                ids.push(r.id);
            }
            Err(s) => ack.err(&code_name(s.code()), s.message().to_owned()),
        }
    }
    let mut status = Samples::default();
    for i in 0..n.max(1) * 2 {
        let Some(id) = ids.get(i % ids.len().max(1)) else {
            break;
        };
        let t = Instant::now();
        match with_timeout(
            CALL,
            b.get_container(GetContainerRequest { id: id.clone() }),
        )
        .await
        {
            Ok(_) => status.ok(t.elapsed()),
            Err(s) => status.err(&code_name(s.code()), s.message().to_owned()),
        }
    }
    let placed = placement(&mut b, &names).await?;
    client::remove_all(&nodes[0], ids, CLIENTS).await?;

    // Starts per second with the first k nodes running them.
    let mut steps = Vec::new();
    for k in 1..=nodes.len() {
        steps.push(starts_on(&nodes[0], &names[..k], starts).await?);
    }
    let per_s = |k: usize| steps.iter().find(|s| s.nodes == k).map(|s| s.per_s);
    let ratio = match (per_s(nodes.len()), per_s(1)) {
        (Some(m), Some(one)) if one > 0.0 => Some((m / one * 100.0).round() / 100.0),
        _ => None,
    };
    let mut postgres = Vec::new();
    for s in nodes {
        postgres.push(store_writes(s).await?);
    }
    let sqlite_p99 = match sqlite {
        Some(s) => {
            // The same acknowledged creates on the single daemon, so that
            // its histogram has the same kind of writes.
            let mut c = client::connect(s).await?;
            let mut ids = Vec::new();
            for _ in 0..n {
                let r = with_timeout(
                    CALL,
                    c.create_container(client::create_request(&["/bin/true"], false, true)),
                )
                .await?;
                ids.push(r.id);
            }
            client::remove_all(s, ids, CLIENTS).await?;
            store_writes(s).await?
        }
        None => None,
    };
    Ok(ClusterBench {
        description: format!(
            "{} nodes sharing one PostgreSQL on this host: {n} CreateContainer \
             acknowledgements through {} (placed on every node), GetContainer of them \
             through {}, then {starts} creates of /bin/true through {} ({CLIENTS} clients) \
             placed round-robin on the first 1..{} nodes, timed to the last one exited",
            nodes.len(),
            names[0],
            names[1],
            names[0],
            nodes.len()
        ),
        nodes: names,
        create_ack: ack.report(),
        status_other_node: status.report(),
        placed_per_node: placed,
        starts: steps,
        starts_ratio_all_over_one: ratio,
        store_writes: StoreWrites {
            description: "p99 of the store's write transactions (quiltd's own \
                          histogram, GetInfo.db_write), milliseconds"
                .into(),
            postgres_p99_ms_per_node: postgres,
            sqlite_p99_ms: sqlite_p99,
        },
    })
}

/// How many of the benchmark's containers each node holds now.
async fn placement(c: &mut client::Client, names: &[String]) -> Result<Vec<(String, usize)>> {
    let list = with_timeout(
        CALL,
        c.list_containers(ListContainersRequest {
            view: ContainerView::Summary as i32,
            labels: [("quilt-bench".to_string(), "1".to_string())].into(),
            ..Default::default()
        }),
    )
    .await?
    .containers;
    Ok(names
        .iter()
        .map(|n| (n.clone(), list.iter().filter(|c| &c.node == n).count()))
        .collect())
}

/// `count` creates of /bin/true through `socket` by CLIENTS clients, placed
/// round-robin on `on`; timed from the first create to the last exit seen
/// through the same node.
async fn starts_on(socket: &Path, on: &[String], count: usize) -> Result<ClusterStarts> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let on: Arc<Vec<String>> = Arc::new(on.to_vec());
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (next, on) = (next.clone(), on.clone());
        let mut c = client::connect(socket).await?;
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut errors = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let mut r = client::create_request(&["/bin/true"], false, false);
                r.node = on[i % on.len()].clone();
                match with_timeout(CALL, c.create_container(r)).await {
                    Ok(r) => ids.push(r.id),
                    Err(s) => errors.push(format!("{}: {}", code_name(s.code()), s.message())),
                }
            }
            (ids, errors)
        }));
    }
    let mut ids = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        let (i, e) = t.await?;
        ids.extend(i);
        errors.extend(e);
    }
    // Done when every one has exited (or failed), as any node sees it.
    let mine: std::collections::HashSet<&String> = ids.iter().collect();
    let mut c = client::connect(socket).await?;
    let done_states = [ContainerState::Exited as i32, ContainerState::Failed as i32];
    let deadline = Instant::now() + DRAIN;
    let (finished, failed) = loop {
        let list = with_timeout(
            CALL,
            c.list_containers(ListContainersRequest {
                view: ContainerView::Summary as i32,
                labels: [("quilt-bench".to_string(), "1".to_string())].into(),
                ..Default::default()
            }),
        )
        .await?
        .containers;
        let ours = list.iter().filter(|c| mine.contains(&c.id));
        let done = ours
            .clone()
            .filter(|c| done_states.contains(&c.state))
            .count();
        if done >= ids.len() {
            let failed = ours
                .filter(|c| c.state == ContainerState::Failed as i32)
                .count();
            break (done, failed);
        }
        if Instant::now() > deadline {
            bail!(
                "{} of {} containers finished within {DRAIN:?} on {} node(s)",
                done,
                ids.len(),
                on.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let secs = t0.elapsed().as_secs_f64();
    client::remove_all(socket, ids.clone(), CLIENTS).await?;
    Ok(ClusterStarts {
        nodes: on.len(),
        containers: finished,
        failed,
        create_errors: errors.len(),
        seconds: (secs * 1000.0).round() / 1000.0,
        per_s: ((finished as f64 / secs) * 10.0).round() / 10.0,
    })
}
