//! `TestNetns`: a network namespace a test makes for its quiltd (and for
//! whatever plays the daemon's host there), so that network tests never
//! touch the host's own namespace. Made with `ip netns add` (a bind mount
//! under /run/netns), loopback up; deleted, with everything in it, when
//! dropped. Declare it before the `Daemon` that runs in it, so that the
//! daemon is dropped first.
use std::path::PathBuf;
use std::process::{Command, Output};

#[derive(Debug)]
pub struct TestNetns {
    pub name: String,
    pub path: PathBuf,
}

fn ip(args: &[&str]) -> Output {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (the iproute2 package: scripts/deps.sh)");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl TestNetns {
    /// A new namespace, loopback up.
    pub fn new() -> TestNetns {
        let name = format!("quilt-t-{}", &crate::daemon::random_hex()[..8]);
        ip(&["netns", "add", &name]);
        let ns = TestNetns {
            path: PathBuf::from("/run/netns").join(&name),
            name,
        };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// Runs `argv` in the namespace (nsenter: nothing else changes).
    pub fn run(&self, argv: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net={}", self.path.display()))
            .arg("--")
            .args(argv)
            .output()
            .expect("run nsenter")
    }

    /// `ip -o link` in the namespace: (name without @peer, master, up).
    pub fn links(&self) -> Vec<(String, Option<String>, bool)> {
        let out = ip(&["-n", &self.name, "-o", "link"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let name = w.nth(1)?.trim_end_matches(':');
                let name = name.split('@').next()?.to_string();
                let words: Vec<&str> = l.split_whitespace().collect();
                let master = words
                    .iter()
                    .position(|w| *w == "master")
                    .and_then(|i| words.get(i + 1))
                    .map(|s| s.to_string());
                let up = l.contains(",UP") || l.contains("<UP");
                Some((name, master, up))
            })
            .collect()
    }

    /// `nft list ruleset` in the namespace.
    pub fn ruleset(&self) -> String {
        let out = self.run(&["nft", "list", "ruleset"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Default for TestNetns {
    fn default() -> Self {
        TestNetns::new()
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let out = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        if !matches!(&out, Ok(o) if o.status.success()) {
            eprintln!("quilt-tests: ip netns del {}: {out:?}", self.name);
        }
    }
}
