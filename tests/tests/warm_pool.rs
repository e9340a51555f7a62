//! Warm pools (`quiltd --warm-pool`, `quilt pool`): a run of the pool's
//! shape adopts a prepared container and gets its own command,
//! environment, working directory, user, hostname and limits; a run of
//! another shape never inherits the pool's; the pool refills; a created
//! container's claim goes with its removal or a copy into it; pooled
//! containers go with quiltd, even when it is killed.

use std::time::Duration;

use quilt_tests::api::StartContainerRequest;
use quilt_tests::host::{self, CgroupVersion, cgroup_version, read_trimmed};
use quilt_tests::{Daemon, retry};

/// (size, ready, hits, misses, last error) of the pool of `image`.
fn pool(d: &Daemon, image: &str) -> Option<(u64, u64, u64, u64, String)> {
    let out = d.cli(["pool", "ls", "--format", "json"]).ok();
    let pools: serde_json::Value = serde_json::from_str(&out).expect("pool ls JSON");
    pools
        .as_array()?
        .iter()
        .find(|p| p["image"] == image)
        .map(|p| {
            (
                p["size"].as_u64().unwrap_or(0),
                p["ready"].as_u64().unwrap_or(0),
                p["hits"].as_u64().unwrap_or(0),
                p["misses"].as_u64().unwrap_or(0),
                p["last_error"].as_str().unwrap_or("").to_string(),
            )
        })
}

#[track_caller]
fn wait_full(d: &Daemon, image: &str) -> (u64, u64, u64, u64, String) {
    retry(Duration::from_secs(30), || {
        pool(d, image).filter(|p| p.0 > 0 && p.1 == p.0)
    })
    .unwrap_or_else(|| {
        panic!(
            "the pool did not fill: {:?}\n{}",
            pool(d, image),
            d.log_tail(30)
        )
    })
}

/// A daemon with a pool of two default containers, full.
fn with_full_pool() -> Daemon {
    let d = Daemon::builder()
        .args(&["--warm-pool", "default=2"])
        .start();
    wait_full(&d, "default");
    d
}

fn hits(d: &Daemon) -> u64 {
    pool(d, "default").map_or(0, |p| p.2)
}

#[test]
fn a_run_of_the_pools_shape_adopts_a_prepared_container() {
    let d = with_full_pool();
    let pooled = host::shims_of(&d.root, d.pid());
    // Two shims, and their waiting first processes.
    assert_eq!(pooled.len(), 4, "{pooled:?}");

    // The creating call's command, env, workdir, user, hostname and limit.
    let out = d
        .cli([
            "run",
            "--rm",
            "-e",
            "WHO=adopter",
            "-w",
            "/work/dir",
            "-u",
            "1000:1000",
            "--hostname",
            "adopted",
            "--memory",
            "64m",
            "default",
            "sh",
            "-c",
            "echo $WHO $(pwd) $(id -u):$(id -g) $(hostname) $(cat /etc/hostname); grep -c adopted /etc/hosts",
        ])
        .ok();
    let mut lines = out.lines();
    let first = lines.next().unwrap_or("");
    assert_eq!(
        first, "adopter /work/dir 1000:1000 adopted adopted",
        "{out}"
    );
    // Its own /etc/hosts (written for its names at adoption) names it,
    // and it was adopted, not started cold after all.
    assert_eq!(lines.next(), Some("1"), "{out}");
    let log = d.log_tail(200);
    assert!(!log.contains("not adopted"), "{log}");
    assert_eq!(hits(&d), 1);

    // Detached: exec, its cgroup and limit, stop, and the refill.
    let id = d.run_detached(&["--memory", "32m", "default", "sleep", "60"]);
    assert_eq!(hits(&d), 2);
    assert_eq!(d.cli(["exec", &id, "echo", "in"]).ok(), "in");
    let limit = match cgroup_version() {
        CgroupVersion::V1 => {
            read_trimmed(&d.cgroup_dir("memory", &id).join("memory.limit_in_bytes"))
        }
        CgroupVersion::V2 => read_trimmed(&d.cgroup_dir("", &id).join("memory.max")),
    };
    assert_eq!(limit.as_deref(), Some("33554432"));
    // quiltd's default pids limit, which the pool prepared it with.
    let pids = match cgroup_version() {
        CgroupVersion::V1 => read_trimmed(&d.cgroup_dir("pids", &id).join("pids.max")),
        CgroupVersion::V2 => read_trimmed(&d.cgroup_dir("", &id).join("pids.max")),
    };
    assert_eq!(pids.as_deref(), Some("4096"));
    // Its process is in that cgroup (on v1 the pooled one was prepared in
    // the shared memory cgroup and moved there on adoption).
    let memcg = match cgroup_version() {
        CgroupVersion::V1 => d.cgroup_dir("memory", &id),
        CgroupVersion::V2 => d.cgroup_dir("", &id),
    };
    let members = read_trimmed(&memcg.join("cgroup.procs")).unwrap_or_default();
    assert_eq!(members.lines().count(), 1, "{members:?}");
    let hostname = d.cli(["exec", &id, "hostname"]).ok();
    assert_eq!(
        hostname,
        &id[..12],
        "the default hostname is its own short id"
    );
    // Its PID 1's bounding set (reduced while it waited) and effective set:
    // docker's default set, as a cold start's.
    let status = d.cli(["exec", &id, "cat", "/proc/1/status"]).ok();
    for line in ["CapBnd:\t00000000a80425fb", "CapEff:\t00000000a80425fb"] {
        assert!(status.lines().any(|l| l == line), "{line:?} in {status}");
    }
    d.cli(["rm", "-f", &id]).ok();
    wait_full(&d, "default");

    // No limit asked for (quiltd has a default pids limit): none inherited
    // from the pooled container.
    let id = d.run_detached(&["--pids-limit", "-1", "default", "sleep", "60"]);
    let pids = match cgroup_version() {
        CgroupVersion::V1 => read_trimmed(&d.cgroup_dir("pids", &id).join("pids.max")),
        CgroupVersion::V2 => read_trimmed(&d.cgroup_dir("", &id).join("pids.max")),
    };
    assert_eq!(pids.as_deref(), Some("max"));
    d.cli(["rm", "-f", &id]).ok();
    wait_full(&d, "default");

    // A start that fails after the hand-over (its row said running): 127
    // and failed with its reason, as a cold one; the pool refills.
    let before = hits(&d);
    d.cli(["run", "--rm", "default", "no-such-command"])
        .expect_code(127);
    wait_full(&d, "default");
    d.cli(["run", "--name", "nf", "default", "no-such-command"])
        .expect_code(127);
    assert_eq!(hits(&d), before + 2);
    let st = d.status_json("nf");
    assert_eq!(st["state"], "failed", "{st}");
    assert_eq!(st["exit"]["exit_code"], 127, "{st}");
    assert!(
        st["failure_reason"]
            .as_str()
            .is_some_and(|r| r.contains("no-such-command")),
        "{st}"
    );
    d.cli(["rm", "nf"]).ok();
    wait_full(&d, "default");

    // Another shape: nothing of the pool's is inherited, nothing adopted.
    let before = hits(&d);
    let out = d
        .cli([
            "run",
            "--rm",
            "--read-only",
            "default",
            "sh",
            "-c",
            "touch /x 2>/dev/null && echo wrote || echo refused",
        ])
        .ok();
    assert_eq!(out, "refused");
    let caps = d
        .cli([
            "run",
            "--rm",
            "--cap-drop",
            "ALL",
            "default",
            "sh",
            "-c",
            "grep CapEff /proc/self/status",
        ])
        .ok();
    assert!(caps.ends_with("0000000000000000"), "{caps}");
    assert_eq!(hits(&d), before);

    // Created, not started: a copy into it discards its claim (the start
    // is cold) and the file is there.
    let id = d
        .cli(["create", "--no-start", "default", "cat", "/copied"])
        .ok();
    let src = d.root.join("copied");
    std::fs::write(&src, "copied in\n").unwrap();
    d.cli(["cp", src.to_str().unwrap(), &format!("{id}:/copied")])
        .ok();
    d.cli(["start", "-a", &id]).ok();
    assert_eq!(d.cli(["logs", &id]).ok(), "copied in");
    d.cli(["rm", &id]).ok();

    // Created and removed without a start: its claim goes.
    let id = d.cli(["create", "--no-start", "default", "true"]).ok();
    d.cli(["rm", &id]).ok();

    // The pool removed: every prepared container goes with it.
    wait_full(&d, "default");
    d.cli(["pool", "rm", "default"]).ok();
    assert!(pool(&d, "default").is_none());
    d.assert_no_leftovers();
}

#[test]
fn pooled_containers_go_with_quiltd_and_bad_pools_are_refused() {
    let mut d = Daemon::builder()
        .args(&["--warm-pool", "default=2"])
        .start();
    wait_full(&d, "default");
    let shims = host::shims_of(&d.root, d.pid());
    assert!(!shims.is_empty());
    // Killed: the pooled supervisors see their stdin close and clean up.
    d.kill9();
    for p in &shims {
        assert!(
            host::wait_pid_gone(*p, Duration::from_secs(10)),
            "pooled shim {p} outlived quiltd"
        );
    }
    // Their cgroups, directories and processes; the namespaces' mounts
    // are the next quiltd's to clean up.
    let ours = |l: &String| {
        ["dir:", "cgroup:", "quilt-shim:", "process in our cgroups:"]
            .iter()
            .any(|k| l.starts_with(k))
    };
    let clean = retry(Duration::from_secs(10), || {
        (!d.leftovers().iter().any(ours)).then_some(())
    });
    assert!(clean.is_some(), "{:?}", d.leftovers());

    d.restart();
    wait_full(&d, "default");
    // An image that does not exist: the pool says why it stays empty.
    d.cli(["pool", "set", "no-such-image", "1"]).ok();
    let err = retry(Duration::from_secs(20), || {
        pool(&d, "no-such-image").filter(|p| !p.4.is_empty())
    })
    .expect("an error for the missing image");
    assert_eq!(err.1, 0);
    // Too large a pool: refused with a reason.
    let out = d.cli(["pool", "set", "default", "100000"]);
    out.expect_engine_error();
    assert!(out.stderr.contains("at most"), "{out:?}");
    // An image no create could use is refused at once, as a create's is,
    // not kept as a pool that can never fill.
    let long = "a".repeat(5000);
    for (image, why) in [
        ("../../etc", "invalid image"),
        ("not an image", "invalid image reference"),
        ("/proc", "sensitive host path"),
        (long.as_str(), "5000 bytes long"),
    ] {
        let out = d.cli(["pool", "set", image, "1"]);
        out.expect_engine_error();
        assert!(out.stderr.contains(why), "{image}: {out:?}");
        assert!(pool(&d, image).is_none(), "{image} kept as a pool");
    }
    d.cli(["pool", "rm", "no-such-image"]).ok();
    d.cli(["pool", "rm", "default"]).ok();
    d.assert_no_leftovers();
}

/// A created container's pooled container dies before the start: the
/// start, which recorded its namespace with the change to `starting`,
/// runs the container cold, and its removal leaves nothing.
#[test]
fn a_claimed_container_that_died_starts_cold_and_leaves_nothing() {
    let d = Daemon::builder()
        .args(&["--warm-pool", "default=1"])
        .start();
    wait_full(&d, "default");
    let id = d
        .cli([
            "create",
            "--no-start",
            "default",
            "sh",
            "-c",
            "echo cold; sleep 60",
        ])
        .ok();
    assert_eq!(hits(&d), 1, "the create claims the pooled container");
    // Its waiting first process, in the container's own pids cgroup.
    let procs = match cgroup_version() {
        CgroupVersion::V1 => d.cgroup_dir("pids", &id),
        CgroupVersion::V2 => d.cgroup_dir("", &id),
    }
    .join("cgroup.procs");
    let first: i32 = read_trimmed(&procs)
        .and_then(|p| p.lines().next().and_then(|l| l.parse().ok()))
        .unwrap_or_else(|| panic!("no pooled first process in {}", procs.display()));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(host::wait_pid_gone(first, Duration::from_secs(10)));
    // Its supervisor sees it and cleans up (cgroup, directory).
    retry(Duration::from_secs(10), || (!procs.exists()).then_some(()))
        .unwrap_or_else(|| panic!("the pooled cgroup stayed\n{}", d.log_tail(30)));

    d.cli(["start", &id]).ok();
    let out = retry(Duration::from_secs(10), || {
        let logs = d.cli(["logs", &id]).ok();
        logs.contains("cold").then_some(logs)
    });
    assert!(out.is_some(), "no output\n{}", d.log_tail(30));
    assert_eq!(d.status_json(&id)["state"], "running", "{}", d.log_tail(30));
    assert!(
        d.log_tail(200).contains("pooled container not adopted"),
        "{}",
        d.log_tail(30)
    );
    assert_eq!(d.cli(["exec", &id, "echo", "in"]).ok(), "in");
    d.cli(["rm", "-f", &id]).ok();
    d.cli(["pool", "rm", "default"]).ok();
    d.assert_no_leftovers();
}

/// A rootfs tarball: busybox's shell and `cat`, and /marker saying `text`.
fn rootfs_tar(text: &str) -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("the tests need /bin/busybox");
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_uid(0);
        h.set_gid(0);
        match link {
            Some(target) => b.append_link(&mut h, path, target).unwrap(),
            None => b.append_data(&mut h, path, data).unwrap(),
        }
    };
    add("bin/", tar::EntryType::Directory, 0o755, &[], None);
    add(
        "bin/busybox",
        tar::EntryType::Regular,
        0o755,
        &busybox,
        None,
    );
    add(
        "bin/sh",
        tar::EntryType::Symlink,
        0o777,
        &[],
        Some("busybox"),
    );
    add(
        "bin/cat",
        tar::EntryType::Symlink,
        0o777,
        &[],
        Some("busybox"),
    );
    add(
        "marker",
        tar::EntryType::Regular,
        0o644,
        text.as_bytes(),
        None,
    );
    b.into_inner().unwrap()
}

#[test]
fn an_image_named_anew_replaces_the_pooled_containers() {
    let d = Daemon::start();
    let src = tempfile::tempdir().unwrap();
    let import = |text: &str| {
        let path = src.path().join(format!("{text}.tar"));
        std::fs::write(&path, rootfs_tar(text)).unwrap();
        d.cli([
            "image",
            "import",
            path.to_str().unwrap(),
            "--name",
            "pooled",
        ])
        .ok()
    };
    let first = import("first");
    d.cli(["pool", "set", "pooled", "1"]).ok();
    wait_full(&d, "pooled");
    let hits = |d: &Daemon| pool(d, "pooled").map_or(0, |p| p.2);
    assert_eq!(
        d.cli(["run", "--rm", "pooled", "cat", "/marker"]).ok(),
        "first"
    );
    assert_eq!(hits(&d), 1);
    wait_full(&d, "pooled");

    // The name moves to another image: the next run gets it (cold), and
    // the pool takes the new shape.
    let second = import("second");
    assert_ne!(first, second);
    assert_eq!(
        d.cli(["run", "--rm", "pooled", "cat", "/marker"]).ok(),
        "second"
    );
    let took_new_shape = retry(Duration::from_secs(20), || {
        wait_full(&d, "pooled");
        let before = hits(&d);
        let out = d.cli(["run", "--rm", "pooled", "cat", "/marker"]).ok();
        assert_eq!(out, "second");
        (hits(&d) > before).then_some(())
    });
    assert!(took_new_shape.is_some(), "{:?}", pool(&d, "pooled"));

    d.cli(["pool", "rm", "pooled"]).ok();
    d.cli(["rmi", first.as_str()]).ok();
    d.cli(["rmi", "pooled"]).ok();
    d.assert_no_leftovers();
}

/// A claimed container's start begins at once, not from the queue: a
/// create that starts (the API's default) is inserted as starting, and a
/// start of one created without starting changes it in one statement. Its
/// lifecycle lock is held from that change, so a removal right behind it
/// waits for the start and leaves nothing; a refused create gives the
/// claimed container back to its pool as it was; two starts of one claimed
/// container start it once; a start after a rename adopts it under its new
/// name.
#[test]
fn claimed_starts_begin_at_once_and_nothing_slips_in_between() {
    let d = with_full_pool();

    // Created (and started) and removed right behind: gone, with nothing left.
    let id = d.cli(["create", "default", "sleep", "60"]).ok();
    d.cli(["rm", "-f", &id]).ok();
    assert_eq!(hits(&d), 1);
    assert!(d.cli(["status", &id]).code != Some(0), "{id} is gone");
    wait_full(&d, "default");

    // A running one, then a create of the same name: refused, and the
    // claimed container goes back to its pool as it was (the same shims,
    // none prepared anew).
    let first = d
        .cli(["create", "--name", "taken", "default", "sleep", "60"])
        .ok();
    assert_eq!(hits(&d), 2);
    wait_full(&d, "default");
    let mut before = host::shims_of(&d.root, d.pid());
    before.sort();
    d.cli(["create", "--name", "taken", "default", "sleep", "60"])
        .expect_engine_error();
    let (_, ready, ..) = pool(&d, "default").expect("the pool");
    assert_eq!(ready, 2, "the claim went back");
    let mut after = host::shims_of(&d.root, d.pid());
    after.sort();
    assert_eq!(before, after, "the same pooled containers wait");
    // Its network files were not rewritten with the refused create's
    // name: a run with the default names that adopts it resolves its own.
    let out = d
        .cli([
            "run",
            "--rm",
            "default",
            "sh",
            "-c",
            "hostname; cat /etc/hosts",
        ])
        .ok();
    let (host, hosts) = out.split_once('\n').unwrap_or((&out, ""));
    assert!(hosts.contains(host) && !hosts.contains("taken"), "{out}");
    // (The refused create's claim counted as a hit.)
    assert_eq!(hits(&d), 4);
    wait_full(&d, "default");
    let st = d.status_json("taken");
    assert_eq!(
        (st["id"].as_str(), st["state"].as_str()),
        (Some(first.as_str()), Some("running")),
        "{st}"
    );
    d.cli(["rm", "-f", "taken"]).ok();
    wait_full(&d, "default");

    // Created without a start, then started twice at once: one start, and
    // both calls see it running.
    let id = d
        .cli(["create", "--no-start", "default", "sleep", "60"])
        .ok();
    let hits_before = hits(&d);
    start_twice_at_once(&d, &id);
    assert_eq!(hits(&d), hits_before, "claimed at its create");
    let st = d.status_json(&id);
    assert_eq!(st["state"], "running", "{st}");
    let memcg = match cgroup_version() {
        CgroupVersion::V1 => d.cgroup_dir("pids", &id),
        CgroupVersion::V2 => d.cgroup_dir("", &id),
    };
    let procs = read_trimmed(&memcg.join("cgroup.procs")).unwrap_or_default();
    assert_eq!(procs.lines().count(), 1, "one workload: {procs:?}");
    d.cli(["rm", "-f", &id]).ok();
    wait_full(&d, "default");

    // The same with a workload that ends at once: the second start finds
    // it started (or already exited), and it runs once.
    let id = d
        .cli(["create", "--no-start", "default", "sh", "-c", "echo ran"])
        .ok();
    start_twice_at_once(&d, &id);
    d.cli(["wait", &id]).ok();
    assert_eq!(d.cli(["logs", &id]).ok(), "ran", "one run");
    d.cli(["rm", &id]).ok();
    wait_full(&d, "default");

    // Created without a start, then renamed: its start adopts the claimed
    // container (readied while the row changed) with the new name in its
    // /etc/hosts.
    let not_adopted = |d: &Daemon| d.log().matches("not adopted").count();
    let before = not_adopted(&d);
    let id = d
        .cli(["create", "--no-start", "default", "cat", "/etc/hosts"])
        .ok();
    d.cli(["rename", &id, "renamed"]).ok();
    d.cli(["start", "-a", "renamed"]).ok();
    let hosts = d.cli(["logs", "renamed"]).ok();
    assert!(hosts.contains("renamed"), "{hosts}");
    assert_eq!(not_adopted(&d), before, "{}", d.log_tail(50));
    d.cli(["rm", "renamed"]).ok();
    wait_full(&d, "default");
    d.cli(["pool", "rm", "default"]).ok();
    d.assert_no_leftovers();
}

/// Two StartContainer calls at once (sent together, on two connections):
/// both succeed. (Two `quilt start` processes could start a few
/// milliseconds apart on a loaded host: long enough for a workload that
/// ends at once to have run and exited, and for the second to start it
/// again, as it should.)
fn start_twice_at_once(d: &Daemon, id: &str) {
    d.block_on(async {
        let (mut a, mut b) = (d.client().await, d.client().await);
        let req = || StartContainerRequest {
            id: id.to_string(),
            ..Default::default()
        };
        let (ra, rb) = tokio::join!(a.start_container(req()), b.start_container(req()));
        ra.expect("the first start");
        rb.expect("the second start");
    });
}
