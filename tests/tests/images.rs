//! The image store: `docker save` archives and OCI layouts made here (two
//! layers, the second with whiteouts), image ls/inspect/rm, names in
//! `run`, host builds, and bad archives.
use std::io::Write;
use std::path::{Path, PathBuf};

use quilt_testkit::tar::header;
use quilt_tests::Daemon;
use sha2::{Digest, Sha256};

/// A tar archive built in memory.
struct TarBuf(tar::Builder<Vec<u8>>);

impl TarBuf {
    fn new() -> Self {
        TarBuf(tar::Builder::new(Vec::new()))
    }

    fn dir(mut self, path: &str) -> Self {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        self.0
            .append_data(&mut h, path, std::io::empty())
            .expect("tar dir");
        self
    }

    fn file(mut self, path: &str, mode: u32, data: &[u8]) -> Self {
        let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
        self.0.append_data(&mut h, path, data).expect("tar file");
        self
    }

    fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        self.0.append_link(&mut h, path, target).expect("tar link");
        self
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().expect("finish tar")
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Layer 1: busybox with a shell, files and a directory with content.
/// Layer 2: whiteouts (one file, one opaque directory) and new files.
fn layers() -> (Vec<u8>, Vec<u8>) {
    let busybox = std::fs::read("/bin/busybox").expect("the tests need /bin/busybox");
    let l1 = TarBuf::new()
        .dir("bin/")
        .file("bin/busybox", 0o755, &busybox)
        .symlink("bin/sh", "busybox")
        .symlink("bin/cat", "busybox")
        .symlink("bin/ls", "busybox")
        .symlink("bin/test", "busybox")
        .symlink("bin/sleep", "busybox")
        .dir("etc/")
        .file("etc/keep", 0o644, b"keep\n")
        .file("etc/deleted", 0o644, b"gone\n")
        .dir("opq/")
        .file("opq/old", 0o644, b"old\n")
        .dir("opq/sub/")
        .file("opq/sub/x", 0o644, b"x\n")
        .bytes();
    let l2 = TarBuf::new()
        .dir("etc/")
        .file("etc/.wh.deleted", 0o644, b"")
        .file("etc/added", 0o644, b"added\n")
        .dir("opq/")
        .file("opq/.wh..wh..opq", 0o644, b"")
        .file("opq/new", 0o644, b"new\n")
        .bytes();
    (l1, l2)
}

/// A `docker save` archive: manifest.json, a config, layer 1 plain and
/// layer 2 gzipped.
fn docker_save(dir: &Path) -> PathBuf {
    let (l1, l2) = layers();
    let manifest = serde_json::json!([{
        "Config": "config.json",
        "RepoTags": ["quilt-test:latest"],
        "Layers": ["l1/layer.tar", "l2/layer.tar"],
    }]);
    let tar = TarBuf::new()
        .file(
            "config.json",
            0o644,
            br#"{"architecture":"amd64","os":"linux"}"#,
        )
        .dir("l1/")
        .file("l1/layer.tar", 0o644, &l1)
        .dir("l2/")
        .file("l2/layer.tar", 0o644, &gzip(&l2))
        .file("manifest.json", 0o644, manifest.to_string().as_bytes())
        .bytes();
    let p = dir.join("docker-save.tar");
    std::fs::write(&p, tar).unwrap();
    p
}

/// An OCI image layout directory (layer 1 gzipped, layer 2 plain).
fn oci_layout(dir: &Path) -> PathBuf {
    let (l1, l2) = layers();
    let root = dir.join("oci");
    let blobs = root.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let d = sha(data);
        std::fs::write(blobs.join(&d), data).unwrap();
        (format!("sha256:{d}"), data.len())
    };
    let l1 = gzip(&l1);
    let (d1, s1) = put(&l1);
    let (d2, s2) = put(&l2);
    let (dc, sc) = put(br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}"#);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": dc, "size": sc},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d1, "size": s1},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d2, "size": s2},
        ],
    });
    let (dm, sm) = put(manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": dm, "size": sm}],
    });
    std::fs::write(root.join("index.json"), index.to_string()).unwrap();
    std::fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    root
}

/// The OCI layout directory as a tar file.
fn tar_of(dir: &Path, out: &Path) -> PathBuf {
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", dir).unwrap();
    std::fs::write(out, b.into_inner().unwrap()).unwrap();
    out.to_path_buf()
}

const CHECK: &str = "cat /etc/keep /etc/added /opq/new; ls /opq; \
    test -e /etc/deleted || echo deleted-gone; test -e /opq/old || echo old-gone; \
    test -e /opq/sub || echo sub-gone";

/// Runs the layered image and checks what the whiteouts left.
#[track_caller]
fn check_layers(d: &Daemon, image: &str) {
    let out = d.cli(["run", "--rm", image, "sh", "-c", CHECK]);
    assert_eq!(
        out.lines(),
        [
            "keep",
            "added",
            "new",
            "new",
            "deleted-gone",
            "old-gone",
            "sub-gone"
        ],
        "{out:?}"
    );
}

fn image_dirs(d: &Daemon) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.data_dir.join("images"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn docker_save_archive_with_whiteouts() {
    let d = Daemon::start();
    let src = tempfile::tempdir().unwrap();
    let archive = docker_save(src.path());
    let id = d
        .cli(["image", "import", archive.to_str().unwrap(), "--name", "ds"])
        .ok();
    let file_hex = sha(&std::fs::read(&archive).unwrap());
    assert_eq!(id, format!("sha256:{file_hex}"));
    check_layers(&d, "ds");
    // The id (full or short) works as well as the name.
    check_layers(&d, &id);

    let info = d.cli(["image", "inspect", "ds"]).ok();
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    let info = &info[0];
    assert_eq!(info["id"], id.as_str());
    assert_eq!(info["source"], "docker-save");
    assert_eq!(info["names"], serde_json::json!(["ds"]));
    assert_eq!(info["layers"].as_array().map(Vec::len), Some(2), "{info}");
    assert!(info["size_bytes"].as_u64().unwrap() > 100_000, "{info}");

    // Importing again: same id, one more name, nothing unpacked twice.
    let before = image_dirs(&d);
    let again = d
        .cli([
            "image",
            "import",
            archive.to_str().unwrap(),
            "--name",
            "ds2",
        ])
        .ok();
    assert_eq!(again, id);
    assert_eq!(image_dirs(&d), before);
    let ls = d.cli(["image", "ls", "--format", "json"]).json();
    let ls = ls.as_array().unwrap();
    assert_eq!(ls.len(), 1, "{ls:?}");
    assert_eq!(ls[0]["names"], serde_json::json!(["ds", "ds2"]));
    let table = d.cli(["image", "ls"]).ok();
    assert!(
        table.contains("ds,ds2") && table.contains(&file_hex[..12]),
        "{table}"
    );

    // With two names, rm drops the name only.
    assert_eq!(d.cli(["image", "rm", "ds2"]).ok(), id);
    assert!(
        d.data_dir
            .join(format!("images/sha256-{file_hex}"))
            .is_dir()
    );

    // In use: refused, by name and by id; allowed once the container is gone.
    let cid = d.run_detached(&["ds", "sleep", "300"]);
    for r in ["ds", id.as_str()] {
        let out = d.cli(["image", "rm", r]);
        out.expect_engine_error();
        assert!(out.stderr.contains("in use"), "{out:?}");
    }
    let ls = d.cli(["image", "ls", "--format", "json"]).json();
    assert_eq!(ls[0]["containers"], 1);
    d.cli(["rm", "-f", &cid]).ok();
    assert_eq!(d.cli(["image", "rm", "ds"]).ok(), id);
    assert!(
        !d.data_dir
            .join(format!("images/sha256-{file_hex}"))
            .exists()
    );
    assert_eq!(
        d.cli(["image", "ls", "--format", "json"]).json(),
        serde_json::json!([])
    );
    let out = d.cli(["run", "--rm", "ds", "true"]);
    out.expect_engine_error();
    assert!(out.stderr.contains("no such image"), "{out:?}");
    d.assert_no_leftovers();
}

#[test]
fn oci_layout_directory_and_tar() {
    let d = Daemon::start();
    let src = tempfile::tempdir().unwrap();
    let layout = oci_layout(src.path());
    let id = d
        .cli(["image", "import", layout.to_str().unwrap(), "--name", "oci"])
        .ok();
    assert!(id.starts_with("sha256:"), "{id}");
    check_layers(&d, "oci");
    let info = d.cli(["image", "inspect", "oci"]).json();
    assert_eq!(info[0]["source"], "oci-layout");
    let layers = info[0]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    // The digests are the blobs' names.
    for l in layers {
        let hex = l.as_str().unwrap().strip_prefix("sha256:").unwrap();
        assert!(layout.join("blobs/sha256").join(hex).is_file(), "{l}");
    }

    // The same layout as a tar archive.
    let tarball = tar_of(&layout, &src.path().join("oci.tar"));
    let tar_id = d
        .cli([
            "image",
            "import",
            tarball.to_str().unwrap(),
            "--name",
            "oci-tar",
        ])
        .ok();
    assert_eq!(
        tar_id,
        format!("sha256:{}", sha(&std::fs::read(&tarball).unwrap()))
    );
    check_layers(&d, "oci-tar");
    // Re-pointing a name does not affect containers created before.
    let cid = d
        .cli([
            "create",
            "--no-start",
            "--name",
            "pinned",
            "oci",
            "cat",
            "/etc/keep",
        ])
        .ok();
    d.cli([
        "image",
        "import",
        tarball.to_str().unwrap(),
        "--name",
        "oci",
    ])
    .ok();
    let c = d.status_json(&cid);
    assert_eq!(c["image"], id.as_str(), "{c}");
    d.cli(["rm", &cid]).ok();
    for r in ["oci", "oci-tar", id.as_str()] {
        d.cli(["image", "rm", r]).ok();
    }
    assert!(
        image_dirs(&d).iter().all(|n| !n.starts_with("sha256-")),
        "{:?}",
        image_dirs(&d)
    );
    d.assert_no_leftovers();
}

#[test]
fn rootfs_tarball_and_directory() {
    let d = Daemon::start();
    let src = tempfile::tempdir().unwrap();
    let (l1, _) = layers();
    let tgz = src.path().join("rootfs.tgz");
    std::fs::write(&tgz, gzip(&l1)).unwrap();
    let id = d
        .cli(["image", "import", tgz.to_str().unwrap(), "--name", "plain"])
        .ok();
    assert_eq!(id, format!("sha256:{}", sha(&std::fs::read(&tgz).unwrap())));
    assert_eq!(
        d.cli(["run", "--rm", "plain", "cat", "/etc/keep", "/etc/deleted"])
            .ok(),
        "keep\ngone"
    );
    let info = d.cli(["image", "inspect", "plain"]).json();
    assert_eq!(info[0]["source"], "rootfs-tar");
    assert_eq!(info[0]["layers"], serde_json::json!([]));

    let dir = src.path().join("rootfs");
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
    std::fs::write(dir.join("hello"), "from a directory\n").unwrap();
    d.cli(["image", "import", dir.to_str().unwrap(), "--name", "dir"])
        .ok();
    // The store holds a copy: changing the source does not change the image.
    std::fs::write(dir.join("hello"), "changed\n").unwrap();
    assert_eq!(
        d.cli(["run", "--rm", "dir", "sh", "-c", "read l < /hello; echo $l"])
            .ok(),
        "from a directory"
    );
    assert_eq!(
        d.cli(["image", "inspect", "dir"]).json()[0]["source"],
        "rootfs-dir"
    );
    // A store directory without a row (an import whose daemon died before
    // recording it) is swept at the next start; recorded images stay.
    let orphan = format!("sha256-{}", "ab".repeat(32));
    std::fs::create_dir_all(d.data_dir.join("images").join(&orphan).join("rootfs/etc")).unwrap();
    let mut d = d;
    d.restart();
    assert!(!image_dirs(&d).contains(&orphan), "{:?}", image_dirs(&d));
    assert_eq!(
        d.cli(["run", "--rm", "plain", "cat", "/etc/keep"]).ok(),
        "keep"
    );
    for n in ["plain", "dir"] {
        d.cli(["image", "rm", n]).ok();
    }
    d.assert_no_leftovers();
}

#[test]
fn bad_archives_are_refused_cleanly() {
    let d = Daemon::start();
    let src = tempfile::tempdir().unwrap();
    let garbage = src.path().join("garbage.tar");
    std::fs::write(&garbage, vec![0x5a; 4096]).unwrap();
    let empty = src.path().join("empty.tar");
    std::fs::write(&empty, vec![0; 1024]).unwrap();
    // A docker-save whose manifest names a layer that is not there.
    let broken = src.path().join("broken.tar");
    std::fs::write(
        &broken,
        TarBuf::new()
            .file(
                "manifest.json",
                0o644,
                br#"[{"Config":"c.json","Layers":["nope/layer.tar"]}]"#,
            )
            .bytes(),
    )
    .unwrap();
    for (path, why) in [
        (&garbage, "tar"),
        (&empty, "no files"),
        (&broken, "nope/layer.tar"),
    ] {
        let out = d.cli(["image", "import", path.to_str().unwrap(), "--name", "bad"]);
        out.expect_engine_error();
        assert!(out.stderr.contains(why), "{out:?}");
    }
    let out = d.cli(["image", "import", "/nonexistent/x.tar"]);
    out.expect_engine_error();
    let out = d.cli([
        "image",
        "import",
        garbage.to_str().unwrap(),
        "--name",
        "default",
    ]);
    out.expect_engine_error();
    assert!(out.stderr.contains("invalid image name"), "{out:?}");
    assert!(image_dirs(&d).is_empty(), "{:?}", image_dirs(&d));
    assert_eq!(
        d.cli(["image", "ls", "--format", "json"]).json(),
        serde_json::json!([])
    );
    d.cli(["image", "rm", "bad"]).expect_engine_error();
    // A host build naming a program that does not exist.
    let out = d.cli([
        "image",
        "build",
        "--from-host",
        "nope",
        "--bin",
        "no-such-program-q",
    ]);
    out.expect_engine_error();
    assert!(
        out.stderr
            .contains("\"no-such-program-q\": not found in PATH"),
        "{out:?}"
    );
    assert!(image_dirs(&d).is_empty(), "{:?}", image_dirs(&d));
    d.assert_no_leftovers();
}

fn on_host_path(prog: &str) -> bool {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .any(|d| Path::new(d).join(prog).is_file())
}

#[test]
fn host_build_runs_python_and_git() {
    let d = Daemon::start();
    assert!(
        on_host_path("python3"),
        "the tests need python3 on the host"
    );
    // scripts/test.sh and .ci/run install both.
    assert!(on_host_path("git"), "the tests need git on the host");
    let args = vec![
        "image",
        "build",
        "--from-host",
        "tools",
        "--bin",
        "python3",
        "--bin",
        "git",
    ];
    let id = d
        .cli_timeout(args, std::time::Duration::from_secs(300))
        .ok();
    assert!(id.starts_with("sha256:"), "{id}");
    let out = d.cli(["run", "--rm", "tools", "python3", "-c", "print(6*7)"]);
    assert_eq!(out.ok(), "42");
    // The standard library is there, C extensions included.
    let out = d.cli([
        "run",
        "--rm",
        "tools",
        "python3",
        "-c",
        "import json, hashlib; print(json.dumps([hashlib.sha256(b'').hexdigest()[:8]]))",
    ]);
    assert_eq!(out.ok(), r#"["e3b0c442"]"#);
    // The busybox base gives a shell too.
    assert_eq!(
        d.cli(["run", "--rm", "tools", "sh", "-c", "echo ok"]).ok(),
        "ok"
    );
    let out = d.cli([
        "run",
        "--rm",
        "tools",
        "sh",
        "-c",
        "git init -q /tmp/r && cd /tmp/r && echo hi > f && git add f && \
         git -c user.name=q -c user.email=q@q commit -q -m one && git log --format=%s",
    ]);
    assert_eq!(out.ok(), "one");
    let info = d.cli(["image", "inspect", "tools"]).json();
    assert_eq!(info[0]["source"], "host-build");
    let size = info[0]["size_bytes"].as_u64().unwrap();
    assert!(size < 400 * 1024 * 1024, "image is {size} bytes");
    d.cli(["image", "rm", "tools"]).ok();
    d.assert_no_leftovers();
}

#[test]
fn import_streams_progress_then_the_image() {
    use quilt_tests::api::image_service_client::ImageServiceClient;
    use quilt_tests::api::import_image_response::Item;
    let d = Daemon::start();
    let src = tempfile::tempdir().unwrap();
    let archive = docker_save(src.path());
    let items = d.block_on(async {
        let ch = quilt_tests::connect_uds(&d.socket).await.unwrap();
        let mut c = ImageServiceClient::new(ch);
        let mut stream = quilt_tests::within(
            quilt_tests::RPC_TIMEOUT,
            "ImportImage",
            c.import_image(quilt_tests::api::ImportImageRequest {
                path: archive.to_string_lossy().into_owned(),
                name: "p".into(),
            }),
        )
        .await
        .unwrap()
        .into_inner();
        let mut items = Vec::new();
        loop {
            let next = quilt_tests::within(quilt_tests::RPC_TIMEOUT, "stream", async {
                stream.message().await
            })
            .await
            .unwrap();
            match next {
                Some(m) => items.push(m.item.expect("empty item")),
                None => break items,
            }
        }
    });
    let (last, progress) = items.split_last().expect("no items");
    let Item::Image(img) = last else {
        panic!("the last item is not the image: {items:?}")
    };
    assert_eq!(img.names, ["p"]);
    let phases: Vec<&str> = progress
        .iter()
        .map(|i| match i {
            Item::Progress(p) => {
                assert!(p.done_bytes <= p.total_bytes, "{p:?}");
                p.phase.as_str()
            }
            Item::Image(_) => panic!("two images: {items:?}"),
        })
        .collect();
    for want in ["hashing", "extracting layer 1/2", "extracting layer 2/2"] {
        assert!(phases.contains(&want), "{want} missing from {phases:?}");
    }
    // Relative paths are refused by the API (the CLI makes them absolute).
    let err = d.block_on(async {
        let ch = quilt_tests::connect_uds(&d.socket).await.unwrap();
        let mut c = ImageServiceClient::new(ch);
        let mut s = c
            .import_image(quilt_tests::api::ImportImageRequest {
                path: "rel.tar".into(),
                name: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        loop {
            match s.message().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("a relative path was accepted"),
                Err(e) => break e,
            }
        }
    });
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    d.cli(["image", "rm", "p"]).ok();
    d.assert_no_leftovers();
}

/// A container created straight from a tarball path keeps its rootfs when an
/// imported image with the same content is removed (the path cache and the
/// store do not share directories).
#[test]
fn image_rm_spares_a_container_created_from_the_same_tarball_path() {
    let d = Daemon::start();
    let src = tempfile::tempdir().unwrap();
    let (l1, _) = layers();
    let tgz = src.path().join("same.tgz");
    std::fs::write(&tgz, gzip(&l1)).unwrap();
    let path = tgz.to_str().unwrap();
    let by_path = d.run_detached(&[path, "sleep", "1000"]);
    d.cli(["image", "import", path, "--name", "twin"]).ok();
    d.cli(["image", "rm", "twin"]).ok();
    // The running container still reads its image, and a fresh start of it
    // (a new overlay over the cached rootfs) works too.
    assert_eq!(
        d.cli(["exec", &by_path, "--", "cat", "/etc/keep"]).ok(),
        "keep"
    );
    d.cli(["stop", "-t", "0", &by_path]).ok();
    d.cli(["start", &by_path]).ok();
    assert_eq!(
        d.cli(["exec", &by_path, "--", "cat", "/etc/keep"]).ok(),
        "keep"
    );
    d.cli(["rm", "-f", &by_path]).ok();
    d.assert_no_leftovers();
}

#[test]
fn unreadable_import_sources_are_the_callers_error() {
    let d = Daemon::start();
    let fifo = d.root.join("a-fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for (src, code) in [
        ("/dev/zero", 125),
        (fifo.to_str().unwrap(), 125),
        ("/nonexistent/image.tar", 125),
    ] {
        let out = d.cli(["image", "import", src]);
        assert_eq!(out.code, Some(code), "{src}: {out:?}");
        assert!(
            out.stderr.contains("not a regular file") || out.stderr.contains("does not exist"),
            "{src}: {out:?}"
        );
    }
    d.assert_no_leftovers();
}
