//! The shim fork server: quiltd starts every shim through one small
//! process (`quilt-forksrv`), and the shims are quiltd's own children with
//! a shim's name and arguments; a server that is lost is replaced (and
//! reaped) at the next start, and quiltd takes it down when it stops.

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

#[test]
fn shims_are_forked_by_one_server_that_is_replaced_and_stopped() {
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
