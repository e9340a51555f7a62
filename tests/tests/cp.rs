//! CopyIn / CopyOut: large files in and out of running and stopped
//! containers with matching sha256, symlink and `..` escapes refused, and a
//! damaged stream detected.
use quilt_testkit::tar::header;
use quilt_tests::api::{self, ContainerState};
use quilt_tests::{Daemon, RPC_TIMEOUT, within};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

const BIG: usize = 100 * 1024 * 1024;

/// A file of `len` pseudo-random bytes (fixed-seed xorshift64*); returns its sha256.
fn random_file(path: &Path, len: usize, seed: u64) -> String {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut h = Sha256::new();
    let mut x = seed | 1;
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for chunk in block.chunks_mut(8) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        let n = left.min(block.len());
        f.write_all(&block[..n]).unwrap();
        h.update(&block[..n]);
        left -= n;
    }
    f.flush().unwrap();
    hex::encode(h.finalize())
}

fn sha256_of(path: &Path) -> String {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).unwrap();
    hex::encode(h.finalize())
}

/// Peak resident memory of a process in KiB.
fn vm_hwm_kib(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn running(d: &Daemon) -> String {
    let id = d.run_detached(&["default", "sleep", "600"]);
    d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    id
}

#[test]
fn big_file_round_trip_on_running_and_stopped_containers() {
    let d = Daemon::start();
    let src = d.root.join("big.bin");
    let sha = random_file(&src, BIG, 0x5eed);
    let id = running(&d);
    let src_s = src.to_str().unwrap();
    let slow = Duration::from_secs(120);

    // Running: in, checked inside the container, then out.
    let t0 = std::time::Instant::now();
    d.cli_timeout(["cp", src_s, &format!("{id}:/tmp")], slow)
        .expect_code(0);
    eprintln!("cp in of {BIG} bytes: {:?}", t0.elapsed());
    let inside = d.cli(["exec", &id, "sha256sum", "/tmp/big.bin"]).ok();
    assert!(inside.starts_with(&sha), "inside: {inside}");
    let out1 = d.root.join("out-running");
    d.cli_timeout(
        ["cp", &format!("{id}:/tmp/big.bin"), out1.to_str().unwrap()],
        slow,
    )
    .expect_code(0);
    // Docker's rule: a path that does not exist becomes the file.
    assert_eq!(sha256_of(&out1), sha);
    std::fs::remove_file(&out1).unwrap();

    // Stopped: out again, and in under another name.
    d.cli(["stop", "-t", "1", &id]).expect_code(0);
    let out2 = d.root.join("out-stopped");
    d.cli_timeout(
        ["cp", &format!("{id}:/tmp/big.bin"), out2.to_str().unwrap()],
        slow,
    )
    .expect_code(0);
    assert_eq!(sha256_of(&out2), sha);
    std::fs::remove_file(&out2).unwrap();
    let dir = d.root.join("indir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::rename(&src, dir.join("again.bin")).unwrap();
    d.cli_timeout(["cp", dir.to_str().unwrap(), &format!("{id}:/")], slow)
        .expect_code(0);
    std::fs::remove_dir_all(&dir).unwrap();
    // Nothing of the stopped copy stays mounted on the host.
    assert!(d.mounts_but_netns_pool().is_empty(), "copy left mounts");
    // The file copied into the stopped container is there once it runs.
    d.cli(["start", &id]).expect_code(0);
    d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    let inside = d.cli(["exec", &id, "sha256sum", "/indir/again.bin"]).ok();
    assert!(inside.starts_with(&sha), "inside: {inside}");

    // 100 MB went through the daemon several times: it never held it.
    let hwm = vm_hwm_kib(d.pid().unwrap());
    eprintln!("quiltd peak RSS: {hwm} KiB");
    assert!(hwm < 96 * 1024, "quiltd peak RSS {hwm} KiB");

    d.cli(["rm", "-f", &id]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn symlinks_and_dotdot_cannot_escape_the_container() {
    let d = Daemon::start();
    // The same absolute path on the host and in the container, different contents.
    let marker = d.root.join("marker");
    std::fs::create_dir(&marker).unwrap();
    std::fs::write(marker.join("f"), "HOST").unwrap();
    let m = marker.to_str().unwrap();
    let id = running(&d);
    let script = format!(
        "mkdir -p {m} && echo inside > {m}/f && ln -s / /tmp/abs && ln -s ../../../../../.. /tmp/rel"
    );
    d.cli(["exec", &id, "sh", "-c", &script]).expect_code(0);

    let check = |state: &str| {
        for link in ["abs", "rel"] {
            let out = d.root.join(format!("out-{link}-{state}"));
            d.cli([
                "cp",
                &format!("{id}:/tmp/{link}{m}/f"),
                out.to_str().unwrap(),
            ])
            .expect_code(0);
            assert_eq!(
                std::fs::read_to_string(&out).unwrap(),
                "inside\n",
                "{state}: cp out through /tmp/{link} left the container"
            );
            // In through the symlink: lands in the container, never on the host.
            let src = d.root.join(format!("new-{link}-{state}"));
            std::fs::write(&src, "x").unwrap();
            d.cli(["cp", src.to_str().unwrap(), &format!("{id}:/tmp/{link}{m}")])
                .expect_code(0);
            assert!(
                !marker.join(format!("new-{link}-{state}")).exists(),
                "{state}: cp in through /tmp/{link} wrote on the host"
            );
        }
        // `..` is refused up front.
        let out = d
            .cli([
                "cp",
                &format!("{id}:/tmp/../etc/passwd"),
                d.root.join("dots").to_str().unwrap(),
            ])
            .expect_engine_error()
            .stderr
            .clone();
        assert!(out.contains(".."), "{out}");
        // A tar entry with a symlink then a file through it stays inside.
        let tar = evil_tar(m);
        let st = d.block_on(async {
            let mut c = d.client().await;
            let frames = vec![
                frame_header(&id, "/tmp"),
                api::CopyInRequest {
                    frame: Some(api::copy_in_request::Frame::Data(tar.clone())),
                },
            ];
            within(RPC_TIMEOUT, "CopyIn", c.copy_in(tokio_stream::iter(frames))).await
        });
        assert!(
            !marker.join("evil").exists(),
            "{state}: a tar symlink wrote on the host ({st:?})"
        );
        assert_eq!(std::fs::read_to_string(marker.join("f")).unwrap(), "HOST");
    };
    check("running");
    d.cli(["stop", "-t", "1", &id]).expect_code(0);
    check("stopped");
    // Files that went in while stopped are in the container's own tree.
    let upper = d.data_dir.join("containers").join(&id).join("upper");
    assert!(upper.join(&m[1..]).join("new-abs-stopped").exists());

    d.cli(["rm", "-f", &id]).expect_code(0);
    d.assert_no_leftovers();
}

fn frame_header(id: &str, path: &str) -> api::CopyInRequest {
    api::CopyInRequest {
        frame: Some(api::copy_in_request::Frame::Header(api::CopyInHeader {
            container_id: id.into(),
            path: path.into(),
        })),
    }
}

/// A tar with `link -> DIR` then `link/evil`.
fn evil_tar(dir: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
    b.append_link(&mut h, "link", dir).unwrap();
    let mut h = header(tar::EntryType::Regular, 0o644, 4);
    b.append_data(&mut h, "link/evil", &b"evil"[..]).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn damaged_streams_and_bad_requests_are_reported() {
    let d = Daemon::start();
    let id = running(&d);
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Regular, 0o644, 5);
    b.append_data(&mut h, "hello.txt", &b"hello"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let sha = hex::encode(Sha256::digest(&tar));
    let send = |trailer: Option<api::CopyTrailer>, path: &str| {
        let mut frames = vec![
            frame_header(&id, path),
            api::CopyInRequest {
                frame: Some(api::copy_in_request::Frame::Data(tar.clone())),
            },
        ];
        if let Some(t) = trailer {
            frames.push(api::CopyInRequest {
                frame: Some(api::copy_in_request::Frame::Trailer(t)),
            });
        }
        d.block_on(async {
            let mut c = d.client().await;
            within(RPC_TIMEOUT, "CopyIn", c.copy_in(tokio_stream::iter(frames))).await
        })
    };
    // A good trailer: the server reports what it received.
    let ok = send(
        Some(api::CopyTrailer {
            size: tar.len() as u64,
            sha256: sha.clone(),
        }),
        "/tmp",
    )
    .unwrap()
    .into_inner();
    assert_eq!(
        (ok.size, ok.sha256.as_str()),
        (tar.len() as u64, sha.as_str())
    );
    // A wrong one is DATA_LOSS.
    let bad = send(
        Some(api::CopyTrailer {
            size: tar.len() as u64,
            sha256: "00".repeat(32),
        }),
        "/tmp",
    )
    .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::DataLoss, "{bad:?}");
    // Missing destination and `..`.
    assert_eq!(
        send(None, "/no/such/dir").unwrap_err().code(),
        tonic::Code::NotFound
    );
    assert_eq!(
        send(None, "/tmp/../etc").unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
    // CopyOut of a missing path and of an unknown container.
    let out = |cid: &str, path: &str| {
        d.block_on(async {
            let mut c = d.client().await;
            let req = api::CopyOutRequest {
                container_id: cid.into(),
                path: path.into(),
            };
            let mut s = within(RPC_TIMEOUT, "CopyOut", c.copy_out(req))
                .await?
                .into_inner();
            while s.message().await?.is_some() {}
            Ok::<_, tonic::Status>(())
        })
    };
    assert_eq!(out(&id, "/nope").unwrap_err().code(), tonic::Code::NotFound);
    assert_eq!(
        out("nosuchcontainer", "/tmp").unwrap_err().code(),
        tonic::Code::NotFound
    );
    assert!(out(&id, "/tmp/hello.txt").is_ok());
    d.cli(["rm", "-f", &id]).expect_code(0);
    d.assert_no_leftovers();
}

/// A client that stalls mid-copy on a stopped container: after the idle
/// deadline the copy ends with DEADLINE_EXCEEDED (while the client's stream
/// is still open), its helper and mounts are gone and the container starts.
#[test]
fn a_stalled_copy_ends_and_releases_a_stopped_container() {
    let d = Daemon::builder()
        .args(&["--copy-idle-timeout", "2"])
        .start();
    let id = d
        .cli([
            "create",
            "--no-start",
            "default",
            "sh",
            "-c",
            "ls /tmp/big.bin",
        ])
        .ok();
    // A 16 MiB file in the stopped container, for the stalled CopyOut.
    let src = d.root.join("big.bin");
    random_file(&src, 16 << 20, 7);
    d.cli_timeout(
        ["cp", src.to_str().unwrap(), &format!("{id}:/tmp")],
        Duration::from_secs(60),
    )
    .expect_code(0);

    // CopyIn: a header and the first 64 KiB of a 1 MiB entry, then nothing.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Regular, 0o644, 1 << 20);
    b.append_data(&mut h, "partial.bin", &vec![7u8; 1 << 20][..])
        .unwrap();
    let tar = b.into_inner().unwrap();
    let err = d.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(frame_header(&id, "/tmp")).await.unwrap();
        tx.send(api::CopyInRequest {
            frame: Some(api::copy_in_request::Frame::Data(tar[..65536].to_vec())),
        })
        .await
        .unwrap();
        let mut c = d.client().await;
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let r = within(RPC_TIMEOUT, "stalled CopyIn", c.copy_in(stream)).await;
        drop(tx); // held open until the answer came
        r.unwrap_err()
    });
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err:?}");

    // CopyOut: take the first frame, then stop reading.
    let err = d.block_on(async {
        let mut c = d.client().await;
        let req = api::CopyOutRequest {
            container_id: id.clone(),
            path: "/tmp/big.bin".into(),
        };
        let mut s = within(RPC_TIMEOUT, "CopyOut", c.copy_out(req))
            .await
            .unwrap()
            .into_inner();
        assert!(s.message().await.unwrap().is_some());
        // Stall past the deadline, then read what was buffered: the stream
        // ends with the deadline's error, not with the whole file.
        tokio::time::sleep(Duration::from_secs(5)).await;
        loop {
            match within(RPC_TIMEOUT, "CopyOut frame", s.message()).await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("a stalled CopyOut completed"),
                Err(e) => break e,
            }
        }
    });
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err:?}");
    // The copy helpers were killed and reaped when the deadline passed.
    let quiltd = d.pid().unwrap();
    let helpers: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| quilt_tests::host::parent_pid(*p) == Some(quiltd))
        .filter(|p| {
            quilt_tests::host::proc_cmdline(*p)
                .iter()
                .any(|a| a.starts_with("cp-"))
        })
        .collect();
    assert!(helpers.is_empty(), "copy helpers left: {helpers:?}");
    d.cli(["start", &id]).expect_code(0);
    assert_eq!(d.cli(["wait", &id]).ok(), "0");
    d.cli(["rm", &id]).expect_code(0);
    d.assert_no_leftovers();
}
