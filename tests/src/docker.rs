//! Docker's own clients for the Docker API tests, installed by the tests:
//! docker-py (PyPI's `docker`, and testcontainers on it) in a virtual environment under the target
//! directory (`target/docker-venv`), and the docker CLI unpacked from
//! Debian's docker.io package (`target/docker-cli/usr/bin/docker`, by
//! `quilt_docker_cli` in scripts/deps.sh: nothing is installed, no docker
//! daemon runs). `QUILT_DOCKER_CLI` names another docker binary to use.
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::cli::run_program;

/// What pip installs.
pub const REQUIREMENTS: &[&str] = &["docker>=7,<8", "testcontainers>=4.8,<5"];
const SETUP_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub struct DockerClients {
    /// The environment's python3 (with docker-py).
    pub python: PathBuf,
    /// The docker CLI.
    pub docker: PathBuf,
    /// tests/python/.
    pub scripts: PathBuf,
}

impl DockerClients {
    pub fn script(&self, name: &str) -> PathBuf {
        self.scripts.join(name)
    }
}

fn target_dir() -> PathBuf {
    crate::bin_dir()
        .parent()
        .expect("the binaries are in target/<profile>")
        .to_path_buf()
}

/// Installs the clients on first use (panics with the installer's output).
pub fn docker_clients() -> &'static DockerClients {
    static C: OnceLock<DockerClients> = OnceLock::new();
    C.get_or_init(|| {
        let venv = target_dir().join("docker-venv");
        crate::python::install_venv(&venv, REQUIREMENTS);
        DockerClients {
            python: venv.join("bin/python3"),
            docker: docker_cli(),
            scripts: Path::new(env!("CARGO_MANIFEST_DIR")).join("python"),
        }
    })
}

fn os(s: &str) -> OsString {
    OsString::from(s)
}

fn docker_cli() -> PathBuf {
    if let Some(p) = std::env::var_os("QUILT_DOCKER_CLI") {
        return PathBuf::from(p);
    }
    let dir = target_dir().join("docker-cli");
    let bin = dir.join("usr/bin/docker");
    if bin.is_file() {
        return bin;
    }
    let deps = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/deps.sh");
    let script = format!(
        "source {} && quilt_docker_cli {}",
        deps.display(),
        dir.display()
    );
    let out = run_program(
        Path::new("bash"),
        &[os("-c"), os(&script)],
        &[],
        SETUP_TIMEOUT,
    );
    assert!(
        out.code == Some(0) && bin.is_file(),
        "unpacking the docker CLI failed: {out:?}"
    );
    bin
}
