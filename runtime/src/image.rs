//! Image preparation: the built-in `default` busybox image, rootfs tarballs
//! (unpacked once into a content-addressed cache) and rootfs directories.
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The reference names nothing usable (missing file, not a tarball or directory).
    #[error("image {0:?} not found: {1}")]
    NotFound(String, String),
    /// The reference is malformed (relative path, unknown extension, ...).
    #[error("invalid image reference {0:?}: {1}")]
    Invalid(String, String),
    #[error("image {0}: {1}")]
    Io(String, std::io::Error),
}

/// Prepares image rootfs directories under DATA_DIR/images.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
}

impl ImageStore {
    pub fn new(data_dir: &Path) -> Self {
        Self { root: data_dir.join("images") }
    }

    /// Cheap check for CreateContainer (a stat, no I/O beyond that):
    /// "default", an absolute path to an existing .tar/.tar.gz/.tgz file, or an
    /// absolute path to an existing directory.
    pub fn validate(&self, _image: &str) -> Result<(), ImageError> {
        let _ = &self.root;
        todo!()
    }

    /// Returns the rootfs directory to use as the overlay's lower layer,
    /// building or unpacking it first if needed. Blocking; call off the reactor.
    /// Safe to call concurrently for the same image.
    pub fn prepare(&self, _image: &str) -> Result<PathBuf, ImageError> {
        todo!()
    }
}
