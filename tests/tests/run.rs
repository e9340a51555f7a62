//! `quilt run`: output, exit codes and what a container looks like inside.

use std::fs;
use std::time::Duration;

use quilt_tests::api::{ContainerState, NetworkMode};
use quilt_tests::{Daemon, host};

#[test]
fn run_rm_echo_prints_hello_and_leaves_nothing() {
    let d = Daemon::start();
    let out = d.cli(["run", "--rm", "default", "echo", "hello"]);
    out.expect_code(0);
    assert_eq!(out.stdout, "hello\n", "{out:?}");
    d.assert_no_leftovers();
}

#[test]
fn run_propagates_the_exit_code() {
    let d = Daemon::start();
    d.cli(["run", "--rm", "default", "sh", "-c", "exit 7"])
        .expect_code(7);
    d.cli(["run", "--rm", "default", "--", "sh", "-c", "exit 0"])
        .expect_code(0);
    d.cli(["run", "--rm", "default", "false"]).expect_code(1);
    d.assert_no_leftovers();
}

#[test]
fn argv_is_passed_exactly() {
    let d = Daemon::start();
    let out = d.cli([
        "run", "--rm", "default", "--", "printf", "[%s]", "a b", "", "-c", "$HOME",
    ]);
    out.expect_code(0);
    assert_eq!(out.stdout, "[a b][][-c][$HOME]", "{out:?}");
    d.assert_no_leftovers();
}

#[test]
fn workload_is_pid_1_and_sees_only_its_own_processes() {
    let d = Daemon::start();
    let out = d.cli(["run", "--rm", "default", "sh", "-c", "echo $$"]);
    assert_eq!(out.ok(), "1", "{out:?}");

    // `ls` is the container's PID 1 here: /proc must be a procfs of the
    // container's PID namespace, showing nothing of the host.
    let out = d.cli(["run", "--rm", "default", "ls", "/proc"]);
    out.expect_code(0);
    let numeric: Vec<String> = out
        .stdout
        .split_whitespace()
        .filter(|e| e.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    assert_eq!(numeric, vec!["1".to_string()], "{out:?}");

    // Two processes: the shell and a background sleep, still only small PIDs.
    let out = d.cli([
        "run",
        "--rm",
        "default",
        "sh",
        "-c",
        "sleep 30 & ls /proc; kill $!",
    ]);
    out.expect_code(0);
    let pids: Vec<u32> = out
        .stdout
        .split_whitespace()
        .filter_map(|e| e.parse().ok())
        .collect();
    assert!(
        pids.contains(&1) && pids.len() <= 4 && pids.iter().all(|p| *p < 50),
        "container /proc shows {pids:?}: {out:?}"
    );
    d.assert_no_leftovers();
}

#[test]
fn rootfs_is_the_image_not_the_host() {
    let d = Daemon::start();
    assert!(
        fs::metadata("/etc/debian_version").is_ok(),
        "this test expects a Debian host"
    );
    let out = d.cli([
        "run",
        "--rm",
        "default",
        "sh",
        "-c",
        "test -x /bin/busybox && echo has-busybox; \
         test -e /etc/debian_version && echo host-file-visible; \
         test -e /work && echo host-dir-visible; \
         echo done",
    ]);
    out.expect_code(0);
    assert!(out.stdout.contains("has-busybox"), "{out:?}");
    assert!(!out.stdout.contains("host-file-visible"), "{out:?}");
    assert!(!out.stdout.contains("host-dir-visible"), "{out:?}");
    assert!(out.stdout.contains("done"), "{out:?}");

    // Writes go to the container's own layer, never into the image: a file
    // written by one container is not seen by the next.
    d.cli(["run", "--rm", "default", "sh", "-c", "echo x > /bin/marker"])
        .expect_code(0);
    let out = d.cli([
        "run",
        "--rm",
        "default",
        "sh",
        "-c",
        "test -e /bin/marker && echo leaked || echo clean",
    ]);
    assert_eq!(out.ok(), "clean", "{out:?}");
    d.assert_no_leftovers();
}

#[test]
fn environment_is_clean_and_has_user_entries() {
    let d = Daemon::builder().env("QUILT_TEST_SECRET", "xyz").start();
    let out = d.cli([
        "run", "--rm", "--name", "envbox", "-e", "FOO=bar", "-e", "EMPTY=", "default", "env",
    ]);
    out.expect_code(0);
    let vars = out.lines();
    let has = |prefix: &str| vars.iter().any(|l| l.starts_with(prefix));
    for key in ["PATH=", "HOME=", "TERM=", "FOO=bar", "EMPTY="] {
        assert!(has(key), "missing {key} in container env: {out:?}");
    }
    assert!(
        vars.iter().any(|l| l == "HOSTNAME=envbox"),
        "HOSTNAME should be the container's hostname: {out:?}"
    );
    assert!(
        !out.stdout.contains("QUILT_TEST_SECRET") && !out.stdout.contains("xyz"),
        "the daemon's environment leaked into the container: {out:?}"
    );
    assert!(
        !vars
            .iter()
            .any(|l| l.starts_with("CARGO") || l.starts_with("RUST")),
        "the daemon's environment leaked into the container: {out:?}"
    );
    d.assert_no_leftovers();
}

#[test]
fn hostname_is_the_name_and_the_host_keeps_its_own() {
    let d = Daemon::start();
    let before = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    // /etc/hostname says the same, as on docker (the image has its own).
    let both = "hostname; cat /etc/hostname";
    let out = d.cli([
        "run", "--rm", "--name", "myhost", "default", "sh", "-c", both,
    ]);
    assert_eq!(out.ok(), "myhost\nmyhost", "{out:?}");
    let out = d.cli([
        "run",
        "--rm",
        "--name",
        "named-one",
        "--hostname",
        "other-host",
        "default",
        "sh",
        "-c",
        both,
    ]);
    assert_eq!(out.ok(), "other-host\nother-host", "{out:?}");
    // A file of the caller's own mounted there wins.
    let own = d.root.join("own-hostname");
    fs::write(&own, "mine\n").unwrap();
    let mount = format!("{}:/etc/hostname", own.display());
    let out = d.cli([
        "run",
        "--rm",
        "-v",
        &mount,
        "default",
        "cat",
        "/etc/hostname",
    ]);
    assert_eq!(out.ok(), "mine", "{out:?}");
    let after = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(before, after, "the host's hostname changed");
    d.assert_no_leftovers();
}

#[test]
fn working_directory_is_created_and_used() {
    let d = Daemon::start();
    let out = d.cli(["run", "--rm", "-w", "/work/sub", "default", "pwd"]);
    assert_eq!(out.ok(), "/work/sub", "{out:?}");
    let out = d.cli(["run", "--rm", "default", "pwd"]);
    assert_eq!(out.ok(), "/", "{out:?}");
    d.assert_no_leftovers();
}

fn interfaces(net_dev: &str) -> Vec<String> {
    let mut v: Vec<String> = net_dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    v.sort();
    v
}

#[test]
fn network_none_has_only_loopback_and_host_shares_the_host_network() {
    let d = Daemon::start();
    let out = d.cli(["run", "--rm", "default", "cat", "/proc/net/dev"]);
    out.expect_code(0);
    assert_eq!(interfaces(&out.stdout), vec!["lo"], "{out:?}");
    let out = d.cli([
        "run",
        "--rm",
        "--network",
        "none",
        "default",
        "sh",
        "-c",
        "ip link show lo | grep -q UP && echo lo-up",
    ]);
    assert_eq!(out.ok(), "lo-up", "loopback should be up: {out:?}");

    let host = interfaces(&fs::read_to_string("/proc/net/dev").unwrap());
    let out = d.cli([
        "run",
        "--rm",
        "--network",
        "host",
        "default",
        "cat",
        "/proc/net/dev",
    ]);
    out.expect_code(0);
    assert_eq!(interfaces(&out.stdout), host, "{out:?}");
    d.assert_no_leftovers();
}

fn ns(pid: &str, kind: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{kind}: {e}"))
}

#[test]
fn container_has_its_own_namespaces_rootfs_and_cgroup() {
    let d = Daemon::start();
    let id = d.run_detached(&["--name", "nsbox", "default", "sleep", "1000"]);
    let c = d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    assert!(c.pid > 1, "running container without a pid: {c:?}");
    assert!(host::pid_alive(c.pid));
    let pid = c.pid.to_string();
    for kind in ["pid", "mnt", "uts", "ipc", "net"] {
        assert_ne!(
            ns(&pid, kind),
            ns("self", kind),
            "container shares the host's {kind} namespace"
        );
    }
    assert_eq!(host::proc_cmdline(c.pid), vec!["sleep", "1000"]);
    // Seen through its root: the image, not the host.
    assert!(fs::metadata(format!("/proc/{pid}/root/bin/busybox")).is_ok());
    assert!(fs::metadata(format!("/proc/{pid}/root/etc/debian_version")).is_err());
    // It lives in its own cgroup below our parent.
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let want = format!("/{}/{}", d.cgroup_parent, c.id);
    assert!(
        cg.lines().any(|l| l.ends_with(&want)),
        "container process is not in {want}:\n{cg}"
    );

    // --network host shares only the network namespace.
    let id2 = d.run_detached(&["--network", "host", "default", "sleep", "1000"]);
    let c2 = d.wait_state(&id2, &[ContainerState::Running], Duration::from_secs(30));
    assert_eq!(c2.network, NetworkMode::Host as i32);
    let pid2 = c2.pid.to_string();
    assert_eq!(ns(&pid2, "net"), ns("self", "net"));
    for kind in ["pid", "mnt", "uts", "ipc"] {
        assert_ne!(ns(&pid2, kind), ns("self", kind));
    }

    d.cli(["rm", "-f", &id]).expect_code(0);
    d.cli(["rm", "-f", &id2]).expect_code(0);
    assert!(host::wait_pid_gone(c.pid, Duration::from_secs(10)));
    assert!(host::wait_pid_gone(c2.pid, Duration::from_secs(10)));
    d.assert_no_leftovers();
}

#[test]
fn detached_run_then_wait_prints_the_exit_code() {
    let d = Daemon::start();
    let id = d.run_detached(&["default", "sh", "-c", "exit 3"]);
    let out = d.cli(["wait", &id]);
    assert_eq!(out.ok(), "3", "{out:?}");
    let st = d.status_json(&id);
    assert_eq!(st["state"], "exited", "{st}");
    assert_eq!(st["exit"]["exit_code"], 3, "{st}");
    d.cli(["rm", &id]).expect_code(0);
    d.assert_no_leftovers();
}

/// A minimal rootfs directory: a static busybox and a few applet links.
fn make_rootfs(dir: &std::path::Path, marker: &str) {
    use std::os::unix::fs::symlink;
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    for applet in ["sh", "echo", "cat", "ls"] {
        symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    fs::write(dir.join("marker"), marker).unwrap();
}

#[test]
fn tarball_and_directory_images_work() {
    let d = Daemon::start();
    let src = d.root.join("img-src");
    make_rootfs(&src, "from-tarball");
    for (name, flags) in [("img.tar", "cf"), ("img.tar.gz", "czf")] {
        let tarball = d.root.join(name);
        let st = std::process::Command::new("tar")
            .arg(flags)
            .arg(&tarball)
            .arg("-C")
            .arg(&src)
            .arg(".")
            .status()
            .expect("tar");
        assert!(st.success());
        let image = tarball.to_str().unwrap();
        let out = d.cli(["run", "--rm", image, "/bin/cat", "/marker"]);
        assert_eq!(out.ok(), "from-tarball", "{out:?}");
        // Used twice: served from the cache the second time.
        let out = d.cli(["run", "--rm", image, "sh", "-c", "echo $$"]);
        assert_eq!(out.ok(), "1", "{out:?}");
    }

    let dir = d.root.join("img-dir");
    make_rootfs(&dir, "from-directory");
    let image = dir.to_str().unwrap();
    let out = d.cli([
        "run",
        "--rm",
        image,
        "sh",
        "-c",
        "cat /marker; echo x > /new",
    ]);
    assert_eq!(out.ok(), "from-directory", "{out:?}");
    assert!(
        !dir.join("new").exists(),
        "a container wrote into its image directory"
    );
    d.assert_no_leftovers();
}

/// The super options of the overlay mounted at `/` in a mountinfo text
/// ("ID PARENT MAJ:MIN ROOT POINT OPTIONS [TAGS] - TYPE SOURCE SUPER").
fn root_overlay_options(mountinfo: &str) -> String {
    mountinfo
        .lines()
        .find_map(|l| {
            let (before, after) = l.split_once(" - ")?;
            let point = before.split_whitespace().nth(4)?;
            let mut fs = after.split_whitespace();
            (point == "/" && fs.next()? == "overlay").then(|| fs.nth(1).map(str::to_owned))?
        })
        .unwrap_or_else(|| panic!("no overlay at / in {mountinfo}"))
}

#[test]
fn a_removed_containers_root_is_never_synced() {
    let d = Daemon::start();
    // Shown as `fsync=volatile` by kernels with the `fsync` option.
    let volatile = |opts: &str| {
        opts.split(',')
            .any(|o| o == "volatile" || o == "fsync=volatile")
    };
    // `--rm`: its writable layer goes with it, so nothing of it is synced
    // (overlayfs's `volatile`), with or without a user namespace (whose
    // root quilt mounts another way).
    for extra in [&[][..], &["--userns", "private"][..]] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(extra);
        args.extend(["default", "cat", "/proc/self/mountinfo"]);
        let out = d.cli(&args);
        out.expect_code(0);
        let opts = root_overlay_options(&out.stdout);
        assert!(volatile(&opts), "{extra:?}: {opts}");
    }
    // A kept container's layer stays: its fsync and its unmount sync.
    let out = d.cli([
        "run",
        "--name",
        "kept",
        "default",
        "cat",
        "/proc/self/mountinfo",
    ]);
    out.expect_code(0);
    let opts = root_overlay_options(&out.stdout);
    assert!(!volatile(&opts), "{opts}");
    d.cli(["rm", "kept"]).expect_code(0);
    d.assert_no_leftovers();
}
