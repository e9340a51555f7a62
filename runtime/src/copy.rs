//! The contract of `quilt-shim cp-in|cp-out` and how the daemon spawns it.
//! The helper enters the container's root (its mount namespace when it runs,
//! a private overlay mount + chroot when it is stopped), so the kernel keeps
//! every path, `..` and symlink inside the container.
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Exit codes of the copy helper.
pub const CP_EXIT_NOT_FOUND: i32 = 2;
pub const CP_EXIT_INVALID: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CopyMode {
    /// Write a tar stream of `path` on stdout.
    Out,
    /// Extract the tar stream read on stdin into the directory `path`.
    In,
}

impl CopyMode {
    fn arg(self) -> &'static str {
        match self {
            CopyMode::Out => "cp-out",
            CopyMode::In => "cp-in",
        }
    }
}

/// Which root the helper works in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CopyRoot {
    /// A running container: join the mount namespace of `pid`, whose parent
    /// must be `shim_pid` (guards against pid reuse).
    Running { pid: i32, shim_pid: i32 },
    /// A stopped container: mount its overlay (image rootfs + DIR/upper) on
    /// DIR/rootfs in a private mount namespace and chroot there.
    Stopped { dir: PathBuf, image_rootfs: PathBuf },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopyConfig {
    pub root: CopyRoot,
    /// Absolute path inside the container (no `..`: checked by the daemon).
    pub path: String,
    /// The container's user namespace mapping, if it has one: the helper
    /// then works as the container's root (what it creates belongs to it),
    /// and sees a stopped container's image through that mapping.
    #[serde(default)]
    pub idmap: Option<crate::spec::IdMap>,
    /// `cp-out` only: the whole root filesystem as `docker export` writes
    /// it (entries named from the root, other filesystems left out but
    /// their mount points kept); `path` must then be "/".
    #[serde(default)]
    pub export: bool,
}

/// Spawns `SHIM cp-in|cp-out CONFIG_JSON` with piped stdin, stdout and
/// stderr; killed when the handle is dropped.
pub fn spawn(
    shim: &Path,
    mode: CopyMode,
    cfg: &CopyConfig,
) -> std::io::Result<tokio::process::Child> {
    let json = serde_json::to_string(cfg).map_err(std::io::Error::other)?;
    tokio::process::Command::new(shim)
        .arg(mode.arg())
        .arg(json)
        .env_clear()
        .stdin(if mode == CopyMode::In {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(if mode == CopyMode::Out {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // A group of its own: a signal to quiltd's group never reaches it,
        // and nothing it does reaches quiltd's.
        .process_group(0)
        .spawn()
}
