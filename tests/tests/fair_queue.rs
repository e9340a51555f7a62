//! The start queue under a burst: one client's batch creates neither fill
//! the queue for everyone (a refusal says when to retry) nor stand before
//! another client's interactive start.
use quilt_tests::api::{ContainerState, CreateContainerRequest, StartPriority};
use quilt_tests::{Daemon, list_all};
use std::time::Duration;

fn request(name: &str, priority: StartPriority) -> CreateContainerRequest {
    CreateContainerRequest {
        image: "default".into(),
        command: vec!["true".into()],
        name: name.into(),
        priority: priority as i32,
        ..Default::default()
    }
}

fn as_client<T>(client: &str, msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("x-quilt-client", client.parse().expect("ascii"));
    r
}

#[test]
fn a_batch_burst_does_not_starve_an_interactive_start() {
    let d = Daemon::builder()
        .args(&["--max-concurrent-starts", "1", "--start-queue", "40"])
        .start();
    let (refused, retry_ms) = d.block_on(async {
        let c = d.client().await;
        // All at once, so the starter cannot drain the queue in between:
        // 3/4 of 40 for one client are accepted, the rest refused.
        let calls = (0..80).map(|i| {
            let mut c = c.clone();
            async move {
                c.create_container(as_client(
                    "bulk",
                    request(&format!("bulk{i}"), StartPriority::Batch),
                ))
                .await
            }
        });
        let mut refused = 0;
        let mut retry_ms = None;
        for r in futures::future::join_all(calls).await {
            if let Err(st) = r {
                assert_eq!(st.code(), tonic::Code::ResourceExhausted, "{st:?}");
                assert!(st.message().contains("retry in"), "{st:?}");
                retry_ms = st
                    .metadata()
                    .get("retry-after-ms")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                refused += 1;
            }
        }
        (refused, retry_ms)
    });
    // The starter takes a few meanwhile; the rest of the burst is refused.
    assert!(refused >= 1, "none of the burst refused");
    assert!(retry_ms.is_some_and(|ms| ms >= 50), "{retry_ms:?}");

    // Another client's interactive start: in, and ahead of the burst.
    let (user_id, waiting) = d.block_on(async {
        let mut c = d.client().await;
        let id = c
            .create_container(as_client(
                "user",
                request("user", StartPriority::Interactive),
            ))
            .await
            .expect("room for another client")
            .into_inner()
            .id;
        let waiting = list_all(&mut c, Default::default())
            .await
            .expect("list")
            .iter()
            .filter(|x| x.name.starts_with("bulk") && x.state == ContainerState::Created as i32)
            .count();
        (id, waiting)
    });
    let user = d.wait_state(&user_id, &[ContainerState::Exited], Duration::from_secs(60));
    let user_started = user.started_at.expect("started").seconds as f64
        + user.started_at.unwrap().nanos as f64 / 1e9;
    // Every bulk start has ended once the queue is empty.
    quilt_tests::retry(Duration::from_secs(120), || {
        let all = d.block_on(async {
            list_all(&mut d.client().await, Default::default())
                .await
                .expect("list")
        });
        all.iter()
            .all(|x| {
                x.state != ContainerState::Created as i32
                    && x.state != ContainerState::Starting as i32
            })
            .then_some(())
    })
    .expect("the burst drains");
    let all = d.block_on(async {
        list_all(&mut d.client().await, Default::default())
            .await
            .expect("list")
    });
    let after = all
        .iter()
        .filter(|x| x.name.starts_with("bulk"))
        .filter(|x| {
            x.started_at
                .is_some_and(|t| t.seconds as f64 + t.nanos as f64 / 1e9 > user_started)
        })
        .count();
    // With one start at a time, at most the one in flight and one more
    // batch start go before it.
    assert!(
        waiting >= 10 && after + 2 >= waiting,
        "{waiting} bulk starts waited when the interactive one arrived; only {after} started after it"
    );
    d.cli(["rm", "-f", &user_id]).expect_code(0);
    let ids: Vec<String> = all
        .iter()
        .filter(|x| x.name.starts_with("bulk"))
        .map(|x| x.id.clone())
        .collect();
    let mut args = vec!["rm".to_owned(), "-f".to_owned()];
    args.extend(ids);
    d.cli(&args).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn the_cli_asks_for_a_batch_start() {
    let d = Daemon::start();
    d.cli([
        "run",
        "--rm",
        "--priority",
        "batch",
        "default",
        "echo",
        "ok",
    ])
    .expect_code(0);
    let out = d.cli(["run", "--priority", "later", "default", "true"]);
    assert_eq!(out.code, Some(125), "{out:?}");
    d.assert_no_leftovers();
}
