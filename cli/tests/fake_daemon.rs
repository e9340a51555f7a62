//! Runs the `quilt` binary against an in-process fake quiltd on a Unix
//! socket, checking what the CLI sends, prints and exits with.

use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost_types::Timestamp;
use quilt_proto::v1::container_service_server::{ContainerService, ContainerServiceServer};
use quilt_proto::v1::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tonic::{Request, Response, Status};

const ID: &str = "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc";

type LogTx = mpsc::Sender<Result<GetLogsResponse, Status>>;

#[derive(Default)]
struct State {
    /// RPC names in call order.
    calls: Vec<&'static str>,
    creates: Vec<CreateContainerRequest>,
    stops: Vec<StopContainerRequest>,
    kills: Vec<KillContainerRequest>,
    lists: Vec<ListContainersRequest>,
    execs: Vec<ExecRequest>,
    logs: Vec<GetLogsRequest>,
    /// The follower of the attached run, once registered.
    follower: Option<LogTx>,
}

#[derive(Clone, Default)]
struct Fake {
    state: Arc<Mutex<State>>,
}

impl Fake {
    fn record(&self, call: &'static str) {
        self.state.lock().unwrap().calls.push(call);
    }
}

fn entry(stream: LogStream, data: &[u8], partial: bool) -> Result<GetLogsResponse, Status> {
    Ok(GetLogsResponse {
        item: Some(get_logs_response::Item::Entry(LogEntry {
            timestamp: Some(Timestamp {
                seconds: 1_714_564_800,
                nanos: 0,
            }),
            stream: stream as i32,
            data: data.to_vec(),
            partial,
        })),
    })
}

fn exit_item(exit: ExitStatus) -> Result<GetLogsResponse, Status> {
    Ok(GetLogsResponse {
        item: Some(get_logs_response::Item::Exit(exit)),
    })
}

fn exited(code: i32, signal: i32) -> ExitStatus {
    ExitStatus {
        exit_code: code,
        signal,
        state: ContainerState::Exited as i32,
        ..Default::default()
    }
}

fn check_id(id: &str) -> Result<(), Status> {
    if id == "missing" {
        Err(Status::not_found(format!("no such container: {id}")))
    } else {
        Ok(())
    }
}

fn sample(state: ContainerState) -> Container {
    Container {
        id: ID.into(),
        name: "web".into(),
        image: "default".into(),
        command: vec!["sh".into(), "-c".into(), "exit 7".into()],
        env: vec!["A=1".into()],
        working_dir: "/".into(),
        hostname: "web".into(),
        resources: Some(Resources {
            memory_mb: 64,
            cpus: 0.5,
            pids_limit: 0,
        }),
        network: NetworkMode::None as i32,
        labels: [("tier".to_owned(), "db".to_owned())].into_iter().collect(),
        state: state as i32,
        created_at: Some(Timestamp {
            seconds: 1_714_564_800,
            nanos: 0,
        }),
        exit: (state == ContainerState::Exited).then(|| exited(7, 0)),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl ContainerService for Fake {
    async fn create_container(
        &self,
        request: Request<CreateContainerRequest>,
    ) -> Result<Response<CreateContainerResponse>, Status> {
        self.record("create");
        let req = request.into_inner();
        let negative = req
            .resources
            .is_some_and(|r| r.memory_mb < 0 || r.cpus < 0.0 || r.pids_limit < 0);
        self.state.lock().unwrap().creates.push(req);
        if negative {
            return Err(Status::invalid_argument(
                "resource limits must not be negative",
            ));
        }
        Ok(Response::new(CreateContainerResponse {
            id: ID.into(),
            name: "web".into(),
        }))
    }

    async fn start_container(
        &self,
        request: Request<StartContainerRequest>,
    ) -> Result<Response<StartContainerResponse>, Status> {
        self.record("start");
        check_id(&request.get_ref().id)?;
        let (follower, command) = {
            let st = self.state.lock().unwrap();
            let command = st
                .creates
                .last()
                .map(|c| c.command.clone())
                .unwrap_or_default();
            (st.follower.clone(), command)
        };
        if let Some(tx) = follower {
            let state = self.state.clone();
            tokio::spawn(async move {
                let words: Vec<&str> = command.iter().map(String::as_str).collect();
                match words.as_slice() {
                    ["sh", "-c", "exit 7"] => {
                        let _ = tx.send(entry(LogStream::Stdout, b"hello\n", false)).await;
                        let _ = tx.send(entry(LogStream::Stderr, b"oops\n", false)).await;
                        let _ = tx
                            .send(entry(LogStream::Stdout, &[0, 255, 10], false))
                            .await;
                        let _ = tx.send(exit_item(exited(7, 0))).await;
                    }
                    ["nope"] => {
                        let _ = tx
                            .send(exit_item(ExitStatus {
                                exit_code: 127,
                                state: ContainerState::Failed as i32,
                                failure_reason: "executable file not found: nope".into(),
                                ..Default::default()
                            }))
                            .await;
                    }
                    // Ends without an exit item: the CLI has to WaitContainer.
                    ["noexit"] => {}
                    // Keeps running until StopContainer.
                    _ => return,
                }
                state.lock().unwrap().follower = None;
            });
        }
        Ok(Response::new(StartContainerResponse {
            container: Some(sample(ContainerState::Running)),
        }))
    }

    async fn get_container(
        &self,
        request: Request<GetContainerRequest>,
    ) -> Result<Response<GetContainerResponse>, Status> {
        self.record("get");
        check_id(&request.get_ref().id)?;
        Ok(Response::new(GetContainerResponse {
            container: Some(sample(ContainerState::Exited)),
        }))
    }

    async fn list_containers(
        &self,
        request: Request<ListContainersRequest>,
    ) -> Result<Response<ListContainersResponse>, Status> {
        self.record("list");
        self.state.lock().unwrap().lists.push(request.into_inner());
        let mut other = sample(ContainerState::Running);
        other.id = "ffff0000111122223333".into();
        other.name = "older".into();
        other.labels.clear();
        other.created_at = Some(Timestamp {
            seconds: 1_000,
            nanos: 0,
        });
        Ok(Response::new(ListContainersResponse {
            containers: vec![other, sample(ContainerState::Exited)],
        }))
    }

    async fn stop_container(
        &self,
        request: Request<StopContainerRequest>,
    ) -> Result<Response<StopContainerResponse>, Status> {
        self.record("stop");
        let req = request.into_inner();
        check_id(&req.id)?;
        let follower = {
            let mut st = self.state.lock().unwrap();
            st.stops.push(req);
            st.follower.take()
        };
        if let Some(tx) = follower {
            let _ = tx.send(exit_item(exited(143, 15))).await;
        }
        Ok(Response::new(StopContainerResponse {
            container: Some(sample(ContainerState::Exited)),
        }))
    }

    async fn kill_container(
        &self,
        request: Request<KillContainerRequest>,
    ) -> Result<Response<KillContainerResponse>, Status> {
        self.record("kill");
        let req = request.into_inner();
        check_id(&req.id)?;
        self.state.lock().unwrap().kills.push(req);
        Ok(Response::new(KillContainerResponse {}))
    }

    async fn remove_container(
        &self,
        request: Request<RemoveContainerRequest>,
    ) -> Result<Response<RemoveContainerResponse>, Status> {
        self.record("remove");
        let req = request.into_inner();
        check_id(&req.id)?;
        Ok(Response::new(RemoveContainerResponse { id: ID.into() }))
    }

    async fn wait_container(
        &self,
        request: Request<WaitContainerRequest>,
    ) -> Result<Response<WaitContainerResponse>, Status> {
        self.record("wait");
        check_id(&request.get_ref().id)?;
        Ok(Response::new(WaitContainerResponse {
            id: ID.into(),
            exit: Some(exited(3, 0)),
        }))
    }

    type GetLogsStream = ReceiverStream<Result<GetLogsResponse, Status>>;

    async fn get_logs(
        &self,
        request: Request<GetLogsRequest>,
    ) -> Result<Response<Self::GetLogsStream>, Status> {
        self.record("logs");
        let req = request.into_inner();
        check_id(&req.id)?;
        let (tx, rx) = mpsc::channel(16);
        let follow = req.follow;
        self.state.lock().unwrap().logs.push(req);
        if follow {
            self.state.lock().unwrap().follower = Some(tx);
        } else {
            tx.send(entry(LogStream::Stdout, b"par", true))
                .await
                .unwrap();
            tx.send(entry(LogStream::Stdout, b"tial\n", false))
                .await
                .unwrap();
            tx.send(entry(LogStream::Stderr, b"err\n", false))
                .await
                .unwrap();
        }
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn exec(&self, request: Request<ExecRequest>) -> Result<Response<ExecResponse>, Status> {
        self.record("exec");
        let req = request.into_inner();
        check_id(&req.id)?;
        self.state.lock().unwrap().execs.push(req);
        Ok(Response::new(ExecResponse {
            exit_code: 42,
            stdout: b"out\n".to_vec(),
            stderr: b"err\n".to_vec(),
        }))
    }

    type WatchEventsStream = ReceiverStream<Result<Event, Status>>;

    async fn watch_events(
        &self,
        _request: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        self.record("events");
        let (tx, rx) = mpsc::channel(4);
        for (state, action) in [
            (ContainerState::Running, "running"),
            (ContainerState::Exited, "exited"),
        ] {
            tx.send(Ok(Event {
                container_id: ID.into(),
                name: "web".into(),
                state: state as i32,
                time: Some(Timestamp {
                    seconds: 0,
                    nanos: 0,
                }),
                exit: (state == ContainerState::Exited).then(|| exited(7, 0)),
                action: action.into(),
            }))
            .await
            .unwrap();
        }
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

struct Daemon {
    fake: Fake,
    _dir: tempfile::TempDir,
    socket: std::path::PathBuf,
}

async fn daemon() -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("quilt.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let fake = Fake::default();
    let service = ContainerServiceServer::new(fake.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(UnixListenerStream::new(listener))
            .await
            .unwrap();
    });
    Daemon {
        fake,
        _dir: dir,
        socket,
    }
}

impl Daemon {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_quilt"));
        cmd.env("QUILT_SOCKET", &self.socket).args(args);
        cmd
    }

    async fn quilt(&self, args: &[&str]) -> Output {
        let run = self.command(args).output();
        tokio::time::timeout(Duration::from_secs(20), run)
            .await
            .expect("quilt timed out")
            .unwrap()
    }

    fn calls(&self) -> Vec<&'static str> {
        self.fake.state.lock().unwrap().calls.clone()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn attached_run_relays_output_and_exit_code() {
    let d = daemon().await;
    let out = d
        .quilt(&["run", "--rm", "default", "sh", "-c", "exit 7"])
        .await;
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert_eq!(out.stdout, b"hello\n\x00\xff\n");
    assert_eq!(out.stderr, b"oops\n");
    // The follower is registered before the container starts.
    assert_eq!(d.calls(), ["create", "logs", "start"]);
    let st = d.fake.state.lock().unwrap();
    let create = &st.creates[0];
    assert!(create.no_start && create.auto_remove);
    assert_eq!(create.command, ["sh", "-c", "exit 7"]);
    assert!(st.logs[0].follow);
}

#[tokio::test(flavor = "multi_thread")]
async fn attached_run_of_a_missing_program_exits_127() {
    let d = daemon().await;
    let out = d.quilt(&["run", "default", "nope"]).await;
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(
        text(&out.stderr),
        "quilt: executable file not found: nope\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stream_without_exit_falls_back_to_wait() {
    let d = daemon().await;
    let out = d.quilt(&["run", "default", "noexit"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(d.calls(), ["create", "logs", "start", "wait"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_the_container() {
    let d = daemon().await;
    let child = d
        .command(&["run", "default", "sleep", "inf"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    for _ in 0..200 {
        if d.calls().contains(&"start") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(d.calls().contains(&"start"));
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    let st = d.fake.state.lock().unwrap();
    assert_eq!(st.stops.len(), 1);
    assert_eq!(st.stops[0].timeout_seconds, Some(10));
    assert_eq!(st.stops[0].id, ID);
}

#[tokio::test(flavor = "multi_thread")]
async fn detached_run_and_create_print_the_id() {
    let d = daemon().await;
    let out = d
        .quilt(&["run", "-d", "--name", "web", "default", "sleep", "1"])
        .await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), format!("{ID}\n"));

    let out = d
        .quilt(&["create", "-e", "A=b=c", "default", "--", "ls", "-la"])
        .await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), format!("{ID}\n"));

    let out = d.quilt(&["create", "--no-start", "default", "true"]).await;
    assert_eq!(out.status.code(), Some(0));

    // run -d creates the container stopped and starts it synchronously, so
    // start errors (command not found) reach the user as with docker.
    assert_eq!(d.calls(), ["create", "start", "create", "create"]);
    let st = d.fake.state.lock().unwrap();
    assert!(st.creates[0].no_start);
    assert_eq!(st.creates[0].name, "web");
    assert_eq!(st.creates[1].command, ["ls", "-la"]);
    assert_eq!(st.creates[1].env, ["A=b=c"]);
    assert!(!st.creates[1].no_start);
    assert!(st.creates[2].no_start);
}

#[tokio::test(flavor = "multi_thread")]
async fn negative_limits_reach_the_server() {
    let d = daemon().await;
    let out = d
        .quilt(&["create", "--memory", "-1", "default", "true"])
        .await;
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        text(&out.stderr),
        "quilt: resource limits must not be negative\n"
    );
    assert_eq!(
        d.fake.state.lock().unwrap().creates[0].resources,
        Some(Resources {
            memory_mb: -1,
            cpus: 0.0,
            pids_limit: 0
        })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn not_found_is_reported_with_125() {
    let d = daemon().await;
    let out = d.quilt(&["status", "missing"]).await;
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(text(&out.stderr), "quilt: no such container: missing\n");
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_inspect_print_json() {
    let d = daemon().await;
    let out = d.quilt(&["status", "web"]).await;
    assert_eq!(out.status.code(), Some(0));
    let line = text(&out.stdout);
    assert_eq!(line.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["id"], ID);
    assert_eq!(v["state"], "exited");
    assert_eq!(v["exit"]["exit_code"], 7);
    assert_eq!(v["network"], "none");
    assert_eq!(v["created_at"], "2024-05-01T12:00:00Z");

    let out = d.quilt(&["inspect", "web"]).await;
    assert_eq!(out.status.code(), Some(0));
    let pretty = text(&out.stdout);
    assert!(pretty.lines().count() > 10);
    let w: serde_json::Value = serde_json::from_str(&pretty).unwrap();
    assert_eq!(v, w);
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_relays_output_and_exit_code() {
    let d = daemon().await;
    let out = d
        .quilt(&[
            "exec",
            "-e",
            "X=1",
            "-w",
            "/tmp",
            "web",
            "sh",
            "-c",
            "echo 'a  b'",
        ])
        .await;
    assert_eq!(out.status.code(), Some(42));
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    let st = d.fake.state.lock().unwrap();
    assert_eq!(st.execs[0].command, ["sh", "-c", "echo 'a  b'"]);
    assert_eq!(st.execs[0].env, ["X=1"]);
    assert_eq!(st.execs[0].working_dir, "/tmp");
}

#[tokio::test(flavor = "multi_thread")]
async fn ps_formats() {
    let d = daemon().await;
    let out = d.quilt(&["ps"]).await;
    assert_eq!(out.status.code(), Some(0));
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("ID "));
    // Newest first, short ids.
    assert!(lines[1].starts_with("c0ffee001122 "), "{table}");
    assert!(lines[1].contains("Exited (7)"), "{table}");

    let out = d.quilt(&["ps", "-a", "-q"]).await;
    assert_eq!(text(&out.stdout), "c0ffee001122\nffff00001111\n");

    let out = d
        .quilt(&["ps", "-a", "--format", "json", "--filter", "label=tier"])
        .await;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["name"], "web");

    let out = d.quilt(&["ps", "--filter", "state=sleeping"]).await;
    assert_eq!(out.status.code(), Some(125));

    let st = d.fake.state.lock().unwrap();
    assert_eq!(
        st.lists[0].states,
        [
            ContainerState::Created as i32,
            ContainerState::Starting as i32,
            ContainerState::Running as i32
        ]
    );
    assert!(st.lists[1].states.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_commands_report_each_id() {
    let d = daemon().await;
    let out = d.quilt(&["rm", "-f", "web", "missing", "other"]).await;
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(text(&out.stdout), "web\nother\n");
    assert_eq!(text(&out.stderr), "quilt: no such container: missing\n");

    let out = d.quilt(&["stop", "-t", "2", "web"]).await;
    assert_eq!(out.status.code(), Some(0));
    let out = d.quilt(&["kill", "web"]).await;
    assert_eq!(out.status.code(), Some(0));
    let out = d.quilt(&["kill", "-s", "HUP", "web"]).await;
    assert_eq!(out.status.code(), Some(0));
    let out = d.quilt(&["wait", "web"]).await;
    assert_eq!(text(&out.stdout), "3\n");
    assert_eq!(out.status.code(), Some(0));
    let out = d.quilt(&["start", "web"]).await;
    assert_eq!(out.status.code(), Some(0));

    let st = d.fake.state.lock().unwrap();
    assert_eq!(st.stops[0].timeout_seconds, Some(2));
    assert_eq!(st.kills[0].signal, "KILL");
    assert_eq!(st.kills[1].signal, "HUP");
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_and_events() {
    let d = daemon().await;
    let out = d.quilt(&["logs", "--tail", "5", "-t", "web"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "2024-05-01T12:00:00.000000000Z partial\n"
    );
    assert_eq!(text(&out.stderr), "2024-05-01T12:00:00.000000000Z err\n");
    assert_eq!(d.fake.state.lock().unwrap().logs[0].tail, Some(5));

    let out = d.quilt(&["events"]).await;
    assert_eq!(out.status.code(), Some(0));
    let events = text(&out.stdout);
    let lines: Vec<&str> = events.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[1].contains(" exited ") && lines[1].contains("exit_code=7"));
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("none.sock");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_quilt"))
        .arg("--socket")
        .arg(&socket)
        .arg("ps")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        text(&out.stderr),
        format!(
            "quilt: cannot connect to quiltd at {}: No such file or directory (os error 2) \
             (is quiltd running?)\n",
            socket.display()
        )
    );
}

/// Wall time of `quilt status` and `quilt create` against the fake daemon.
/// Run with `cargo test -p quilt-cli --release -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "timing report, not a check"]
async fn startup_latency() {
    let d = daemon().await;
    for args in [&["status", "web"][..], &["create", "default", "true"][..]] {
        let runs: u32 = 50;
        let begin = std::time::Instant::now();
        for _ in 0..runs {
            let out = d.quilt(args).await;
            assert_eq!(out.status.code(), Some(0));
        }
        println!(
            "quilt {}: {:?} per call",
            args.join(" "),
            begin.elapsed() / runs
        );
    }
}
