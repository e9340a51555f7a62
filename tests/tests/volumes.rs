//! Named volumes, bind mounts and tmpfs mounts: data that outlives
//! containers and daemon restarts, read-only mounts that refuse writes, and
//! refused mounts that leave nothing behind.
use quilt_tests::api::{self, ContainerState, mount::Source};
use quilt_tests::{CliOutput, Daemon, IMAGE, RPC_TIMEOUT, within};
use std::path::Path;
use std::time::Duration;

fn volume_dirs(d: &Daemon) -> Vec<String> {
    match std::fs::read_dir(d.data_dir.join("volumes")) {
        Ok(r) => r
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `quilt run --rm MOUNT IMAGE sh -c SCRIPT`, MOUNT being `-v SPEC` or
/// `--tmpfs SPEC`.
fn run_sh(d: &Daemon, mount: [&str; 2], script: &str) -> CliOutput {
    let mut args = vec!["run", "--rm"];
    args.extend(mount);
    args.extend([IMAGE, "sh", "-c", script]);
    d.cli(&args)
}

/// [`run_sh`] where SCRIPT writes to a read-only mount: the run fails and
/// the shell reports EROFS. Returns the output for the caller's own checks.
#[track_caller]
fn assert_ro_write_refused(d: &Daemon, mount: [&str; 2], script: &str) -> CliOutput {
    let w = run_sh(d, mount, script);
    assert_ne!(w.code, Some(0), "{w:?}");
    assert!(w.stderr.contains("Read-only file system"), "{w:?}");
    w
}

#[test]
fn a_volume_keeps_its_data_across_containers_and_restarts() {
    let mut d = Daemon::start();
    assert_eq!(d.cli(["volume", "create", "vol1"]).ok(), "vol1");
    d.cli(["volume", "create", "vol1"]).expect_engine_error();
    run_sh(&d, ["-v", "vol1:/data"], "echo persisted > /data/f").expect_code(0);
    d.restart();
    let c2 = d
        .cli([
            "run",
            "--name",
            "reader",
            "-v",
            "vol1:/data",
            IMAGE,
            "cat",
            "/data/f",
        ])
        .ok();
    assert_eq!(c2, "persisted");

    // ls and inspect show it and who uses it.
    let ls = d.cli(["volume", "ls", "--json"]).json();
    let names: Vec<_> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["vol1"]);
    let table = d.cli(["volume", "ls"]).ok();
    assert!(table.contains("vol1"), "{table}");
    let inspect = d.cli(["volume", "inspect", "vol1"]).json();
    assert_eq!(inspect[0]["used_by"].as_array().unwrap().len(), 1);

    // In use (by the exited container): refused without -f, data kept.
    d.cli(["volume", "rm", "vol1"]).expect_engine_error();
    assert!(d.data_dir.join("volumes/vol1/data/f").exists());
    // Removing the container keeps the volume.
    d.cli(["rm", "reader"]).expect_code(0);
    assert!(d.data_dir.join("volumes/vol1/data/f").exists());
    assert_eq!(
        d.cli(["volume", "inspect", "vol1"]).json()[0]["used_by"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    d.cli(["volume", "rm", "vol1"]).expect_code(0);
    assert!(volume_dirs(&d).is_empty(), "{:?}", volume_dirs(&d));
    d.cli(["volume", "inspect", "vol1"]).expect_engine_error();

    // A volume named on first use is created; -f removes one in use.
    let id = d.run_detached(&["-v", "auto1:/x", IMAGE, "sleep", "600"]);
    d.cli(["volume", "inspect", "auto1"]).expect_code(0);
    d.cli(["volume", "rm", "auto1"]).expect_engine_error();
    d.cli(["rm", "-f", &id]).expect_code(0);
    d.cli(["volume", "rm", "-f", "auto1"]).expect_code(0);
    assert!(volume_dirs(&d).is_empty());

    // A volume force-removed under an exited container is created again,
    // empty, when that container next starts: never a directory without a row.
    let out = d
        .cli([
            "run",
            "--name",
            "keeper",
            "-v",
            "vol2:/d",
            IMAGE,
            "sh",
            "-c",
            "ls /d | wc -l; touch /d/mark",
        ])
        .ok();
    assert_eq!(out, "0");
    d.cli(["volume", "rm", "-f", "vol2"]).expect_code(0);
    d.cli(["volume", "inspect", "vol2"]).expect_engine_error();
    assert!(volume_dirs(&d).is_empty());
    d.cli(["start", "keeper"]).expect_code(0);
    assert_eq!(d.cli(["wait", "keeper"]).ok(), "0");
    let inspect = d.cli(["volume", "inspect", "vol2"]).json();
    assert_eq!(inspect[0]["used_by"].as_array().unwrap().len(), 1);
    let logs = d.cli(["logs", "keeper"]).ok();
    assert_eq!(logs.lines().collect::<Vec<_>>(), ["0", "0"], "{logs}");
    d.cli(["rm", "keeper"]).expect_code(0);
    d.cli(["volume", "rm", "vol2"]).expect_code(0);
    assert!(volume_dirs(&d).is_empty());
    d.assert_no_leftovers();
}

#[test]
fn read_only_mounts_refuse_writes() {
    let d = Daemon::start();
    // Volume, read-only.
    d.cli(["volume", "create", "ro1"]).expect_code(0);
    assert_ro_write_refused(&d, ["-v", "ro1:/data:ro"], "echo x > /data/f");
    assert!(!d.data_dir.join("volumes/ro1/data/f").exists());

    // Bind mount of a host dir: readable and writable, or read-only.
    let host_dir = d.root.join("shared");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("in"), "from host").unwrap();
    let h = host_dir.to_str().unwrap();
    let out = run_sh(
        &d,
        ["-v", &format!("{h}:/h")],
        "cat /h/in && echo back > /h/out",
    )
    .ok();
    assert_eq!(out, "from host");
    assert_eq!(
        std::fs::read_to_string(host_dir.join("out")).unwrap(),
        "back\n"
    );
    let w = assert_ro_write_refused(
        &d,
        ["-v", &format!("{h}:/h:ro")],
        "cat /h/in; echo x > /h/ro-write",
    );
    assert!(w.stdout.contains("from host"), "{w:?}");
    assert!(!host_dir.join("ro-write").exists());

    // A single file, bind mounted read-only.
    assert_ro_write_refused(
        &d,
        ["-v", &format!("{h}/in:/etc/in.txt:ro")],
        "cat /etc/in.txt; echo x >> /etc/in.txt",
    );
    assert_eq!(
        std::fs::read_to_string(host_dir.join("in")).unwrap(),
        "from host"
    );

    // tmpfs with a size, and a read-only one.
    let out = run_sh(
        &d,
        ["--tmpfs", "/scratch:size=1m"],
        "grep ' /scratch ' /proc/mounts",
    )
    .ok();
    assert!(
        out.starts_with("tmpfs /scratch tmpfs") && out.contains("size=1024k"),
        "{out}"
    );
    assert_ro_write_refused(&d, ["--tmpfs", "/scratch:ro"], "echo x > /scratch/f");

    // The mounts are reported on the container.
    let id = d.run_detached(&["-v", "ro1:/data:ro", "--tmpfs", "/t", IMAGE, "sleep", "600"]);
    let st = d.status_json(&id);
    assert_eq!(st["mounts"][0]["source"], "ro1", "{st}");
    assert_eq!(st["mounts"][0]["read_only"], true, "{st}");
    assert_eq!(st["mounts"][1]["type"], "tmpfs", "{st}");
    let c = d.get(&id).unwrap();
    assert_eq!(c.mounts.len(), 2);
    assert_eq!(c.mounts[0].source, Some(Source::Volume("ro1".into())));
    assert!(c.mounts[0].read_only);
    // No volume or bind mount is visible on the host.
    assert!(d.mounts_but_netns_pool().is_empty());
    d.cli(["rm", "-f", &id]).expect_code(0);
    d.cli(["volume", "rm", "ro1"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn refused_mounts_leave_nothing_behind() {
    let d = Daemon::start();
    let data = d.data_dir.to_str().unwrap().to_string();
    let sock = d.socket.to_str().unwrap().to_string();
    let inside = format!("{data}/containers");
    let cases: Vec<Vec<String>> = vec![
        vec!["-v".into(), format!("{data}:/x")],
        vec!["-v".into(), format!("{inside}:/x")],
        vec!["-v".into(), format!("{sock}:/x")],
        vec!["-v".into(), "/:/x".into()],
        vec!["-v".into(), "/proc:/x".into()],
        vec!["-v".into(), "/sys/fs:/x".into()],
        vec!["-v".into(), "/dev:/x".into()],
        vec!["-v".into(), "/etc/shadow:/x".into()],
        vec!["-v".into(), "/no/such/host/path:/x".into()],
        vec!["-v".into(), "good:/a/../b".into()],
        vec!["-v".into(), "good:relative".into()],
        vec!["-v".into(), "good:/".into()],
        vec!["-v".into(), "good:/proc/x".into()],
        vec!["-v".into(), "good:/dev".into()],
        vec!["-v".into(), "bad.name:/x".into()],
        vec!["-v".into(), "good:/x:rx".into()],
        vec!["--tmpfs".into(), "/sys/x".into()],
        vec!["--tmpfs".into(), "/t:size=huge".into()],
        vec![
            "-v".into(),
            "good:/x".into(),
            "-v".into(),
            "other:/x".into(),
        ],
    ];
    for case in &cases {
        let mut args: Vec<String> = vec!["run".into(), "--rm".into()];
        args.extend(case.iter().cloned());
        args.extend([IMAGE.into(), "true".into()]);
        d.cli(&args).expect_engine_error();
    }
    // Volume names that are not strict identifiers, through the API.
    for name in ["..", ".", "a/b", ".x", "", "a b", &"x".repeat(65)] {
        let st = d.block_on(async {
            let mut c = d.client().await;
            let mut r = quilt_tests::req(&["true"]);
            r.mounts = vec![api::Mount {
                target: "/x".into(),
                read_only: false,
                source: Some(Source::Volume(name.into())),
            }];
            within(RPC_TIMEOUT, "CreateContainer", c.create_container(r)).await
        });
        assert_eq!(
            st.unwrap_err().code(),
            tonic::Code::InvalidArgument,
            "volume name {name:?}"
        );
        d.cli(["volume", "create", name]).expect_engine_error();
    }
    // A mount without a source.
    let st = d.block_on(async {
        let mut c = d.client().await;
        let mut r = quilt_tests::req(&["true"]);
        r.mounts = vec![api::Mount {
            target: "/x".into(),
            read_only: false,
            source: None,
        }];
        within(RPC_TIMEOUT, "CreateContainer", c.create_container(r)).await
    });
    assert_eq!(st.unwrap_err().code(), tonic::Code::InvalidArgument);

    assert!(d.list().is_empty(), "rows left: {:?}", d.list());
    assert!(volume_dirs(&d).is_empty(), "{:?}", volume_dirs(&d));
    assert!(
        d.cli(["volume", "ls", "--json"])
            .json()
            .as_array()
            .unwrap()
            .is_empty(),
        "volume rows left"
    );
    assert!(!Path::new(&data).join("volumes/good").exists());
    d.assert_no_leftovers();
}

#[test]
fn a_mount_target_through_a_symlink_stays_in_the_rootfs() {
    let d = Daemon::start();
    let host_dir = d.root.join("src");
    std::fs::create_dir(&host_dir).unwrap();
    std::fs::write(host_dir.join("f"), "mounted\n").unwrap();
    // Symlinks /escape -> / and /up -> ../../../.., put into the stopped
    // container with cp before it starts: its mount targets go through them
    // and must resolve inside the rootfs (/victim, /victim2).
    let links = d.root.join("links");
    std::fs::create_dir(&links).unwrap();
    std::os::unix::fs::symlink("/", links.join("escape")).unwrap();
    std::os::unix::fs::symlink("../../../..", links.join("up")).unwrap();
    let h = host_dir.to_str().unwrap();
    let id = d
        .cli([
            "create",
            "--no-start",
            "-v",
            &format!("{h}:/escape/victim"),
            "-v",
            &format!("{h}:/up/victim2"),
            IMAGE,
            "sh",
            "-c",
            "cat /victim/f /victim2/f",
        ])
        .ok();
    for l in ["escape", "up"] {
        d.cli(["cp", links.join(l).to_str().unwrap(), &format!("{id}:/")])
            .expect_code(0);
    }
    d.cli(["start", &id]).expect_code(0);
    let code = d.cli(["wait", &id]).ok();
    assert_eq!(code, "0", "{}", d.cli(["logs", &id]).stdout);
    let logs = d.cli(["logs", &id]).ok();
    assert_eq!(logs, "mounted\nmounted");
    assert!(!Path::new("/victim").exists() && !Path::new("/victim2").exists());
    d.cli(["rm", &id]).expect_code(0);
    d.assert_no_leftovers();
}

/// Unmounts a mount the test made on the host, even if the test fails.
struct HostMount(std::path::PathBuf);

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn a_read_only_bind_is_read_only_all_the_way_down() {
    let d = Daemon::start();
    let src = d.root.join("outer");
    let nested = src.join("inner");
    std::fs::create_dir_all(&nested).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &nested,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    let guard = HostMount(nested.clone());
    std::fs::write(nested.join("seen"), "nested").unwrap();
    let s = src.to_str().unwrap();
    // Writable bind: the nested mount comes along and is writable.
    let out = run_sh(
        &d,
        ["-v", &format!("{s}:/o")],
        "cat /o/inner/seen && echo w > /o/inner/rw",
    )
    .ok();
    assert_eq!(out, "nested");
    assert!(nested.join("rw").exists());
    // Read-only bind: the nested mount is read-only too.
    let w = assert_ro_write_refused(
        &d,
        ["-v", &format!("{s}:/o:ro")],
        "cat /o/inner/seen; echo x > /o/inner/ro-write",
    );
    assert!(w.stdout.contains("nested"), "{w:?}");
    assert!(!nested.join("ro-write").exists());
    drop(guard);
    d.assert_no_leftovers();
}

#[test]
fn a_bind_source_swapped_for_a_symlink_is_refused_at_start() {
    let d = Daemon::start();
    let src = d.root.join("src");
    let other = d.root.join("other");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(src.join("f"), "mine").unwrap();
    std::fs::write(other.join("f"), "not for this container").unwrap();
    let id = d
        .cli([
            "create",
            "--no-start",
            "-v",
            &format!("{}:/h", src.display()),
            IMAGE,
            "cat",
            "/h/f",
        ])
        .ok();
    // Checked and canonicalised at create; swapped before the start.
    std::fs::rename(&src, d.root.join("src-old")).unwrap();
    std::os::unix::fs::symlink(&other, &src).unwrap();
    let refused = d.cli(["start", &id]);
    refused.expect_engine_error();
    assert!(refused.stderr.contains("symlink"), "{refused:?}");
    let st = d.wait_state(
        &id,
        &[ContainerState::Failed, ContainerState::Exited],
        Duration::from_secs(30),
    );
    assert_eq!(st.state(), ContainerState::Failed, "{st:?}");
    assert!(st.failure_reason.contains("symlink"), "{st:?}");
    assert!(!d.cli(["logs", &id]).stdout.contains("not for this"));
    // Put back, it starts.
    std::fs::remove_file(&src).unwrap();
    std::fs::rename(d.root.join("src-old"), &src).unwrap();
    d.cli(["start", &id]).expect_code(0);
    assert_eq!(d.cli(["wait", &id]).ok(), "0");
    assert_eq!(d.cli(["logs", &id]).ok(), "mine");
    d.cli(["rm", &id]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn sockets_and_fifos_can_be_bind_mounted_onto_new_targets() {
    let d = Daemon::start();
    let sock = d.root.join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
    let fifo = d.root.join("pipe");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let sock_arg = format!("{}:/ssh.sock", sock.display());
    let fifo_arg = format!("{}:/run/in.fifo", fifo.display());
    // Neither target exists in the image: they are made as file mount points.
    let out = d.cli([
        "run",
        "--rm",
        "-v",
        &sock_arg,
        "-v",
        &fifo_arg,
        "default",
        "sh",
        "-c",
        "test -S /ssh.sock && test -p /run/in.fifo && echo both",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), "both");
    // The FIFO really is the host's: what the container writes, the host reads.
    let reader = std::thread::spawn({
        let fifo = fifo.clone();
        move || std::fs::read_to_string(&fifo).unwrap()
    });
    let out = d.cli([
        "run",
        "--rm",
        "-v",
        &fifo_arg,
        "default",
        "sh",
        "-c",
        "echo through > /run/in.fifo",
    ]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(reader.join().unwrap().trim(), "through");
    drop(listener);
    d.assert_no_leftovers();
}

/// A bind of a host directory that is a shared mount (as systemd makes
/// them) is private in the container: a mount the container makes below it
/// never appears on the host, and one the host makes later never appears in
/// the container.
#[test]
fn a_bind_of_a_shared_mount_propagates_nothing() {
    let d = Daemon::start();
    let src = d.root.join("shared-src");
    std::fs::create_dir_all(src.join("tmp")).unwrap();
    std::fs::create_dir_all(src.join("later")).unwrap();
    nix::mount::mount(
        Some(&src),
        &src,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    let guard = HostMount(src.clone());
    nix::mount::mount(
        None::<&str>,
        &src,
        None::<&str>,
        nix::mount::MsFlags::MS_SHARED,
        None::<&str>,
    )
    .unwrap();
    let s = src.to_str().unwrap();
    let id = d.run_detached(&[
        "-v",
        &format!("{s}:/app"),
        "--tmpfs",
        "/app/tmp",
        "default",
        "sh",
        "-c",
        "touch /app/tmp/inside; sleep 600",
    ]);
    d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    let host_mounts = || quilt_tests::host::mounts_under(&src);
    // The container's tmpfs on /app/tmp stays in the container.
    let out = d.cli([
        "exec",
        &id,
        "sh",
        "-c",
        "ls /app/tmp; grep -c ' /app/tmp ' /proc/self/mountinfo",
    ]);
    assert_eq!(out.ok(), "inside\n1");
    assert_eq!(
        host_mounts(),
        vec![src.clone()],
        "the container's mount reached the host"
    );
    assert!(!src.join("tmp/inside").exists());
    // A mount the host makes now stays on the host.
    nix::mount::mount(
        Some("tmpfs"),
        &src.join("later"),
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    let later = HostMount(src.join("later"));
    std::fs::write(src.join("later/seen"), "host").unwrap();
    let out = d.cli(["exec", &id, "sh", "-c", "ls /app/later | wc -l"]);
    assert_eq!(out.ok(), "0", "the host's new mount reached the container");
    d.cli(["rm", "-f", &id]).expect_code(0);
    drop((later, guard));
    d.assert_no_leftovers();
}
