//! Bad requests get clear errors and leave nothing behind; commands that
//! cannot run get 126/127.

use std::time::Duration;

use quilt_tests::api::{
    ContainerState, CreateContainerRequest, ExecStart, GetContainerRequest, GetLogsRequest,
    KillContainerRequest, RemoveContainerRequest, Resources, StartContainerRequest,
    StopContainerRequest, WaitContainerRequest, get_logs_response::Item,
};
use quilt_tests::{Daemon, RPC_TIMEOUT, limited, req, within};
use tonic::Code;

#[test]
fn empty_command_is_invalid() {
    let d = Daemon::start();
    let err = d.create(req(&[])).expect_err("empty command");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(!err.message().is_empty());
    d.cli(["run", "--rm", "default"]).expect_engine_error();
    d.cli(["create", "default"]).expect_engine_error();
    d.assert_no_leftovers();
}

#[test]
fn missing_image_is_refused() {
    let d = Daemon::start();
    for image in [
        "/nonexistent/rootfs.tar",
        "/nonexistent-dir",
        "no-such-image",
    ] {
        let err = d
            .create(CreateContainerRequest {
                image: image.to_string(),
                ..req(&["true"])
            })
            .expect_err("missing image");
        assert!(
            matches!(err.code(), Code::NotFound | Code::InvalidArgument),
            "image {image}: {err:?}"
        );
        assert!(!err.message().is_empty());
        let out = d.cli(["run", "--rm", image, "true"]);
        out.expect_engine_error();
    }
    let err = d
        .create(CreateContainerRequest {
            image: String::new(),
            ..req(&["true"])
        })
        .expect_err("empty image");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    d.assert_no_leftovers();
}

#[test]
fn negative_limits_are_invalid() {
    let d = Daemon::start();
    // -1 asks for "no limit" (docker's --pids-limit -1); anything lower is invalid.
    for (m, c, p) in [(-2, 0.0, 0), (0, -0.5, 0), (0, 0.0, -2)] {
        let err = d
            .create(limited(&["true"], m, c, p))
            .expect_err("negative limit");
        assert_eq!(err.code(), Code::InvalidArgument, "{m} {c} {p}: {err:?}");
    }
    let err = d
        .create(CreateContainerRequest {
            resources: Some(Resources {
                cpus: f64::NAN,
                ..Default::default()
            }),
            ..req(&["true"])
        })
        .expect_err("NaN cpus");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    d.cli(["run", "--rm", "--memory=-2", "default", "true"])
        .expect_engine_error();
    d.cli(["run", "--rm", "--cpus=-0.5", "default", "true"])
        .expect_engine_error();
    d.cli(["run", "--rm", "--pids=-2", "default", "true"])
        .expect_engine_error();
    d.assert_no_leftovers();
}

#[test]
fn unknown_ids_are_not_found() {
    let d = Daemon::start();
    let id = "nosuchcontainer".to_string();
    let codes: Vec<(&str, Code)> = d.block_on(async {
        let mut c = d.client().await;
        let mut v = Vec::new();
        let t = RPC_TIMEOUT;
        let code = |r: Result<(), tonic::Status>| r.err().map(|e| e.code()).unwrap_or(Code::Ok);
        v.push((
            "Get",
            code(
                within(
                    t,
                    "Get",
                    c.get_container(GetContainerRequest { id: id.clone() }),
                )
                .await
                .map(drop),
            ),
        ));
        v.push((
            "Start",
            code(
                within(
                    t,
                    "Start",
                    c.start_container(StartContainerRequest {
                        id: id.clone(),
                        ..Default::default()
                    }),
                )
                .await
                .map(drop),
            ),
        ));
        v.push((
            "Stop",
            code(
                within(
                    t,
                    "Stop",
                    c.stop_container(StopContainerRequest {
                        id: id.clone(),
                        timeout_seconds: Some(1),
                    }),
                )
                .await
                .map(drop),
            ),
        ));
        v.push((
            "Kill",
            code(
                within(
                    t,
                    "Kill",
                    c.kill_container(KillContainerRequest {
                        id: id.clone(),
                        signal: String::new(),
                    }),
                )
                .await
                .map(drop),
            ),
        ));
        v.push((
            "Remove",
            code(
                within(
                    t,
                    "Remove",
                    c.remove_container(RemoveContainerRequest {
                        id: id.clone(),
                        force: true,
                    }),
                )
                .await
                .map(drop),
            ),
        ));
        v.push((
            "Wait",
            code(
                within(
                    t,
                    "Wait",
                    c.wait_container(WaitContainerRequest { id: id.clone() }),
                )
                .await
                .map(drop),
            ),
        ));
        v.push((
            "Exec",
            code(
                within(
                    t,
                    "Exec",
                    quilt_tests::exec_collect(
                        &mut c,
                        ExecStart {
                            container_id: id.clone(),
                            command: vec!["true".into()],
                            ..Default::default()
                        },
                    ),
                )
                .await
                .map(drop),
            ),
        ));
        v.push((
            "Logs",
            // The error comes with the call or with the stream's first message.
            code(
                async {
                    let req = GetLogsRequest {
                        id: id.clone(),
                        ..Default::default()
                    };
                    let mut s = within(t, "Logs", c.get_logs(req)).await?.into_inner();
                    within(t, "Logs message", s.message()).await.map(drop)
                }
                .await,
            ),
        ));
        v
    });
    for (what, code) in &codes {
        assert_eq!(*code, Code::NotFound, "{what} of an unknown id");
    }
    for args in [
        vec!["status", "nosuch"],
        vec!["inspect", "nosuch"],
        vec!["start", "nosuch"],
        vec!["stop", "nosuch"],
        vec!["kill", "nosuch"],
        vec!["rm", "nosuch"],
        vec!["rm", "-f", "nosuch"],
        vec!["wait", "nosuch"],
        vec!["logs", "nosuch"],
        vec!["exec", "nosuch", "--", "true"],
    ] {
        let out = d.cli(&args);
        out.expect_engine_error();
    }
    d.assert_no_leftovers();
}

#[test]
fn unknown_signal_is_invalid() {
    let d = Daemon::start();
    let id = d.run_detached(&["default", "sleep", "1000"]);
    d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    d.cli(["kill", "-s", "NOSUCHSIG", &id])
        .expect_engine_error();
    let err = d
        .block_on(async {
            let mut c = d.client().await;
            within(
                RPC_TIMEOUT,
                "KillContainer",
                c.kill_container(KillContainerRequest {
                    id: id.clone(),
                    signal: "NOSUCHSIG".into(),
                }),
            )
            .await
        })
        .expect_err("unknown signal");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(d.get(&id).unwrap().state(), ContainerState::Running);
    d.cli(["rm", "-f", &id]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn command_not_found_is_127_and_a_directory_is_126() {
    let d = Daemon::start();
    let out = d.cli(["run", "--rm", "default", "no-such-command"]);
    out.expect_code(127);
    assert!(
        !out.stderr.trim().is_empty(),
        "a missing command needs a message: {out:?}"
    );
    let out = d.cli(["run", "--rm", "default", "/no/such/path"]);
    out.expect_code(127);
    let out = d.cli(["run", "--rm", "default", "/etc"]);
    out.expect_code(126);
    assert!(!out.stderr.trim().is_empty(), "{out:?}");

    // Without --rm the failure is recorded.
    let out = d.cli(["run", "--name", "nf", "default", "no-such-command"]);
    out.expect_code(127);
    let st = d.status_json("nf");
    assert_eq!(st["state"], "failed", "{st}");
    assert!(
        st["failure_reason"].as_str().is_some_and(|s| !s.is_empty()),
        "{st}"
    );
    d.cli(["rm", "nf"]).expect_code(0);

    // Through the API: WaitContainer and the end of a followed log both
    // report the failed start as FAILED with its code and reason.
    let id = d.create(req(&["no-such-command"])).expect("create").id;
    let (wait, last) = d.block_on(async {
        let mut c = d.client().await;
        let wait = within(
            RPC_TIMEOUT,
            "WaitContainer",
            c.wait_container(WaitContainerRequest { id: id.clone() }),
        )
        .await
        .expect("WaitContainer")
        .into_inner()
        .exit
        .expect("WaitContainer without exit status");
        let mut s = quilt_tests::open_logs(&mut c, &id, true, None).await;
        let mut last = None;
        while let Ok(Ok(Some(m))) = tokio::time::timeout(RPC_TIMEOUT, s.message()).await {
            last = m.item;
        }
        (wait, last)
    });
    assert_eq!(wait.state(), ContainerState::Failed, "{wait:?}");
    assert_eq!(wait.exit_code, 127, "{wait:?}");
    assert!(!wait.failure_reason.is_empty(), "{wait:?}");
    match last {
        Some(Item::Exit(e)) => {
            assert_eq!(
                e.state(),
                ContainerState::Failed,
                "follow's exit item: {e:?}"
            );
            assert_eq!(e.exit_code, 127, "{e:?}");
        }
        other => panic!("a followed log must end with the exit status, got {other:?}"),
    }
    d.cli(["rm", &id]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn unreachable_daemon_is_an_engine_error() {
    let d = Daemon::start();
    let bogus = d.root.join("nobody-here.sock");
    let out = quilt_tests::cli::run_program(
        &quilt_tests::bin_dir().join("quilt"),
        &["--socket".into(), bogus.into(), "ps".into()],
        &[],
        Duration::from_secs(30),
    );
    out.expect_engine_error();
}
