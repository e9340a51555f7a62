//! Pulling from a real registry: Debian's `docker-registry` on 127.0.0.1
//! (a random port, storage in a temp dir), images built here as OCI
//! layouts and pushed with `skopeo`. Single-arch (gzip and zstd), a
//! multi-arch index with platform selection, a tampered blob refused,
//! basic auth (login, logout, the daemon's own config.json), and a pull cut
//! off by a proxy and resumed. Nothing leaves the machine.
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quilt_testkit::tar::header;
use quilt_tests::cli::run_program;
use quilt_tests::{CliOutput, Daemon, bin_dir};
use sha2::{Digest, Sha256};

const PULL_TIMEOUT: Duration = Duration::from_secs(120);

/// A `docker-registry` serving a temp dir on 127.0.0.1.
struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Registry {
    /// Starts one; with `htpasswd`, basic auth with that file's users.
    fn start(htpasswd: Option<&str>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir(&store).unwrap();
        let auth = match htpasswd {
            Some(line) => {
                let p = dir.path().join("htpasswd");
                std::fs::write(&p, line).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: quilt-test\n    path: {}\n",
                    p.display()
                )
            }
            None => String::new(),
        };
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:0\n  secret: quilt-test\n{auth}",
                store.display()
            ),
        )
        .unwrap();
        let log = dir.path().join("registry.log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("registry.err")).unwrap())
            .spawn()
            .expect("the registry tests need docker-registry (scripts/deps.sh)");
        let mut reg = Registry {
            child,
            dir,
            port: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(reg.dir.path().join("registry.err"))
                .unwrap_or_default()
                + &std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(at) = text.find("listening on 127.0.0.1:") {
                let rest = &text[at + "listening on 127.0.0.1:".len()..];
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                reg.port = digits.parse().unwrap();
                return reg;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The file the registry serves for a blob.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("store/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An uncompressed layer tar: busybox, sh and cat, /msg, and `extra` bytes
/// in /big when non-empty.
fn layer(msg: &str, extra: &[u8]) -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("the tests need /bin/busybox");
    let mut b = tar::Builder::new(Vec::new());
    let mut dir = header(tar::EntryType::Directory, 0o755, 0);
    b.append_data(&mut dir, "bin/", std::io::empty()).unwrap();
    let mut h = header(tar::EntryType::Regular, 0o755, busybox.len() as u64);
    b.append_data(&mut h, "bin/busybox", &busybox[..]).unwrap();
    for l in ["sh", "cat", "sha256sum", "wc"] {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("bin/{l}"), "busybox")
            .unwrap();
    }
    let mut h = header(tar::EntryType::Regular, 0o644, msg.len() as u64 + 1);
    b.append_data(&mut h, "msg", format!("{msg}\n").as_bytes())
        .unwrap();
    if !extra.is_empty() {
        let mut h = header(tar::EntryType::Regular, 0o644, extra.len() as u64);
        b.append_data(&mut h, "big", extra).unwrap();
    }
    b.into_inner().unwrap()
}

/// Writes blobs of an OCI layout.
struct Layout {
    root: PathBuf,
}

impl Layout {
    fn new(root: &Path) -> Layout {
        std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
        std::fs::write(root.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            root: root.to_path_buf(),
        }
    }

    fn put(&self, data: &[u8]) -> serde_json::Value {
        let hex = hex::encode(Sha256::digest(data));
        std::fs::write(self.root.join("blobs/sha256").join(&hex), data).unwrap();
        serde_json::json!({"digest": format!("sha256:{hex}"), "size": data.len()})
    }

    /// An image manifest (one uncompressed layer) for ARCH; its descriptor.
    fn image(&self, arch: &str, msg: &str, extra: &[u8]) -> serde_json::Value {
        let l = layer(msg, extra);
        let diff = format!("sha256:{}", hex::encode(Sha256::digest(&l)));
        let mut ld = self.put(&l);
        ld["mediaType"] = "application/vnd.oci.image.layer.v1.tar".into();
        let config = serde_json::json!({
            "architecture": arch, "os": "linux",
            "config": {"Cmd": ["cat", "/msg"]},
            "rootfs": {"type": "layers", "diff_ids": [diff]},
        });
        let mut cd = self.put(config.to_string().as_bytes());
        cd["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": cd, "layers": [ld],
        });
        let mut md = self.put(manifest.to_string().as_bytes());
        md["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
        md["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
        md
    }

    /// index.json naming TOP as TAG.
    fn tag(&self, top: &serde_json::Value, tag: &str) {
        let mut top = top.clone();
        top["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [top]});
        std::fs::write(self.root.join("index.json"), index.to_string()).unwrap();
    }

    /// A nested index of MANIFESTS; its descriptor.
    fn index(&self, manifests: &[serde_json::Value]) -> serde_json::Value {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        let mut d = self.put(index.to_string().as_bytes());
        d["mediaType"] = "application/vnd.oci.image.index.v1+json".into();
        d
    }
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}

fn other_arch() -> &'static str {
    if host_arch() == "amd64" {
        "arm64"
    } else {
        "amd64"
    }
}

/// `skopeo copy` of LAYOUT:TAG to the registry as REPO (plain HTTP).
fn push(layout: &Path, tag: &str, dest: &str, extra: &[&str]) {
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .args(extra)
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{dest}"))
        .output()
        .expect("the registry tests need skopeo (scripts/deps.sh)");
    assert!(
        out.status.success(),
        "skopeo copy to {dest} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The manifest the registry serves for REF, raw.
fn raw_manifest(reference: &str, creds: Option<&str>) -> String {
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some(c) = creds {
        cmd.arg("--creds").arg(c);
    }
    let out = cmd.arg(format!("docker://{reference}")).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `quilt ARGS` with DOCKER_CONFIG set to CFG (never the user's file).
fn quilt(d: &Daemon, cfg: &Path, args: &[&str]) -> CliOutput {
    let mut all: Vec<OsString> = vec!["--socket".into(), d.socket.clone().into()];
    all.extend(args.iter().map(OsString::from));
    let env = [(
        "DOCKER_CONFIG".to_string(),
        cfg.to_string_lossy().into_owned(),
    )];
    run_program(&bin_dir().join("quilt"), &all, &env, PULL_TIMEOUT)
}

/// A daemon allowed to reach REGISTRIES over HTTP, with its own (empty)
/// docker config dir.
fn daemon(registries: &[String], daemon_cfg: &Path) -> Daemon {
    let mut args = Vec::new();
    for r in registries {
        args.push("--insecure-registry".to_string());
        args.push(r.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Daemon::builder()
        .env("DOCKER_CONFIG", daemon_cfg.to_str().unwrap())
        .args(&args)
        .start()
}

/// Files left under DATA/pulls (partial blobs, layouts).
fn pull_leftovers(d: &Daemon) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![d.data_dir.join("pulls")];
    while let Some(p) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

fn names(d: &Daemon) -> Vec<String> {
    let ls = d.cli(["image", "ls", "--format", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&ls).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["names"].as_array().unwrap().clone())
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn single_arch_gzip_and_zstd_pulled_and_run() {
    let reg = Registry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(&tmp.path().join("oci"));
    // Two images with layers of their own: skopeo reuses a blob it pushed
    // before (in whatever compression it then had), so one image in two
    // compressions cannot be relied on.
    let top = l.image(host_arch(), "hello from gzip", b"");
    let other = l.image(host_arch(), "hello from zstd", b"");
    let host = reg.host();
    // `tag` writes the layout's index with that one image.
    l.tag(&other, "v2");
    push(
        &l.root,
        "v2",
        &format!("{host}/test/app:zstd"),
        &["--dest-compress-format", "zstd"],
    );
    l.tag(&top, "v1");
    push(&l.root, "v1", &format!("{host}/test/app:gzip"), &[]);
    assert!(raw_manifest(&format!("{host}/test/app:gzip"), None).contains("tar+gzip"));
    assert!(raw_manifest(&format!("{host}/test/app:zstd"), None).contains("tar+zstd"));

    let cfg = tmp.path().join("cli-docker");
    let d = daemon(
        std::slice::from_ref(&host),
        &tmp.path().join("daemon-docker"),
    );
    let out = quilt(&d, &cfg, &["pull", &format!("{host}/test/app:gzip")]);
    let id = out.ok();
    assert!(id.starts_with("sha256:"), "{out:?}");
    assert!(out.stderr.contains("resolved to sha256:"), "{out:?}");
    assert!(
        out.stderr.contains("layer") && out.stderr.contains("verified"),
        "{out:?}"
    );
    assert!(pull_leftovers(&d).is_empty(), "{:?}", pull_leftovers(&d));
    let run = quilt(
        &d,
        &cfg,
        &[
            "run",
            "--rm",
            &format!("{host}/test/app:gzip"),
            "cat",
            "/msg",
        ],
    );
    assert_eq!(run.ok(), "hello from gzip");

    // Not pulled yet: run pulls it first (the zstd layer is applied).
    let run = quilt(
        &d,
        &cfg,
        &[
            "run",
            "--rm",
            &format!("{host}/test/app:zstd"),
            "cat",
            "/msg",
        ],
    );
    assert_eq!(run.ok(), "hello from zstd", "{run:?}");
    assert!(run.stderr.contains("pulling it"), "{run:?}");
    let names = names(&d);
    for n in ["test/app:gzip", "test/app:zstd"] {
        assert!(names.contains(&format!("{host}/{n}")), "{names:?}");
    }
    // The same image by its canonical reference, and inspect by it.
    d.cli(["image", "inspect", &format!("{host}/test/app:zstd")])
        .ok();

    // A tag the registry does not have.
    let out = quilt(&d, &cfg, &["pull", &format!("{host}/test/app:nope")]);
    out.expect_engine_error();
    assert!(out.stderr.contains("not found"), "{out:?}");
    let out = quilt(
        &d,
        &cfg,
        &["run", "--rm", &format!("{host}/test/none:1"), "true"],
    );
    out.expect_engine_error();
    assert!(
        out.stderr.contains("cannot pull") && out.stderr.contains("not found"),
        "{out:?}"
    );
    // Bad references and platforms are the caller's error.
    let out = quilt(&d, &cfg, &["pull", "Not/Valid"]);
    out.expect_engine_error();
    assert!(out.stderr.contains("invalid image reference"), "{out:?}");
    let out = quilt(
        &d,
        &cfg,
        &[
            "pull",
            "--platform",
            "a/b/c/d",
            &format!("{host}/test/app:gzip"),
        ],
    );
    assert!(out.stderr.contains("invalid platform"), "{out:?}");
    // The same registry under a name not allowed plain HTTP: HTTPS fails,
    // with the hint.
    let out = quilt(
        &d,
        &cfg,
        &["pull", &format!("localhost:{}/test/app:gzip", reg.port)],
    );
    out.expect_engine_error();
    assert!(
        out.stderr.contains("--insecure-registry localhost:"),
        "{out:?}"
    );
    assert!(pull_leftovers(&d).is_empty(), "{:?}", pull_leftovers(&d));
}

#[test]
fn insecure_registry_is_loopback_only() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_program(
        &bin_dir().join("quiltd"),
        &[
            "--data-dir".into(),
            tmp.path().join("data").into(),
            "--socket".into(),
            tmp.path().join("q.sock").into(),
            "--insecure-registry".into(),
            "10.1.2.3:5000".into(),
        ],
        &[],
        Duration::from_secs(30),
    );
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("only for loopback"), "{out:?}");
}

#[test]
fn multi_arch_index_picks_the_platform() {
    let reg = Registry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(&tmp.path().join("oci"));
    let mine = l.image(host_arch(), "host image", b"");
    let theirs = l.image(other_arch(), "other image", b"");
    let index = l.index(&[theirs, mine]);
    l.tag(&index, "multi");
    let host = reg.host();
    let r = format!("{host}/test/multi:1");
    push(&l.root, "multi", &r, &["--all"]);
    assert!(raw_manifest(&r, None).contains("\"manifests\""));

    let cfg = tmp.path().join("cli-docker");
    let d = daemon(
        std::slice::from_ref(&host),
        &tmp.path().join("daemon-docker"),
    );
    let out = quilt(&d, &cfg, &["pull", &r]);
    let host_id = out.ok();
    assert!(
        out.stderr.contains(&format!("for linux/{}", host_arch())),
        "{out:?}"
    );
    assert_eq!(
        quilt(&d, &cfg, &["run", "--rm", &r, "cat", "/msg"]).ok(),
        "host image"
    );

    let platform = format!("linux/{}", other_arch());
    let out = quilt(&d, &cfg, &["pull", "--platform", &platform, &r]);
    let other_id = out.ok();
    assert_ne!(host_id, other_id);
    // busybox is the host's in both images: the other one runs here too.
    let run = quilt(&d, &cfg, &["run", "--rm", &other_id, "cat", "/msg"]);
    assert_eq!(run.ok(), "other image");

    let out = quilt(&d, &cfg, &["pull", "--platform", "linux/s390x", &r]);
    out.expect_engine_error();
    assert!(out.stderr.contains("no image for linux/s390x"), "{out:?}");
    assert!(
        out.stderr.contains(&format!("linux/{}", other_arch())),
        "{out:?}"
    );
}

#[test]
fn tampered_blob_is_refused_and_nothing_is_stored() {
    let reg = Registry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(&tmp.path().join("oci"));
    let top = l.image(host_arch(), "tampered", b"");
    l.tag(&top, "v1");
    let host = reg.host();
    let r = format!("{host}/test/evil:1");
    push(&l.root, "v1", &r, &[]);
    let manifest: serde_json::Value = serde_json::from_str(&raw_manifest(&r, None)).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    // Same size, one byte changed in the middle.
    let f = reg.blob_file(&layer);
    let mut bytes = std::fs::read(&f).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&f, bytes).unwrap();

    let cfg = tmp.path().join("cli-docker");
    let d = daemon(
        std::slice::from_ref(&host),
        &tmp.path().join("daemon-docker"),
    );
    let out = quilt(&d, &cfg, &["pull", &r]);
    out.expect_engine_error();
    assert!(
        out.stderr.contains(&format!("blob {layer}"))
            && out.stderr.contains("does not match its digest")
            && out.stderr.contains("nothing was stored"),
        "{out:?}"
    );
    assert!(names(&d).is_empty());
    let hex = layer.strip_prefix("sha256:").unwrap();
    let kept: Vec<PathBuf> = pull_leftovers(&d)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(hex))
        .collect();
    assert!(kept.is_empty(), "the tampered blob was kept: {kept:?}");
    let out = quilt(&d, &cfg, &["run", "--rm", &r, "true"]);
    out.expect_engine_error();
    assert!(out.stderr.contains("does not match its digest"), "{out:?}");
}

/// A bcrypt htpasswd line (apache2-utils' htpasswd).
fn htpasswd(user: &str, password: &str) -> String {
    let out = Command::new("htpasswd")
        .args(["-nbB", user, password])
        .output()
        .expect("the registry tests need htpasswd (apache2-utils, scripts/deps.sh)");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned() + "\n"
}

/// `quilt login` with the password on stdin.
fn login(cfg: &Path, registry: &str, user: &str, password: &str) -> std::process::Output {
    let mut child = Command::new(bin_dir().join("quilt"))
        .args(["login", registry, "-u", user, "--password-stdin"])
        .env("DOCKER_CONFIG", cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn basic_auth_with_login_logout_and_the_daemons_config() {
    let reg = Registry::start(Some(&htpasswd("agent", "s3cret")));
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(&tmp.path().join("oci"));
    let top = l.image(host_arch(), "private image", b"");
    l.tag(&top, "v1");
    let host = reg.host();
    let r = format!("{host}/private/app:1");
    push(&l.root, "v1", &r, &["--dest-creds", "agent:s3cret"]);

    let cfg = tmp.path().join("cli-docker");
    let daemon_cfg = tmp.path().join("daemon-docker");
    let d = daemon(std::slice::from_ref(&host), &daemon_cfg);
    let out = quilt(&d, &cfg, &["pull", &r]);
    out.expect_engine_error();
    assert!(
        out.stderr.contains(&format!("quilt login {host}")),
        "{out:?}"
    );

    // Wrong password: refused.
    let o = login(&cfg, &host, "agent", "wrong");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = quilt(&d, &cfg, &["pull", &r]);
    out.expect_engine_error();
    assert!(
        out.stderr.contains("refused access") || out.stderr.contains("failed"),
        "{out:?}"
    );

    let o = login(&cfg, &host, "agent", "s3cret");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cfg.join("config.json")).unwrap()).unwrap();
    // base64("agent:s3cret")
    assert_eq!(file["auths"][&host]["auth"], "YWdlbnQ6czNjcmV0");
    let run = quilt(&d, &cfg, &["run", "--rm", &r, "cat", "/msg"]);
    assert_eq!(run.ok(), "private image", "{run:?}");

    let out = quilt(&d, &cfg, &["logout", &host]);
    out.ok();
    let out = quilt(&d, &cfg, &["logout", &host]);
    out.expect_engine_error();
    d.cli(["image", "rm", &r]).ok();
    let out = quilt(&d, &cfg, &["pull", &r]);
    out.expect_engine_error();

    // The daemon's own config.json is used when the client sends nothing.
    std::fs::create_dir_all(&daemon_cfg).unwrap();
    std::fs::write(
        daemon_cfg.join("config.json"),
        serde_json::json!({"auths": {format!("http://{host}/v2/"): {"auth": "YWdlbnQ6czNjcmV0"}}})
            .to_string(),
    )
    .unwrap();
    let out = quilt(&d, &cfg, &["pull", "-q", &r]);
    assert!(out.ok().starts_with("sha256:"), "{out:?}");
    assert!(out.stderr.is_empty(), "-q prints nothing else: {out:?}");
}

/// A TCP proxy to the registry that, while armed, cuts the first
/// connection that has carried more than `limit` bytes back to the client.
struct CuttingProxy {
    port: u16,
    armed: Arc<AtomicBool>,
    /// Bytes sent to clients over all connections.
    sent: Arc<AtomicU64>,
}

impl CuttingProxy {
    fn start(upstream: u16, limit: u64) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let armed = Arc::new(AtomicBool::new(true));
        let sent = Arc::new(AtomicU64::new(0));
        let (a, s) = (armed.clone(), sent.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_in, &mut s_out);
                    let _ = s_out.shutdown(Shutdown::Write);
                });
                let (armed, sent) = (a.clone(), s.clone());
                std::thread::spawn(move || {
                    let (mut server, mut client) = (server, client);
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut here = 0u64;
                    loop {
                        let n = match server.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        here += n as u64;
                        if here > limit && armed.swap(false, Ordering::SeqCst) {
                            let _ = client.shutdown(Shutdown::Both);
                            let _ = server.shutdown(Shutdown::Both);
                            return;
                        }
                        if client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent.fetch_add(n as u64, Ordering::SeqCst);
                    }
                    let _ = client.shutdown(Shutdown::Write);
                });
            }
        });
        CuttingProxy { port, armed, sent }
    }
}

/// Incompressible bytes (xorshift), so that the layer stays large.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn interrupted_pull_is_resumed() {
    let reg = Registry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(&tmp.path().join("oci"));
    let big = noise(24 * 1024 * 1024);
    let big_sum = hex::encode(Sha256::digest(&big));
    let top = l.image(host_arch(), "big image", &big);
    l.tag(&top, "v1");
    let host = reg.host();
    push(&l.root, "v1", &format!("{host}/test/big:1"), &[]);

    let proxy = CuttingProxy::start(reg.port, 8 * 1024 * 1024);
    let via = format!("127.0.0.1:{}", proxy.port);
    let r = format!("{via}/test/big:1");
    let cfg = tmp.path().join("cli-docker");
    let d = daemon(
        &[host.clone(), via.clone()],
        &tmp.path().join("daemon-docker"),
    );
    let out = quilt(&d, &cfg, &["pull", &r]);
    out.expect_engine_error();
    assert!(
        !proxy.armed.load(Ordering::SeqCst),
        "the proxy never cut: {out:?}"
    );
    assert!(out.stderr.contains("pull again to resume"), "{out:?}");
    let partial: Vec<PathBuf> = pull_leftovers(&d)
        .into_iter()
        .filter(|p| p.parent().is_some_and(|d| d.ends_with("partial")))
        .collect();
    let kept: u64 = partial
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .max()
        .unwrap_or(0);
    assert!(kept > 1024 * 1024, "no partial blob kept: {partial:?}");
    assert!(names(&d).is_empty());

    let before = proxy.sent.load(Ordering::SeqCst);
    let out = quilt(&d, &cfg, &["pull", &r]);
    out.ok();
    assert!(out.stderr.contains("resumed at"), "{out:?}");
    let second = proxy.sent.load(Ordering::SeqCst) - before;
    assert!(
        second < big.len() as u64,
        "the second pull fetched {second} bytes: the layer again instead of its rest"
    );
    assert!(pull_leftovers(&d).is_empty(), "{:?}", pull_leftovers(&d));
    let run = quilt(&d, &cfg, &["run", "--rm", &r, "sha256sum", "/big"]);
    assert!(run.ok().starts_with(&big_sum), "{run:?}");
}

/// `docker pull` through Quilt's Docker API: docker's progress messages,
/// the image runs, a missing tag is an error the CLI reports.
#[test]
fn docker_cli_pulls_through_the_docker_api() {
    let reg = Registry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(&tmp.path().join("oci"));
    let top = l.image(host_arch(), "pulled by docker", b"");
    l.tag(&top, "v1");
    let host = reg.host();
    let r = format!("{host}/dock/app:1");
    push(&l.root, "v1", &r, &[]);

    let sock = tmp.path().join("docker.sock");
    let d = Daemon::builder()
        .env(
            "DOCKER_CONFIG",
            tmp.path().join("daemon-docker").to_str().unwrap(),
        )
        .args(&[
            "--insecure-registry",
            &host,
            "--docker-socket",
            sock.to_str().unwrap(),
        ])
        .start();
    let env = [
        (
            "DOCKER_HOST".to_owned(),
            format!("unix://{}", sock.display()),
        ),
        (
            "DOCKER_CONFIG".to_owned(),
            tmp.path().join("cli-docker").display().to_string(),
        ),
    ];
    let docker = |args: &[&str]| {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        run_program(
            &quilt_tests::docker::docker_clients().docker,
            &args,
            &env,
            PULL_TIMEOUT,
        )
    };
    let out = docker(&["pull", &r]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("Downloaded newer image for") && out.stdout.contains("Digest: sha256:"),
        "{out:?}"
    );
    let out = docker(&["run", "--rm", &r, "cat", "/msg"]);
    assert_eq!(out.stdout.trim(), "pulled by docker", "{out:?}");
    let out = docker(&["pull", &format!("{host}/dock/app:nope")]);
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(!out.stderr.trim().is_empty(), "{out:?}");
    assert!(pull_leftovers(&d).is_empty(), "{:?}", pull_leftovers(&d));
}
