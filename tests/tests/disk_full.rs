//! A full disk never makes quiltd lie: on a small loop-mounted file system
//! (made and removed by the test) filled to the last block, creates are
//! refused with RESOURCE_EXHAUSTED or acknowledged and really stored, an
//! exit is still recorded, and once space is back the daemon serves again
//! without a restart. Everything acknowledged survives a restart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use quilt_tests::api::{CreateContainerRequest, StopContainerRequest};
use quilt_tests::{Daemon, RPC_TIMEOUT, req, within};
use tonic::Code;

/// An ext4 file system in a file, loop-mounted; unmounted and removed on drop.
struct LoopFs {
    dir: tempfile::TempDir,
    mnt: PathBuf,
}

impl LoopFs {
    fn new(mib: u64) -> LoopFs {
        let dir = tempfile::Builder::new()
            .prefix("quilt-disk-")
            .tempdir_in("/tmp")
            .unwrap();
        let img = dir.path().join("fs.img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let run = |cmd: &mut Command| {
            let out = cmd.output().expect("spawn");
            assert!(
                out.status.success(),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(Command::new("truncate")
            .arg("-s")
            .arg(format!("{mib}M"))
            .arg(&img));
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0"])
            .arg(&img));
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&mnt));
        LoopFs { dir, mnt }
    }

    /// Writes a file until the file system is full; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let p = self.mnt.join("filler");
        let mut f = std::fs::File::create(&p).unwrap();
        let chunk = vec![0xa5u8; 64 * 1024];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling: {e}"),
            }
        }
        // Small writes too, so not even one block is left.
        loop {
            match f.write(&chunk[..512]) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = f.sync_all();
        p
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
        let _ = self.dir.path();
    }
}

/// The fixture: the daemon is dropped (stopped, checked) before the file
/// system goes.
struct Fixture {
    d: Daemon,
    fs: LoopFs,
}

fn create(d: &Daemon, r: CreateContainerRequest) -> Result<String, tonic::Status> {
    d.block_on(async {
        let mut c = d.client().await;
        within(RPC_TIMEOUT, "CreateContainer", c.create_container(r)).await
    })
    .map(|r| r.into_inner().id)
}

fn exists(d: &Daemon, id: &str) -> bool {
    match d.get(id) {
        Ok(_) => true,
        Err(e) if e.code() == Code::NotFound => false,
        Err(e) => panic!("GetContainer {id}: {e:?}"),
    }
}

#[test]
fn a_full_disk_never_loses_an_acknowledged_write() {
    let fs = LoopFs::new(96);
    let data: PathBuf = fs.mnt.join("data");
    let d = Daemon::builder().data_dir(&data).start();
    let mut f = Fixture { d, fs };
    let d = &f.d;

    // Running before the disk fills; stopped while it is full.
    let running = d.run_detached(&["default", "sleep", "1000"]);
    let filler = f.fs.fill();

    let mut acked = Vec::new();
    let mut refused = 0;
    for i in 0..40 {
        let r = CreateContainerRequest {
            name: format!("full-{i}"),
            no_start: true,
            labels: [("pad".to_string(), "p".repeat(4096))].into(),
            ..req(&["true"])
        };
        match create(d, r) {
            Ok(id) => acked.push(id),
            Err(e) => {
                assert_eq!(e.code(), Code::ResourceExhausted, "create {i}: {e:?}");
                assert!(e.message().contains("full"), "{e:?}");
                refused += 1;
            }
        }
    }
    assert!(
        refused > 0,
        "no create was refused on a full disk ({} acked)",
        acked.len()
    );

    // An exit happens while the disk is full: it is recorded.
    let stopped = d.block_on(async {
        let mut c = d.client().await;
        within(
            Duration::from_secs(60),
            "StopContainer",
            c.stop_container(StopContainerRequest {
                id: running.clone(),
                timeout_seconds: Some(1),
            }),
        )
        .await
    });
    assert!(
        stopped.is_ok(),
        "stop on a full disk: {stopped:?}\n{}",
        d.log_tail(30)
    );
    assert_eq!(d.status_json(&running)["state"], "exited");

    // Everything acknowledged exists, while still full.
    for id in &acked {
        assert!(
            exists(d, id),
            "acknowledged {id} does not exist (disk full)"
        );
    }

    // Space comes back: the daemon serves again by itself.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let again = loop {
        match create(
            d,
            CreateContainerRequest {
                name: "after".into(),
                no_start: true,
                ..req(&["true"])
            },
        ) {
            Ok(id) => break id,
            Err(e) if Instant::now() < deadline => {
                assert!(
                    matches!(e.code(), Code::ResourceExhausted | Code::Unavailable),
                    "{e:?}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!(
                "no recovery after space came back: {e:?}\n{}",
                d.log_tail(30)
            ),
        }
    };
    acked.push(again);
    let out = d.cli(["run", "--rm", "default", "echo", "back"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), "back");

    // And it all survives a restart.
    f.d.restart();
    let d = &f.d;
    for id in &acked {
        assert!(exists(d, id), "acknowledged {id} lost across a restart");
    }
    assert_eq!(d.status_json(&running)["state"], "exited");
    let mut ids = acked.clone();
    ids.push(running);
    let mut args = vec!["rm".to_string(), "-f".into()];
    args.extend(ids);
    d.cli(&args).expect_code(0);
    d.assert_no_leftovers();
    let _: &Path = &f.fs.mnt;
}
