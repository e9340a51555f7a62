//! Each bridge network's resolver: containers on one network find each
//! other by name, alias and short id (and not across networks), a name
//! resolves as soon as its container's start returns, other names are
//! forwarded to `--upstream-dns` (a dnsmasq the test runs, authoritative
//! for example.test), internal networks forward nothing, a removed
//! container's name goes, and a restarted quiltd answers again.
//!
//! quiltd runs inside a network namespace the test makes (`TestNetns`);
//! the upstream listens on 127.0.0.1 there. Queries use busybox nslookup,
//! which asks the resolver of /etc/resolv.conf directly (not /etc/hosts).
use quilt_tests::{CliOutput, Daemon, IMAGE, TestNetns};
use std::process::{Child, Command, Stdio};

/// The test's upstream resolver, killed when dropped.
struct Upstream(Child);

impl Upstream {
    /// dnsmasq on 127.0.0.1:5353 in `ns`: example.test and its subdomains
    /// are 10.9.8.7; nothing else is known (no upstream of its own).
    fn start(ns: &TestNetns) -> Upstream {
        let child = Command::new("nsenter")
            .arg(format!("--net={}", ns.path.display()))
            .args([
                "--",
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--pid-file=",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--port=5353",
                "--address=/example.test/10.9.8.7",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run dnsmasq (the dnsmasq-base package: scripts/deps.sh)");
        let up = Upstream(child);
        // Ready once it answers.
        let ok = quilt_tests::retry(std::time::Duration::from_secs(10), || {
            let o = ns.run(&[
                "busybox",
                "nslookup",
                "-port=5353",
                "a.example.test",
                "127.0.0.1",
            ]);
            String::from_utf8_lossy(&o.stdout)
                .contains("10.9.8.7")
                .then_some(())
        });
        assert!(ok.is_some(), "dnsmasq never answered");
        up
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sh(d: &Daemon, id: &str, script: &str) -> CliOutput {
    d.cli(["exec", id, "sh", "-c", script])
}

/// The addresses `name` resolves to from container `id` (busybox nslookup
/// through its resolv.conf), None when it does not resolve.
fn lookup(d: &Daemon, id: &str, name: &str) -> Option<Vec<String>> {
    let o = sh(d, id, &format!("nslookup -type=a {name}"));
    if o.code != Some(0) {
        return None;
    }
    // After the server's own lines: "Name: NAME" then "Address: IP".
    let ips: Vec<String> = o
        .stdout
        .split("Name:")
        .skip(1)
        .flat_map(|s| s.lines().filter_map(|l| l.trim().strip_prefix("Address:")))
        .map(|a| a.trim().to_string())
        .collect();
    (!ips.is_empty()).then_some(ips)
}

fn ip_of(d: &Daemon, id: &str) -> String {
    d.cli(["inspect", id]).json()["network_settings"]["ip_address"]
        .as_str()
        .expect("an address")
        .to_string()
}

fn sleeper(d: &Daemon, name: &str, network: &str, extra: &[&str]) -> String {
    let mut args = vec!["--name", name, "--network", network];
    args.extend_from_slice(extra);
    args.extend([IMAGE, "sleep", "300"]);
    d.run_detached(&args)
}

#[test]
fn names_aliases_forwarding_and_isolation() {
    let ns = TestNetns::new();
    let _up = Upstream::start(&ns);
    let mut d = Daemon::builder()
        .netns(&ns)
        .args(&["--upstream-dns", "127.0.0.1:5353"])
        .start();
    d.cli(["network", "create", "front", "--subnet", "10.93.1.0/24"])
        .ok();
    d.cli(["network", "create", "back", "--subnet", "10.93.2.0/24"])
        .ok();
    d.cli([
        "network",
        "create",
        "inner",
        "--internal",
        "--subnet",
        "10.93.3.0/24",
    ])
    .ok();
    let a = sleeper(
        &d,
        "alpha",
        "front",
        &["--network-alias", "db", "--network-alias", "Cache.Internal"],
    );
    let b = sleeper(&d, "beta", "front", &[]);
    let c = sleeper(&d, "gamma", "back", &[]);
    let i = sleeper(&d, "iota", "inner", &[]);
    let a_ip = ip_of(&d, &a);

    let info = d.cli(["inspect", &a]).json();
    assert_eq!(
        info["network_settings"]["aliases"],
        serde_json::json!(["db", "Cache.Internal"]),
        "{info}"
    );
    let conf = sh(&d, &b, "cat /etc/resolv.conf").ok();
    assert!(conf.contains("nameserver 10.93.1.1\n"), "{conf}");
    assert!(conf.contains("options ndots:0"), "{conf}");

    // By name, alias (any case, with the dot) and short id.
    for n in ["alpha", "db", "cache.internal", "CACHE.Internal.", &a[..12]] {
        assert_eq!(lookup(&d, &b, n), Some(vec![a_ip.clone()]), "{n}");
    }
    // Not from another network, nor an internal one.
    assert_eq!(lookup(&d, &c, "alpha"), None);
    assert_eq!(lookup(&d, &c, "db"), None);
    assert_eq!(lookup(&d, &i, "alpha"), None);
    assert_eq!(lookup(&d, &c, "gamma"), Some(vec![ip_of(&d, &c)]));

    // Forwarded upstream; not from an internal network.
    assert_eq!(
        lookup(&d, &b, "www.example.test"),
        Some(vec!["10.9.8.7".to_string()])
    );
    assert_eq!(
        lookup(&d, &c, "example.test"),
        Some(vec!["10.9.8.7".to_string()])
    );
    assert_eq!(lookup(&d, &i, "www.example.test"), None);
    assert_eq!(lookup(&d, &i, "iota"), Some(vec![ip_of(&d, &i)]));

    // The default network has its resolver too.
    let f = sleeper(&d, "phi", "bridge", &[]);
    assert_eq!(lookup(&d, &f, "phi"), Some(vec![ip_of(&d, &f)]));
    assert_eq!(lookup(&d, &f, "beta"), None);

    // A new container's name resolves as soon as its start returns.
    let e = sleeper(&d, "epsilon", "front", &[]);
    assert_eq!(lookup(&d, &b, "epsilon"), Some(vec![ip_of(&d, &e)]));

    // --dns replaces the network's resolver in resolv.conf.
    let own = d
        .cli([
            "run",
            "--rm",
            "--network",
            "front",
            "--dns",
            "10.1.2.3",
            IMAGE,
            "cat",
            "/etc/resolv.conf",
        ])
        .ok();
    assert!(own.contains("nameserver 10.1.2.3"), "{own}");
    assert!(!own.contains("10.93.1.1"), "{own}");

    // A container sharing b's namespace uses b's network's resolver.
    let joined = d
        .cli([
            "run",
            "--rm",
            "--network",
            &format!("container:{b}"),
            IMAGE,
            "cat",
            "/etc/resolv.conf",
        ])
        .ok();
    assert!(joined.contains("nameserver 10.93.1.1\n"), "{joined}");

    // A removed container's names go at once.
    d.cli(["rm", "-f", &a]).ok();
    // The gateway keeps its MAC as ports leave its bridge (the others'
    // neighbour caches stay right: their resolver is not lost).
    let links = String::from_utf8_lossy(&ns.run(&["ip", "-o", "link"]).stdout).into_owned();
    assert!(links.contains("link/ether 02:51:0a:5d:01:01 "), "{links}");
    assert_eq!(lookup(&d, &b, "alpha"), None);
    assert_eq!(lookup(&d, &b, "db"), None);

    // A renamed one answers to its new name only.
    d.cli(["rename", "epsilon", "zeta"]).ok();
    assert_eq!(lookup(&d, &b, "zeta"), Some(vec![ip_of(&d, &e)]));
    assert_eq!(lookup(&d, &b, "epsilon"), None);

    // After a restart the names come back from the database.
    d.restart();
    assert_eq!(lookup(&d, &b, "zeta"), Some(vec![ip_of(&d, &e)]));
    assert_eq!(lookup(&d, &b, "beta"), Some(vec![ip_of(&d, &b)]));
    assert_eq!(lookup(&d, &c, "beta"), None);
    assert_eq!(
        lookup(&d, &b, "www.example.test"),
        Some(vec!["10.9.8.7".to_string()])
    );

    // And after a kill -9.
    d.kill9();
    d.restart();
    assert_eq!(lookup(&d, &c, "gamma"), Some(vec![ip_of(&d, &c)]));

    d.cli(["rm", "-f", &b, &c, &e, &f, &i]).ok();
    d.cli(["network", "rm", "front", "back", "inner"]).ok();
    // The removed networks' resolvers are gone with them.
    let gone = ns.run(&[
        "busybox",
        "nslookup",
        "-type=a",
        "x.example.test",
        "10.93.1.1",
    ]);
    assert!(!gone.status.success(), "{gone:?}");
    d.assert_no_leftovers();
}

#[test]
fn bad_aliases_are_refused() {
    let ns = TestNetns::new();
    let d = Daemon::builder().netns(&ns).start();
    for (args, why) in [
        (
            &["--network", "bridge", "--network-alias", "-db"][..],
            "invalid network alias",
        ),
        (
            &["--network", "bridge", "--network-alias", "a_b"][..],
            "invalid network alias",
        ),
        (
            &["--network", "none", "--network-alias", "db"][..],
            "need a bridge network",
        ),
        (&["--network-alias", "db"][..], "need a bridge network"),
    ] {
        let mut all = vec!["create"];
        all.extend_from_slice(args);
        all.extend([IMAGE, "true"]);
        let o = d.cli(&all);
        o.expect_engine_error();
        assert!(o.stderr.contains(why), "{args:?}: {o:?}");
    }
    let long = "a".repeat(64);
    let o = d.cli([
        "create",
        "--network",
        "bridge",
        "--network-alias",
        &long,
        IMAGE,
        "true",
    ]);
    o.expect_engine_error();
    let many: Vec<String> = (0..33)
        .flat_map(|n| ["--network-alias".to_string(), format!("a{n}")])
        .collect();
    let mut all: Vec<&str> = vec!["create", "--network", "bridge"];
    all.extend(many.iter().map(String::as_str));
    all.extend([IMAGE, "true"]);
    let o = d.cli(&all);
    o.expect_engine_error();
    assert!(o.stderr.contains("at most 32"), "{o:?}");
    d.assert_no_leftovers();
}
