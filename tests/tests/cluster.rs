//! Many hosts, one API: three quiltd nodes sharing a real PostgreSQL
//! (Debian's, in a temp dir, on 127.0.0.1), each with its own data dir,
//! socket and cgroup parent, talking to each other over TLS with client
//! certificates on 127.0.0.1 (certificates made here with openssl).
//! Creates through one node land on all three, any node answers status,
//! calls on a container's host are forwarded to its node, a node killed
//! with SIGKILL has its containers declared lost within its lease, and a
//! restartable one comes back on a live node.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use quilt_testkit::postgres::Postgres;
use quilt_tests::api::{ContainerState, ExecStart, RestartPolicy};
use quilt_tests::{Daemon, Pki, req};

/// A CA and one certificate every node uses (server and client, 127.0.0.1).
fn pki() -> Pki {
    Pki::new(&[(
        "node",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
    )])
}

/// A node of the cluster: quiltd on `db` named `name`, with a lease of
/// `lease` seconds.
fn node(db: &str, pki: &Pki, name: &str, lease: u64) -> Daemon {
    let port = quilt_tests::free_port();
    let listen = format!("127.0.0.1:{port}");
    let lease = lease.to_string();
    let zone = format!("zone={}", name.trim_start_matches("node-"));
    Daemon::builder()
        .args(&[
            "--database",
            db,
            "--node-name",
            name,
            "--node-label",
            &zone,
            "--node-lease",
            &lease,
            "--listen",
            &listen,
            "--tls-cert",
            &pki.path("node.pem"),
            "--tls-key",
            &pki.path("node.key"),
            "--tls-client-ca",
            &pki.path("ca.pem"),
            "--netns-pool",
            "0",
            "--bridge-pool",
            "0",
        ])
        .start()
}

fn sleeper(name: &str) -> quilt_tests::api::CreateContainerRequest {
    let mut r = req(&["sleep", "600"]);
    r.name = name.to_owned();
    r
}

/// Polls `f` until it returns Some, for up to `limit`.
fn until<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_nodes_share_one_postgres() {
    let pg = Postgres::start().expect("the cluster tests need PostgreSQL (scripts/deps.sh)");
    let db = pg.create_database("quilt").unwrap();
    let pki = pki();
    let a = node(&db, &pki, "node-a", 3);
    let b = node(&db, &pki, "node-b", 3);
    let mut c = node(&db, &pki, "node-c", 3);

    // Every node sees the three nodes, up.
    let nodes = b.cli(["node", "ls", "--format", "json"]).json();
    let names: Vec<&str> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["node-a", "node-b", "node-c"]);
    assert!(
        nodes
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["status"] == "up")
    );

    // Six creates through node A, each acknowledged: spread two per node.
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(a.create(sleeper(&format!("s{i}"))).expect("create").id);
    }
    let mut restartable = sleeper("phoenix");
    restartable.restart = Some(RestartPolicy {
        name: "always".into(),
        max_retries: 0,
    });
    restartable.node = "node-c".into();
    let phoenix = a.create(restartable).expect("create on node-c").id;
    // A label constraint picks the node that has the label.
    let mut zoned = sleeper("zoned");
    zoned.node_labels = [("zone".to_string(), "b".to_string())].into();
    let zoned = a
        .create(zoned)
        .unwrap_or_else(|e| {
            panic!(
                "create with a node label: {e}\n{}",
                a.cli(["node", "ls", "--format", "json"]).stdout
            )
        })
        .id;
    assert_eq!(b.get(&zoned).unwrap().node, "node-b");
    let mut nowhere = sleeper("nowhere");
    nowhere.node_labels = [("zone".to_string(), "z".to_string())].into();
    assert_eq!(
        a.create(nowhere).unwrap_err().code(),
        tonic::Code::FailedPrecondition
    );
    a.cli(["rm", "-f", &zoned]).ok();
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for id in &ids {
        // Status from another node than the one that took the create.
        let ct = b.wait_state(id, &[ContainerState::Running], Duration::from_secs(60));
        *per_node.entry(ct.node.clone()).or_default() += 1;
    }
    assert_eq!(
        per_node,
        [
            ("node-a".into(), 2),
            ("node-b".into(), 2),
            ("node-c".into(), 2)
        ]
        .into(),
        "placement does not spread"
    );
    let on_c: Vec<String> = ids
        .iter()
        .filter(|id| b.get(id).unwrap().node == "node-c")
        .cloned()
        .collect();
    assert_eq!(
        b.wait_state(
            &phoenix,
            &[ContainerState::Running],
            Duration::from_secs(60)
        )
        .node,
        "node-c"
    );

    // Node A's event stream has the starts that happened on node C.
    let events = a
        .cli([
            "events",
            "--since",
            "10m",
            "--until",
            "0s",
            "--format",
            "json",
            "--filter",
            &format!("container={}", on_c[0]),
            "--filter",
            "event=running",
        ])
        .ok();
    assert!(
        events.contains(&on_c[0]),
        "no running event of node-c's container: {events}"
    );

    // Exec through node B on a container of node C: forwarded there.
    let out = b
        .exec(ExecStart {
            container_id: on_c[0].clone(),
            command: vec![
                "sh".into(),
                "-c".into(),
                "echo hello from $(hostname)".into(),
            ],
            ..Default::default()
        })
        .expect("exec forwarded to node-c");
    assert_eq!(out.exit_code, 0);
    let name_of_first = b.get(&on_c[0]).unwrap().name;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("hello from {name_of_first}")
    );
    // A detached exec started through node B on node C's container is
    // waited on and read through node A (its id is known on node C only).
    let exec_id = b
        .cli(["exec", "-d", &on_c[0], "sh", "-c", "echo detached; exit 3"])
        .ok();
    let exec_id = exec_id.trim();
    let code = a.cli(["exec-wait", exec_id]).ok();
    assert_eq!(code.trim(), "3");
    let logs = a.cli(["exec-logs", exec_id]).ok();
    assert!(logs.contains("detached"), "{logs}");

    // A host call on node C's container through node A: its processes
    // are on node C (the cgroup is under node C's parent, not A's).
    let top = a.cli(["top", &on_c[0]]).ok();
    assert!(top.contains("sleep"), "{top}");
    assert!(c.cgroup_dir("pids", &on_c[0]).exists() || c.cgroup_dir("memory", &on_c[0]).exists());

    // Node C dies: within its lease (3 s) and a sweep its running
    // containers are lost, with the reason; the restartable one runs
    // again on a live node.
    let killed = Instant::now();
    c.kill9();
    for id in &on_c {
        let ct = a.wait_state(id, &[ContainerState::Lost], Duration::from_secs(10));
        assert!(
            ct.failure_reason.contains("node-c"),
            "{}",
            ct.failure_reason
        );
    }
    let lost_after = killed.elapsed();
    eprintln!("cluster: node-c's containers lost {lost_after:?} after its SIGKILL (lease 3 s)");
    assert!(
        lost_after < Duration::from_secs(3 + 3),
        "lost after {lost_after:?}"
    );
    let back = a.wait_state(
        &phoenix,
        &[ContainerState::Running],
        Duration::from_secs(60),
    );
    assert_ne!(back.node, "node-c");
    assert_eq!(back.restart_count, 1);
    let nodes = a.cli(["node", "ls", "--format", "json"]).json();
    assert_eq!(nodes[2]["status"], "down", "{nodes}");

    // A lost container can be removed through any node: it waits in
    // `removing` for its node (nothing of it is on this host); the others
    // were not touched.
    b.cli(["rm", "-f", &on_c[0]]).ok();
    assert_eq!(
        b.get(&on_c[0]).unwrap().state,
        ContainerState::Removing as i32
    );
    for id in ids.iter().filter(|id| !on_c.contains(id)) {
        assert_eq!(
            b.get(id).unwrap().state,
            ContainerState::Running as i32,
            "{id}"
        );
    }

    // Node C comes back: it adopts what still runs there (its shims
    // outlived quiltd): the lost container is running again, and the
    // removal asked for meanwhile is carried out.
    c.restart();
    let again = a.wait_state(
        &on_c[1],
        &[ContainerState::Running],
        Duration::from_secs(30),
    );
    assert_eq!(again.node, "node-c");
    until(Duration::from_secs(30), "the removal on node-c", || {
        a.get(&on_c[0]).is_err().then_some(())
    });
    // Its copy of the container placed elsewhere meanwhile was ended: the
    // workload does not run twice.
    for controller in ["pids", "memory"] {
        assert!(
            !c.cgroup_dir(controller, &phoenix).exists(),
            "node-c still runs its copy of {phoenix}"
        );
    }
    assert!(!c.data_dir.join("containers").join(&phoenix).exists());
    drop(c);
    drop(b);
    drop(a);
}

/// PostgreSQL killed with SIGKILL while creates come in, and back 6 s
/// later: no create is acknowledged that was not committed (every
/// acknowledged one is there after the restart), a call that cannot reach
/// it within 5 s is refused as UNAVAILABLE, and the node serves again by
/// itself once the database is back.
#[test]
fn postgres_killed_during_creates() {
    let mut pg = Postgres::start().expect("the cluster tests need PostgreSQL (scripts/deps.sh)");
    let db = pg.create_database("quilt").unwrap();
    let a = Daemon::builder()
        .args(&[
            "--database",
            &db,
            "--node-name",
            "solo",
            "--node-lease",
            "3",
            "--netns-pool",
            "0",
            "--bridge-pool",
            "0",
        ])
        .start();
    let first = a.create(sleeper("before")).expect("create").id;
    a.wait_state(&first, &[ContainerState::Running], Duration::from_secs(60));

    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        pg.kill();
        std::thread::sleep(Duration::from_secs(6));
        pg.restart().expect("restart PostgreSQL");
        pg
    });
    let mut acked = Vec::new();
    let mut refused = 0;
    let end = Instant::now() + Duration::from_secs(8);
    let mut i = 0;
    while Instant::now() < end {
        let mut r = sleeper(&format!("c{i}"));
        r.no_start = true;
        i += 1;
        match a.create(r) {
            Ok(c) => acked.push(c.id),
            Err(s) => {
                assert_eq!(s.code(), tonic::Code::Unavailable, "{s:?}");
                refused += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let pg = killer.join().unwrap();
    assert!(
        refused > 0,
        "no create was refused while PostgreSQL was down"
    );
    // Back by itself: a create is acknowledged and started again.
    let after = until(
        Duration::from_secs(30),
        "creates to be served again",
        || a.create(sleeper("after")).ok(),
    );
    a.wait_state(
        &after.id,
        &[ContainerState::Running],
        Duration::from_secs(60),
    );
    for id in &acked {
        let c = a
            .get(id)
            .unwrap_or_else(|e| panic!("acknowledged create {id} is gone: {e}"));
        assert_eq!(c.state, ContainerState::Created as i32);
    }
    assert_eq!(
        a.get(&first).unwrap().state,
        ContainerState::Running as i32,
        "the container from before the crash"
    );
    drop(a);
    drop(pg);
}
