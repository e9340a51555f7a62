//! ListContainers at scale: with many no_start containers stored, pages of
//! 100 walked from the newest (summary and full views), and GetContainer
//! beside them for comparison.

use crate::client::{code_name, create_request, with_timeout};
use crate::stats::Samples;
use quilt_proto::v1::container_service_client::ContainerServiceClient;
use quilt_proto::v1::{ContainerView, GetContainerRequest, ListContainersRequest};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const CALL: Duration = Duration::from_secs(10);
/// Containers per page.
const PAGE: u32 = 100;

pub struct Paging {
    /// The containers this step created (the caller removes them).
    pub created: Vec<String>,
    pub stored: usize,
    pub summary: Samples,
    pub full: Samples,
    pub get: Samples,
}

/// Tops the stored containers up to `stored` (`have` exist already), then
/// times `pages` pages of each view and `gets` GetContainer calls.
pub async fn pages(
    c: &mut ContainerServiceClient<Channel>,
    have: &[String],
    stored: usize,
    pages: usize,
    gets: usize,
) -> anyhow::Result<Paging> {
    let mut created = Vec::with_capacity(stored.saturating_sub(have.len()));
    while have.len() + created.len() < stored {
        let req = create_request(&["sleep", "3600"], false, true);
        let r = with_timeout(CALL, c.create_container(req)).await?;
        created.push(r.id);
    }
    eprintln!("api: {} no_start containers stored for the pages", stored);
    let mut out = Paging {
        created,
        stored,
        summary: Samples::default(),
        full: Samples::default(),
        get: Samples::default(),
    };
    for (view, samples) in [
        (ContainerView::Summary, &mut out.summary),
        (ContainerView::Full, &mut out.full),
    ] {
        let mut token = String::new();
        for _ in 0..pages {
            let req = ListContainersRequest {
                page_size: PAGE,
                page_token: std::mem::take(&mut token),
                view: view as i32,
                ..Default::default()
            };
            let t = Instant::now();
            match with_timeout(CALL, c.list_containers(req)).await {
                Ok(r) if r.containers.len() == PAGE as usize || r.next_page_token.is_empty() => {
                    samples.ok(t.elapsed());
                    // From the newest again after the last page.
                    token = r.next_page_token;
                }
                Ok(r) => samples.err(
                    "short_page",
                    format!("a page of {} with more to come", r.containers.len()),
                ),
                Err(st) => samples.err(&code_name(st.code()), st.message().to_string()),
            }
        }
    }
    let ids: Vec<&String> = have.iter().chain(&out.created).collect();
    for i in 0..gets {
        let id = ids[(i * 7919) % ids.len()].clone();
        let t = Instant::now();
        match with_timeout(CALL, c.get_container(GetContainerRequest { id })).await {
            Ok(_) => out.get.ok(t.elapsed()),
            Err(st) => out.get.err(&code_name(st.code()), st.message().to_string()),
        }
    }
    Ok(out)
}
