//! Containment that the process model gives: a container (or an exec'd
//! command) cannot signal quiltd or its own supervisor, cannot reach the
//! host's descriptors or the supervisor's binary through /proc, gets the
//! daemon's default limits, and hostile requests are refused without harm.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use quilt_tests::api::{
    CreateContainerRequest, ListContainersRequest, Resources, StopContainerRequest,
};
use quilt_tests::{Daemon, RPC_TIMEOUT, health_check, req, within};
use tonic::Code;

fn quiltd_alive(d: &Daemon) -> bool {
    let pid = d.pid().expect("quiltd runs");
    let alive =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "));
    alive && d.block_on(health_check(&d.socket)).unwrap_or(false)
}

#[test]
fn kill_of_its_own_group_from_an_exec_reaches_only_the_command() {
    let d = Daemon::start();
    let id = d.run_detached(&["default", "sleep", "1000"]);
    // Pipe mode (no tty): the command must be in a session of its own.
    let out = d.cli(["exec", &id, "--", "sh", "-c", "kill -9 0; echo survived"]);
    assert_eq!(out.code, Some(137), "{out:?}");
    assert!(!out.stdout.contains("survived"), "{out:?}");
    assert!(quiltd_alive(&d), "quiltd died: {}", d.log_tail(20));
    // The container and its supervisor are untouched; exec still works.
    assert_eq!(d.status_json(&id)["state"], "running");
    d.cli(["exec", &id, "--", "true"]).expect_code(0);
    d.cli(["rm", "-f", &id]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn kill_of_its_own_group_from_the_workload_spares_its_supervisor() {
    let d = Daemon::start();
    // PID 1 of a pid namespace ignores SIGKILL from inside it: the shell
    // lives on, and so must its supervisor (which is not in its group).
    let out = d.cli([
        "run",
        "--name",
        "k",
        "default",
        "sh",
        "-c",
        "kill -9 0; echo still-here",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("still-here"), "{out:?}");
    let st = d.status_json("k");
    assert_eq!(st["state"], "exited", "{st}");
    assert!(
        st["failure_reason"].as_str().unwrap_or("").is_empty(),
        "{st}"
    );
    // Under --init the workload is PID 2: the kill ends it (137), recorded as
    // its own death, not as a lost supervisor.
    let out = d.cli([
        "run",
        "--name",
        "ki",
        "--init",
        "default",
        "sh",
        "-c",
        "kill -9 0; echo not-here",
    ]);
    assert_eq!(out.code, Some(137), "{out:?}");
    assert!(!out.stdout.contains("not-here"), "{out:?}");
    let st = d.status_json("ki");
    assert_eq!(st["state"], "exited", "{st}");
    assert!(
        st["failure_reason"].as_str().unwrap_or("").is_empty(),
        "{st}"
    );
    assert!(quiltd_alive(&d));
    d.cli(["rm", "k", "ki"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn init_holds_no_host_descriptor_and_its_binary_is_out_of_reach() {
    let d = Daemon::start();
    // What PID 1 (the init) holds open, seen from the workload.
    let out = d.cli([
        "run",
        "--rm",
        "--init",
        "default",
        "sh",
        "-c",
        "ls /proc/1/fd 2>&1; echo ---; readlink /proc/1/exe && echo exe-readable; \
         cat /proc/1/exe >/dev/null 2>&1 && echo exe-openable; echo done",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let (fds, rest) = out.stdout.split_once("---").expect("marker");
    // Either unreadable (PID 1 is not dumpable) or only 0, 1 and 2.
    for word in fds.split_whitespace() {
        if let Ok(n) = word.parse::<u32>() {
            assert!(n <= 2, "PID 1 holds descriptor {n}: {fds}");
        }
    }
    assert!(!rest.contains("exe-readable"), "{out:?}");
    assert!(!rest.contains("exe-openable"), "{out:?}");
    assert!(rest.contains("done"), "{out:?}");
    d.assert_no_leftovers();
}

#[test]
fn containers_get_the_default_process_limit_unless_they_ask() {
    let d = Daemon::start();
    let id = d.run_detached(&["default", "sleep", "1000"]);
    let dir = d.cgroup_dir("pids", &id);
    let max = std::fs::read_to_string(dir.join("pids.max")).expect("pids.max");
    assert_eq!(max.trim(), "4096");
    assert_eq!(d.status_json(&id)["resources"]["pids_limit"], 4096);
    let free = d.run_detached(&["--pids", "-1", "default", "sleep", "1000"]);
    let max =
        std::fs::read_to_string(d.cgroup_dir("pids", &free).join("pids.max")).expect("pids.max");
    assert_eq!(max.trim(), "max");
    d.cli(["rm", "-f", &id, &free]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn a_forced_removal_does_not_wait_for_a_pending_stop() {
    let d = Daemon::start();
    // Ignores SIGTERM: a stop would wait out its whole timeout.
    let id = d.run_detached(&[
        "default",
        "sh",
        "-c",
        "trap '' TERM; while :; do sleep 1; done",
    ]);
    let stop_id = id.clone();
    let socket = d.socket.clone();
    let stopper = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let ch = quilt_tests::connect_uds(&socket).await.unwrap();
            let mut c = quilt_tests::api::container_service_client::ContainerServiceClient::new(ch);
            c.stop_container(StopContainerRequest {
                id: stop_id,
                timeout_seconds: Some(3000),
            })
            .await
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    d.cli(["rm", "-f", &id]).expect_code(0);
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "rm -f waited for the stop: {:?}",
        t.elapsed()
    );
    let _ = stopper.join().expect("stop thread");
    d.assert_no_leftovers();
}

#[test]
fn an_endless_stop_timeout_is_refused() {
    let d = Daemon::start();
    let id = d.run_detached(&["default", "sleep", "1000"]);
    let err = d
        .block_on(async {
            let mut c = d.client().await;
            within(
                RPC_TIMEOUT,
                "StopContainer",
                c.stop_container(StopContainerRequest {
                    id: id.clone(),
                    timeout_seconds: Some(u32::MAX),
                }),
            )
            .await
        })
        .expect_err("endless timeout");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(d.status_json(&id)["state"], "running");
    d.cli(["rm", "-f", &id]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn hostile_sizes_are_refused_and_listing_still_works() {
    let d = Daemon::start();
    let big = "x".repeat(200 * 1024);
    let cases: Vec<(&str, CreateContainerRequest)> = vec![
        ("one 200 KiB argument", req(&["echo", &big])),
        (
            "2 MiB of arguments",
            CreateContainerRequest {
                command: std::iter::once("echo".to_string())
                    .chain((0..20).map(|_| "y".repeat(100 * 1024)))
                    .collect(),
                ..req(&[])
            },
        ),
        (
            "100k environment entries",
            CreateContainerRequest {
                env: (0..100_000).map(|i| format!("K{i}=v")).collect(),
                ..req(&["true"])
            },
        ),
        (
            "10k labels",
            CreateContainerRequest {
                labels: (0..10_000).map(|i| (format!("k{i}"), "v".into())).collect(),
                ..req(&["true"])
            },
        ),
        (
            "a 1 MiB label",
            CreateContainerRequest {
                labels: [("k".to_string(), "v".repeat(1024 * 1024))].into(),
                ..req(&["true"])
            },
        ),
        (
            "a 10 MiB request",
            CreateContainerRequest {
                labels: [("k".to_string(), "v".repeat(10 * 1024 * 1024))].into(),
                ..req(&["true"])
            },
        ),
    ];
    for (what, r) in cases {
        let err = d.create(r).expect_err(what);
        assert!(
            matches!(
                err.code(),
                Code::InvalidArgument | Code::ResourceExhausted | Code::OutOfRange
            ),
            "{what}: {err:?}"
        );
        // The message never echoes the input in full.
        assert!(
            err.message().len() < 1024,
            "{what}: {} bytes",
            err.message().len()
        );
    }
    // Nothing was stored, and listing works for everyone.
    let out = d.cli(["ps", "-a", "-q"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.trim().is_empty(), "{out:?}");
    let listed = d.list_page(ListContainersRequest::default());
    assert!(listed.is_ok(), "{listed:?}");
    // A request at the budget is fine.
    let ok = d.create(CreateContainerRequest {
        resources: Some(Resources::default()),
        ..req(&["echo", &"z".repeat(100 * 1024)])
    });
    let id = ok.expect("a 100 KiB argument").id;
    d.cli(["rm", "-f", &id]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn undecodable_requests_are_invalid_arguments() {
    let d = Daemon::start();
    // A CreateContainerRequest whose field 1 (string) claims 100 bytes and has 2.
    let garbage: Vec<u8> = vec![0x0a, 0x64, b'a', b'b'];
    let status = d.block_on(async {
        let ch = quilt_tests::connect_uds(&d.socket).await.unwrap();
        quilt_tests::raw_unary(ch, "/quilt.v1.ContainerService/CreateContainer", garbage).await
    });
    let err = status.expect_err("garbage decoded");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(quiltd_alive(&d));
    d.assert_no_leftovers();
}

#[test]
fn a_connection_that_never_speaks_is_dropped() {
    let d = Daemon::start();
    let mut silent = UnixStream::connect(&d.socket).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 16];
    // The server closes it after its handshake deadline (10 s): EOF.
    let n = silent.read(&mut buf).expect("read");
    assert_eq!(n, 0, "the server sent {n} bytes");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_secs(8) && waited < Duration::from_secs(25),
        "closed after {waited:?}"
    );
    assert!(quiltd_alive(&d));
}

#[test]
fn quiltd_raises_its_open_files_limit() {
    let d = Daemon::start();
    let pid = d.pid().unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("open files line");
    let nums: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(nums.len(), 2, "{line}");
    assert_eq!(nums[0], nums[1], "soft limit below hard: {line}");
}

/// A static program that swaps two paths (RENAME_EXCHANGE) forever: the
/// attacker's side of the mount-target race.
const FLIP_C: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    for (;;) syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE);
}
"#;

#[test]
fn a_mount_target_flipped_to_a_symlink_never_reaches_the_host() {
    let d = Daemon::start();
    // Host directory the attacker points at: must stay empty.
    let host = d.root.join("host-victim");
    std::fs::create_dir(&host).unwrap();
    // The attacker's program, put into the shared volume from the host.
    d.cli(["volume", "create", "shared"]).expect_code(0);
    let vol = d.data_dir.join("volumes/shared/data");
    std::fs::write(d.root.join("flip.c"), FLIP_C).unwrap();
    gcc_static(&d.root.join("flip.c"), &vol.join("flip"));
    // /v/t swaps, as fast as the kernel allows, between a directory and a
    // symlink to the host directory's path.
    let script = format!(
        "mkdir -p /v/t && ln -sfn {} /v/l && exec /v/flip /v/t /v/l",
        host.display()
    );
    let attacker = d.run_detached(&["-v", "shared:/v", "default", "sh", "-c", &script]);
    // The victim mounts a tmpfs below the swapping directory, many times.
    for _ in 0..60 {
        let _ = d.cli([
            "run",
            "--rm",
            "-v",
            "shared:/data",
            "--tmpfs",
            "/data/t/x",
            "default",
            "true",
        ]);
    }
    let found: Vec<_> = std::fs::read_dir(&host)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        found.is_empty(),
        "the victim's shim wrote on the host: {found:?}"
    );
    d.cli(["rm", "-f", &attacker]).expect_code(0);
    d.cli(["volume", "rm", "shared"]).expect_code(0);
    d.assert_no_leftovers();
}

/// Builds tests/probes/root_escape.c into ROOT/probe; returns the
/// directory.
fn build_root_escape(d: &Daemon) -> std::path::PathBuf {
    let dir = d.root.join("probe");
    std::fs::create_dir_all(&dir).unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("probes/root_escape.c");
    gcc_static(&src, &dir.join("root-escape"));
    dir
}

/// Builds the C program `src` into `out`, linked statically (the images
/// have no C library).
fn gcc_static(src: &std::path::Path, out: &std::path::Path) {
    let cc = std::process::Command::new("gcc")
        .args(["-static", "-O1", "-Wall", "-o"])
        .arg(out)
        .arg(src)
        .output()
        .expect("gcc (and libc6-dev) build the test's programs");
    assert!(
        cc.status.success(),
        "gcc {}: {}",
        src.display(),
        String::from_utf8_lossy(&cc.stderr)
    );
}

/// Checks the probe's output against the root the container lists itself:
/// the same "/" after the attempt as before, and its names those of the
/// container's own root.
fn assert_stayed_inside(out: &str) {
    let field = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key:?} in {out:?}"))
            .trim()
            .to_owned()
    };
    assert_eq!(field("before "), field("after "), "{out}");
    let names: std::collections::BTreeSet<&str> = out
        .lines()
        .find_map(|l| l.strip_prefix("names "))
        .unwrap()
        .split_whitespace()
        .collect();
    let listed: std::collections::BTreeSet<&str> = out
        .split_once("listing\n")
        .unwrap_or_else(|| panic!("no listing in {out:?}"))
        .1
        .split_whitespace()
        .collect();
    assert!(names.contains("escape-probe"), "{out}");
    assert_eq!(
        names, listed,
        "the probe ended outside the container's root"
    );
}

#[test]
fn chroot_and_dotdot_never_leave_the_containers_root() {
    let d = Daemon::start();
    let probe = build_root_escape(&d);
    let mount = format!("{}:/probe:ro", probe.display());
    let script = "/probe/root-escape && echo listing && ls -a /";
    // The workload (docker's default capabilities include CAP_SYS_CHROOT).
    let out = d.cli(["run", "--rm", "-v", &mount, "default", "sh", "-c", script]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_stayed_inside(&out.stdout);
    // An exec'd command, which enters the container's mount namespace.
    let id = d.run_detached(&["-v", &mount, "default", "sleep", "1000"]);
    let out = d.cli(["exec", &id, "--", "sh", "-c", script]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_stayed_inside(&out.stdout);
    d.cli(["rm", "-f", &id]).expect_code(0);
    d.assert_no_leftovers();
}

/// A docker-save archive of one layer, `layer`, written into `dir`.
fn one_layer_image(dir: &std::path::Path, layer: Vec<u8>) -> std::path::PathBuf {
    use quilt_testkit::tar::TarBuf;
    // The layer's digest in the config: images of different layers are
    // different images (an image is known by its config's digest).
    let diff_id = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&layer))
    };
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["sha256:{diff_id}"]}}}}"#
    );
    let config = config.as_bytes();
    let manifest = r#"[{"Config":"config.json","RepoTags":[],"Layers":["l/layer.tar"]}]"#;
    let tar = TarBuf::new()
        .file("config.json", 0o644, config)
        .dir("l/")
        .file("l/layer.tar", 0o644, &layer)
        .file("manifest.json", 0o644, manifest.as_bytes())
        .bytes();
    let p = dir.join("image.tar");
    std::fs::write(&p, tar).unwrap();
    p
}

/// An image whose /proc is a chain of symlinks that, followed from the
/// host's root (before the container's root is its root), leads through
/// the host's /proc to another process's namespaces. The container must
/// never act on them: the victim, a process in a mount namespace of its
/// own, keeps its mounts exactly as they were.
#[test]
fn an_image_whose_proc_leads_elsewhere_never_reaches_another_namespace() {
    use quilt_testkit::tar::TarBuf;
    let d = Daemon::start();
    // Killed however the test ends.
    struct Victim(std::process::Child);
    impl Drop for Victim {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let victim = Victim(
        std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sleep", "1000"])
            .spawn()
            .expect("unshare"),
    );
    let vpid = victim.0.id();
    // Its mounts are private once it runs sleep (unshare changes them
    // after the namespace exists).
    let t0 = Instant::now();
    while std::fs::read_to_string(format!("/proc/{vpid}/comm")).unwrap_or_default() != "sleep\n" {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the victim never ran sleep"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Its copies of the namespaces that daemons keep bound in their pools
    // (this test's and concurrent tests') are left out: a daemon that
    // destroys a pooled namespace unlinks its file, and the kernel then
    // detaches every mount on that file, the victim's copy too.
    let mounts = || {
        std::fs::read_to_string(format!("/proc/{vpid}/mountinfo"))
            .unwrap()
            .lines()
            .filter(|l| !l.contains(" - nsfs "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let before = mounts();

    let layer = TarBuf::new()
        .busybox(&["sh", "true"])
        .dir("dev/")
        .dir("dev/fd/")
        .dir("self/")
        .dir("self/cwd/")
        .dir("self/cwd/evil/")
        .dir("evil/")
        .symlink("evil/thread-self", &format!("/proc/{vpid}"))
        .symlink("proc", "dev/fd/../../self/cwd/evil")
        .bytes();
    let archive = one_layer_image(&d.root, layer);
    d.cli([
        "image",
        "import",
        archive.to_str().unwrap(),
        "--name",
        "evil",
    ])
    .expect_code(0);
    // However the start ends, it must not have touched the victim.
    let out = d.cli(["run", "--rm", "evil", "true"]);
    let after = mounts();
    drop(victim);
    assert_eq!(
        before, after,
        "the container reached the victim's namespace: {out:?}"
    );
    assert!(quiltd_alive(&d), "quiltd died: {}", d.log_tail(20));
    d.assert_no_leftovers();
}

/// An image whose /proc or /sys is a symlink (here to a directory that,
/// followed before the container's root is its root, is not where the
/// container later looks) is refused: the kernel's file systems are
/// mounted on directories only, so their sensitive files are always
/// masked.
#[test]
fn an_image_whose_proc_or_sys_is_a_symlink_is_refused() {
    use quilt_testkit::tar::TarBuf;
    let d = Daemon::start();
    for (n, what) in ["proc", "sys"].into_iter().enumerate() {
        let layer = TarBuf::new()
            .busybox(&["sh"])
            .dir("tmp/")
            .dir("tmp/p/")
            .symlink(what, "../rootfs/tmp/p")
            .bytes();
        let dir = d.root.join(format!("img{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let archive = one_layer_image(&dir, layer);
        let name = format!("link-{what}");
        d.cli([
            "image",
            "import",
            archive.to_str().unwrap(),
            "--name",
            &name,
        ])
        .expect_code(0);
        let out = d.cli(["run", "--rm", &name, "sh", "-c", "echo ran"]);
        assert_eq!(out.code, Some(125), "{out:?}");
        assert!(!out.stdout.contains("ran"), "{out:?}");
        assert!(
            out.stderr.contains(&format!(
                "refusing to mount {}",
                if what == "proc" { "proc" } else { "sysfs" }
            )),
            "{out:?}"
        );
    }
    assert!(quiltd_alive(&d), "quiltd died: {}", d.log_tail(20));
    d.assert_no_leftovers();
}
