//! Container networking: `--network none` (loopback only), bridge networks
//! (the default `bridge` and `quilt network create`), siblings reaching each
//! other by address and by name and never across networks, published ports
//! answering from quiltd's side, and nothing left behind (veth ends on a
//! bridge, bridges, nftables elements, address rows) after removal, a
//! `kill -9` of quiltd or its shutdown.
//!
//! Every quiltd here runs inside a network namespace the test makes
//! (`TestNetns`): bridges, veth pairs and the ruleset are made there, never
//! in the host's namespace, and go with it.
use quilt_tests::{CliOutput, Daemon, IMAGE, TestNetns, retry};
use std::time::Duration;

fn daemon_in(ns: &TestNetns) -> Daemon {
    Daemon::builder().netns(ns).start()
}

/// `quilt exec ID sh -c SCRIPT`.
fn sh(d: &Daemon, id: &str, script: &str) -> CliOutput {
    d.cli(["exec", id, "sh", "-c", script])
}

/// A detached container on `network` serving `text` over HTTP on port 80.
fn web(d: &Daemon, name: &str, network: &str, extra: &[&str], text: &str) -> String {
    let script =
        format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www");
    let mut args = vec!["--name", name, "--network", network];
    args.extend_from_slice(extra);
    args.extend([IMAGE, "sh", "-c", script.as_str()]);
    let id = d.run_detached(&args);
    // httpd listens right after the exec; wait until it does.
    let up = retry(Duration::from_secs(10), || {
        let o = sh(d, &id, "netstat -ltn | grep -q ':80 '");
        (o.code == Some(0)).then_some(())
    });
    assert!(up.is_some(), "httpd of {name} never listened");
    id
}

fn inspect(d: &Daemon, id: &str) -> serde_json::Value {
    d.cli(["inspect", id]).json()
}

fn ip_of(d: &Daemon, id: &str) -> String {
    inspect(d, id)["network_settings"]["ip_address"]
        .as_str()
        .expect("an address")
        .to_string()
}

/// What the host side of quiltd's namespace gets from `url` (busybox wget).
fn fetch_from_ns(ns: &TestNetns, url: &str) -> Option<String> {
    let o = ns.run(&["timeout", "5", "busybox", "wget", "-qO-", url]);
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Veth ends of quiltd on a bridge (those of the pool are on none, down).
fn attached_veths(ns: &TestNetns) -> Vec<String> {
    ns.links()
        .into_iter()
        .filter(|(n, master, _)| n.starts_with("qv") && master.is_some())
        .map(|(n, _, _)| n)
        .collect()
}

#[test]
fn none_is_loopback_only_and_is_the_default() {
    let ns = TestNetns::new();
    let d = daemon_in(&ns);
    for extra in [&["--network", "none"][..], &[][..]] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(extra);
        args.extend([IMAGE, "sh", "-c", "ip -o link | cut -d: -f2; ip -o -4 addr"]);
        let out = d.cli(&args).ok();
        let lines: Vec<&str> = out.lines().map(str::trim).collect();
        assert_eq!(lines[0], "lo", "{out}");
        assert_eq!(lines.len(), 2, "only lo and its address: {out}");
        assert!(lines[1].contains("127.0.0.1/8"), "{out}");
    }
    // A daemon whose containers never used a bridge leaves its namespace
    // alone: no bridge, no veth, no ruleset.
    assert!(
        ns.links().iter().all(|(n, _, _)| n == "lo"),
        "{:?}",
        ns.links()
    );
    assert!(!ns.ruleset().contains("table"), "{}", ns.ruleset());
}

/// `--network none` containers bind one shared read-only sysfs (of a
/// network namespace with only loopback) instead of mounting one each;
/// a container on a bridge network mounts its own, which shows its eth0.
#[test]
fn a_container_without_a_network_binds_the_shared_sysfs() {
    let ns = TestNetns::new();
    let mut d = daemon_in(&ns);
    // The device of /sys's superblock, /sys/class/net, and whether /sys
    // can be written.
    let probe = "cut -d' ' -f3,5,6 /proc/self/mountinfo | grep ' /sys ' | cut -d, -f1; \
                 ls /sys/class/net | tr '\\n' ' '; echo; \
                 touch /sys/kernel/x 2>/dev/null && echo written || echo refused";
    let run = |opts: &[&str]| -> Vec<String> {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(opts);
        args.extend([IMAGE, "sh", "-c", probe]);
        let out = d.cli(&args).ok();
        let lines: Vec<String> = out.lines().map(|l| l.trim().to_string()).collect();
        assert_eq!(lines.len(), 3, "{out}");
        lines
    };
    let a = run(&["--network", "none"]);
    let b = run(&[]);
    assert_eq!(a[0], b[0], "two containers without a network: one sysfs");
    assert!(a[0].ends_with(" ro"), "{a:?}");
    assert_eq!(a[1], "lo", "{a:?}");
    assert_eq!(a[2], "refused", "{a:?}");
    let c = run(&["--network", "bridge"]);
    assert_ne!(c[0], a[0], "a bridged container mounts a sysfs of its own");
    assert!(c[1].split(' ').any(|n| n == "eth0"), "{c:?}");
    assert_eq!(c[2], "refused", "{c:?}");
    // One that may add interfaces mounts its own, which shows them.
    let admin = run(&["--network", "none", "--cap-add", "NET_ADMIN"]);
    assert_ne!(admin[0], a[0], "NET_ADMIN: a sysfs of its own");

    // The shared sysfs's namespace outlives the daemon that made it: a
    // container started before a restart still finds its loopback there.
    let id = d.run_detached(&["--network", "none", IMAGE, "sleep", "300"]);
    d.restart();
    let out = d.cli(["exec", &id, "ls", "/sys/class/net"]).ok();
    assert_eq!(out.trim(), "lo", "after a restart");
    d.cli(["rm", "-f", &id]).ok();
    d.assert_no_leftovers();
}

#[test]
fn siblings_reach_each_other_by_address_and_name_but_not_across_networks() {
    let ns = TestNetns::new();
    let d = daemon_in(&ns);
    assert_eq!(
        d.cli(["network", "create", "front", "--subnet", "10.91.1.0/24"])
            .ok(),
        "front"
    );
    assert_eq!(
        d.cli(["network", "create", "back", "--subnet", "10.91.2.0/24"])
            .ok(),
        "back"
    );
    let a = web(&d, "alpha", "front", &[], "alpha-here");
    let b = d.run_detached(&[
        "--name",
        "beta",
        "--network",
        "front",
        IMAGE,
        "sleep",
        "300",
    ]);
    let c = d.run_detached(&[
        "--name",
        "gamma",
        "--network",
        "back",
        IMAGE,
        "sleep",
        "300",
    ]);

    let ia = inspect(&d, &a);
    let settings = &ia["network_settings"];
    assert_eq!(settings["network"], "front", "{ia}");
    assert_eq!(settings["gateway"], "10.91.1.1", "{ia}");
    assert_eq!(settings["prefix_length"], 24, "{ia}");
    let a_ip = ip_of(&d, &a);
    assert!(a_ip.starts_with("10.91.1."), "{a_ip}");
    assert!(ip_of(&d, &c).starts_with("10.91.2."));

    // Same network: by address and by name (the network's resolver).
    assert_eq!(
        sh(&d, &b, &format!("wget -qO- http://{a_ip}/")).ok(),
        "alpha-here"
    );
    assert_eq!(sh(&d, &b, "wget -qO- http://alpha/").ok(), "alpha-here");
    // /etc/hosts names the container itself only, as on docker's
    // user-defined networks: no file grows with the network.
    let b_ip = ip_of(&d, &b);
    let hosts = sh(&d, &a, "cat /etc/hosts").ok();
    assert!(hosts.contains(&format!("{a_ip}\talpha")), "{hosts}");
    assert!(!hosts.contains("beta"), "{hosts}");
    // One with name servers of its own does not ask the network's
    // resolver: its /etc/hosts names the others, and follows them as they
    // come and go.
    let delta = d.run_detached(&[
        "--name",
        "delta",
        "--network",
        "front",
        "--dns",
        "192.0.2.53",
        IMAGE,
        "sleep",
        "300",
    ]);
    let hosts = sh(&d, &delta, "cat /etc/hosts").ok();
    assert!(
        hosts.contains(&format!("{a_ip}\talpha")) && hosts.contains(&format!("{b_ip}\tbeta")),
        "{hosts}"
    );
    let e = d.run_detached(&[
        "--name",
        "epsilon",
        "--network",
        "front",
        IMAGE,
        "sleep",
        "300",
    ]);
    let e_ip = ip_of(&d, &e);
    let hosts = sh(&d, &delta, "cat /etc/hosts").ok();
    assert!(hosts.contains(&format!("{e_ip}\tepsilon")), "{hosts}");
    // A rename reaches it too, and the renamed container's own file.
    d.cli(["rename", "epsilon", "eta"]).ok();
    let hosts = sh(&d, &delta, "cat /etc/hosts").ok();
    assert!(
        hosts.contains(&format!("{e_ip}\teta")) && !hosts.contains("epsilon"),
        "{hosts}"
    );
    // Its hostname stays (as docker's rename leaves it).
    let own = sh(&d, &e, "cat /etc/hosts").ok();
    let own_line = format!("{e_ip}\tepsilon eta");
    assert!(own.lines().any(|l| l == own_line), "{own}");
    // So does the follower's own rename.
    d.cli(["rename", "delta", "kappa"]).ok();
    let own = sh(&d, &delta, "cat /etc/hosts").ok();
    assert!(own.lines().any(|l| l.ends_with("\tdelta kappa")), "{own}");
    assert_eq!(sh(&d, &delta, "wget -qO- http://alpha/").ok(), "alpha-here");
    d.cli(["rm", "-f", &e]).ok();
    let hosts = sh(&d, &delta, "cat /etc/hosts").ok();
    assert!(!hosts.contains("\teta"), "{hosts}");
    d.cli(["rm", "-f", &delta]).ok();
    // So does one that mounts a resolv.conf of its own.
    let resolv = d.root.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 192.0.2.53\n").unwrap();
    let resolv = format!("{}:/etc/resolv.conf:ro", resolv.display());
    let zeta = d.run_detached(&[
        "--name",
        "zeta",
        "--network",
        "front",
        "-v",
        &resolv,
        IMAGE,
        "sleep",
        "300",
    ]);
    let hosts = sh(&d, &zeta, "cat /etc/hosts").ok();
    assert!(hosts.contains(&format!("{a_ip}\talpha")), "{hosts}");
    d.cli(["rm", "-f", &zeta]).ok();

    // Another network: neither by address (TCP, ICMP) nor by name.
    let cross = sh(&d, &c, &format!("timeout 3 wget -qO- http://{a_ip}/"));
    assert_ne!(cross.code, Some(0), "{cross:?}");
    let ping = sh(&d, &c, &format!("ping -c1 -W1 {a_ip}"));
    assert_ne!(ping.code, Some(0), "{ping:?}");
    let by_name = sh(&d, &c, "timeout 3 wget -qO- http://alpha/");
    assert_ne!(by_name.code, Some(0), "{by_name:?}");
    // Nor the gateway, quiltd's own address on the bridge.
    let gw = sh(&d, &b, "ping -c1 -W1 10.91.1.1");
    assert_ne!(gw.code, Some(0), "{gw:?}");

    // A network in use is not removed.
    let refused = d.cli(["network", "rm", "front"]);
    refused.expect_engine_error();
    assert!(
        refused.stderr.contains("in use by alpha, beta"),
        "{refused:?}"
    );
    let info = d.cli(["network", "inspect", "front"]).json();
    assert_eq!(
        info[0]["containers"].as_array().map(Vec::len),
        Some(2),
        "{info}"
    );

    d.cli(["rm", "-f", &a, &b, &c]).ok();
    let info = d.cli(["network", "inspect", "front"]).json();
    assert_eq!(info[0]["containers"], serde_json::json!([]), "{info}");
    assert_eq!(attached_veths(&ns), Vec::<String>::new());
    d.cli(["network", "rm", "front", "back"]).ok();
    let bridges: Vec<String> = ns
        .links()
        .into_iter()
        .map(|(n, _, _)| n)
        .filter(|n| n.starts_with("qn"))
        .collect();
    assert_eq!(bridges, Vec::<String>::new());
    let ls = d.cli(["network", "ls", "--json"]).json();
    let names: Vec<&str> = ls
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(names, ["bridge"]);
}

#[test]
fn published_ports_answer_on_loopback_and_nothing_is_left() {
    let ns = TestNetns::new();
    let mut d = daemon_in(&ns);
    let w = web(
        &d,
        "site",
        "bridge",
        &["-p", "127.0.0.1:18080:80", "-p", "80"],
        "site-here",
    );
    assert_eq!(
        fetch_from_ns(&ns, "http://127.0.0.1:18080/").as_deref(),
        Some("site-here")
    );
    // `-p 80`: a free host port, on 127.0.0.1, shown by `quilt port`.
    let ports = d.cli(["port", &w]).ok();
    let lines: Vec<&str> = ports.lines().collect();
    assert_eq!(lines.len(), 2, "{ports}");
    assert_eq!(lines[0], "127.0.0.1:18080->80/tcp");
    let free = lines[1]
        .strip_prefix("127.0.0.1:")
        .and_then(|r| r.strip_suffix("->80/tcp"))
        .expect("127.0.0.1:PORT->80/tcp");
    assert_ne!(free, "0");
    assert_eq!(
        fetch_from_ns(&ns, &format!("http://127.0.0.1:{free}/")).as_deref(),
        Some("site-here")
    );

    // The host port is taken: a second container is refused at create,
    // and nothing of it stays.
    let clash = d.cli([
        "create",
        "--name",
        "clash",
        "--network",
        "bridge",
        "-p",
        "127.0.0.1:18080:80",
        IMAGE,
        "true",
    ]);
    clash.expect_engine_error();
    assert!(clash.stderr.contains("18080"), "{clash:?}");
    assert_eq!(d.cli(["ps", "-a", "-q"]).lines().len(), 1);

    // Published on every address: reached through a non-loopback address
    // of quiltd's namespace (the bridge's) by DNAT.
    let all = web(&d, "all", "bridge", &["-p", "0.0.0.0:18081:80"], "all-here");
    let gw = inspect(&d, &all)["network_settings"]["gateway"]
        .as_str()
        .expect("a gateway")
        .to_string();
    assert_eq!(
        fetch_from_ns(&ns, &format!("http://{gw}:18081/")).as_deref(),
        Some("all-here")
    );

    // A kill -9 of quiltd: the containers keep their network; the new
    // quiltd takes it back (ports included).
    d.kill9();
    d.restart();
    assert_eq!(
        fetch_from_ns(&ns, "http://127.0.0.1:18080/").as_deref(),
        Some("site-here")
    );
    assert!(ns.ruleset().contains("02:51:"), "{}", ns.ruleset());

    d.cli(["rm", "-f", &w, &all]).ok();
    assert_eq!(fetch_from_ns(&ns, "http://127.0.0.1:18080/"), None);
    assert_eq!(attached_veths(&ns), Vec::<String>::new());
    let rules = ns.ruleset();
    assert!(
        !rules.contains("02:51:"),
        "no address binding left: {rules}"
    );
    assert!(!rules.contains("18081"), "no published port left: {rules}");
    let info = d.cli(["network", "inspect", "bridge"]).json();
    assert_eq!(info[0]["containers"], serde_json::json!([]), "{info}");
    // The port is free again.
    let again = web(
        &d,
        "again",
        "bridge",
        &["-p", "127.0.0.1:18080:80"],
        "again-here",
    );
    assert_eq!(
        fetch_from_ns(&ns, "http://127.0.0.1:18080/").as_deref(),
        Some("again-here")
    );
    d.cli(["rm", "-f", &again]).ok();

    // quiltd's shutdown destroys the namespaces it kept ready: no veth
    // and no namespace file is left.
    d.stop();
    let veths: Vec<String> = ns
        .links()
        .into_iter()
        .map(|(n, _, _)| n)
        .filter(|n| n.starts_with("qv"))
        .collect();
    assert_eq!(veths, Vec::<String>::new());
    let files: Vec<_> = std::fs::read_dir(d.data_dir.join("netns"))
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(files.is_empty(), "{files:?}");
}

#[test]
fn bad_network_requests_are_refused_clearly() {
    let ns = TestNetns::new();
    let d = daemon_in(&ns);
    let cases: [(&[&str], &str); 8] = [
        (
            &["run", "--rm", "--network", "nosuch", IMAGE, "true"],
            "no such network: \"nosuch\"",
        ),
        (
            &["run", "--rm", "-p", "8080:80", IMAGE, "true"],
            "need a bridge network",
        ),
        (
            &["network", "create", "bad", "--subnet", "10.0.0.1/24"],
            "host bits are set",
        ),
        (
            &["network", "create", "bad", "--subnet", "127.0.0.0/8"],
            "loopback",
        ),
        (&["network", "create", "none"], "reserved"),
        (&["network", "create", "a/b"], "invalid network name"),
        (&["network", "rm", "bridge"], "cannot be removed"),
        (&["network", "inspect", "nosuch"], "no such network"),
    ];
    for (args, why) in cases {
        let o = d.cli(args);
        o.expect_engine_error();
        assert!(o.stderr.contains(why), "{args:?}: {o:?}");
    }
    d.cli(["network", "create", "one", "--subnet", "10.92.0.0/16"])
        .ok();
    let o = d.cli(["network", "create", "two", "--subnet", "10.92.5.0/24"]);
    o.expect_engine_error();
    assert!(
        o.stderr.contains("overlaps 10.92.0.0/16 of network one"),
        "{o:?}"
    );
    let o = d.cli(["network", "create", "one"]);
    o.expect_engine_error();
    assert!(o.stderr.contains("already exists"), "{o:?}");
    // Checked by the CLI: a usage error, nothing sent.
    for bad in ["70000", "1:2:3:4", "80/sctp", "x.y:1:2"] {
        let o = d.cli(["run", "--rm", "-p", bad, IMAGE, "true"]);
        o.expect_code(125);
        assert!(o.stderr.contains("invalid value"), "{o:?}");
    }
    assert_eq!(d.cli(["ps", "-a", "-q"]).ok(), "");
    d.cli(["network", "rm", "one"]).ok();
}

#[test]
fn a_kill_9_mid_start_leaves_nothing_after_the_restart() {
    let ns = TestNetns::new();
    let mut d = daemon_in(&ns);
    // Queued starts (create returns once stored), then quiltd dies while
    // it takes namespaces, attaches them and publishes ports.
    let mut ids = Vec::new();
    for i in 0..6 {
        let port = format!("127.0.0.1:{}:80", 18090 + i);
        let name = format!("mid{i}");
        ids.push(
            d.cli([
                "create",
                "--name",
                &name,
                "--network",
                "bridge",
                "-p",
                &port,
                IMAGE,
                "sleep",
                "300",
            ])
            .ok(),
        );
    }
    d.kill9();
    d.restart();
    for id in &ids {
        d.cli(["rm", "-f", id]).ok();
    }
    d.assert_no_leftovers();
    assert_eq!(attached_veths(&ns), Vec::<String>::new());
    let rules = ns.ruleset();
    assert!(
        !rules.contains("02:51:"),
        "no address binding left: {rules}"
    );
    for i in 0..6 {
        assert_eq!(
            fetch_from_ns(&ns, &format!("http://127.0.0.1:{}/", 18090 + i)),
            None
        );
    }
    let info = d.cli(["network", "inspect", "bridge"]).json();
    assert_eq!(info[0]["containers"], serde_json::json!([]), "{info}");
    d.stop();
    let veths: Vec<String> = ns
        .links()
        .into_iter()
        .map(|(n, _, _)| n)
        .filter(|n| n.starts_with("qv"))
        .collect();
    assert_eq!(veths, Vec::<String>::new());
    let files: Vec<_> = std::fs::read_dir(d.data_dir.join("netns"))
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(files.is_empty(), "{files:?}");
}

#[test]
fn container_mode_shares_a_namespace_and_internal_networks_publish_nothing() {
    let ns = TestNetns::new();
    let d = daemon_in(&ns);
    let w = web(&d, "host1", "bridge", &[], "shared-here");
    // Another container in host1's namespace: its loopback, its address.
    let out = d
        .cli([
            "run",
            "--rm",
            "--network",
            "container:host1",
            IMAGE,
            "wget",
            "-qO-",
            "http://127.0.0.1/",
        ])
        .ok();
    assert_eq!(out, "shared-here");
    let joiner = d.run_detached(&[
        "--name",
        "side",
        "--network",
        "container:host1",
        IMAGE,
        "sleep",
        "300",
    ]);
    let addr = sh(&d, &joiner, "ip -o -4 addr show eth0").ok();
    assert!(addr.contains(&ip_of(&d, &w)), "{addr}");
    // Its owner, even stopped, is not removed under it unless forced.
    d.cli(["stop", "-t", "1", &w]).ok();
    let refused = d.cli(["rm", &w]);
    refused.expect_engine_error();
    assert!(
        refused.stderr.contains("shares its network with side"),
        "{refused:?}"
    );
    d.cli(["rm", "-f", &joiner, &w]).ok();

    d.cli([
        "network",
        "create",
        "closed",
        "--internal",
        "--subnet",
        "10.93.0.0/24",
    ])
    .ok();
    let o = d.cli(["create", "--network", "closed", "-p", "80", IMAGE, "true"]);
    o.expect_engine_error();
    assert!(o.stderr.contains("internal"), "{o:?}");
    let a = web(&d, "in1", "closed", &[], "inside");
    let b = d.run_detached(&[
        "--name",
        "in2",
        "--network",
        "closed",
        IMAGE,
        "sleep",
        "300",
    ]);
    assert_eq!(sh(&d, &b, "wget -qO- http://in1/").ok(), "inside");
    d.cli(["rm", "-f", &a, &b]).ok();
    d.cli(["network", "rm", "closed"]).ok();
    assert_eq!(attached_veths(&ns), Vec::<String>::new());
}

#[test]
fn returned_namespaces_go_round_instead_of_being_made_anew() {
    let d = Daemon::builder().args(&["--netns-pool", "2"]).start();
    let slots = || -> std::collections::BTreeSet<String> {
        std::fs::read_dir(d.data_dir.join("netns"))
            .map(|r| {
                r.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| n.starts_with('p'))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..10 {
        d.cli(["run", "--rm", IMAGE, "true"]).ok();
        seen.extend(slots());
    }
    // Each start takes one and its removal gives it back: at most twice
    // the target are kept, and one is in use (a pool that destroyed what
    // came back would have made one per start).
    assert!(seen.len() <= 5, "{} namespaces made: {seen:?}", seen.len());
    d.assert_no_leftovers();
}
