//! Escapes through devices, and what the container may see of the host:
//! the default device allow-list (docker's, without blanket mknod),
//! `--device`, `--gpus` on a host without GPU, docker's masked paths, the
//! cgroup namespace and a fresh session keyring. Through the CLI and the
//! API, against a real quiltd; the kernel has the last word.

use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use quilt_tests::api::{CreateContainerRequest, DeviceMapping, Security};
use quilt_tests::{Daemon, host, req};
use tonic::Code;

/// Host device nodes a container must never open, made by the test in a
/// host directory the container gets as a writable bind mount, so that
/// only the device cgroup stands in the way (these are the devices the
/// audit's container reached: loop devices, loop-control, a tty, vcs).
const FORBIDDEN: [(&str, SFlag, u64, u64); 5] = [
    ("loop-control", SFlag::S_IFCHR, 10, 237),
    ("tty1", SFlag::S_IFCHR, 4, 1),
    ("vcs", SFlag::S_IFCHR, 7, 0),
    ("loop0", SFlag::S_IFBLK, 7, 0),
    ("nvidiactl", SFlag::S_IFCHR, 195, 255),
];

/// A shell function: `p NAME CMD` prints "NAME ok" or "NAME <error>".
const PROBE: &str = "p() { if eval \"$2\" 2>/tmp/err; then echo \"$1 ok\"; \
                     else echo \"$1 $(sed 's/.*: //' /tmp/err)\"; fi; }; ";

fn make_node(path: &Path, kind: SFlag, major: u64, minor: u64) {
    mknod(
        path,
        kind,
        Mode::from_bits_truncate(0o666),
        makedev(major, minor),
    )
    .unwrap_or_else(|e| panic!("mknod {} (needs root): {e}", path.display()));
}

/// A host directory with the forbidden nodes, and one node `exp<minor>` of
/// an unregistered major per minor given: opening such a node reaches the
/// kernel's driver lookup (ENXIO) when the device cgroup allows it, and
/// stops at the cgroup (EPERM) otherwise.
fn host_nodes(d: &Daemon, exp_minors: &[u64]) -> (PathBuf, u32) {
    let dir = d.root.join("hostdev");
    std::fs::create_dir(&dir).unwrap();
    for (name, kind, major, minor) in FORBIDDEN {
        make_node(&dir.join(name), kind, major, minor);
    }
    let exp = host::unused_char_major().expect("a free experimental character major");
    for m in exp_minors {
        make_node(&dir.join(format!("exp{m}")), SFlag::S_IFCHR, exp.into(), *m);
    }
    (dir, exp)
}

/// Builds a probe script from (name, command, expected) and the lines it
/// must print.
fn script(probes: &[(&str, &str, &str)]) -> (String, Vec<String>) {
    let mut s = String::from(PROBE);
    let mut want = Vec::new();
    for (name, cmd, expect) in probes {
        s.push_str(&format!("p {name} '{cmd}'; "));
        want.push(format!("{name} {expect}"));
    }
    (s, want)
}

/// What a default container (and a command exec'd into it) may do with
/// devices: the default nodes work, mknod of anything else fails, and host
/// nodes that are there all the same cannot be opened.
fn default_probes() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("null", "echo x > /dev/null", "ok"),
        ("zero", "head -c 1 /dev/zero | wc -c | grep -qx 1", "ok"),
        ("full", "echo x > /dev/full", "No space left on device"),
        ("urandom", "head -c 1 /dev/urandom > /dev/null", "ok"),
        ("ptmx", "true <> /dev/ptmx", "ok"),
        ("mknod-null", "mknod /tmp/n c 1 3 && echo x > /tmp/n", "ok"),
        (
            "mknod-loop0",
            "mknod /tmp/l b 7 0",
            "Operation not permitted",
        ),
        (
            "mknod-tty1",
            "mknod /tmp/t c 4 1",
            "Operation not permitted",
        ),
        (
            "mknod-nvidiactl",
            "mknod /tmp/g c 195 255",
            "Operation not permitted",
        ),
        // Opened and closed only: nothing is read or written.
        (
            "loop-control",
            "true <> /h/loop-control",
            "Operation not permitted",
        ),
        ("tty1", "true < /h/tty1", "Operation not permitted"),
        ("vcs", "true < /h/vcs", "Operation not permitted"),
        ("loop0-r", "true < /h/loop0", "Operation not permitted"),
        ("loop0-w", "true >> /h/loop0", "Operation not permitted"),
        (
            "nvidiactl",
            "true <> /h/nvidiactl",
            "Operation not permitted",
        ),
        ("exp0", "true < /h/exp0", "Operation not permitted"),
    ]
}

#[test]
fn default_containers_get_the_default_devices_only() {
    let d = Daemon::start();
    let (dir, _) = host_nodes(&d, &[0]);
    let vol = format!("{}:/h", dir.display());
    let (s, want) = script(&default_probes());
    let out = d.cli(["run", "--rm", "-v", &vol, "default", "sh", "-c", &s]);
    assert_eq!(out.lines(), want, "{out:?}");

    // A command exec'd into a running container is confined the same way.
    let id = d.run_detached(&["-v", &vol, "default", "sleep", "300"]);
    let out = d.cli(["exec", &id, "sh", "-c", &s]);
    assert_eq!(out.lines(), want, "{out:?}");
    if host::cgroup_version() == host::CgroupVersion::V1 {
        // v1: the container's own devices cgroup holds docker's list.
        let list = d.cgroup_dir("devices", &id).join("devices.list");
        let text = std::fs::read_to_string(&list).unwrap();
        let mut got: Vec<&str> = text.lines().collect();
        got.sort_unstable();
        assert_eq!(
            got,
            [
                "c 136:* rwm",
                "c 1:3 rwm",
                "c 1:5 rwm",
                "c 1:7 rwm",
                "c 1:8 rwm",
                "c 1:9 rwm",
                "c 5:0 rwm",
                "c 5:1 rwm",
                "c 5:2 rwm"
            ]
        );
    }
    d.cli(["rm", "-f", &id]).ok();
    d.assert_no_leftovers();
}

#[test]
fn device_gives_exactly_what_was_asked() {
    let d = Daemon::start();
    let (dir, exp) = host_nodes(&d, &[0, 1, 2]);
    // Through a symlink: the canonical path is stored.
    let link = d.root.join("exp-link");
    std::os::unix::fs::symlink(dir.join("exp0"), &link).unwrap();
    let vol = format!("{}:/h", dir.display());
    let dev_r = format!("{}:/dev/exp:r", link.display());
    let mknod_exp = format!("mknod /tmp/e c {exp} 0");
    let mknod_exp1 = format!("mknod /tmp/e1 c {exp} 1");
    let (s, want) = script(&[
        // r only: opened for reading (reaching the driver lookup), never
        // for writing, no mknod.
        ("exp-r", "true < /dev/exp", "No such device or address"),
        ("exp-w", "true > /dev/exp", "Operation not permitted"),
        ("exp-rw", "true <> /dev/exp", "Operation not permitted"),
        ("exp-m", &mknod_exp, "Operation not permitted"),
        ("exp-kind", "test -c /dev/exp", "ok"),
        // rwm: everything, mknod included.
        ("exp1-rw", "true <> /dev/exp1", "No such device or address"),
        ("exp1-m", &mknod_exp1, "ok"),
        // The same major, a minor not given (the host's node, bound in).
        ("exp2", "true < /h/exp2", "Operation not permitted"),
        // A default device given again under another name.
        ("myzero", "head -c 3 /dev/myzero | wc -c | grep -qx 3", "ok"),
        // Not given: still refused.
        ("loop0", "true < /h/loop0", "Operation not permitted"),
    ]);
    let exp1 = format!("{}:/dev/exp1", dir.join("exp1").display());
    let out = d.cli([
        "run",
        "--rm",
        "-v",
        &vol,
        "--device",
        &dev_r,
        "--device",
        &exp1,
        "--device",
        "/dev/zero:/dev/myzero:r",
        "default",
        "sh",
        "-c",
        &s,
    ]);
    assert_eq!(out.lines(), want, "{out:?}");

    // Stored: canonical host path, the container path, permissions in
    // r, w, m order; the default container path is the host path.
    let id = d
        .create(CreateContainerRequest {
            no_start: true,
            security: Some(Security {
                devices: vec![
                    DeviceMapping {
                        host_path: link.display().to_string(),
                        container_path: "/dev/e".into(),
                        permissions: "mr".into(),
                    },
                    DeviceMapping {
                        host_path: "/dev/null".into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
            ..req(&["true"])
        })
        .unwrap()
        .id;
    let got: Vec<(String, String, String)> = d
        .get(&id)
        .unwrap()
        .security
        .unwrap()
        .devices
        .into_iter()
        .map(|d| (d.host_path, d.container_path, d.permissions))
        .collect();
    assert_eq!(
        got,
        [
            (
                dir.join("exp0").display().to_string(),
                "/dev/e".to_string(),
                "rm".to_string()
            ),
            ("/dev/null".into(), "/dev/null".into(), "rwm".into()),
        ]
    );
    d.cli(["rm", &id]).ok();
    d.assert_no_leftovers();
}

#[test]
fn invalid_devices_are_refused_and_leave_nothing() {
    let d = Daemon::start();
    std::fs::create_dir_all(&d.data_dir).unwrap();
    let in_data = d.data_dir.join("null");
    make_node(&in_data, SFlag::S_IFCHR, 1, 3);
    let mem = d.root.join("mem");
    make_node(&mem, SFlag::S_IFCHR, 1, 1);
    let in_data = in_data.display().to_string();
    let mem = mem.display().to_string();
    for (host, ctr, perms, why) in [
        ("dev/zero", "", "", "it must be an absolute path"),
        ("/dev/../dev/zero", "", "", "'..' is not allowed"),
        ("/dev/no-such-device", "", "", "cannot resolve it"),
        ("/etc/hostname", "", "", "is not a device node"),
        ("/dev", "/dev/x", "", "is not a device node"),
        (in_data.as_str(), "/dev/x", "", "in quiltd's data directory"),
        (mem.as_str(), "/dev/mem", "", "the host's physical memory"),
        ("/dev/zero", "relative", "", "must be an absolute path"),
        (
            "/dev/zero",
            "/proc/zero",
            "",
            "devices in /proc are not allowed",
        ),
        ("/dev/zero", "/sys/x", "", "devices in /sys are not allowed"),
        ("/dev/zero", "/dev/z", "rx", "invalid device permissions"),
        ("/dev/zero", "/dev/z", "rr", "invalid device permissions"),
    ] {
        let err = d
            .create(CreateContainerRequest {
                security: Some(Security {
                    devices: vec![DeviceMapping {
                        host_path: host.into(),
                        container_path: ctr.into(),
                        permissions: perms.into(),
                    }],
                    ..Default::default()
                }),
                ..req(&["true"])
            })
            .expect_err("an invalid device");
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{host} {ctr} {perms}: {err:?}"
        );
        assert!(err.message().contains(why), "{host}: {}", err.message());
    }
    // The CLI: exit 125 with the reason.
    for arg in [
        "/dev/no-such-device",
        "/etc/hostname",
        "dev/zero",
        "/dev/zero:/proc/z",
    ] {
        let out = d.cli(["run", "--rm", "--device", arg, "default", "true"]);
        out.expect_engine_error();
    }
    let out = d.cli(["create", "--device", &in_data, "default", "true"]);
    out.expect_engine_error();
    assert!(out.stderr.contains("data directory"), "{out:?}");
    assert!(d.list().is_empty());
    d.assert_no_leftovers();
}

#[test]
fn gpus_need_a_gpu() {
    let d = Daemon::start();
    let gpu_req = |gpus: &str| CreateContainerRequest {
        security: Some(Security {
            gpus: gpus.into(),
            ..Default::default()
        }),
        ..req(&["true"])
    };
    for bad in ["0", "lots", "device=", "device=x"] {
        let err = d.create(gpu_req(bad)).expect_err("an invalid --gpus");
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}: {err:?}");
        assert!(err.message().starts_with("invalid --gpus"), "{err:?}");
    }
    if Path::new("/dev/nvidiactl").exists() {
        // A GPU host: the request is accepted.
        let id = d.create(gpu_req("all")).unwrap().id;
        d.cli(["rm", "-f", &id]).ok();
    } else {
        for ok_form in ["all", "1", "device=0"] {
            let err = d.create(gpu_req(ok_form)).expect_err("no GPU here");
            assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
            assert!(
                err.message().starts_with("no NVIDIA GPU on this host"),
                "{err:?}"
            );
        }
        let out = d.cli(["run", "--rm", "--gpus", "all", "default", "true"]);
        out.expect_engine_error();
        assert!(out.stderr.contains("no NVIDIA GPU on this host"), "{out:?}");
    }
    assert!(d.list().is_empty());
    d.assert_no_leftovers();
}

#[test]
fn masked_paths_and_the_cgroup_namespace() {
    let d = Daemon::start();
    assert!(
        std::fs::read_dir("/sys/firmware").is_ok_and(|mut e| e.next().is_some()),
        "the test needs a host /sys/firmware with entries"
    );
    let mut s = String::new();
    let mut want = Vec::new();
    let mut masked = Vec::new();
    for dir in [
        "/proc/acpi",
        "/proc/asound",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ] {
        if Path::new(dir).is_dir() {
            s.push_str(&format!(
                "echo {dir} $(ls -A {dir} | wc -l); \
                 touch {dir}/x 2>/dev/null && echo {dir} writable || echo {dir} read-only; "
            ));
            want.push(format!("{dir} 0"));
            want.push(format!("{dir} read-only"));
            masked.push(dir);
        }
    }
    // One empty file system for them all, not one each.
    s.push_str(&format!(
        "stat -c %d {} | sort -u | wc -l; ",
        masked.join(" ")
    ));
    want.push("1".into());
    for (name, cmd) in [
        ("sysrq-trigger", "echo h > /proc/sysrq-trigger"),
        ("sysctl", "echo 1 > /proc/sys/kernel/sysrq"),
        ("keys", "test -s /proc/keys"),
        ("kcore", "test -s /proc/kcore"),
    ] {
        s.push_str(&format!(
            "{cmd} 2>/dev/null && echo {name} open || echo {name} closed; "
        ));
        want.push(format!("{name} closed"));
    }
    // Every hierarchy's cgroup is the namespace's root.
    s.push_str("grep -cv ':/$' /proc/self/cgroup; ");
    want.push("0".into());
    let out = d.cli(["run", "--rm", "default", "sh", "-c", &s]);
    assert_eq!(out.lines(), want, "{out:?}");

    // An exec'd command too.
    let id = d.run_detached(&["default", "sleep", "300"]);
    let out = d.cli(["exec", &id, "cat", "/proc/self/cgroup"]);
    let lines = out.lines();
    assert!(
        !lines.is_empty() && lines.iter().all(|l| l.ends_with(":/")),
        "{out:?}"
    );
    d.cli(["rm", "-f", &id]).ok();
    d.assert_no_leftovers();
}

/// keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0) through
/// perl's syscall(): the session keyring's serial (250 = SYS_keyctl on
/// x86_64).
const SESSION_KEYRING: &str = "print syscall(250, 0, -3, 0)";

#[test]
#[cfg(target_arch = "x86_64")]
fn a_fresh_session_keyring() {
    let d = Daemon::start();
    // The host's: what a container sharing it would see.
    let host_out = std::process::Command::new("perl")
        .args(["-e", SESSION_KEYRING])
        .output()
        .expect("the test needs perl on the host");
    let host_ring: i64 = String::from_utf8_lossy(&host_out.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(host_ring > 0, "{host_out:?}");
    d.cli_timeout(
        ["image", "build", "--from-host", "keyprobe", "--bin", "perl"],
        std::time::Duration::from_secs(120),
    )
    .ok();
    // seccomp=unconfined: the default profile refuses keyctl anyway; the
    // keyring must be fresh without it too.
    let ring = |args: &[&str]| -> i64 {
        let out = d.cli(args);
        out.ok()
            .parse()
            .unwrap_or_else(|e| panic!("not a serial ({e}): {out:?}"))
    };
    let run = [
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "keyprobe",
        "perl",
        "-e",
        SESSION_KEYRING,
    ];
    let (a, b) = (ring(&run), ring(&run));
    assert!(a > 0 && b > 0, "{a} {b}");
    assert_ne!(
        a, host_ring,
        "the container shares the host's session keyring"
    );
    assert_ne!(a, b, "two containers share a session keyring");

    let id = d.run_detached(&[
        "--security-opt",
        "seccomp=unconfined",
        "keyprobe",
        "sleep",
        "300",
    ]);
    let exec = ["exec", id.as_str(), "perl", "-e", SESSION_KEYRING];
    let (e1, e2) = (ring(&exec), ring(&exec));
    assert!(e1 > 0 && e2 > 0);
    assert!(
        ![host_ring, a, b].contains(&e1) && e1 != e2,
        "exec'd commands get keyrings of their own: {e1} {e2} (host {host_ring}, containers {a} {b})"
    );
    d.cli(["rm", "-f", &id]).ok();
    d.cli(["image", "rm", "keyprobe"]).ok();
    d.assert_no_leftovers();
}
