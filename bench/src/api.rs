//! Server latency through the API from an in-process client (no process
//! start): CreateContainer acknowledgement (no_start, and starting),
//! GetContainer, ListContainers with many containers stored: whole lists,
//! and pages of 100 with 10,000 stored (`listing`).

use crate::client::{self, code_name, create_request, with_timeout};
use crate::events::Hub;
use crate::report::Api;
use crate::stats::Samples;
use anyhow::{Result, bail};
use quilt_proto::v1::{ContainerView, GetContainerRequest, ListContainersRequest};
use std::path::Path;
use std::time::{Duration, Instant};

const CALL: Duration = Duration::from_secs(10);

pub struct ApiOpts {
    pub containers: usize,
    pub gets: usize,
    pub lists: usize,
    pub starts: usize,
    pub list_stored: usize,
    pub pages: usize,
}

pub async fn api(socket: &Path, o: &ApiOpts) -> Result<Api> {
    let mut c = client::connect(socket).await?;
    let hub = Hub::start(socket).await?;

    // 1. CreateContainer acknowledgement, no_start: only the API path.
    let mut create_ns = Samples::default();
    let mut ids = Vec::with_capacity(o.containers);
    for _ in 0..o.containers {
        let req = create_request(&["sleep", "3600"], false, true);
        let t = Instant::now();
        match with_timeout(CALL, c.create_container(req)).await {
            Ok(r) => {
                create_ns.ok(t.elapsed());
                ids.push(r.id);
            }
            Err(st) => create_ns.err(&code_name(st.code()), st.message().to_string()),
        }
    }
    if ids.is_empty() {
        bail!(
            "no container could be created: {:?}",
            create_ns.error_examples
        );
    }
    eprintln!("api: {} no_start containers stored", ids.len());

    // 2. GetContainer with all of them stored (round robin over the ids).
    let mut get = Samples::default();
    for i in 0..o.gets {
        let id = ids[i % ids.len()].clone();
        let t = Instant::now();
        match with_timeout(CALL, c.get_container(GetContainerRequest { id })).await {
            Ok(_) => get.ok(t.elapsed()),
            Err(st) => get.err(&code_name(st.code()), st.message().to_string()),
        }
    }

    // 3. ListContainers with all of them stored.
    let mut list = Samples::default();
    let mut listed = 0;
    for _ in 0..o.lists {
        let t = Instant::now();
        match with_timeout(CALL, c.list_containers(ListContainersRequest::default())).await {
            Ok(r) => {
                list.ok(t.elapsed());
                listed = r.containers.len();
            }
            Err(st) => list.err(&code_name(st.code()), st.message().to_string()),
        }
    }

    // 3b. The same, summary view (what `quilt ps` asks for).
    let mut list_summary = Samples::default();
    for _ in 0..o.lists {
        let req = ListContainersRequest {
            view: ContainerView::Summary as i32,
            ..Default::default()
        };
        let t = Instant::now();
        match with_timeout(CALL, c.list_containers(req)).await {
            Ok(r) if r.next_page_token.is_empty() => list_summary.ok(t.elapsed()),
            Ok(r) => list_summary.err(
                "paged",
                format!("{} of {} in one page", r.containers.len(), ids.len()),
            ),
            Err(st) => list_summary.err(&code_name(st.code()), st.message().to_string()),
        }
    }

    // 3c. Pages of 100 with many more stored; those are removed at once
    //     (not part of the removal figure).
    let paging = if o.list_stored > 0 {
        let p = crate::listing::pages(&mut c, &ids, o.list_stored, o.pages, o.gets).await?;
        client::remove_all(socket, p.created.clone(), 8).await?;
        for id in &p.created {
            hub.forget(id);
        }
        Some(p)
    } else {
        None
    };

    // 4. Remove them (force; they never ran).
    let t = Instant::now();
    let removal = client::remove_all(socket, ids.clone(), 1).await?;
    let removal_s = t.elapsed().as_secs_f64();
    for id in &ids {
        hub.forget(id);
    }

    // 5. CreateContainer acknowledgement for containers that start
    //    (/bin/true, auto-removed); each one is awaited until removed so the
    //    acknowledgements do not pile up behind each other's starts.
    let mut create_start = Samples::default();
    let mut not_removed = 0;
    for _ in 0..o.starts {
        let req = create_request(&["/bin/true"], true, false);
        let t = Instant::now();
        match with_timeout(CALL, c.create_container(req)).await {
            Ok(r) => {
                create_start.ok(t.elapsed());
                if hub
                    .wait(&r.id, &["removed"], Duration::from_secs(30))
                    .await
                    .is_none()
                {
                    not_removed += 1;
                }
                hub.forget(&r.id);
            }
            Err(st) => create_start.err(&code_name(st.code()), st.message().to_string()),
        }
    }
    hub.stop();

    let s = (
        create_ns.stats(),
        create_start.stats(),
        get.stats(),
        list.stats(),
    );
    eprintln!(
        "api: create(no_start) p50 {:.3} ms p99 {:.3}; create(start) p50 {:.3}; get p50 {:.3} p99 {:.3}; list({listed}) p50 {:.2} ms, summary {:.2} ms",
        s.0.p50_ms,
        s.0.p99_ms,
        s.1.p50_ms,
        s.2.p50_ms,
        s.2.p99_ms,
        s.3.p50_ms,
        list_summary.stats().p50_ms
    );
    if let Some(p) = &paging {
        eprintln!(
            "api: {} stored: page of 100 p50 {:.3} ms (summary), {:.3} ms (full); get p50 {:.3} ms",
            p.stored,
            p.summary.stats().p50_ms,
            p.full.stats().p50_ms,
            p.get.stats().p50_ms
        );
    }
    Ok(Api {
        description: "in-process gRPC client over the Unix socket, sequential calls".into(),
        create_no_start: create_ns.report(),
        create_start: create_start.report(),
        create_start_not_removed_within_30s: not_removed,
        get_container: get.report(),
        stored_containers: ids.len(),
        list_containers: list.report(),
        listed,
        remove_no_start: removal.report(),
        remove_no_start_total_s: removal_s,
        list_all_summary: list_summary.report(),
        list_page_stored: paging.as_ref().map_or(0, |p| p.stored),
        list_page_summary: paging
            .as_ref()
            .map(|p| p.summary.report())
            .unwrap_or_default(),
        list_page_full: paging.as_ref().map(|p| p.full.report()).unwrap_or_default(),
        get_container_at_list_page_stored: paging
            .as_ref()
            .map(|p| p.get.report())
            .unwrap_or_default(),
    })
}
