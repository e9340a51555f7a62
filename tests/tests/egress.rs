//! Egress policies: the always-on deny set (metadata and private addresses
//! unreachable by default), allow lists of domains enforced by the egress
//! proxy (a forged Host or SNI never reaches another address: the proxy
//! connects to what the name resolves to), a tightened policy cutting a
//! running download, a pooled namespace getting its container's policy and
//! never an earlier one's, a policy surviving a `kill -9` of quiltd, and no
//! rule left after removal.
//!
//! Two namespaces made by the test: quiltd's (`TestNetns`) and "the
//! internet", joined by a veth pair. The internet runs
//! tests/python/egress_internet.py: HTTP (80, and 8080 not proxied), TLS
//! (443) on a public-looking address (203.0.113.10, what allowed.test is),
//! another (203.0.113.20, denied.test), a private one (192.168.77.5) and
//! the metadata address (169.254.169.254); and a DNS server quiltd's
//! `--upstream-dns` points to. Containers are told (--add-host) that
//! allowed.test is 203.0.113.20: the forged address.
use quilt_tests::{CliOutput, Daemon, IMAGE, TestNetns, retry};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ALLOWED: &str = "203.0.113.10";
const DENIED: &str = "203.0.113.20";
const PRIVATE: &str = "192.168.77.5";
const METADATA: &str = "169.254.169.254";
const DNS: &str = "198.51.100.2";

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The internet namespace and its servers (killed when dropped).
struct Internet {
    ns: TestNetns,
    dir: tempfile::TempDir,
    server: Child,
}

impl Internet {
    fn new(daemon_ns: &TestNetns) -> Internet {
        let ns = TestNetns::new();
        let (d, i) = (&daemon_ns.name, &ns.name);
        ip(&[
            "-n", d, "link", "add", "up0", "type", "veth", "peer", "name", "up1", "netns", i,
        ]);
        ip(&["-n", d, "addr", "add", "198.51.100.1/24", "dev", "up0"]);
        ip(&["-n", d, "link", "set", "up0", "up"]);
        ip(&["-n", d, "route", "add", "default", "via", DNS]);
        ip(&["-n", i, "addr", "add", &format!("{DNS}/24"), "dev", "up1"]);
        ip(&["-n", i, "link", "set", "up1", "up"]);
        for a in [ALLOWED, DENIED, PRIVATE, METADATA] {
            ip(&["-n", i, "addr", "add", &format!("{a}/32"), "dev", "lo"]);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=allowed.test", "-keyout"])
            .arg(dir.path().join("key.pem"))
            .arg("-out")
            .arg(dir.path().join("cert.pem"))
            .output()
            .expect("run openssl (scripts/deps.sh)");
        assert!(cert.status.success(), "{cert:?}");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/egress_internet.py");
        let server = Command::new("nsenter")
            .arg(format!("--net={}", ns.path.display()))
            .args(["--", "python3"])
            .arg(script)
            .arg(dir.path())
            .arg(DNS)
            .args([
                format!("allowed.test={ALLOWED}"),
                format!("denied.test={DENIED}"),
                format!("meta.test={METADATA}"),
                format!("private.test={PRIVATE}"),
            ])
            .arg("--")
            .args([
                format!("{ALLOWED}=allowed"),
                format!("{DENIED}=denied"),
                format!("{PRIVATE}=private"),
                format!("{METADATA}=metadata"),
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("run python3");
        let ready = dir.path().join("ready");
        assert!(
            retry(Duration::from_secs(15), || ready.exists().then_some(())).is_some(),
            "the internet's servers never started"
        );
        Internet { ns, dir, server }
    }

    /// Connections each server has accepted ("ADDR:PORT" lines).
    fn conns(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("conns.log")).unwrap_or_default()
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = &self.ns;
    }
}

fn daemon(ns: &TestNetns) -> Daemon {
    Daemon::builder()
        .netns(ns)
        .args(&["--upstream-dns", DNS])
        .start()
}

fn sh(d: &Daemon, id: &str, script: &str) -> CliOutput {
    d.cli(["exec", id, "sh", "-c", script])
}

/// What the container gets from `url` with busybox wget (None: failed).
fn get(d: &Daemon, id: &str, url: &str) -> Option<String> {
    // (busybox 1.35's wget -T crashes: timeout(1) bounds it instead.)
    let o = sh(d, id, &format!("timeout 5 wget -qO- {url}"));
    if o.code != Some(0) {
        eprintln!("wget {url}: {o:?}");
    }
    (o.code == Some(0)).then(|| o.stdout.trim().to_string())
}

/// A container on the default bridge with these extra options; it thinks
/// allowed.test and denied.test are both at the denied address.
fn container(d: &Daemon, extra: &[&str]) -> String {
    let forged_a = format!("allowed.test:{DENIED}");
    let forged_b = format!("denied.test:{DENIED}");
    let mut args = vec![
        "--network",
        "bridge",
        "--add-host",
        &forged_a,
        "--add-host",
        &forged_b,
    ];
    args.extend_from_slice(extra);
    args.extend([IMAGE, "sleep", "300"]);
    d.run_detached(&args)
}

fn table(ns: &TestNetns) -> String {
    ns.ruleset()
}

#[test]
fn metadata_and_private_addresses_are_closed_by_default() {
    let ns = TestNetns::new();
    let net = Internet::new(&ns);
    let d = daemon(&ns);
    let c = container(&d, &[]);
    assert_eq!(
        get(&d, &c, &format!("http://{ALLOWED}/")).as_deref(),
        Some("allowed-http")
    );
    // Without a policy, DNS to any server works.
    let dns = sh(&d, &c, &format!("timeout 4 nslookup allowed.test {DNS}"));
    assert!(dns.stdout.contains(ALLOWED), "{dns:?}");
    assert_eq!(get(&d, &c, &format!("http://{METADATA}/")), None);
    assert_eq!(get(&d, &c, &format!("http://{PRIVATE}/")), None);
    assert_eq!(get(&d, &c, &format!("http://{PRIVATE}:8080/")), None);
    assert!(!net.conns().contains(METADATA), "{}", net.conns());
    assert!(!net.conns().contains(PRIVATE), "{}", net.conns());

    // An explicit allow entry opens a private address (live).
    let o = d.cli(["network", "policy", &c, "--allow", &format!("{PRIVATE}/32")]);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.json()["allow"][0], PRIVATE);
    assert_eq!(
        get(&d, &c, &format!("http://{PRIVATE}:8080/")).as_deref(),
        Some("private-direct")
    );
    assert_eq!(get(&d, &c, &format!("http://{METADATA}/")), None);
    let now = d.cli(["network", "policy", &c]).json();
    assert_eq!(now["allow"][0], PRIVATE, "{now}");
    assert_eq!(now["default_action"], "allow", "{now}");
    let shown = d.cli(["inspect", &c]).json();
    assert_eq!(shown["egress"]["default_action"], "allow", "{shown}");
    d.cli(["rm", "-f", &c]).ok();
}

#[test]
fn an_allow_list_of_domains_goes_through_the_proxy_and_forgeries_fail() {
    let ns = TestNetns::new();
    let net = Internet::new(&ns);
    let d = daemon(&ns);
    let c = container(
        &d,
        &[
            "--egress-default",
            "deny",
            "--egress-allow",
            "allowed.test",
            "--egress-allow",
            "meta.test",
        ],
    );
    // The container dials 203.0.113.20 (its /etc/hosts lies); the proxy
    // reads the name and connects to what allowed.test really is.
    assert_eq!(
        get(&d, &c, "http://allowed.test/").as_deref(),
        Some("allowed-http")
    );
    assert_eq!(
        get(&d, &c, "https://allowed.test/").as_deref(),
        Some("allowed-https")
    );
    // A Host header naming an allowed domain sent to another address.
    let o = sh(
        &d,
        &c,
        &format!("timeout 5 wget -qO- --header 'Host: allowed.test' http://{DENIED}/"),
    );
    assert_eq!(o.stdout.trim(), "allowed-http", "{o:?}");
    // Names not allowed, addresses by themselves, a name resolving to the
    // metadata address, QUIC-less UDP DNS elsewhere: all refused.
    assert_eq!(get(&d, &c, "http://denied.test/"), None);
    assert_eq!(get(&d, &c, "https://denied.test/"), None);
    assert_eq!(get(&d, &c, &format!("http://{ALLOWED}/")), None);
    assert_eq!(get(&d, &c, &format!("http://{ALLOWED}:8080/")), None);
    assert_eq!(get(&d, &c, "http://meta.test/"), None);
    assert_eq!(get(&d, &c, &format!("http://{METADATA}/")), None);
    // DNS only to the network's resolver.
    let dns = sh(&d, &c, &format!("timeout 4 nslookup allowed.test {DNS}"));
    assert!(!dns.stdout.contains(ALLOWED), "{dns:?}");
    let conns = net.conns();
    assert!(
        !conns.contains(DENIED),
        "the denied server was reached: {conns}"
    );
    assert!(!conns.contains(METADATA), "{conns}");
    assert!(conns.contains(&format!("{ALLOWED}:443")), "{conns}");

    // Bad input: clear messages.
    let bad = d.cli(["network", "policy", &c, "--allow", "10.0.0.1/8"]);
    assert_eq!(bad.code, Some(125), "{bad:?}");
    assert!(bad.stderr.contains("host bits are set"), "{bad:?}");
    let host = d.cli([
        "create",
        "--network",
        "host",
        "--egress-default",
        "deny",
        IMAGE,
        "true",
    ]);
    assert_ne!(host.code, Some(0));
    assert!(host.stderr.contains("needs a bridge network"), "{host:?}");

    d.cli(["rm", "-f", &c]).ok();
    let rules = table(&ns);
    assert!(!rules.contains("chain eg0"), "{rules}");
    assert!(!rules.contains("redirect"), "{rules}");
}

/// Bytes of /tmp/dl in the container.
fn size(d: &Daemon, id: &str) -> u64 {
    sh(d, id, "wc -c < /tmp/dl")
        .stdout
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Starts a slow download of `url` in the container; returns once bytes
/// arrive.
fn download(d: &Daemon, id: &str, url: &str) {
    let o = d.cli(["exec", "-d", id, "wget", "-qO", "/tmp/dl", url]);
    assert_eq!(o.code, Some(0), "{o:?}");
    let flowing = retry(Duration::from_secs(10), || {
        (size(d, id) > 20_000).then_some(())
    });
    assert!(flowing.is_some(), "the download never started");
}

/// Whether the download has stopped growing within `within` after now.
fn cut(d: &Daemon, id: &str, within: Duration) -> bool {
    let start = Instant::now();
    std::thread::sleep(within);
    let a = size(d, id);
    std::thread::sleep(Duration::from_millis(1500));
    let b = size(d, id);
    eprintln!(
        "download: {a} then {b} bytes, {:?} after the update",
        start.elapsed()
    );
    a == b
}

#[test]
fn a_tightened_policy_cuts_running_downloads() {
    let ns = TestNetns::new();
    let _net = Internet::new(&ns);
    let d = daemon(&ns);

    // Through the proxy: the name is no longer allowed.
    let c = container(&d, &["--egress-allow", "allowed.test"]);
    download(&d, &c, "http://allowed.test/slow");
    let upstream = || {
        let o = ns.run(&["ss", "-Htn", "state", "established", "dst", ALLOWED]);
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_ne!(upstream(), "", "the proxy has no upstream connection");
    let o = d.cli(["network", "policy", &c, "--default", "deny"]);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(
        cut(&d, &c, Duration::from_millis(1000)),
        "the proxied download went on"
    );
    // The proxy closed its side too: no connection of quiltd's to the server.
    assert_eq!(upstream(), "", "the proxy kept its upstream connection");

    // By address (port 8080 is not proxied): every packet is evaluated.
    let e = container(&d, &[]);
    download(&d, &e, &format!("http://{ALLOWED}:8080/slow"));
    let o = d.cli(["network", "policy", &e, "--deny", ALLOWED]);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert!(
        cut(&d, &e, Duration::from_millis(1000)),
        "the direct download went on"
    );
    d.cli(["rm", "-f", &c, &e]).ok();
}

#[test]
fn pooled_namespaces_get_their_own_policy_and_it_survives_a_kill_9() {
    let ns = TestNetns::new();
    let _net = Internet::new(&ns);
    let mut d = daemon(&ns);
    // A permissive container first; its namespace goes back to the pool.
    let a = container(&d, &["--egress-allow", PRIVATE]);
    assert_eq!(
        get(&d, &a, &format!("http://{PRIVATE}/")).as_deref(),
        Some("private-http")
    );
    d.cli(["rm", "-f", &a]).ok();
    let rules = table(&ns);
    assert!(!rules.contains(PRIVATE), "{rules}");
    // Then strict ones from the pool (the pool hands slots around).
    let mut strict = Vec::new();
    for _ in 0..3 {
        let s = container(
            &d,
            &["--egress-default", "deny", "--egress-allow", "allowed.test"],
        );
        assert_eq!(get(&d, &s, &format!("http://{PRIVATE}/")), None);
        assert_eq!(get(&d, &s, &format!("http://{ALLOWED}:8080/")), None);
        strict.push(s);
    }
    let s = strict[0].clone();
    assert_eq!(
        get(&d, &s, "http://allowed.test/").as_deref(),
        Some("allowed-http")
    );

    // quiltd killed: the new one puts the stored policy in force again.
    d.kill9();
    d.restart();
    assert_eq!(get(&d, &s, &format!("http://{ALLOWED}:8080/")), None);
    assert_eq!(
        get(&d, &s, "http://allowed.test/").as_deref(),
        Some("allowed-http")
    );
    assert_eq!(get(&d, &s, "http://denied.test/"), None);

    let mut rm = vec!["rm", "-f"];
    rm.extend(strict.iter().map(String::as_str));
    d.cli(&rm).ok();
    let rules = table(&ns);
    assert!(!rules.contains("chain eg0"), "{rules}");
    assert!(!rules.contains("jump eg0"), "{rules}");
    assert!(!rules.contains("redirect"), "{rules}");
}
