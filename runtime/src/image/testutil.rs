//! Helpers shared by the image module's unit tests.
use std::path::Path;

/// The sorted names in a directory.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A tar header owned by root with a fixed mtime (the one helper shared
/// with the end-to-end tests).
pub use quilt_testkit::tar::header as hdr;
