//! Writable layers made ahead for cold starts (`quiltd --layer-pool N`):
//! the first start of an image mounts its own layer and asks for layers
//! for the next ones; those take one (its overlay mounted by quiltd,
//! attached by the container), see the image, keep what they write to
//! themselves, and keep their own layer across a restart. Nothing is left
//! when quiltd stops, and nothing is made with a pool of 0.
use quilt_tests::{Daemon, retry};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// The value of the Prometheus sample `sample` (name and labels as
/// written, e.g. `quilt_layer_pool_takes_total{outcome="hit"}`); 0 when it
/// is not there.
fn metric(port: u16, sample: &str) -> f64 {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.lines()
        .filter_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .map(|v| v.trim().parse::<f64>().unwrap())
        .sum()
}

/// The entries of DATA/layers (none when it is not there).
fn layer_dirs(data: &Path) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(data.join("layers")) {
        Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
        Err(_) => Vec::new(),
    }
}

const HITS: &str = "quilt_layer_pool_takes_total{outcome=\"hit\"}";
const MISSES: &str = "quilt_layer_pool_takes_total{outcome=\"miss\"}";
const READY: &str = "quilt_layer_pool_ready";

#[track_caller]
fn wait_ready(d: &Daemon, port: u16, n: f64) {
    let ok = retry(Duration::from_secs(20), || {
        (metric(port, READY) == n).then_some(())
    });
    assert!(
        ok.is_some(),
        "{n} layers were not made ahead: {} ready\n{}",
        metric(port, READY),
        d.log_tail(20)
    );
}

#[test]
fn first_starts_take_layers_made_ahead() {
    let port = quilt_tests::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut d = Daemon::builder()
        .args(&["--metrics-listen", &addr, "--layer-pool", "2"])
        .start();

    // The image's first `--rm` start mounts its own; two are made for the
    // next ones, each a directory with the layer's three.
    d.cli(["run", "--rm", "default", "true"]).expect_code(0);
    assert_eq!((metric(port, HITS), metric(port, MISSES)), (0.0, 1.0));
    wait_ready(&d, port, 2.0);
    let made = layer_dirs(&d.data_dir);
    assert_eq!(made.len(), 2, "{made:?}");
    for l in &made {
        for sub in ["upper", "work", "rootfs"] {
            assert!(l.join(sub).is_dir(), "{}/{sub}", l.display());
        }
    }

    // Kept (not `--rm`) containers' layers are synced: another kind, its
    // first start a miss too.
    let a = d.run_detached(&["default", "sh", "-c", "echo a > /mine; sleep 1000"]);
    assert_eq!(metric(port, MISSES), 2.0);
    wait_ready(&d, port, 4.0);
    let b = d.run_detached(&["default", "sleep", "1000"]);
    assert_eq!(metric(port, HITS), 1.0);

    // The one made ahead shows the image, not what another container
    // wrote, and what it writes is its own (in its directory's upper).
    let out = d.cli([
        "exec",
        b.as_str(),
        "sh",
        "-c",
        "test -x /bin/sh && test ! -e /mine && echo b > /theirs && cat /theirs",
    ]);
    assert_eq!((out.code, out.stdout.trim()), (Some(0), "b"), "{out:?}");
    let upper = d.data_dir.join("containers").join(&b).join("upper");
    assert_eq!(
        std::fs::read_to_string(upper.join("theirs")).unwrap(),
        "b\n"
    );
    let out = d.cli(["exec", a.as_str(), "cat", "/mine"]);
    assert_eq!((out.code, out.stdout.trim()), (Some(0), "a"), "{out:?}");

    // A restart keeps its own layer (no take, no miss).
    d.cli(["restart", "-t", "1", b.as_str()]).expect_code(0);
    let out = d.cli(["exec", b.as_str(), "cat", "/theirs"]);
    assert_eq!((out.code, out.stdout.trim()), (Some(0), "b"), "{out:?}");
    assert_eq!((metric(port, HITS), metric(port, MISSES)), (1.0, 2.0));

    // A `--rm` start takes one of its kind.
    d.cli(["run", "--rm", "default", "sh", "-c", "test -x /bin/sh"])
        .expect_code(0);
    assert_eq!(metric(port, HITS), 2.0);

    // So does a create that starts (its shim run ahead of its row, gated
    // until the row is in): the refill follows its start.
    wait_ready(&d, port, 4.0);
    d.cli(["create", "--rm", "default", "true"]).ok();
    let took = retry(Duration::from_secs(10), || {
        (metric(port, HITS) == 3.0).then_some(())
    });
    assert!(took.is_some(), "hits: {}", metric(port, HITS));
    wait_ready(&d, port, 4.0);

    d.cli(["rm", "-f", a.as_str(), b.as_str()]).expect_code(0);
    d.assert_no_leftovers();
    // The layers made ahead go with quiltd.
    d.stop();
    assert_eq!(layer_dirs(&d.data_dir), Vec::<std::path::PathBuf>::new());
}

#[test]
fn no_layer_is_made_ahead_with_a_pool_of_zero() {
    let port = quilt_tests::free_port();
    let addr = format!("127.0.0.1:{port}");
    let d = Daemon::builder()
        .args(&["--metrics-listen", &addr, "--layer-pool", "0"])
        .start();
    for _ in 0..2 {
        d.cli(["run", "--rm", "default", "true"]).expect_code(0);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(layer_dirs(&d.data_dir), Vec::<std::path::PathBuf>::new());
    assert_eq!((metric(port, HITS), metric(port, MISSES)), (0.0, 0.0));
    d.assert_no_leftovers();
}

/// A pool larger than quiltd keeps is refused with its bound, not cut down
/// to it in silence.
#[test]
fn a_layer_pool_above_its_bound_is_refused() {
    let out = std::process::Command::new(quilt_tests::bin_dir().join("quiltd"))
        .args(["--layer-pool", "65"])
        .output()
        .expect("run quiltd");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("65 is not in 0..=64"), "{stderr}");
}
