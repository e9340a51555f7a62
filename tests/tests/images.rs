//! The image store: `docker save` archives and OCI layouts made here (two
//! layers, the second with whiteouts), image ls/inspect/rm, names in
//! `run`, host builds, and bad archives.
use std::io::Write;
use std::path::{Path, PathBuf};

use quilt_testkit::tar::TarBuf;
use quilt_tests::Daemon;
use sha2::{Digest, Sha256};

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
    let l1 = TarBuf::new()
        .busybox(&["sh", "cat", "ls", "test", "sleep"])
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

const DOCKER_CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux"}"#;

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
        .file("config.json", 0o644, DOCKER_CONFIG)
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
    // Identified as docker does: by the digest of its configuration.
    let file_hex = sha(DOCKER_CONFIG);
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
    // A missing name that looks like a registry reference is pulled first
    // (docker's behaviour); here no registry is reachable.
    let out = d.cli(["run", "--rm", "ds", "true"]);
    out.expect_engine_error();
    assert!(
        out.stderr.contains("no such image") || out.stderr.contains("cannot pull ds"),
        "{out:?}"
    );
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
    // The same image (identified by its manifest), whatever its container.
    assert_eq!(tar_id, id);
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
    for r in ["oci", "oci-tar"] {
        d.cli(["image", "rm", r]).ok();
    }
    d.cli(["image", "rm", id.as_str()]).expect_engine_error();
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
            .file("c.json", 0o644, b"{}")
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
                tag: String::new(),
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
                tag: String::new(),
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

/// Writes an OCI image layout at `root` holding one image per
/// `(ref name, config JSON, layers)`; layers are stored plain (the same
/// layer in two images is one blob).
fn oci_multi(root: &Path, images: &[(&str, serde_json::Value, Vec<Vec<u8>>)]) -> PathBuf {
    let blobs = root.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let d = sha(data);
        std::fs::write(blobs.join(&d), data).unwrap();
        serde_json::json!({"digest": format!("sha256:{d}"), "size": data.len()})
    };
    let mut manifests = Vec::new();
    for (tag, config, layers) in images {
        let mut c = put(config.to_string().as_bytes());
        c["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
        let ls: Vec<serde_json::Value> = layers
            .iter()
            .map(|l| {
                let mut d = put(l);
                d["mediaType"] = "application/vnd.oci.image.layer.v1.tar".into();
                d
            })
            .collect();
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": c,
            "layers": ls,
        });
        let mut d = put(m.to_string().as_bytes());
        d["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
        d["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
        manifests.push(d);
    }
    let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
    std::fs::write(root.join("index.json"), index.to_string()).unwrap();
    std::fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    root.to_path_buf()
}

/// A `docker save` archive holding one image per `(repo:tag, config,
/// layers)`.
fn docker_multi(path: &Path, images: &[(&str, serde_json::Value, Vec<Vec<u8>>)]) -> PathBuf {
    let mut tar = TarBuf::new();
    let mut manifest = Vec::new();
    for (i, (tag, config, layers)) in images.iter().enumerate() {
        let cfg = format!("c{i}.json");
        tar = tar.file(&cfg, 0o644, config.to_string().as_bytes());
        let mut names = Vec::new();
        for (j, l) in layers.iter().enumerate() {
            let name = format!("i{i}l{j}/layer.tar");
            tar = tar.file(&name, 0o644, l);
            names.push(name);
        }
        manifest.push(serde_json::json!({"Config": cfg, "RepoTags": [tag], "Layers": names}));
    }
    let tar = tar
        .file(
            "manifest.json",
            0o644,
            serde_json::Value::Array(manifest).to_string().as_bytes(),
        )
        .bytes();
    std::fs::write(path, tar).unwrap();
    path.to_path_buf()
}

/// An image configuration setting everything a container takes from it.
fn full_config() -> serde_json::Value {
    serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {
            // An entry without '=' cannot be set: left out, not refused.
            "Env": ["PATH=/usr/local/bin:/bin", "GREETING=hello", "KEEP=image", "NOVALUE"],
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["echo $GREETING $KEEP from $(pwd) as $(id -u):$(id -g)"],
            "WorkingDir": "/srv",
            "User": "1000:1000",
            "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
            "Labels": {"org.test.kind": "config"},
            "StopSignal": "SIGQUIT"
        },
        "rootfs": {"type": "layers", "diff_ids": []}
    })
}

/// The two layers of `layers()` (the second with whiteouts) and a third
/// with the working directory and `id`.
fn config_layers() -> Vec<Vec<u8>> {
    let (l1, l2) = layers();
    let l3 = TarBuf::new()
        .dir("srv/")
        .dir("bin/")
        .symlink("bin/id", "busybox")
        .bytes();
    vec![l1, l2, l3]
}

/// What a container of an image made with `full_config()` runs with.
#[track_caller]
fn check_config(d: &Daemon, image: &str) {
    // No command: Entrypoint + Cmd, as the image's user in its WorkingDir,
    // with its Env.
    assert_eq!(
        d.cli(["run", "--rm", image]).ok(),
        "hello image from /srv as 1000:1000"
    );
    // -e overrides the image's Env per key; -u and -w its User and WorkingDir.
    assert_eq!(
        d.cli([
            "run",
            "--rm",
            "-e",
            "KEEP=mine",
            "-u",
            "0",
            "-w",
            "/",
            image
        ])
        .ok(),
        "hello mine from / as 0:0"
    );
    // A command replaces Cmd and goes after the Entrypoint.
    assert_eq!(d.cli(["run", "--rm", image, "echo args"]).ok(), "args");
    // --entrypoint replaces the Entrypoint and drops Cmd.
    assert_eq!(
        d.cli([
            "run",
            "--rm",
            "--entrypoint",
            "/bin/cat",
            image,
            "/etc/keep"
        ])
        .ok(),
        "keep"
    );
    let out = d.cli(["run", "--rm", "--entrypoint", "", image]);
    out.expect_engine_error();
    assert!(out.stderr.contains("the command is empty"), "{out:?}");
    // The whiteout layer applied.
    let out = d.cli(["run", "--rm", "--entrypoint", "/bin/sh", image, "-c", CHECK]);
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
    let info = d.cli(["image", "inspect", image]).json();
    let c = &info[0]["config"];
    assert_eq!(
        c["env"],
        serde_json::json!([
            "PATH=/usr/local/bin:/bin",
            "GREETING=hello",
            "KEEP=image",
            "NOVALUE"
        ])
    );
    assert_eq!(c["entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(c["working_dir"], "/srv");
    assert_eq!(c["user"], "1000:1000");
    assert_eq!(
        c["exposed_ports"],
        serde_json::json!(["53/udp", "8080/tcp"])
    );
    assert_eq!(c["labels"], serde_json::json!({"org.test.kind": "config"}));
    assert_eq!(c["stop_signal"], "SIGQUIT");
    // The container records what it got.
    let cid = d.cli(["create", "--no-start", image]).ok();
    let st = d.status_json(&cid);
    assert_eq!(st["working_dir"], "/srv", "{st}");
    assert!(st["env"].to_string().contains("GREETING=hello"), "{st}");
    d.cli(["rm", &cid]).ok();
}

#[test]
fn image_config_is_honoured_for_every_format() {
    let d = Daemon::start();
    let src = tempfile::tempdir().unwrap();
    let images = [("cfg:1", full_config(), config_layers())];
    let archive = docker_multi(&src.path().join("cfg-docker.tar"), &images);
    let layout = oci_multi(&src.path().join("cfg-oci"), &images);
    let oci_tar = tar_of(&layout, &src.path().join("cfg-oci.tar"));
    for (path, name) in [
        (&archive, "cfg-docker"),
        (&layout, "cfg-oci"),
        (&oci_tar, "cfg-oci-tar"),
    ] {
        d.cli(["image", "import", path.to_str().unwrap(), "--name", name])
            .ok();
        check_config(&d, name);
    }
    // A rootfs without configuration still needs a command.
    let out = d.cli(["run", "--rm", "default"]);
    out.expect_engine_error();
    assert!(out.stderr.contains("the command is empty"), "{out:?}");
    for n in ["cfg-docker", "cfg-oci", "cfg-oci-tar"] {
        d.cli(["image", "rm", n]).ok();
    }
    d.assert_no_leftovers();
}

fn cmd_config(word: &str) -> serde_json::Value {
    serde_json::json!({"config": {"Cmd": ["/bin/sh", "-c", format!("echo {word}")]}})
}

#[test]
fn a_tag_chooses_one_image_of_a_layout_or_archive() {
    let d = Daemon::start();
    let src = tempfile::tempdir().unwrap();
    let (base, _) = layers();
    let images = [
        ("v1", cmd_config("one"), vec![base.clone()]),
        ("v2", cmd_config("two"), vec![base.clone()]),
    ];
    let layout = oci_multi(&src.path().join("multi"), &images);
    let l = layout.to_str().unwrap();
    // Ambiguous: refused, with the tags listed; nothing stored.
    let out = d.cli(["image", "import", l]);
    out.expect_engine_error();
    assert!(out.stderr.contains("tags: v1, v2"), "{out:?}");
    assert!(out.stderr.contains("PATH:TAG"), "{out:?}");
    let out = d.cli(["image", "import", &format!("{l}:v3")]);
    out.expect_engine_error();
    assert!(
        out.stderr.contains("no image tagged \"v3\"") && out.stderr.contains("tags: v1, v2"),
        "{out:?}"
    );
    assert!(image_dirs(&d).is_empty(), "{:?}", image_dirs(&d));
    d.cli(["image", "import", &format!("{l}:v2"), "--name", "two"])
        .ok();
    d.cli(["image", "import", l, "--tag", "v1", "--name", "one"])
        .ok();
    assert_eq!(d.cli(["run", "--rm", "two"]).ok(), "two");
    assert_eq!(d.cli(["run", "--rm", "one"]).ok(), "one");
    // The same as an OCI archive and a docker-save archive.
    let oci_tar = tar_of(&layout, &src.path().join("multi.tar"));
    let t = oci_tar.to_str().unwrap();
    d.cli(["image", "import", t]).expect_engine_error();
    assert_eq!(
        d.cli(["image", "import", &format!("{t}:v2")]).ok(),
        d.cli(["image", "inspect", "two"]).json()[0]["id"]
            .as_str()
            .unwrap()
    );
    let docker = [
        ("repo/app:v1", cmd_config("d-one"), vec![base.clone()]),
        ("repo/app:v2", cmd_config("d-two"), vec![base]),
    ];
    let archive = docker_multi(&src.path().join("multi-docker.tar"), &docker);
    let a = archive.to_str().unwrap();
    let out = d.cli(["image", "import", a]);
    out.expect_engine_error();
    assert!(
        out.stderr.contains("tags: repo/app:v1, repo/app:v2"),
        "{out:?}"
    );
    d.cli([
        "image",
        "import",
        &format!("{a}:repo/app:v2"),
        "--name",
        "d2",
    ])
    .ok();
    d.cli(["image", "import", &format!("{a}:v1"), "--name", "d1"])
        .ok();
    assert_eq!(d.cli(["run", "--rm", "d2"]).ok(), "d-two");
    assert_eq!(d.cli(["run", "--rm", "d1"]).ok(), "d-one");
    // Every image shares the one base layer.
    let df = d.cli(["system", "df"]).ok();
    let layers_row = df
        .lines()
        .find(|l| l.starts_with("layers"))
        .unwrap_or_default()
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    assert_eq!(layers_row, "1", "{df}");
    d.cli(["image", "prune"]).ok();
    for n in ["one", "two", "d1", "d2"] {
        d.cli(["image", "rm", n]).ok();
    }
    assert_eq!(layer_dirs(&d), Vec::<String>::new());
    d.assert_no_leftovers();
}

/// The layers in the store.
fn layer_dirs(d: &Daemon) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.data_dir.join("images/layers"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Bytes below `root` on disk: regular files, each inode once (what `du`
/// counts; hard links are not counted twice).
fn disk_use(root: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fn go(p: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
        let mut n = 0;
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                n += go(&e.path(), seen);
            } else if m.is_file() && seen.insert((m.dev(), m.ino())) {
                n += m.blocks() * 512;
            }
        }
        n
    }
    go(root, &mut std::collections::HashSet::new())
}

#[test]
fn two_images_sharing_a_base_store_it_once() {
    let d = Daemon::start();
    let src = tempfile::tempdir().unwrap();
    // An 8 MiB base of incompressible bytes, and a one-file variant.
    let mut big = vec![0u8; 8 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in big.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let (l1, _) = layers();
    let base = TarBuf::new()
        .dir("data/")
        .file("data/big", 0o644, &big)
        .bytes();
    let extra = TarBuf::new().file("extra", 0o644, b"239 bytes\n").bytes();
    let cmd = || cmd_config("x");
    let a = oci_multi(
        &src.path().join("a"),
        &[("a", cmd(), vec![l1.clone(), base.clone()])],
    );
    let b = docker_multi(
        &src.path().join("b.tar"),
        &[("b:1", cmd(), vec![l1, base, extra])],
    );
    let images = d.data_dir.join("images");
    d.cli(["image", "import", a.to_str().unwrap()]).ok();
    let one = disk_use(&images);
    assert!(one > 8 << 20, "{one}");
    d.cli(["image", "import", b.to_str().unwrap(), "--name", "b"])
        .ok();
    let two = disk_use(&images);
    // The variant adds its own small layer and directories, not the base.
    assert!(two - one < 1 << 20, "first {one}, both {two}");
    assert_eq!(layer_dirs(&d).len(), 3, "{:?}", layer_dirs(&d));
    let df = d.cli(["system", "df"]).ok();
    assert!(
        df.contains("images") && df.contains("containers") && df.contains("volumes"),
        "{df}"
    );
    let row = |kind: &str| -> Vec<String> {
        df.lines()
            .find(|l| l.starts_with(kind))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(row("images")[1], "2", "{df}");
    assert_eq!(row("layers")[1], "3", "{df}");
    // SIZE is human ("8.0 MiB"): BYTES is the next to last column.
    let layers = row("layers");
    let layer_bytes: u64 = layers[layers.len() - 2].parse().unwrap();
    assert!(layer_bytes > 8 << 20 && layer_bytes < 10 << 20, "{df}");
    // Prune: the unnamed image goes, the layers b uses stay.
    let out = d.cli(["image", "prune"]).ok();
    assert!(out.contains("deleted image"), "{out}");
    assert!(!out.contains("deleted layer"), "{out}");
    assert_eq!(layer_dirs(&d).len(), 3);
    assert_eq!(
        d.cli([
            "run",
            "--rm",
            "b",
            "sh",
            "-c",
            "wc -c < /data/big; cat /extra"
        ])
        .ok(),
        format!("{}\n239 bytes", 8 << 20)
    );
    // rm of the last image that uses them: every layer goes.
    d.cli(["image", "rm", "b"]).ok();
    assert_eq!(layer_dirs(&d), Vec::<String>::new());
    assert!(disk_use(&images) < 64 << 10, "{}", disk_use(&images));
    d.assert_no_leftovers();
}

#[test]
fn image_rm_keeps_layers_another_image_uses() {
    let d = Daemon::start();
    let src = tempfile::tempdir().unwrap();
    let (l1, l2) = layers();
    let a = oci_multi(
        &src.path().join("a"),
        &[("a", cmd_config("a"), vec![l1.clone()])],
    );
    let b = oci_multi(
        &src.path().join("b"),
        &[("b", cmd_config("b"), vec![l1, l2])],
    );
    d.cli(["image", "import", a.to_str().unwrap(), "--name", "a"])
        .ok();
    d.cli(["image", "import", b.to_str().unwrap(), "--name", "b"])
        .ok();
    assert_eq!(layer_dirs(&d).len(), 2);
    d.cli(["image", "rm", "a"]).ok();
    assert_eq!(layer_dirs(&d).len(), 2, "b still uses both");
    check_layers(&d, "b");
    // Prune keeps named images and the layers they use.
    d.cli(["image", "prune"]).ok();
    assert_eq!(layer_dirs(&d).len(), 2);
    d.cli(["image", "rm", "b"]).ok();
    assert!(layer_dirs(&d).is_empty());
    d.assert_no_leftovers();
}

/// The first ELF `python3` on PATH (what the CLI picks), with its prefix
/// and version.
fn host_python() -> (PathBuf, String, String) {
    let path = std::env::var("PATH").unwrap_or_default();
    let exe = path
        .split(':')
        .map(|d| Path::new(d).join("python3"))
        .find(|p| {
            std::fs::read(p)
                .map(|b| b.starts_with(b"\x7fELF"))
                .unwrap_or(false)
        })
        .expect("the tests need an ELF python3 on PATH");
    let out = std::process::Command::new(&exe)
        .args([
            "-c",
            "import sys; print(sys.prefix); print('%d.%d' % sys.version_info[:2])",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let prefix = lines.next().unwrap().to_owned();
    let ver = lines.next().unwrap().to_owned();
    (exe.canonicalize().unwrap(), prefix, ver)
}

#[test]
fn host_build_under_a_pyenv_style_path() {
    let d = Daemon::start();
    let (python, prefix, ver) = host_python();
    // ~/.pyenv/versions/X/bin/python3 (a copy of the host's python3, its
    // standard library linked in), behind a pyenv shim that must not be
    // taken; none of it is on the daemon's PATH.
    let home = tempfile::tempdir().unwrap();
    let version = home.path().join(".pyenv/versions/9.9.9");
    std::fs::create_dir_all(version.join("bin")).unwrap();
    std::fs::create_dir_all(version.join("lib")).unwrap();
    std::fs::copy(&python, version.join("bin/python3")).unwrap();
    std::os::unix::fs::symlink(
        Path::new(&prefix).join(format!("lib/python{ver}")),
        version.join(format!("lib/python{ver}")),
    )
    .unwrap();
    let shims = home.path().join(".pyenv/shims");
    std::fs::create_dir_all(&shims).unwrap();
    std::fs::write(shims.join("python3"), "#!/bin/sh\nexit 3\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            shims.join("python3"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    let cli_path = format!(
        "{}:{}:/usr/bin:/bin",
        shims.display(),
        version.join("bin").display()
    );
    let mut args: Vec<std::ffi::OsString> = vec!["--socket".into(), d.socket.clone().into()];
    for a in [
        "image",
        "build",
        "--from-host",
        "py",
        "--bin",
        "python3",
        "--ca-certs",
    ] {
        args.push(a.into());
    }
    let out = quilt_tests::cli::run_program(
        &quilt_tests::daemon::bin_dir().join("quilt"),
        &args,
        &[("PATH".to_owned(), cli_path.clone())],
        std::time::Duration::from_secs(300),
    );
    assert!(out.ok().starts_with("sha256:"), "{out:?}");
    // By name, from the container's PATH, with its own prefix's stdlib.
    let out = d.cli([
        "run",
        "--rm",
        "py",
        "python3",
        "-c",
        "import sys, json, hashlib; print(sys.prefix); print(hashlib.sha256(b'').hexdigest()[:8])",
    ]);
    assert_eq!(
        out.lines(),
        [
            version.to_string_lossy().into_owned(),
            "e3b0c442".to_owned()
        ],
        "{out:?}"
    );
    assert_eq!(
        d.cli(["run", "--rm", "py", "readlink", "/usr/local/bin/python3"])
            .ok(),
        version.join("bin/python3").to_string_lossy()
    );
    // --ca-certs: the host's bundle.
    let bundle = "/etc/ssl/certs/ca-certificates.crt";
    if Path::new(bundle).is_file() {
        let n = d
            .cli([
                "run",
                "--rm",
                "py",
                "sh",
                "-c",
                &format!("wc -c < {bundle}"),
            ])
            .ok();
        assert_eq!(n, std::fs::metadata(bundle).unwrap().len().to_string());
    }
    // A script of the prefix names its interpreter through env: the
    // interpreter is the prefix's (beside the script), not the daemon's.
    let hello = version.join("bin/hello");
    std::fs::write(
        &hello,
        "#!/usr/bin/env python3\nimport sys\nprint('hello from', sys.prefix)\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hello, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut args: Vec<std::ffi::OsString> = vec!["--socket".into(), d.socket.clone().into()];
    for a in ["image", "build", "--from-host", "hello", "--bin", "hello"] {
        args.push(a.into());
    }
    let out = quilt_tests::cli::run_program(
        &quilt_tests::daemon::bin_dir().join("quilt"),
        &args,
        &[("PATH".to_owned(), cli_path.clone())],
        std::time::Duration::from_secs(300),
    );
    assert!(out.ok().starts_with("sha256:"), "{out:?}");
    assert_eq!(
        d.cli(["run", "--rm", "hello", "hello"]).ok(),
        format!("hello from {}", version.display())
    );
    for n in ["py", "hello"] {
        d.cli(["image", "rm", n]).ok();
    }
    d.assert_no_leftovers();
}

/// Runs a host tool the test needs (scripts/deps.sh installs it).
#[track_caller]
fn tool(program: &str, args: &[&str], dir: &Path) {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("the tests need {program} (scripts/deps.sh): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn umoci_image_as_layout_docker_archive_and_oci_archive() {
    let d = Daemon::start();
    let src = tempfile::tempdir().unwrap();
    let s = src.path();
    // Two layers made by umoci (the second deletes a file: a whiteout),
    // then a configuration, tagged v1 beside the untagged-config "base".
    tool("umoci", &["init", "--layout", "L"], s);
    tool("umoci", &["new", "--image", "L:base"], s);
    tool("umoci", &["unpack", "--image", "L:base", "B"], s);
    let rootfs = s.join("B/rootfs");
    for dir in ["bin", "etc", "srv"] {
        std::fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat", "id", "test"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(rootfs.join("etc/keep"), "keep\n").unwrap();
    std::fs::write(rootfs.join("etc/gone"), "gone\n").unwrap();
    tool("umoci", &["repack", "--image", "L:base", "B"], s);
    std::fs::remove_dir_all(s.join("B")).unwrap();
    tool("umoci", &["unpack", "--image", "L:base", "B"], s);
    std::fs::remove_file(s.join("B/rootfs/etc/gone")).unwrap();
    std::fs::write(s.join("B/rootfs/etc/new"), "new\n").unwrap();
    tool("umoci", &["repack", "--image", "L:base", "B"], s);
    tool(
        "umoci",
        &[
            "config",
            "--image",
            "L:base",
            "--tag",
            "v1",
            "--config.env",
            "GREETING=hi",
            "--config.env",
            "PATH=/bin",
            "--config.entrypoint",
            "/bin/sh",
            "--config.entrypoint",
            "-c",
            "--config.cmd",
            "echo $GREETING $(id -u) $(pwd); cat /etc/keep /etc/new; test -e /etc/gone || echo gone-ok",
            "--config.user",
            "1000:1000",
            "--config.workingdir",
            "/srv",
            "--config.exposedports",
            "8080/tcp",
            "--config.label",
            "made=umoci",
        ],
        s,
    );
    tool(
        "skopeo",
        &["copy", "-q", "oci:L:v1", "docker-archive:d.tar:test/img:v1"],
        s,
    );
    tool(
        "skopeo",
        &["copy", "-q", "oci:L:v1", "oci-archive:o.tar:v1"],
        s,
    );
    let layout = s.join("L");
    // Two tags in the layout: a tag is needed.
    let out = d.cli(["image", "import", layout.to_str().unwrap()]);
    out.expect_engine_error();
    assert!(out.stderr.contains("tags: base, v1"), "{out:?}");
    let want = ["hi 1000 /srv", "keep", "new", "gone-ok"];
    for (source, name) in [
        (format!("{}:v1", layout.display()), "u-layout"),
        (s.join("d.tar").display().to_string(), "u-docker"),
        (s.join("o.tar").display().to_string(), "u-oci"),
    ] {
        d.cli(["image", "import", &source, "--name", name]).ok();
        let out = d.cli(["run", "--rm", name]);
        assert_eq!(out.lines(), want, "{name}: {out:?}");
        let c = &d.cli(["image", "inspect", name]).json()[0]["config"];
        assert_eq!(c["user"], "1000:1000", "{name}: {c}");
        assert_eq!(c["exposed_ports"], serde_json::json!(["8080/tcp"]), "{c}");
        assert_eq!(c["labels"]["made"], "umoci", "{c}");
    }
    // The three share their layers: stored once.
    assert_eq!(layer_dirs(&d).len(), 2, "{:?}", layer_dirs(&d));
    for n in ["u-layout", "u-docker", "u-oci"] {
        d.cli(["image", "rm", n]).ok();
    }
    assert!(layer_dirs(&d).is_empty());
    d.assert_no_leftovers();
}
