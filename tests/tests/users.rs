//! Users and privileges: `-u` (ids, names from the image's own files,
//! exec -u), `--read-only`, `--cap-add/--cap-drop`, `--ulimit`, and private
//! user namespaces (`--userns private`: id maps, idmapped image and
//! volumes, ownership on the host, one id range per container, released
//! on removal).
use quilt_tests::api::{self, ContainerState, ExecStart};
use quilt_tests::{CliOutput, Daemon, IMAGE, req};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Docker's default capability set, as /proc/PID/status shows it.
const DEFAULT_CAPS: u64 = 0xa80425fb;
/// The first host id of the test daemons' ranges (quiltd's default).
const BASE: u32 = 100_000_000;
const SIZE: u32 = 65536;

/// `quilt run --rm ARGS... default sh -c SCRIPT`.
fn run_sh(d: &Daemon, args: &[&str], script: &str) -> CliOutput {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    all.extend([IMAGE, "sh", "-c", script]);
    d.cli(&all)
}

/// A field of /proc/self/status as a number (Cap* in hex).
fn status_field(out: &str, name: &str) -> u64 {
    let v = out
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .trim();
    u64::from_str_radix(v, 16).unwrap_or_else(|e| panic!("{name}: {v:?}: {e}"))
}

/// The first line of /proc/self/uid_map (or gid_map) as numbers.
fn map_line(out: &str) -> [u64; 3] {
    let v: Vec<u64> = out
        .split_whitespace()
        .take(3)
        .map(|n| n.parse().unwrap_or_else(|e| panic!("{out:?}: {e}")))
        .collect();
    [v[0], v[1], v[2]]
}

/// Waits until the `--rm` containers are gone (removed after they exit).
#[track_caller]
fn wait_removed(d: &Daemon) {
    let gone = quilt_tests::retry(Duration::from_secs(10), || {
        d.list().is_empty().then_some(())
    });
    assert!(gone.is_some(), "still there: {:?}", d.list());
}

fn upper(d: &Daemon, id: &str) -> PathBuf {
    d.data_dir.join("containers").join(id).join("upper")
}

fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid())
}

/// The id ranges in the daemon's store: (container id, first host id, size).
fn stored_ranges(d: &Daemon) -> Vec<(String, i64, i64)> {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Connection};
    let db = d.data_dir.join("quilt.db");
    d.block_on(async {
        let mut c = SqliteConnectOptions::new()
            .filename(&db)
            .read_only(true)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT container_id, host_id, size FROM userns_ranges ORDER BY host_id",
        )
        .fetch_all(&mut c)
        .await
        .expect("read userns_ranges");
        c.close().await.expect("close");
        rows
    })
}

fn exec(d: &Daemon, id: &str, user: &str, cmd: &[&str]) -> quilt_tests::ExecResult {
    d.exec(ExecStart {
        container_id: id.to_string(),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        user: user.to_string(),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("exec {cmd:?} as {user:?}: {e}"))
}

fn stdout(r: &quilt_tests::ExecResult) -> String {
    String::from_utf8_lossy(&r.stdout).trim().to_string()
}

#[test]
fn user_by_id_and_by_name_with_its_home() {
    let d = Daemon::start();
    assert_eq!(
        run_sh(&d, &["-u", "1000:1000"], "id -u; id -g; id").ok(),
        "1000\n1000\nuid=1000 gid=1000"
    );
    // A name from the image's /etc/passwd: its ids, its home.
    assert_eq!(
        run_sh(&d, &["-u", "nobody"], "id; echo $HOME").ok(),
        "uid=65534(nobody) gid=65534(nogroup)\n/nonexistent"
    );
    // A number with no entry: group 0, HOME /; HOME given is kept.
    assert_eq!(
        run_sh(&d, &["--user", "4242"], "id -u; id -g; echo $HOME").ok(),
        "4242\n0\n/"
    );
    assert_eq!(
        run_sh(&d, &["-u", "nobody", "-e", "HOME=/work"], "echo $HOME").ok(),
        "/work"
    );
    // The default: root, HOME from its entry.
    assert_eq!(
        run_sh(&d, &[], "id; echo $HOME").ok(),
        "uid=0(root) gid=0(root)\n/root"
    );
    // A name and a group by name.
    assert_eq!(
        run_sh(&d, &["-u", "nobody:tty"], "id").ok(),
        "uid=65534(nobody) gid=5(tty)"
    );
    d.assert_no_leftovers();
}

#[test]
fn an_unknown_user_fails_the_start_with_the_reason() {
    let d = Daemon::start();
    let out = d.cli(["run", "--name", "mallory", "-u", "mallory", IMAGE, "id"]);
    out.expect_engine_error();
    assert!(
        out.stderr
            .contains("unable to find user mallory: no matching entries in passwd file"),
        "{out:?}"
    );
    let st = d.status_json("mallory");
    assert_eq!(st["state"], "failed", "{st}");
    assert_eq!(st["exit"]["exit_code"], 125, "{st}");
    assert!(
        st["failure_reason"]
            .as_str()
            .is_some_and(|r| r.contains("unable to find user mallory")),
        "{st}"
    );
    let out = d.cli(["run", "--rm", "-u", "nobody:nosuchgroup", IMAGE, "id"]);
    out.expect_engine_error();
    assert!(
        out.stderr
            .contains("unable to find group nosuchgroup: no matching entries in group file"),
        "{out:?}"
    );
    // Bad syntax is refused at create: INVALID_ARGUMENT, no row.
    for bad in ["a:b:c", "1000:", "4294967295"] {
        let err = d
            .create(api::CreateContainerRequest {
                security: Some(api::Security {
                    user: bad.into(),
                    ..Default::default()
                }),
                ..req(&["id"])
            })
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{bad}: {err:?}");
        assert!(err.message().starts_with("invalid user"), "{err:?}");
    }
    d.cli(["rm", "mallory"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn a_user_without_privileges_cannot_write_where_docker_s_cannot() {
    let d = Daemon::start();
    let out = run_sh(
        &d,
        &["-u", "1000"],
        "grep Cap /proc/self/status; \
         touch /etc/x 2>&1; echo etc=$?; touch /root/x 2>&1; echo root=$?; \
         touch /x 2>&1; echo slash=$?; touch /tmp/x; echo tmp=$?; \
         chown 1000 /bin/busybox 2>&1; echo chown=$?",
    );
    let text = out.ok();
    // Capabilities stay in the bounding set only.
    assert_eq!(status_field(&text, "CapEff"), 0, "{text}");
    assert_eq!(status_field(&text, "CapPrm"), 0, "{text}");
    assert_eq!(status_field(&text, "CapInh"), 0, "{text}");
    assert_eq!(status_field(&text, "CapBnd"), DEFAULT_CAPS, "{text}");
    for line in ["etc=1", "root=1", "slash=1", "tmp=0", "chown=1"] {
        assert!(text.lines().any(|l| l == line), "{line}: {text}");
    }
    assert!(text.contains("Permission denied"), "{text}");
    // Root keeps docker's default set (and no inheritable ones).
    let text = run_sh(&d, &[], "grep Cap /proc/self/status").ok();
    assert_eq!(status_field(&text, "CapEff"), DEFAULT_CAPS, "{text}");
    assert_eq!(status_field(&text, "CapInh"), 0, "{text}");
    d.assert_no_leftovers();
}

#[test]
fn exec_runs_as_the_user_it_names() {
    let d = Daemon::start();
    let id = d.run_detached(&["-u", "nobody", IMAGE, "sleep", "1000"]);
    d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    // The container's user by default, another one with -u.
    assert_eq!(d.cli(["exec", &id, "id", "-u"]).ok(), "65534");
    assert_eq!(
        d.cli(["exec", "-u", "1000:1000", &id, "id"]).ok(),
        "uid=1000 gid=1000"
    );
    assert_eq!(
        d.cli(["exec", "--user", "root", &id, "sh", "-c", "id; echo $HOME"])
            .ok(),
        "uid=0(root) gid=0(root)\n/root"
    );
    let r = exec(
        &d,
        &id,
        "1000",
        &["sh", "-c", "grep CapEff /proc/self/status"],
    );
    assert_eq!(status_field(&stdout(&r), "CapEff"), 0);
    let out = d.cli(["exec", "-u", "mallory", &id, "id"]);
    out.expect_code(125);
    assert!(
        out.stderr.contains("unable to find user mallory"),
        "{out:?}"
    );
    let err = d
        .exec(ExecStart {
            container_id: id.clone(),
            command: vec!["id".into()],
            user: "a:b:c".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    d.cli(["rm", "-f", &id]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn a_read_only_root_keeps_tmp_run_volumes_and_shm_writable() {
    let d = Daemon::start();
    let text = run_sh(
        &d,
        &["--read-only", "-v", "rovol:/data"],
        "for p in /x /etc/x /root/x /bin/x; do touch $p 2>&1; echo \"$p=$?\"; done; \
         for p in /tmp/x /var/tmp/x /run/x /dev/shm/x /data/x; do touch $p; echo \"$p=$?\"; done; \
         grep -E '^[^ ]+ / ' /proc/mounts",
    )
    .ok();
    for line in [
        "/x=1",
        "/etc/x=1",
        "/root/x=1",
        "/bin/x=1",
        "/tmp/x=0",
        "/var/tmp/x=0",
        "/run/x=0",
        "/dev/shm/x=0",
        "/data/x=0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}: {text}");
    }
    assert!(text.contains("Read-only file system"), "{text}");
    let root = text.lines().last().unwrap_or_default();
    assert!(root.contains(" ro,") || root.contains(" ro "), "{root}");
    // A mount the user puts on /tmp replaces the default tmpfs there.
    let mounts = run_sh(
        &d,
        &["--read-only", "--tmpfs", "/tmp:size=1m"],
        "grep -c ' /tmp ' /proc/mounts; grep ' /tmp ' /proc/mounts",
    )
    .ok();
    assert!(mounts.starts_with("1\n"), "{mounts}");
    assert!(mounts.contains("size=1024k"), "{mounts}");
    // Without --read-only, the root is writable.
    run_sh(&d, &[], "touch /x /etc/x").expect_code(0);
    wait_removed(&d);
    d.cli(["volume", "rm", "rovol"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn capabilities_are_dropped_and_added_as_docker_does() {
    let d = Daemon::start();
    let probe = "grep -E '^Cap(Eff|Bnd)' /proc/self/status; chown 1 /tmp && echo chown=ok || echo chown=refused";
    let text = run_sh(&d, &["--cap-drop", "ALL"], probe).ok();
    assert_eq!(status_field(&text, "CapEff"), 0, "{text}");
    assert_eq!(status_field(&text, "CapBnd"), 0, "{text}");
    assert!(text.contains("chown=refused"), "{text}");
    let text = run_sh(&d, &["--cap-drop", "all", "--cap-add", "cap_chown"], probe).ok();
    assert_eq!(status_field(&text, "CapEff"), 1, "{text}");
    assert!(text.contains("chown=ok"), "{text}");
    // Default + added - dropped.
    let text = run_sh(
        &d,
        &["--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN"],
        probe,
    )
    .ok();
    assert_eq!(
        status_field(&text, "CapEff"),
        (DEFAULT_CAPS | 1 << 12) & !1,
        "{text}"
    );
    assert!(text.contains("chown=refused"), "{text}");
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // ALL: everything the kernel knows that quiltd has itself (a sandbox
    // may deny it some).
    let ours = status_field(
        &std::fs::read_to_string("/proc/self/status").unwrap(),
        "CapPrm",
    );
    // (Without a user namespace: in one, its root has them all there.)
    let text = run_sh(&d, &["--userns", "host", "--cap-add", "ALL"], probe).ok();
    assert_eq!(
        status_field(&text, "CapEff"),
        ((1u64 << (last.min(40) + 1)) - 1) & ours,
        "{text}"
    );
    // An unknown name is refused at create, by name.
    let out = d.cli(["run", "--rm", "--cap-add", "NET_ADMN", IMAGE, "true"]);
    out.expect_engine_error();
    assert!(
        out.stderr.contains("unknown capability \"NET_ADMN\""),
        "{out:?}"
    );
    let err = d
        .create(api::CreateContainerRequest {
            security: Some(api::Security {
                cap_drop: vec!["SYS_NOPE".into()],
                ..Default::default()
            }),
            ..req(&["true"])
        })
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("\"SYS_NOPE\""), "{err:?}");
    d.assert_no_leftovers();
}

#[test]
fn ulimits_reach_the_workload_and_its_execs() {
    let d = Daemon::start();
    assert_eq!(
        run_sh(
            &d,
            &["--ulimit", "nofile=100:200", "--ulimit", "core=-1"],
            "ulimit -n; ulimit -Hn; ulimit -c; \
             grep -E '^Max (open files|core)' /proc/self/limits | tr -s ' ' | sed 's/ $//'",
        )
        .ok(),
        "100\n200\nunlimited\nMax core file size unlimited unlimited bytes\n\
         Max open files 100 200 files"
    );
    let id = d.run_detached(&["--ulimit", "nproc=50", IMAGE, "sleep", "1000"]);
    d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    assert_eq!(
        d.cli(["exec", &id, "sh", "-c", "ulimit -u; ulimit -Hu"])
            .ok(),
        "50\n50"
    );
    // Shown as given (-1: unlimited).
    let st = d.get(&id).unwrap();
    let ul = &st.security.expect("security").ulimits;
    assert_eq!(
        (ul[0].name.as_str(), ul[0].soft, ul[0].hard),
        ("nproc", 50, 50)
    );
    d.cli(["rm", "-f", &id]).expect_code(0);
    for (bad, msg) in [
        (
            "nofile=300:200",
            "ulimit nofile: the soft limit 300 is above the hard limit 200",
        ),
        ("files=1", "unknown ulimit \"files\""),
        (
            "nofile=-5",
            "the soft limit -5 is negative (use -1 for unlimited)",
        ),
        (
            "nofile=-1",
            "ulimit nofile: the hard limit unlimited is above",
        ),
    ] {
        let out = d.cli(["run", "--rm", "--ulimit", bad, IMAGE, "true"]);
        out.expect_engine_error();
        assert!(out.stderr.contains(msg), "{bad}: {out:?}");
    }
    d.assert_no_leftovers();
}

#[test]
fn a_private_user_namespace_maps_root_to_an_unprivileged_range() {
    let d = Daemon::start();
    let id = d.run_detached(&["--userns", "private", IMAGE, "sleep", "1000"]);
    d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    let maps = exec(
        &d,
        &id,
        "",
        &["cat", "/proc/self/uid_map", "/proc/self/gid_map"],
    );
    let lines: Vec<&str> = std::str::from_utf8(&maps.stdout).unwrap().lines().collect();
    assert_eq!(
        map_line(lines[0]),
        [0, BASE.into(), SIZE.into()],
        "{lines:?}"
    );
    assert_eq!(
        map_line(lines[1]),
        [0, BASE.into(), SIZE.into()],
        "{lines:?}"
    );
    // Root inside; the image's files (host root's) are root's inside too.
    let r = exec(
        &d,
        &id,
        "",
        &["sh", "-c", "id; stat -c '%u:%g' /etc/passwd /bin/busybox /"],
    );
    assert_eq!(stdout(&r), "uid=0(root) gid=0(root)\n0:0\n0:0\n0:0");
    // What it creates is the mapped ids' on the host (in its upper dir).
    exec(
        &d,
        &id,
        "",
        &[
            "sh",
            "-c",
            "echo r > /root-made; mkdir -p /home/u && chown 1000:1000 /home/u",
        ],
    );
    exec(&d, &id, "1000", &["touch", "/home/u/user-made"]);
    let up = upper(&d, &id);
    assert_eq!(owner(&up), (BASE, BASE));
    assert_eq!(owner(&up.join("root-made")), (BASE, BASE));
    assert_eq!(owner(&up.join("home/u/user-made")), (BASE + 1000, BASE));
    // The image is shared and unchanged: still host root's.
    assert_eq!(
        owner(&d.data_dir.join("images/default/rootfs/etc/passwd")),
        (0, 0)
    );
    // No host privileges: no device nodes, no kernel memory, even with
    // every capability; host root could.
    let probe = "mknod /tmp/null c 1 3 2>&1 && echo mknod=ok || echo mknod=refused; \
                 cat /proc/kcore >/dev/null 2>&1 && echo kcore=read || echo kcore=refused";
    let text = run_sh(&d, &["--userns", "private", "--cap-add", "ALL"], probe).ok();
    assert!(
        text.contains("mknod=refused") && text.contains("kcore=refused"),
        "{text}"
    );
    assert!(text.contains("Operation not permitted"), "{text}");
    let text = run_sh(&d, &["--userns", "host"], probe).ok();
    assert!(text.contains("mknod=ok"), "{text}");
    d.cli(["rm", "-f", &id]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn volumes_and_binds_are_idmapped_in_a_private_user_namespace() {
    let d = Daemon::start();
    let bind = d.root.join("bind");
    std::fs::create_dir(&bind).unwrap();
    std::fs::write(bind.join("from-host"), "host\n").unwrap();
    let text = run_sh(
        &d,
        &[
            "--userns",
            "private",
            "-v",
            "uvol:/data",
            "-v",
            &format!("{}:/bind", bind.display()),
            "-v",
            &format!("{}:/ro:ro", bind.display()),
        ],
        "stat -c '%u:%g' /bind/from-host; cat /bind/from-host; \
         echo c > /bind/from-container; echo v > /data/f; \
         touch /ro/x 2>&1; echo ro=$?",
    )
    .ok();
    assert!(text.starts_with("0:0\nhost\n"), "{text}");
    assert!(
        text.contains("Read-only file system") && text.ends_with("ro=1"),
        "{text}"
    );
    // Written by the container's root: host root's, as without a user
    // namespace (the mounts are idmapped, not chowned).
    assert_eq!(owner(&bind.join("from-container")), (0, 0));
    assert_eq!(owner(&d.data_dir.join("volumes/uvol/data/f")), (0, 0));
    // Another container (another range) reads and writes them as well.
    assert_eq!(
        run_sh(
            &d,
            &["--userns", "private", "-v", "uvol:/data"],
            "cat /data/f; stat -c %u /data/f"
        )
        .ok(),
        "v\n0"
    );
    wait_removed(&d);
    d.cli(["volume", "rm", "uvol"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn each_private_container_has_its_own_range_released_on_removal() {
    // Two ranges: a released one is given again once the top is reached.
    let d = Daemon::builder().args(&["--userns-ranges", "2"]).start();
    let start = |name: &str| {
        let id = d.run_detached(&[
            "--name", name, "--userns", "private", IMAGE, "sleep", "1000",
        ]);
        d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
        let r = exec(&d, &id, "", &["cat", "/proc/self/uid_map"]);
        (id, map_line(&stdout(&r))[1])
    };
    let (a, base_a) = start("a");
    let (b, base_b) = start("b");
    assert_eq!((base_a, base_b), (u64::from(BASE), u64::from(BASE + SIZE)));
    let host = d.run_detached(&["--name", "h", "--userns", "host", IMAGE, "sleep", "1000"]);
    assert_eq!(
        stored_ranges(&d),
        vec![
            (a.clone(), i64::from(BASE), i64::from(SIZE)),
            (b.clone(), i64::from(BASE + SIZE), i64::from(SIZE)),
        ]
    );
    // Removal releases a's range; the next private container gets it.
    d.cli(["rm", "-f", &a]).expect_code(0);
    assert_eq!(stored_ranges(&d).len(), 1);
    let (c, base_c) = start("c");
    assert_eq!(base_c, u64::from(BASE));
    // A restart of quiltd keeps them (and adopts the containers).
    let mut d = d;
    d.restart();
    assert_eq!(stored_ranges(&d).len(), 2);
    let r = exec(&d, &c, "", &["cat", "/proc/self/uid_map"]);
    assert_eq!(map_line(&stdout(&r))[1], u64::from(BASE));
    d.cli(["rm", "-f", &b, &c, &host]).expect_code(0);
    assert!(stored_ranges(&d).is_empty());
    d.assert_no_leftovers();
}

#[test]
fn the_daemon_default_can_be_private() {
    let d = Daemon::builder()
        .args(&[
            "--userns-default",
            "private",
            "--userns-base",
            "200000000",
            "--userns-ranges",
            "1",
        ])
        .start();
    let map = |args: &[&str]| map_line(&run_sh(&d, args, "cat /proc/self/uid_map").ok());
    assert_eq!(map(&[]), [0, 200_000_000, SIZE.into()]);
    assert_eq!(map(&["--userns", "host"]), [0, 0, u32::MAX.into()]);
    // --rm containers are removed (and their range released) after they exit.
    wait_removed(&d);
    // One range only: a second private container is refused.
    let id = d.run_detached(&[IMAGE, "sleep", "1000"]);
    let out = d.cli(["run", "--rm", IMAGE, "true"]);
    out.expect_engine_error();
    assert!(
        out.stderr.contains("user namespace id ranges are in use"),
        "{out:?}"
    );
    // Ids outside the range are refused at create.
    d.cli(["rm", "-f", &id]).expect_code(0);
    let out = d.cli(["run", "--rm", "-u", "70000", IMAGE, "true"]);
    out.expect_engine_error();
    assert!(
        out.stderr.contains("outside a private user namespace"),
        "{out:?}"
    );
    d.assert_no_leftovers();
}

#[test]
fn copies_into_a_private_container_belong_to_its_root() {
    let d = Daemon::start();
    let src = d.root.join("in.txt");
    std::fs::write(&src, "copied\n").unwrap();
    let id = d
        .cli([
            "create",
            "--no-start",
            "--name",
            "cp",
            "--userns",
            "private",
            IMAGE,
            "sh",
            "-c",
            "stat -c '%u:%g' /etc /etc/in.txt; cat /etc/in.txt",
        ])
        .ok();
    // Stopped: through a user namespace of the same mapping.
    d.cli(["cp", &src.display().to_string(), "cp:/etc/"])
        .expect_code(0);
    let up = upper(&d, &id);
    assert_eq!(owner(&up.join("etc")), (BASE, BASE));
    assert_eq!(owner(&up.join("etc/in.txt")), (BASE, BASE));
    d.cli(["start", "cp"]).expect_code(0);
    let c = d.wait_state(&id, &[ContainerState::Exited], Duration::from_secs(30));
    assert_eq!(c.exit.map(|e| e.exit_code), Some(0));
    assert_eq!(d.cli(["logs", "cp"]).ok(), "0:0\n0:0\ncopied");
    // Running: joined through its user namespace.
    let run = d.run_detached(&["--userns", "private", IMAGE, "sleep", "1000"]);
    d.wait_state(&run, &[ContainerState::Running], Duration::from_secs(30));
    d.cli(["cp", &src.display().to_string(), &format!("{run}:/root/")])
        .expect_code(0);
    let r = exec(&d, &run, "", &["stat", "-c", "%u:%g", "/root/in.txt"]);
    assert_eq!(stdout(&r), "0:0");
    assert_eq!(
        owner(&upper(&d, &run).join("root/in.txt")),
        (BASE + SIZE, BASE + SIZE)
    );
    d.cli(["rm", "-f", "cp", &run]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn a_changed_user_does_not_outlive_its_supervisor() {
    // Switching ids clears the parent-death signal: the shim sets it again.
    let mut d = Daemon::start();
    let host = d.run_detached(&["-u", "1000", IMAGE, "sleep", "3331"]);
    let private = d.run_detached(&["--userns", "private", "-u", "1000", IMAGE, "sleep", "3332"]);
    for id in [&host, &private] {
        d.wait_state(id, &[ContainerState::Running], Duration::from_secs(30));
    }
    let find = |cmd: &[&str]| {
        quilt_tests::retry(Duration::from_secs(10), || {
            quilt_tests::host::all_pids()
                .into_iter()
                .find(|p| quilt_tests::host::proc_cmdline(*p) == cmd)
        })
        .unwrap_or_else(|| panic!("{cmd:?} does not run"))
    };
    d.cli(["exec", "-d", "-u", "1000", &host, "sleep", "4441"])
        .ok();
    d.cli(["exec", "-d", &private, "sleep", "4442"]).ok();
    let execs = [find(&["sleep", "4441"]), find(&["sleep", "4442"])];
    d.kill9();
    // Detached execs outlive the daemon but not the helper that supervises them.
    for pid in execs {
        assert!(
            !quilt_tests::host::wait_pid_gone(pid, Duration::from_millis(300)),
            "detached exec {pid} died with the daemon"
        );
        let helper = quilt_tests::host::parent_pid(pid).expect("the exec helper");
        quilt_tests::host::kill_all([helper]);
        assert!(
            quilt_tests::host::wait_pid_gone(pid, Duration::from_secs(10)),
            "exec'd process {pid} survived its helper"
        );
    }
    // The containers' PID 1 go with their shims.
    for cmd in [["sleep", "3331"], ["sleep", "3332"]] {
        let pid = find(&cmd);
        let shim = quilt_tests::host::parent_pid(pid).expect("the shim");
        quilt_tests::host::kill_all([shim]);
        assert!(
            quilt_tests::host::wait_pid_gone(pid, Duration::from_secs(10)),
            "{cmd:?} ({pid}) survived its shim"
        );
    }
    d.restart();
    d.cli(["rm", "-f", &host, &private]).expect_code(0);
    d.assert_no_leftovers();
}
