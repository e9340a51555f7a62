//! ListContainers at scale: pages that list every container exactly once
//! while others come and go, the summary view, page tokens that are not
//! ours, and `quilt ps` over containers whose env would not fit in one
//! message.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use quilt_tests::api::{
    ContainerState, ContainerView, CreateContainerRequest, ListContainersRequest, Mount,
    RemoveContainerRequest, TmpfsMount, mount,
};
use quilt_tests::{Daemon, RPC_TIMEOUT, req, within};

fn labelled(name: &str, set: &str) -> CreateContainerRequest {
    let mut r = req(&["true"]);
    r.name = name.into();
    r.no_start = true;
    r.labels = [("set".to_string(), set.to_string())].into();
    r
}

#[test]
fn pages_list_every_container_once_while_others_come_and_go() {
    let d = Daemon::start();
    let mut stayed = HashSet::new();
    for i in 0..60 {
        stayed.insert(d.create(labelled(&format!("stay-{i}"), "a")).unwrap().id);
    }
    // Removed during the walk: each may or may not be seen, never twice.
    let mut doomed = Vec::new();
    for i in 0..30 {
        doomed.push(d.create(labelled(&format!("doomed-{i}"), "a")).unwrap().id);
    }
    let seen = d.block_on(async {
        let mut c = d.client().await;
        let mut churn = d.client().await;
        let filter: BTreeMap<String, String> = [("set".to_string(), "a".to_string())].into();
        let mut seen = Vec::new();
        let mut token = String::new();
        let mut round = 0;
        loop {
            let page = within(
                RPC_TIMEOUT,
                "ListContainers",
                c.list_containers(ListContainersRequest {
                    page_size: 7,
                    page_token: token.clone(),
                    labels: filter.clone().into_iter().collect(),
                    view: ContainerView::Summary as i32,
                    ..Default::default()
                }),
            )
            .await
            .expect("a page")
            .into_inner();
            assert!(page.containers.len() <= 7);
            seen.extend(page.containers.into_iter().map(|c| c.id));
            if page.next_page_token.is_empty() {
                break seen;
            }
            token = page.next_page_token;
            // Between pages: new containers (newer than any page) and
            // removals, ahead of and behind the walk.
            churn
                .create_container(labelled(&format!("new-{round}"), "a"))
                .await
                .expect("create");
            for _ in 0..3 {
                if let Some(id) = doomed.pop() {
                    churn
                        .remove_container(RemoveContainerRequest { id, force: true })
                        .await
                        .expect("remove");
                }
            }
            round += 1;
        }
    });
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a container listed twice");
    for id in &stayed {
        assert!(unique.contains(id), "{id} was never listed");
    }
    // Newest first: the containers that stayed come in creation order,
    // reversed.
    let order: Vec<String> = seen
        .iter()
        .filter(|i| stayed.contains(*i))
        .cloned()
        .collect();
    let names: Vec<String> = order.iter().map(|i| d.get(i).unwrap().name).collect();
    let want: Vec<String> = (0..60).rev().map(|i| format!("stay-{i}")).collect();
    assert_eq!(names, want);
}

/// A large listing asked again while nothing changed is the page sent
/// before (kept for the listing index's version); every change (a create,
/// a rename, a removal, a start) is in the very next listing.
#[test]
fn a_listing_asked_again_follows_every_change() {
    let d = Daemon::start();
    // About 100 KB of rows: a page large enough to be kept.
    let big = "x".repeat(400);
    let mut ids = Vec::new();
    for i in 0..200 {
        let mut r = labelled(&format!("row-{i}"), "b");
        r.labels.insert("pad".into(), big.clone());
        ids.push(d.create(r).unwrap().id);
    }
    let list = |d: &Daemon| {
        d.list_page(ListContainersRequest::default())
            .expect("a listing")
    };
    let names = |l: &quilt_tests::api::ListContainersResponse| -> Vec<String> {
        l.containers.iter().map(|c| c.name.clone()).collect()
    };
    let first = list(&d);
    assert_eq!(first.containers.len(), 200);
    assert_eq!(list(&d), first, "the same listing, unchanged");

    d.block_on(async {
        let mut c = d.client().await;
        c.rename_container(quilt_tests::api::RenameContainerRequest {
            id: ids[10].clone(),
            name: "renamed".into(),
        })
        .await
        .expect("rename");
    });
    let after = list(&d);
    assert!(names(&after).contains(&"renamed".to_string()));
    assert!(!names(&after).contains(&"row-10".to_string()));

    d.cli(["rm", &ids[20]]).ok();
    let after = list(&d);
    assert_eq!(after.containers.len(), 199);
    assert!(!after.containers.iter().any(|c| c.id == ids[20]));

    let new = d.create(labelled("newest", "b")).unwrap().id;
    let after = list(&d);
    assert_eq!(
        after.containers.first().map(|c| c.id.as_str()),
        Some(new.as_str())
    );

    d.cli(["start", &ids[30]]).ok();
    let after = list(&d);
    let started = after.containers.iter().find(|c| c.id == ids[30]).unwrap();
    assert_ne!(started.state, ContainerState::Created as i32, "{started:?}");
    // Once it has exited, nothing changes any more.
    d.cli(["wait", &ids[30]]).ok();
    let after = list(&d);
    let exited = after.containers.iter().find(|c| c.id == ids[30]).unwrap();
    assert_eq!(exited.state, ContainerState::Exited as i32, "{exited:?}");
    assert_eq!(list(&d), after, "unchanged again");
}

#[test]
fn filters_and_the_summary_view() {
    let d = Daemon::start();
    let mut full = labelled("full", "b");
    full.env = vec!["SECRET=1".into(), "MODE=x".into()];
    full.mounts = vec![Mount {
        target: "/scratch".into(),
        read_only: false,
        source: Some(mount::Source::Tmpfs(TmpfsMount { size_bytes: 0 })),
    }];
    full.command = vec!["sleep".into(), "1000".into()];
    let id = d.create(full).unwrap().id;
    d.create(labelled("other", "c")).unwrap();
    let list = |r: ListContainersRequest| {
        d.block_on(async {
            let mut c = d.client().await;
            within(RPC_TIMEOUT, "ListContainers", c.list_containers(r)).await
        })
        .map(|r| r.into_inner())
    };
    let summary = list(ListContainersRequest {
        labels: [("set".to_string(), "b".to_string())].into(),
        view: ContainerView::Summary as i32,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(summary.containers.len(), 1);
    assert!(summary.next_page_token.is_empty());
    let c = &summary.containers[0];
    assert_eq!((c.id.as_str(), c.name.as_str()), (id.as_str(), "full"));
    assert_eq!(c.command, ["sleep", "1000"]);
    assert_eq!(c.labels.get("set").map(String::as_str), Some("b"));
    assert_eq!(c.state(), ContainerState::Created);
    assert!(c.created_at.is_some());
    assert!(c.env.is_empty(), "summary with env: {:?}", c.env);
    assert!(c.mounts.is_empty(), "summary with mounts: {:?}", c.mounts);
    assert!(c.security.is_none());
    // The full view (the default) has them.
    let full = list(ListContainersRequest {
        name: "ful".into(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(full.containers.len(), 1);
    assert_eq!(full.containers[0].env, ["SECRET=1", "MODE=x"]);
    assert_eq!(full.containers[0].mounts.len(), 1);
    // State filters are SQL too.
    let running = list(ListContainersRequest {
        states: vec![ContainerState::Running as i32],
        ..Default::default()
    })
    .unwrap();
    assert!(running.containers.is_empty());
    // A page token that is not ours, or one used with other filters.
    for bad in [
        "not-a-token",
        "00",
        "0123456789abcdef0123456789abcdef0123456789",
    ] {
        let err = list(ListContainersRequest {
            page_token: bad.into(),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{bad}");
        assert!(err.message().starts_with("invalid page_token"), "{err:?}");
    }
    let first = list(ListContainersRequest {
        page_size: 1,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(first.containers.len(), 1);
    assert!(!first.next_page_token.is_empty());
    let err = list(ListContainersRequest {
        page_size: 1,
        page_token: first.next_page_token.clone(),
        name: "o".into(),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("other filters"), "{err:?}");
    let unknown_view = list(ListContainersRequest {
        view: 99,
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(unknown_view.code(), tonic::Code::InvalidArgument);
}

/// 200 containers with about 500 KiB of env each: 100 MiB in all, far past
/// a client's 4 MiB message limit.
#[test]
fn ps_pages_through_containers_with_large_env() {
    let d = Daemon::start();
    let chunk = "x".repeat(125 * 1024);
    let env: Vec<String> = (0..4).map(|i| format!("BIG{i}={chunk}")).collect();
    d.block_on(async {
        let mut c = d.client().await;
        for i in 0..200 {
            let mut r = req(&["true"]);
            r.name = format!("big-{i:03}");
            r.no_start = true;
            r.env = env.clone();
            within(RPC_TIMEOUT, "CreateContainer", c.create_container(r))
                .await
                .expect("create");
        }
    });
    // One full-view call: a page cut by size, with a token for the rest,
    // under the 4 MiB the client accepts by default.
    let page = d
        .list_page(ListContainersRequest::default())
        .expect("a page within the default message size");
    assert!(
        !page.containers.is_empty() && page.containers.len() < 200,
        "{} containers in one page",
        page.containers.len()
    );
    assert!(!page.next_page_token.is_empty());
    let ids = d.cli(["ps", "-a", "-q"]);
    ids.expect_code(0);
    assert_eq!(ids.lines().len(), 200, "{ids:?}");
    let table = d.cli(["ps", "-a"]);
    table.expect_code(0);
    assert_eq!(table.lines().len(), 201);
    assert!(table.lines()[1].starts_with(&ids.lines()[0]));
    let json = d.cli_timeout(["ps", "-a", "--format", "json"], Duration::from_secs(300));
    json.expect_code(0);
    let all = json.json();
    let all = all.as_array().expect("a JSON array");
    assert_eq!(all.len(), 200);
    assert_eq!(all[0]["env"].as_array().map(Vec::len), Some(4));
    // Newest first.
    assert_eq!(all[0]["name"], "big-199");
    assert_eq!(all[199]["name"], "big-000");
}
