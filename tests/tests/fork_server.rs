//! The shim fork server: quiltd starts every shim through one small
//! process (`quilt-forksrv`), and the shims are quiltd's own children with
//! a shim's name and arguments; a server that is lost is replaced (and
//! reaped) at the next start, and quiltd takes it down when it stops. Its
//! session keyring is the one the containers that cannot reach a keyring
//! share: neither the host's, nor one per container.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use quilt_tests::host::{self, ProcInfo};
use quilt_tests::{Daemon, retry};
use std::time::Duration;

const SERVER_COMM: &str = "quilt-forksrv";

fn children_named(parent: i32, comm: &str) -> Vec<ProcInfo> {
    host::all_procs()
        .into_iter()
        .filter(|p| p.ppid == parent && p.comm == comm && p.state != 'Z' && p.state != 'X')
        .collect()
}

/// The tests of this file run one at a time: one counts the host's keys,
/// which the other's execs and server replacement change.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn shims_are_forked_by_one_server_that_is_replaced_and_stopped() {
    let _one = one_at_a_time();
    let mut d = Daemon::start();
    let quiltd = d.pid().expect("quiltd runs");
    let first = d.run_detached(&["default", "sleep", "1000"]);
    let second = d.run_detached(&["default", "sleep", "1000"]);

    let servers = children_named(quiltd, SERVER_COMM);
    assert_eq!(servers.len(), 1, "one fork server: {servers:?}");
    let server = servers[0].pid;
    let shims = children_named(quiltd, host::SHIM_COMM);
    assert!(
        shims.len() >= 2,
        "the shims are quiltd's children: {shims:?}"
    );
    for s in &shims {
        let args = host::proc_cmdline(s.pid);
        assert_eq!(args.get(1).map(String::as_str), Some("run"), "{args:?}");
    }

    // A lost server is replaced at the next start, and reaped.
    kill(Pid::from_raw(server), Signal::SIGKILL).unwrap();
    let third = d.run_detached(&["default", "sleep", "1000"]);
    let servers = children_named(quiltd, SERVER_COMM);
    assert_eq!(servers.len(), 1, "one fork server again: {servers:?}");
    assert_ne!(servers[0].pid, server, "the lost server still answers");
    assert!(
        host::zombies_of(&[quiltd]).iter().all(|z| z.pid != server),
        "the lost server was not reaped"
    );
    let replacement = servers[0].pid;

    // Every container works through either server: exec and removal.
    for id in [&first, &second, &third] {
        let out = d.cli(["exec", id.as_str(), "echo", "in"]);
        assert_eq!(out.code, Some(0), "{out:?}");
        let out = d.cli(["rm", "-f", id.as_str()]);
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    d.assert_no_leftovers();

    // quiltd takes the server down (and reaps it) when it stops.
    d.stop();
    let gone = retry(Duration::from_secs(5), || {
        host::proc_info(replacement).is_none().then_some(())
    });
    assert!(
        gone.is_some(),
        "the fork server outlived quiltd: {:?}",
        host::proc_info(replacement)
    );
}

/// A create that starts runs its shim ahead of its row, and its config
/// goes into the shim's stdin as the fork server forks it, as far as the
/// pipe takes it: one larger than a pipe's capacity (64 KiB) gets there
/// whole, the rest written once the server has answered.
#[test]
fn a_config_larger_than_a_pipe_gets_to_its_shim_whole() {
    let _one = one_at_a_time();
    let d = Daemon::start();
    let a = format!("A={}", "a".repeat(60_000));
    let b = format!("B={}", "b".repeat(60_000));
    let id = d
        .cli([
            "create",
            "-e",
            &a,
            "-e",
            &b,
            "default",
            "sh",
            "-c",
            "echo ${#A} ${#B}",
        ])
        .ok();
    d.cli(["wait", &id]).ok();
    assert_eq!(d.cli(["logs", &id]).ok(), "60000 60000");
    d.cli(["rm", &id]).ok();
    d.assert_no_leftovers();
}

/// The number of root's keys on the host (`nkeys` of uid 0 in
/// /proc/key-users: "0: USAGE NKEYS/NIKEYS ...").
fn root_keys() -> i64 {
    let text = std::fs::read_to_string("/proc/key-users").expect("/proc/key-users");
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix("0:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|n| n.split('/').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no keys of root in {text:?}"))
}

#[test]
fn containers_without_keyring_calls_get_no_keyring_of_their_own() {
    let _one = one_at_a_time();
    let d = Daemon::start();
    // The fork server is up (and made its keyring).
    let first = d.run_detached(&["default", "sleep", "1000"]);

    // The default profile refuses every keyring call: its containers share
    // the server's keyring. (Keys of other processes of the host may come
    // meanwhile: a little room.)
    const N: i64 = 6;
    let keys = root_keys();
    let mut ids: Vec<String> = (0..N)
        .map(|_| d.run_detached(&["default", "sleep", "1000"]))
        .collect();
    let added = root_keys() - keys;
    assert!(added <= 2, "{N} containers added {added} keys");

    // Allowed keyring calls: a keyring each.
    let keys = root_keys();
    ids.extend((0..N).map(|_| {
        d.run_detached(&[
            "--security-opt",
            "seccomp=unconfined",
            "default",
            "sleep",
            "1000",
        ])
    }));
    let added = root_keys() - keys;
    assert!(
        added >= N - 2,
        "{N} unconfined containers added {added} keys"
    );

    ids.push(first);
    for id in &ids {
        d.cli(["rm", "-f", id.as_str()]).expect_code(0);
    }
    d.assert_no_leftovers();
}
