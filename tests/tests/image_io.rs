//! Images in and out: `commit` (running and stopped containers, with
//! changes), `export` (mounts left out), `save` / `load` round trips
//! (through files and pipes, read back by skopeo too), `tag`, and bad
//! input that leaves nothing behind.
use std::path::Path;
use std::process::Command;

use quilt_tests::Daemon;
use quilt_tests::daemon::bin_dir;

/// The entry names of a tar file.
fn tar_names(path: &Path) -> Vec<String> {
    let f = std::fs::File::open(path).expect("open tar");
    let mut a = tar::Archive::new(f);
    a.entries()
        .expect("tar entries")
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

/// A shell pipeline with `quilt` meaning this daemon's CLI.
fn sh(d: &Daemon, script: &str) -> std::process::Output {
    let quilt = format!(
        "{} --socket {}",
        bin_dir().join("quilt").display(),
        d.socket.display()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script.replace("QUILT", &quilt))
        .output()
        .expect("run sh")
}

fn scratch_dirs(d: &Daemon) -> Vec<String> {
    std::fs::read_dir(d.data_dir.join("images"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".tmp-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn commit_export_save_load_and_tag() {
    let d = Daemon::start();
    let tmp = tempfile::tempdir().unwrap();

    // A stopped container's changes become an image with new settings.
    let out = d.cli([
        "run",
        "--name",
        "maker",
        "-e",
        "FROM_RUN=1",
        "default",
        "sh",
        "-c",
        "mkdir -p /data && echo made-here > /data/hello && rm /etc/shadow",
    ]);
    out.ok();
    let id = d
        .cli([
            "commit",
            "-m",
            "first",
            "-a",
            "tester",
            "-c",
            r#"CMD ["cat", "/data/hello"]"#,
            "-c",
            "ENV COMMITTED=yes",
            "-c",
            "WORKDIR /data",
            "maker",
            "snap:1",
        ])
        .ok();
    assert!(id.starts_with("sha256:"), "commit printed {id:?}");
    assert_eq!(d.cli(["run", "--rm", "snap:1"]).ok(), "made-here");
    let env = d
        .cli([
            "run",
            "--rm",
            "snap:1",
            "sh",
            "-c",
            "echo $COMMITTED $FROM_RUN; pwd; test -e /etc/shadow || echo no-shadow",
        ])
        .ok();
    assert_eq!(env, "yes 1\n/data\nno-shadow");
    let inspect = d.cli(["image", "inspect", "snap:1"]).json();
    assert_eq!(inspect[0]["id"], id.as_str());
    assert_eq!(inspect[0]["config"]["cmd"][1], "/data/hello");

    // A running container (with a volume) is committed and exported
    // without what is mounted in it.
    d.cli(["volume", "create", "vol"]).ok();
    let running = d.run_detached(&[
        "-v",
        "vol:/vol",
        "default",
        "sh",
        "-c",
        "echo in-vol > /vol/v; echo live > /live; exec sleep 600",
    ]);
    d.cli(["exec", &running, "cat", "/live"]).ok();
    d.cli(["commit", &running, "live:latest"]).ok();
    assert_eq!(
        d.cli([
            "run",
            "--rm",
            "live",
            "sh",
            "-c",
            "cat /live; ls /vol | wc -l"
        ])
        .ok(),
        "live\n0"
    );
    let status = d.status_json(&running);
    assert_eq!(
        status["state"], "running",
        "commit leaves it running: {status}"
    );
    let exported = tmp.path().join("export.tar");
    d.cli(["export", "-o", exported.to_str().unwrap(), &running])
        .ok();
    let names = tar_names(&exported);
    assert!(names.iter().any(|n| n == "live"), "{names:?}");
    assert!(names.iter().any(|n| n == "bin/busybox"), "{names:?}");
    assert!(
        names.iter().any(|n| n == "proc"),
        "the mount point is kept: {names:?}"
    );
    for n in &names {
        assert!(
            !n.starts_with('/')
                && !n.starts_with("proc/")
                && !n.starts_with("sys/")
                && !n.starts_with("vol/"),
            "exported what a mount holds, or an absolute name: {n}"
        );
    }
    // A stopped container exports too.
    let stopped = tmp.path().join("stopped.tar");
    d.cli(["export", "-o", stopped.to_str().unwrap(), "maker"])
        .ok();
    assert!(tar_names(&stopped).iter().any(|n| n == "data/hello"));

    // save -> rmi -> load, through a file, and through pipes.
    let archive = tmp.path().join("snap.tar");
    d.cli(["save", "-o", archive.to_str().unwrap(), "snap:1"])
        .ok();
    let names = tar_names(&archive);
    assert!(names.iter().any(|n| n == "manifest.json"), "{names:?}");
    let skopeo = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            &format!("docker-archive:{}", archive.display()),
        ])
        .output()
        .expect("skopeo (scripts/deps.sh installs it)");
    assert!(
        skopeo.status.success(),
        "skopeo cannot read the archive: {}",
        String::from_utf8_lossy(&skopeo.stderr)
    );
    d.cli(["rm", "maker"]).ok();
    d.cli(["rmi", "snap:1"]).ok();
    d.cli(["run", "--rm", "snap:1"]).expect_engine_error();
    let loaded = d.cli(["load", "-q", "-i", archive.to_str().unwrap()]).ok();
    assert_eq!(loaded, "Loaded image: snap:1");
    assert_eq!(d.cli(["run", "--rm", "snap:1"]).ok(), "made-here");
    let piped = sh(&d, "QUILT save snap:1 live | QUILT image load");
    assert!(
        piped.status.success(),
        "save | load: {}",
        String::from_utf8_lossy(&piped.stderr)
    );
    let text = String::from_utf8_lossy(&piped.stdout);
    assert!(
        text.contains("Loaded image: snap:1") && text.contains("Loaded image: live:latest"),
        "{text}"
    );

    // tag: another name for the same image.
    d.cli(["tag", "snap:1", "other"]).ok();
    let other = d.cli(["image", "inspect", "other:latest"]).json();
    let snap = d.cli(["image", "inspect", "snap:1"]).json();
    assert_eq!(other[0]["id"], snap[0]["id"]);
    assert_eq!(d.cli(["run", "--rm", "other"]).ok(), "made-here");

    // Bad input: clear errors, nothing left behind.
    d.cli(["commit", "no-such-container", "x"])
        .expect_engine_error();
    let bad = d.cli(["commit", "-c", "RUN rm -rf /", &running, "x"]);
    bad.expect_engine_error();
    assert!(bad.stderr.contains("RUN"), "{bad:?}");
    d.cli(["tag", "no-such-image", "x"]).expect_engine_error();
    d.cli(["tag", "snap:1", "Bad Name"]).expect_engine_error();
    let missing = tmp.path().join("missing.tar");
    d.cli(["save", "-o", missing.to_str().unwrap(), "no-such-image"])
        .expect_engine_error();
    assert!(!missing.exists(), "a failed save leaves its file behind");
    let garbage = tmp.path().join("garbage.tar");
    std::fs::write(&garbage, b"this is not a tar archive at all").unwrap();
    d.cli(["load", "-i", garbage.to_str().unwrap()])
        .expect_engine_error();
    let empty = sh(&d, "QUILT load < /dev/null");
    assert!(!empty.status.success());
    let truncated = tmp.path().join("truncated.tar");
    let bytes = std::fs::read(&archive).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    d.cli(["load", "-i", truncated.to_str().unwrap()])
        .expect_engine_error();
    assert_eq!(scratch_dirs(&d), Vec::<String>::new());

    d.cli(["rm", "-f", &running]).ok();
    d.cli(["volume", "rm", "vol"]).ok();
    d.assert_no_leftovers();
}
