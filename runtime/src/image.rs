//! Image preparation: the built-in `default` busybox image, rootfs tarballs
//! (unpacked once into a content-addressed cache) and rootfs directories,
//! plus the content-addressed store of imported and host-built images
//! (DATA/images/sha256-<hex>/rootfs, referenced as "sha256:<hex>").
pub mod archive;
mod default;
pub mod digest;
mod hostbuild;
mod import;
mod layers;
mod layerstore;
pub mod manifest;
mod progress;
#[cfg(test)]
mod testutil;
mod tree;

pub use progress::Progress;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

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

/// Name of the built-in image.
pub const DEFAULT_IMAGE: &str = "default";
/// The host's static busybox the default image is built from.
pub const HOST_BUSYBOX: &str = "/bin/busybox";

/// Prepares image rootfs directories under DATA_DIR/images.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
    busybox: PathBuf,
    /// The default image's root was found or built (shared by the clones).
    default_built: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// What kind of thing an image reference names.
enum Kind {
    Default,
    /// "sha256:<hex>": an image of the store.
    Stored,
    Tarball(PathBuf),
    Dir(PathBuf),
}

const TAR_EXTENSIONS: [&str; 3] = [".tar", ".tar.gz", ".tgz"];

fn is_tarball_name(p: &str) -> bool {
    TAR_EXTENSIONS.iter().any(|e| p.ends_with(e))
}

/// Digest cache: (path, len, mtime) -> sha256 hex of the content.
type DigestKey = (PathBuf, u64, SystemTime);
fn digest_cache() -> &'static Mutex<HashMap<DigestKey, String>> {
    static CACHE: OnceLock<Mutex<HashMap<DigestKey, String>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A unique suffix for temp dirs (pid + counter + time).
fn unique_suffix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{n}-{t}", std::process::id())
}

impl ImageStore {
    pub fn new(data_dir: &Path) -> Self {
        Self::with_busybox(data_dir, Path::new(HOST_BUSYBOX))
    }

    /// Same as `new` but builds the default image from another busybox binary
    /// (tests, unusual hosts).
    pub fn with_busybox(data_dir: &Path, busybox: &Path) -> Self {
        Self {
            root: data_dir.join("images"),
            busybox: busybox.to_path_buf(),
            default_built: Default::default(),
        }
    }

    /// Whether the default image's root was found (by `validate`) or built
    /// since this store was opened: a create of it needs no check on disk
    /// (a start builds it again should it have gone, or says why it
    /// cannot).
    pub fn default_built(&self) -> bool {
        self.default_built
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn default_dir(&self) -> PathBuf {
        self.root.join(DEFAULT_IMAGE)
    }

    fn classify(&self, image: &str) -> Result<Kind, ImageError> {
        if image == DEFAULT_IMAGE {
            return Ok(Kind::Default);
        }
        if image.is_empty() {
            return Err(ImageError::Invalid(
                image.into(),
                "empty image reference".into(),
            ));
        }
        if parse_id(image).is_some() {
            return Ok(Kind::Stored);
        }
        let path = Path::new(image);
        if !path.is_absolute() {
            return Err(ImageError::Invalid(
                image.into(),
                "expected \"default\", or an absolute path to a rootfs tarball (.tar, .tar.gz, .tgz) or directory".into(),
            ));
        }
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(ImageError::NotFound(
                    image.into(),
                    "no such file or directory".into(),
                ));
            }
            Err(e) => return Err(ImageError::Io(image.into(), e)),
        };
        if meta.is_dir() {
            return Ok(Kind::Dir(path.to_path_buf()));
        }
        if !meta.is_file() {
            return Err(ImageError::NotFound(
                image.into(),
                "not a regular file or directory".into(),
            ));
        }
        if !is_tarball_name(image) {
            return Err(ImageError::Invalid(
                image.into(),
                "a file image must be a tarball ending in .tar, .tar.gz or .tgz".into(),
            ));
        }
        Ok(Kind::Tarball(path.to_path_buf()))
    }

    /// Cheap check for CreateContainer (a stat, no I/O beyond that):
    /// "default", an absolute path to an existing .tar/.tar.gz/.tgz file, or an
    /// absolute path to an existing directory.
    pub fn validate(&self, image: &str) -> Result<(), ImageError> {
        match self.classify(image)? {
            Kind::Default => {
                if self.default_dir().join("rootfs").is_dir() {
                    self.default_built
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    Ok(())
                } else if self.busybox.is_file() {
                    Ok(())
                } else {
                    Err(self.no_busybox())
                }
            }
            Kind::Stored => self.stored_rootfs(image).map(drop),
            Kind::Tarball(_) | Kind::Dir(_) => Ok(()),
        }
    }

    fn no_busybox(&self) -> ImageError {
        ImageError::NotFound(
            DEFAULT_IMAGE.into(),
            format!(
                "the default image is built from a static busybox at {}, which is missing (apt-get install busybox-static)",
                self.busybox.display()
            ),
        )
    }

    /// Returns the rootfs directory to use as the overlay's lower layer,
    /// building or unpacking it first if needed. Blocking; call off the reactor.
    /// Safe to call concurrently for the same image.
    pub fn prepare(&self, image: &str) -> Result<PathBuf, ImageError> {
        match self.classify(image)? {
            Kind::Default => {
                let target = self.default_dir();
                if !target.join("rootfs").is_dir() && !self.busybox.is_file() {
                    return Err(self.no_busybox());
                }
                let built = self.build_once(image, &target, |rootfs| {
                    default::build(&self.busybox, rootfs)
                })?;
                self.default_built
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(built)
            }
            Kind::Stored => self.stored_rootfs(image),
            Kind::Dir(p) => p
                .canonicalize()
                .map_err(|e| ImageError::Io(image.into(), e)),
            Kind::Tarball(p) => {
                let digest = self.digest(image, &p)?;
                // Apart from the store's sha256-* directories: `image rm`
                // of an imported image with the same content must never
                // delete the rootfs of a container created from the path.
                let target = self.root.join("by-path").join(format!("sha256-{digest}"));
                self.build_once(image, &target, |rootfs| unpack_tarball(&p, rootfs))
            }
        }
    }

    /// DATA/images/sha256-<hex> (the store's directory of an image).
    fn stored_dir(&self, hex: &str) -> PathBuf {
        self.root.join(format!("sha256-{hex}"))
    }

    /// The rootfs of a stored image ("sha256:<hex>"); NOT_FOUND when the
    /// store does not hold it.
    pub fn stored_rootfs(&self, id: &str) -> Result<PathBuf, ImageError> {
        parse_id(id)
            .map(|hex| self.stored_dir(hex).join("rootfs"))
            .filter(|rootfs| rootfs.is_dir())
            .ok_or_else(|| ImageError::NotFound(id.into(), "not in the image store".into()))
    }

    /// Imports a rootfs tarball or directory, a `docker save` archive or an
    /// OCI image layout (directory or tar) into the store. Blocking. The
    /// same content always gives the same id, and is unpacked only once.
    pub fn import(
        &self,
        path: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Imported, ImageError> {
        self.import_tagged(path, None, progress)
    }

    /// `import`, choosing the image of a multi-image OCI layout or
    /// `docker save` archive by TAG (an OCI ref name, a docker "repo:tag",
    /// its tag or its repository). Without a tag, an archive that holds
    /// several images is refused with their names listed.
    pub fn import_tagged(
        &self,
        path: &Path,
        tag: Option<&str>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Imported, ImageError> {
        import::import(self, path, tag, &mut progress::Reporter::new(progress))
    }

    /// Builds an image from host programs (names looked up in PATH, or
    /// absolute paths), their shared libraries and interpreter files, on
    /// the busybox base; each program is linked as /usr/local/bin/NAME, and
    /// with `ca_certs` the host's CA bundle is included. Blocking.
    pub fn build_from_host(
        &self,
        binaries: &[String],
        ca_certs: bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Imported, ImageError> {
        hostbuild::build(
            self,
            binaries,
            ca_certs,
            &mut progress::Reporter::new(progress),
        )
    }

    /// Deletes a stored image's files ("sha256:<hex>"). Blocking; missing is
    /// fine. The directory is renamed away first so that no half-deleted
    /// rootfs is ever visible.
    pub fn remove_stored(&self, id: &str) -> Result<(), ImageError> {
        let Some(hex) = parse_id(id) else {
            return Err(ImageError::Invalid(id.into(), "not an image id".into()));
        };
        let dir = self.stored_dir(hex);
        let trash = self.root.join(format!(".tmp-rm-{}", unique_suffix()));
        match std::fs::rename(&dir, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ImageError::Io(id.into(), e)),
        }
        std::fs::remove_dir_all(&trash).map_err(|e| ImageError::Io(id.into(), e))
    }

    /// The names of each image of a `docker save` archive (a plain tar), in
    /// the archive's order; empty for anything else (one image then).
    pub fn archive_names(&self, path: &Path) -> Result<Vec<Vec<String>>, ImageError> {
        import::docker_archive_names(path)
            .map_err(|e| ImageError::Invalid(path.display().to_string(), e.to_string()))
    }

    /// A new private directory for an export, save, load or commit in
    /// flight (removed by the caller; a crash leaves it to
    /// `remove_temp_dirs`). Blocking.
    pub fn scratch_dir(&self, what: &str) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.root)?;
        let dir = self.root.join(format!(".tmp-{what}-{}", unique_suffix()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(dir)
    }

    /// DATA/images (every image, layer and rootfs cache).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The ids ("sha256:<hex>") of every image directory in the store.
    pub fn stored_ids(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let id = format!("sha256:{}", name.strip_prefix("sha256-")?);
                parse_id(&id).is_some().then_some(id)
            })
            .collect()
    }

    /// Removes the temp dirs of imports, builds and removals that a previous
    /// daemon left behind. Call at start-up only (no operation in flight).
    pub fn remove_temp_dirs(&self) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// Returns TARGET/rootfs, building it first in a temp dir under images/
    /// renamed into place atomically (losers of a race discard their copy).
    fn build_once(
        &self,
        image: &str,
        target: &Path,
        build: impl FnOnce(&Path) -> std::io::Result<()>,
    ) -> Result<PathBuf, ImageError> {
        let rootfs = target.join("rootfs");
        if rootfs.is_dir() {
            return Ok(rootfs);
        }
        let io = |e| ImageError::Io(image.into(), e);
        std::fs::create_dir_all(&self.root).map_err(io)?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let name = target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("image");
        let tmp = self.root.join(format!(".tmp-{name}-{}", unique_suffix()));
        let result = (|| {
            std::fs::DirBuilder::new().mode(0o700).create(&tmp)?;
            let tmp_rootfs = tmp.join("rootfs");
            std::fs::DirBuilder::new().mode(0o755).create(&tmp_rootfs)?;
            build(&tmp_rootfs)?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
            match std::fs::rename(&tmp, target) {
                Ok(()) => Ok(()),
                // Someone else finished first: theirs wins.
                Err(_) if rootfs.is_dir() => {
                    let _ = std::fs::remove_dir_all(&tmp);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(io(e));
        }
        Ok(rootfs)
    }

    /// sha256 of the tarball's content, cached by (path, len, mtime).
    fn digest(&self, image: &str, path: &Path) -> Result<String, ImageError> {
        let io = |e| ImageError::Io(image.into(), e);
        let meta = std::fs::metadata(path).map_err(io)?;
        let key = (path.to_path_buf(), meta.len(), meta.modified().map_err(io)?);
        if let Some(d) = digest_cache()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(d.clone());
        }
        let mut f = std::fs::File::open(path).map_err(io)?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut f, &mut hasher).map_err(io)?;
        let d = hex::encode(hasher.finalize());
        digest_cache()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, d.clone());
        Ok(d)
    }
}

/// The result of an import or host build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// "sha256:<hex>".
    pub id: String,
    /// "rootfs-tar", "rootfs-dir", "docker-save", "oci-layout" or "host-build".
    pub source: &'static str,
    /// Layer digests, bottom first (empty for a plain rootfs): each is
    /// unpacked in the layer store (DATA/images/layers).
    pub layers: Vec<String>,
    /// The bytes each layer takes in the layer store, in `layers` order.
    pub layer_sizes: Vec<u64>,
    pub size_bytes: u64,
    /// The image configuration (docker-save and OCI images).
    pub config: Option<manifest::ImageConfig>,
}

/// Bytes of the regular files below `root` (each inode once; missing or
/// vanishing entries skipped), for a disk use report. Blocking.
pub fn disk_bytes(root: &Path) -> u64 {
    tree::du(root)
}

/// The hex of a "sha256:<64 hex>" image id.
pub fn parse_id(s: &str) -> Option<&str> {
    let hex = s.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

/// Unpacks a (possibly gzipped) rootfs tarball into `dest` with the same
/// applier as imported images: permissions and ownership kept, `..` refused,
/// nothing written through a symlink, directory modes applied last.
fn unpack_tarball(path: &Path, dest: &Path) -> std::io::Result<()> {
    let reader = std::io::BufReader::with_capacity(256 * 1024, std::fs::File::open(path)?);
    let mut applier = layers::Applier::new(dest);
    if import::is_gzip(path)? {
        applier.apply(flate2::bufread::MultiGzDecoder::new(reader))?;
    } else {
        applier.apply(reader)?;
    }
    applier.finish().map(drop)
}

#[cfg(test)]
mod tests {
    use super::testutil::{hdr, names};
    use super::*;

    fn sample_tar(gz: bool, dir: &Path, name: &str) -> PathBuf {
        use tar::EntryType::{Directory, Regular, Symlink};
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(&mut hdr(Directory, 0o755, 0), "bin/", std::io::empty())
            .unwrap();
        let data = b"#!/bin/sh\necho hi\n";
        let mut h = hdr(Regular, 0o750, data.len() as u64);
        h.set_uid(1234);
        h.set_gid(4321);
        b.append_data(&mut h, "bin/hello", &data[..]).unwrap();
        b.append_link(&mut hdr(Symlink, 0o777, 0), "bin/hi", "hello")
            .unwrap();
        // A read-only directory with content (must still unpack).
        b.append_data(&mut hdr(Directory, 0o555, 0), "ro/", std::io::empty())
            .unwrap();
        b.append_data(&mut hdr(Regular, 0o644, 1), "ro/f", &b"x"[..])
            .unwrap();
        let raw = b.into_inner().unwrap();
        let p = dir.join(name);
        if gz {
            use std::io::Write;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&raw).unwrap();
            std::fs::write(&p, e.finish().unwrap()).unwrap();
        } else {
            std::fs::write(&p, raw).unwrap();
        }
        p
    }

    #[test]
    fn tarball_unpacked_once() {
        use std::os::unix::fs::MetadataExt;
        let data = tempfile::tempdir().unwrap();
        let src = tempfile::tempdir().unwrap();
        let store = ImageStore::new(data.path());
        for (gz, name) in [(false, "img.tar"), (true, "img.tar.gz"), (true, "img.tgz")] {
            let tar = sample_tar(gz, src.path(), name);
            let tar_s = tar.to_str().unwrap();
            store.validate(tar_s).unwrap();
            let rootfs = store.prepare(tar_s).unwrap();
            assert!(rootfs.ends_with("rootfs"));
            let hello = rootfs.join("bin/hello");
            assert_eq!(std::fs::read(&hello).unwrap(), b"#!/bin/sh\necho hi\n");
            let m = std::fs::metadata(&hello).unwrap();
            assert_eq!(m.mode() & 0o7777, 0o750);
            if nix::unistd::geteuid().is_root() {
                assert_eq!((m.uid(), m.gid()), (1234, 4321));
            }
            assert_eq!(
                std::fs::read_link(rootfs.join("bin/hi")).unwrap(),
                Path::new("hello")
            );
            assert_eq!(std::fs::read(rootfs.join("ro/f")).unwrap(), b"x");
            assert_eq!(
                std::fs::metadata(rootfs.join("ro")).unwrap().mode() & 0o777,
                0o555
            );
            let before = names(&data.path().join("images/by-path"));
            // Again: same dir, nothing new.
            assert_eq!(store.prepare(tar_s).unwrap(), rootfs);
            assert_eq!(names(&data.path().join("images/by-path")), before);
            let top = names(&data.path().join("images"));
            assert!(top.iter().all(|n| !n.starts_with(".tmp")), "{top:?}");
        }
        // .tar.gz and .tgz have the same content: one cache entry for both,
        // plus one for the plain tar; none among the store's own images.
        assert_eq!(names(&data.path().join("images/by-path")).len(), 2);
        assert_eq!(names(&data.path().join("images")), ["by-path"]);
    }

    #[test]
    fn concurrent_prepare() {
        let data = tempfile::tempdir().unwrap();
        let src = tempfile::tempdir().unwrap();
        let tar = sample_tar(true, src.path(), "c.tgz");
        let store = ImageStore::new(data.path());
        let results: Vec<PathBuf> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| store.prepare(tar.to_str().unwrap()).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(results.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(names(&data.path().join("images/by-path")).len(), 1);
    }

    #[test]
    fn escaping_entries_refused() {
        let data = tempfile::tempdir().unwrap();
        let src = tempfile::tempdir().unwrap();
        // The tar crate's builder refuses `..`, so write the header by hand.
        let mut h = tar::Header::new_old();
        {
            let name = b"../evil";
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
        }
        h.set_mode(0o644);
        h.set_size(4);
        h.set_cksum();
        let mut raw = h.as_bytes().to_vec();
        raw.extend_from_slice(b"evil");
        raw.resize(512 * 2, 0);
        raw.extend_from_slice(&[0u8; 1024]);
        let p = src.path().join("evil.tar");
        std::fs::write(&p, raw).unwrap();
        let store = ImageStore::new(data.path());
        let err = store.prepare(p.to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("escapes"), "{err}");
        assert!(!data.path().join("evil").exists());
        // Nothing half-built left behind.
        let left = names(&data.path().join("images"));
        assert!(left.iter().all(|n| n == "by-path"), "{left:?}");
        assert!(names(&data.path().join("images/by-path")).is_empty());
    }

    #[test]
    fn validate_refs() {
        let data = tempfile::tempdir().unwrap();
        let src = tempfile::tempdir().unwrap();
        let store = ImageStore::new(data.path());
        assert!(matches!(
            store.validate("relative/x.tar"),
            Err(ImageError::Invalid(..))
        ));
        assert!(matches!(store.validate(""), Err(ImageError::Invalid(..))));
        assert!(matches!(
            store.validate("/nonexistent/x.tar"),
            Err(ImageError::NotFound(..))
        ));
        let txt = src.path().join("x.txt");
        std::fs::write(&txt, "x").unwrap();
        assert!(matches!(
            store.validate(txt.to_str().unwrap()),
            Err(ImageError::Invalid(..))
        ));
        store.validate(src.path().to_str().unwrap()).unwrap();
        assert_eq!(
            store
                .prepare(&format!("{}/.", src.path().display()))
                .unwrap(),
            src.path().canonicalize().unwrap()
        );
        let missing = ImageStore::with_busybox(data.path(), Path::new("/nonexistent/busybox"));
        let err = missing.validate("default").unwrap_err();
        assert!(err.to_string().contains("busybox-static"), "{err}");
        let err = missing.prepare("default").unwrap_err();
        assert!(matches!(err, ImageError::NotFound(..)), "{err}");
        assert!(err.to_string().contains("busybox-static"), "{err}");
        assert!(!missing.default_built());
    }
}
