//! Importing images into the store: a plain rootfs tarball, a rootfs
//! directory, a `docker save` archive, or an OCI image layout (directory or
//! tar). Layers are applied bottom first into a temp dir renamed into place.
use super::digest::{Algorithm, BlobDigest, Hasher};
use super::layers::Applier;
use super::manifest::{
    self, Descriptor, DockerManifestEntry, INDEX_MEDIA_TYPES, ImageConfig, ImageIndex,
    ImageManifest,
};
use super::progress::Reporter;
use super::tree::{self, clean_rel};
use super::{ImageError, ImageStore, Imported, unique_suffix};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{self, BufRead, ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Manifests and configs larger than this are refused.
const MAX_JSON: u64 = 16 * 1024 * 1024;

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, msg.into())
}

/// Where an archive's members are read from.
enum Source {
    /// An uncompressed tar file: member path -> (data offset, size).
    Tar {
        file: PathBuf,
        index: HashMap<PathBuf, (u64, u64)>,
    },
    Dir(PathBuf),
}

impl Source {
    fn open(&self, member: &str) -> io::Result<(Box<dyn Read>, u64)> {
        let rel = clean_rel(Path::new(member))
            .filter(|r| !r.as_os_str().is_empty())
            .ok_or_else(|| invalid(format!("bad member path {member:?}")))?;
        match self {
            Source::Tar { file, index } => {
                let (off, size) = *index
                    .get(&rel)
                    .ok_or_else(|| invalid(format!("{member} is missing from the archive")))?;
                let mut f = std::fs::File::open(file)?;
                f.seek(SeekFrom::Start(off))?;
                Ok((Box::new(f.take(size)), size))
            }
            Source::Dir(d) => {
                let f = open_beneath(d, &rel).map_err(|e| {
                    if e.kind() == ErrorKind::NotFound {
                        invalid(format!("{member} is missing from the layout"))
                    } else {
                        e
                    }
                })?;
                let meta = f.metadata()?;
                if !meta.is_file() {
                    return Err(invalid(format!("{member} is not a regular file")));
                }
                Ok((Box::new(f), meta.len()))
            }
        }
    }

    fn has(&self, member: &str) -> bool {
        match self {
            Source::Tar { index, .. } => index.contains_key(Path::new(member)),
            Source::Dir(d) => {
                clean_rel(Path::new(member)).is_some_and(|rel| open_beneath(d, &rel).is_ok())
            }
        }
    }

    fn read(&self, member: &str) -> io::Result<Vec<u8>> {
        let (r, size) = self.open(member)?;
        if size > MAX_JSON {
            return Err(invalid(format!("{member} is too large")));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        r.take(MAX_JSON).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Reads and parses a JSON member (at most [`MAX_JSON`] bytes).
    fn read_json<T: DeserializeOwned>(&self, member: &str) -> io::Result<T> {
        parse_json(&self.read(member)?, member)
    }
}

/// Opens `rel` under the layout directory `dir`: resolved beneath it
/// (openat2 RESOLVE_BENEATH: no `..`, no absolute or escaping symlink, no
/// magic link), so a hostile layout cannot make the import read host files.
fn open_beneath(dir: &Path, rel: &Path) -> io::Result<std::fs::File> {
    use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
    let root = nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = crate::sys::openat2(&root, rel, how).map_err(|e| match e {
        nix::errno::Errno::EXDEV | nix::errno::Errno::ELOOP => invalid(format!(
            "{} leads out of the layout directory",
            rel.display()
        )),
        e => io::Error::from(e),
    })?;
    Ok(std::fs::File::from(fd))
}

/// A layer to apply.
struct Layer {
    member: String,
    /// Expected "sha256:<hex>" of the stored (possibly compressed) bytes.
    digest: Option<String>,
    /// Expected "sha256:<hex>" of the uncompressed tar (the config's
    /// `rootfs.diff_ids`): the layer's key in the layer store, so that the
    /// same layer shipped gzipped (OCI) or plain (docker-save) is one.
    diff_id: Option<String>,
}

/// The config's diff ids when they are one well-formed sha256 per layer.
fn diff_ids(config: Option<&ImageConfig>, layers: usize) -> Vec<Option<String>> {
    let ids = config
        .and_then(|c| c.rootfs.as_ref())
        .map(|r| r.diff_ids.clone())
        .unwrap_or_default();
    let ok = ids.len() == layers
        && ids
            .iter()
            .all(|d| BlobDigest::parse(d).is_some_and(|b| b.algorithm == Algorithm::Sha256));
    if ok {
        ids.into_iter().map(Some).collect()
    } else {
        vec![None; layers]
    }
}

/// Hashes the uncompressed stream of a layer (its diff id).
struct DiffTap<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for DiffTap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Reads through, hashing and counting for progress.
struct Tap<'a, 'b, R> {
    inner: R,
    hasher: Sha256,
    rep: &'a mut Reporter<'b>,
}

impl<R: Read> Read for Tap<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.rep.add(n as u64);
        Ok(n)
    }
}

/// sha256 hex of a file, with progress.
fn hash_file(path: &Path, rep: &mut Reporter) -> io::Result<String> {
    let f = std::fs::File::open(path)?;
    let mut tap = Tap {
        inner: f,
        hasher: Sha256::new(),
        rep,
    };
    io::copy(&mut tap, &mut io::sink())?;
    Ok(hex::encode(tap.hasher.finalize()))
}

pub(super) fn is_gzip(path: &Path) -> io::Result<bool> {
    let mut magic = [0u8; 2];
    let mut f = std::fs::File::open(path)?;
    let mut n = 0;
    while n < 2 {
        match f.read(&mut magic[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n == 2 && magic == GZIP_MAGIC)
}

/// Indexes the members of an uncompressed tar file.
fn index_tar(file: &Path) -> io::Result<HashMap<PathBuf, (u64, u64)>> {
    let mut ar = tar::Archive::new(std::fs::File::open(file)?);
    let mut index = HashMap::new();
    // Members that are links to others (`docker save` links repeated layers).
    let mut aliases: Vec<(PathBuf, PathBuf)> = Vec::new();
    for e in ar.entries_with_seek()? {
        let e = e?;
        let p = e.path()?.into_owned();
        let Some(rel) = clean_rel(&p) else { continue };
        match e.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                index.insert(rel, (e.raw_file_position(), e.size()));
            }
            kind @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                let Some(target) = e.link_name()? else {
                    continue;
                };
                // Symlinks are relative to their directory, hard links to the root.
                let base = match kind {
                    tar::EntryType::Symlink => rel.parent().unwrap_or(Path::new("")).to_path_buf(),
                    _ => PathBuf::new(),
                };
                let mut t = base;
                for c in target.components() {
                    match c {
                        std::path::Component::Normal(n) => t.push(n),
                        std::path::Component::ParentDir => {
                            t.pop();
                        }
                        _ => {}
                    }
                }
                aliases.push((rel, t));
            }
            _ => {}
        }
    }
    // Resolve chains of links (bounded).
    for _ in 0..8 {
        let mut changed = false;
        for (alias, target) in &aliases {
            if !index.contains_key(alias)
                && let Some(v) = index.get(target).copied()
            {
                index.insert(alias.clone(), v);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    Ok(index)
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8], member: &str) -> io::Result<T> {
    serde_json::from_slice(bytes).map_err(|e| invalid(format!("{member} is not valid JSON: {e}")))
}

/// "sha256:<hex>" -> "blobs/sha256/<hex>".
fn blob_member(digest: &str) -> io::Result<String> {
    manifest::blob_path(digest).ok_or_else(|| invalid(format!("bad digest {digest:?}")))
}

/// The digest of a descriptor, which `what` must have.
fn digest_of<'d>(d: &'d Descriptor, what: &str) -> io::Result<&'d str> {
    d.digest
        .as_deref()
        .ok_or_else(|| invalid(format!("{what}: missing digest")))
}

/// What an import takes from a layered archive: the layers, the image's
/// identity and its configuration.
struct Chosen {
    layers: Vec<Layer>,
    /// The image id's hex: the manifest digest of an OCI image, the config
    /// digest of a `docker save` image (docker's image id).
    hex: String,
    config: Option<ImageConfig>,
}

/// "repo:tag" -> "tag" (None without a tag; a ':' in a registry's host
/// and port is not a tag).
fn tag_part(name: &str) -> Option<&str> {
    let (_, tag) = name.rsplit_once(':')?;
    (!tag.contains('/')).then_some(tag)
}

/// True when `wanted` names `name`: the same string, its tag, or its
/// repository without a tag (docker's implied ":latest" too).
fn names_match(name: &str, wanted: &str) -> bool {
    if name == wanted || tag_part(name) == Some(wanted) {
        return true;
    }
    match tag_part(name) {
        Some(tag) => {
            let repo = &name[..name.len() - tag.len() - 1];
            repo == wanted && tag == "latest"
        }
        None => false,
    }
}

/// The names of the images of an archive, for an error message.
fn listing(mut names: Vec<String>) -> String {
    names.sort();
    names.dedup();
    if names.is_empty() {
        "none is named".into()
    } else {
        format!("tags: {}", names.join(", "))
    }
}

/// The entries of an OCI layout's index.json that `tag` selects: those
/// with a matching ref name; without a tag, all of them when they name at
/// most one image (platform variants of one image), an error listing the
/// names when they name several.
fn select_oci<'i>(entries: &'i [Descriptor], tag: Option<&str>) -> io::Result<Vec<&'i Descriptor>> {
    let names: Vec<String> = entries
        .iter()
        .filter_map(|d| d.ref_name().map(str::to_owned))
        .collect();
    match tag {
        Some(t) => {
            let hits: Vec<&Descriptor> = entries
                .iter()
                .filter(|d| d.ref_name().is_some_and(|n| names_match(n, t)))
                .collect();
            let distinct: std::collections::BTreeSet<&str> =
                hits.iter().filter_map(|d| d.ref_name()).collect();
            if hits.is_empty() {
                return Err(invalid(format!(
                    "no image tagged {t:?} in the layout ({})",
                    listing(names)
                )));
            }
            if distinct.len() > 1 {
                return Err(invalid(format!(
                    "{t:?} names several images of the layout ({}): give the full name",
                    listing(distinct.into_iter().map(str::to_owned).collect())
                )));
            }
            Ok(hits)
        }
        None => {
            let distinct: std::collections::BTreeSet<&str> =
                entries.iter().filter_map(|d| d.ref_name()).collect();
            if distinct.len() > 1 {
                return Err(invalid(format!(
                    "the layout holds several images ({}): choose one with PATH:TAG",
                    listing(names)
                )));
            }
            Ok(entries.iter().collect())
        }
    }
}

/// Reads a blob that must match its digest.
fn read_verified(src: &Source, digest: &str, what: &str) -> io::Result<Vec<u8>> {
    let member = blob_member(digest)?;
    let bytes = src.read(&member)?;
    let want =
        BlobDigest::parse(digest).ok_or_else(|| invalid(format!("bad digest {digest:?}")))?;
    if !want.matches(&bytes) {
        return Err(invalid(format!(
            "{what} {digest} does not match its content"
        )));
    }
    Ok(bytes)
}

/// The image of an OCI layout that `tag` selects (following nested
/// indexes, preferring the host's architecture).
fn oci_image(src: &Source, tag: Option<&str>) -> io::Result<Chosen> {
    let top: ImageIndex = src.read_json("index.json")?;
    let entries = top.manifests.clone().unwrap_or_default();
    let selected = select_oci(&entries, tag)?;
    let mut index = ImageIndex {
        manifests: Some(selected.into_iter().cloned().collect()),
        ..top
    };
    for _ in 0..8 {
        let chosen = index
            .choose()
            .ok_or_else(|| invalid("index.json lists no manifests"))?;
        let digest = digest_of(chosen, "index.json")?.to_owned();
        let member = blob_member(&digest)?;
        let bytes = src.read(&member)?;
        let probe: manifest::Probe = parse_json(&bytes, &member)?;
        let media = chosen
            .media_type
            .as_deref()
            .or(probe.media_type.as_deref())
            .unwrap_or("");
        if INDEX_MEDIA_TYPES.contains(&media) || probe.manifests.is_some() {
            index = parse_json(&bytes, &member)?;
            continue;
        }
        let actual = hex::encode(Sha256::digest(&bytes));
        let want =
            BlobDigest::parse(&digest).ok_or_else(|| invalid(format!("bad digest {digest:?}")))?;
        if !want.matches(&bytes) {
            return Err(invalid(format!(
                "manifest {digest} does not match its content"
            )));
        }
        let doc: ImageManifest = parse_json(&bytes, &member)?;
        let layers = doc
            .layers
            .ok_or_else(|| invalid(format!("manifest {digest} lists no layers")))?;
        let mut out = Vec::new();
        for l in &layers {
            let d = digest_of(l, "manifest layer")?.to_owned();
            out.push(Layer {
                member: blob_member(&d)?,
                digest: Some(d),
                diff_id: None,
            });
        }
        let config = match doc.config.as_ref().and_then(|c| c.digest.as_deref()) {
            Some(cd) => {
                let bytes = read_verified(src, cd, "config")?;
                Some(
                    manifest::parse_config(&bytes)
                        .map_err(|e| invalid(format!("config {cd} is not valid JSON: {e}")))?,
                )
            }
            None => None,
        };
        for (l, id) in out.iter_mut().zip(diff_ids(config.as_ref(), layers.len())) {
            l.diff_id = id;
        }
        return Ok(Chosen {
            layers: out,
            hex: actual,
            config,
        });
    }
    Err(invalid("index.json: too many nested indexes"))
}

/// The image of a `docker save` archive that `tag` selects (the only one
/// when there is one).
fn docker_image(src: &Source, tag: Option<&str>) -> io::Result<Chosen> {
    let manifest: Vec<DockerManifestEntry> = src.read_json("manifest.json")?;
    let all_names = || -> Vec<String> {
        manifest
            .iter()
            .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
            .collect()
    };
    let hits: Vec<&DockerManifestEntry> = match tag {
        Some(t) => manifest
            .iter()
            .filter(|e| {
                e.repo_tags
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|n| names_match(n, t))
            })
            .collect(),
        None => manifest.iter().collect(),
    };
    let entry = match (hits.as_slice(), tag) {
        ([one], _) => *one,
        ([], None) => return Err(invalid("manifest.json lists no image")),
        ([], Some(t)) => {
            return Err(invalid(format!(
                "no image tagged {t:?} in the archive ({})",
                listing(all_names())
            )));
        }
        (_, None) => {
            return Err(invalid(format!(
                "the archive holds several images ({}): choose one with PATH:TAG",
                listing(all_names())
            )));
        }
        (many, Some(t)) => {
            let names = many
                .iter()
                .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
                .collect();
            return Err(invalid(format!(
                "{t:?} names several images of the archive ({}): give the full name",
                listing(names)
            )));
        }
    };
    let layers = entry
        .layers
        .clone()
        .ok_or_else(|| invalid("manifest.json: missing Layers"))?;
    let config_member = entry
        .config
        .as_deref()
        .ok_or_else(|| invalid("manifest.json: missing Config"))?;
    let bytes = src.read(config_member)?;
    let config = manifest::parse_config(&bytes)
        .map_err(|e| invalid(format!("{config_member} is not valid JSON: {e}")))?;
    let ids = diff_ids(Some(&config), layers.len());
    Ok(Chosen {
        layers: layers
            .into_iter()
            .zip(ids)
            .map(|(member, diff_id)| Layer {
                member,
                digest: None,
                diff_id,
            })
            .collect(),
        hex: hex::encode(Sha256::digest(&bytes)),
        config: Some(config),
    })
}

/// Applies one stored layer (plain, gzip or zstd, told by its first bytes);
/// returns its "sha256:<hex>".
fn apply_layer(
    applier: &mut Applier,
    src: &Source,
    layer: &Layer,
    rep: &mut Reporter,
) -> io::Result<String> {
    let (r, _) = src.open(&layer.member)?;
    let want = match &layer.digest {
        Some(d) => Some(BlobDigest::parse(d).ok_or_else(|| invalid(format!("bad digest {d:?}")))?),
        None => None,
    };
    // A sha512 digest is checked on a second hash of the same bytes.
    let check = want
        .as_ref()
        .filter(|w| w.algorithm != Algorithm::Sha256)
        .map(|w| Hasher::new(w.algorithm));
    let r: Box<dyn Read> = match check {
        Some(h) => Box::new(Verify {
            inner: r,
            hasher: Some(h),
            want: want.clone().expect("checked"),
        }),
        None => r,
    };
    let tap = Tap {
        inner: r,
        hasher: Sha256::new(),
        rep,
    };
    let mut br = io::BufReader::with_capacity(256 * 1024, tap);
    let head = br.fill_buf()?;
    let (mut tap, diff) = if head.starts_with(&GZIP_MAGIC) {
        let mut dt = applier.apply(DiffTap {
            inner: flate2::bufread::MultiGzDecoder::new(br),
            hasher: Sha256::new(),
        })?;
        io::copy(&mut dt, &mut io::sink())?;
        let diff = hex::encode(dt.hasher.finalize());
        (dt.inner.into_inner().into_inner(), diff)
    } else if head.starts_with(&ZSTD_MAGIC) {
        // Concatenated frames are read through; windows beyond the
        // decoder's default limit (128 MiB) are refused.
        let dec = zstd::stream::read::Decoder::with_buffer(br)
            .map_err(|e| invalid(format!("zstd: {e}")))?;
        let mut dt = applier.apply(DiffTap {
            inner: dec,
            hasher: Sha256::new(),
        })?;
        io::copy(&mut dt, &mut io::sink())?;
        let diff = hex::encode(dt.hasher.finalize());
        (dt.inner.finish().into_inner(), diff)
    } else {
        let mut dt = applier.apply(DiffTap {
            inner: br,
            hasher: Sha256::new(),
        })?;
        io::copy(&mut dt, &mut io::sink())?;
        let diff = hex::encode(dt.hasher.finalize());
        (dt.inner.into_inner(), diff)
    };
    io::copy(&mut tap, &mut io::sink())?;
    if let Some(want) = &layer.diff_id
        && want.strip_prefix("sha256:") != Some(diff.as_str())
    {
        return Err(invalid(format!(
            "layer {} does not match its diff id {want} (got sha256:{diff})",
            layer.member
        )));
    }
    let digest = format!("sha256:{}", hex::encode(tap.hasher.finalize()));
    if let Some(want) = &want
        && want.algorithm == Algorithm::Sha256
        && want.hex != digest["sha256:".len()..]
    {
        return Err(invalid(format!(
            "layer {} does not match its digest {want} (got {digest})",
            layer.member
        )));
    }
    Ok(digest)
}

/// Hashes what passes through with another algorithm and fails the read at
/// the end (EOF) when the bytes do not match `want`: a layer whose digest is
/// not sha256 is still verified before it is taken.
struct Verify<R> {
    inner: R,
    hasher: Option<Hasher>,
    want: BlobDigest,
}

impl<R: Read> Read for Verify<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            if let Some(h) = self.hasher.as_mut() {
                h.update(&buf[..n]);
            }
        } else if let Some(h) = self.hasher.take()
            && h.finish_hex() != self.want.hex
        {
            return Err(invalid(format!(
                "a layer does not match its digest {}",
                self.want
            )));
        }
        Ok(n)
    }
}

/// A temp dir under images/ that is removed unless kept.
struct Scratch(PathBuf);

impl Scratch {
    fn new(store: &ImageStore, what: &str) -> io::Result<Scratch> {
        std::fs::create_dir_all(&store.root)?;
        let p = store.root.join(format!(".tmp-{what}-{}", unique_suffix()));
        std::fs::DirBuilder::new().mode(0o700).create(&p)?;
        Ok(Scratch(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Renames the built DIR (holding rootfs/) into images/sha256-<hex>, unless
/// that exists already.
pub(super) fn install(store: &ImageStore, built: &Path, hex: &str) -> io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let target = store.stored_dir(hex);
    if target.join("rootfs").is_dir() {
        return Ok(target.join("rootfs"));
    }
    std::fs::set_permissions(built, std::fs::Permissions::from_mode(0o755))?;
    match std::fs::rename(built, &target) {
        Ok(()) => Ok(target.join("rootfs")),
        Err(_) if target.join("rootfs").is_dir() => Ok(target.join("rootfs")),
        Err(e) => Err(e),
    }
}

/// Imports PATH (see the module docs).
pub(super) fn import(
    store: &ImageStore,
    path: &Path,
    tag: Option<&str>,
    rep: &mut Reporter,
) -> Result<Imported, ImageError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            ImageError::NotFound(shown.clone(), "no such file or directory".into())
        } else {
            ImageError::Io(shown.clone(), e)
        }
    })?;
    // A symlink to the file or directory imports what it points to.
    let real = path
        .canonicalize()
        .map_err(|e| ImageError::Io(shown.clone(), e))?;
    let path = real.as_path();
    let res = if meta.is_dir() {
        if path.join("oci-layout").is_file() && path.join("index.json").is_file() {
            import_layered(store, Source::Dir(path.to_path_buf()), tag, rep)
        } else if let Some(t) = tag {
            Err(invalid(format!(
                "{t:?}: a rootfs directory holds one image and no tags"
            )))
        } else {
            import_dir(store, path, rep)
        }
    } else if meta.is_file() {
        import_file(store, path, meta.len(), tag, rep)
    } else {
        return Err(ImageError::Invalid(
            shown,
            "not a regular file or directory".into(),
        ));
    };
    res.map_err(|e| match e.kind() {
        ErrorKind::InvalidData | ErrorKind::UnexpectedEof | ErrorKind::InvalidInput => {
            ImageError::Invalid(shown, e.to_string())
        }
        _ => ImageError::Io(shown, e),
    })
}

fn import_file(
    store: &ImageStore,
    path: &Path,
    len: u64,
    tag: Option<&str>,
    rep: &mut Reporter,
) -> io::Result<Imported> {
    let scratch = Scratch::new(store, "import")?;
    let gz = is_gzip(path)?;
    let (hex, plain) = if gz {
        // Decompress once: the archive's members are then read by offset.
        rep.phase("decompressing", len);
        let plain = scratch.0.join("archive.tar");
        let f = std::fs::File::open(path)?;
        let mut tap = Tap {
            inner: f,
            hasher: Sha256::new(),
            rep,
        };
        let mut out = std::fs::File::create(&plain)?;
        {
            let mut dec = flate2::bufread::MultiGzDecoder::new(io::BufReader::with_capacity(
                256 * 1024,
                &mut tap,
            ));
            io::copy(&mut dec, &mut out).map_err(|e| invalid(format!("gzip: {e}")))?;
        }
        io::copy(&mut tap, &mut io::sink())?;
        (hex::encode(tap.hasher.finalize()), plain)
    } else {
        rep.phase("hashing", len);
        (hash_file(path, rep)?, path.to_path_buf())
    };
    rep.finish_phase();
    let index = index_tar(&plain).map_err(|e| invalid(format!("not a tar archive: {e}")))?;
    let src = Source::Tar {
        file: plain.clone(),
        index,
    };
    if src.has("manifest.json") || (src.has("index.json") && src.has("oci-layout")) {
        return import_layered(store, src, tag, rep);
    }
    if let Some(t) = tag {
        return Err(invalid(format!(
            "{t:?}: a plain rootfs tarball holds one image and no tags"
        )));
    }
    // A plain rootfs tarball: one layer, listed as none.
    let target = store.stored_dir(&hex);
    if !target.join("rootfs").is_dir() {
        let rootfs = scratch.0.join("rootfs");
        std::fs::DirBuilder::new().mode(0o755).create(&rootfs)?;
        let total = std::fs::metadata(&plain)?.len();
        rep.phase("extracting", total);
        let mut applier = Applier::new(&rootfs);
        let f = std::fs::File::open(&plain)?;
        let mut tap = Tap {
            inner: f,
            hasher: Sha256::new(),
            rep,
        };
        applier.apply(io::BufReader::with_capacity(256 * 1024, &mut tap))?;
        if applier.entries() == 0 {
            return Err(invalid("the archive holds no files"));
        }
        applier.finish()?;
        rep.finish_phase();
        std::fs::remove_file(scratch.0.join("archive.tar")).or_else(ignore_missing)?;
        install(store, &scratch.0, &hex)?;
    }
    let size = tree::tree_size(&target.join("rootfs"))?;
    Ok(Imported {
        id: format!("sha256:{hex}"),
        source: "rootfs-tar",
        layers: Vec::new(),
        layer_sizes: Vec::new(),
        size_bytes: size,
        config: None,
    })
}

/// The names of each image a `docker save` archive lists (a plain tar
/// only); empty for a compressed file, an OCI layout or a rootfs tarball.
pub(super) fn docker_archive_names(path: &Path) -> io::Result<Vec<Vec<String>>> {
    if is_gzip(path)? {
        return Ok(Vec::new());
    }
    let index = index_tar(path).map_err(|e| invalid(format!("not a tar archive: {e}")))?;
    let src = Source::Tar {
        file: path.to_path_buf(),
        index,
    };
    if !src.has("manifest.json") {
        return Ok(Vec::new());
    }
    let manifest: Vec<DockerManifestEntry> = src.read_json("manifest.json")?;
    Ok(manifest
        .into_iter()
        .map(|e| e.repo_tags.unwrap_or_default())
        .collect())
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

/// Unpacks the layers `chosen` needs that the store lacks (recording them
/// in `added`) and composes the image at `target` unless it is there;
/// returns the layer digests.
fn unpack_and_compose(
    store: &ImageStore,
    src: &Source,
    chosen: &Chosen,
    target: &Path,
    added: &mut Vec<String>,
    rep: &mut Reporter,
) -> io::Result<Vec<String>> {
    let n = chosen.layers.len();
    let mut digests = Vec::with_capacity(n);
    for (i, l) in chosen.layers.iter().enumerate() {
        // The store's key: the diff id when the config gives it (checked
        // on the uncompressed bytes when the layer is unpacked), else the
        // blob's digest, else (docker-save) the sha256 of the layer tar.
        let digest = match (&l.diff_id, &l.digest) {
            (Some(d), _) | (None, Some(d)) => d.clone(),
            (None, None) => {
                // A docker-save layer: named by the sha256 of its bytes.
                let (mut r, size) = src.open(&l.member)?;
                rep.phase(format!("hashing layer {}/{n}", i + 1), size);
                let mut tap = Tap {
                    inner: &mut r,
                    hasher: Sha256::new(),
                    rep,
                };
                io::copy(&mut tap, &mut io::sink())?;
                let d = format!("sha256:{}", hex::encode(tap.hasher.finalize()));
                rep.finish_phase();
                d
            }
        };
        if !store.has_layer(&digest) {
            added.push(digest.clone());
            let (_, size) = src.open(&l.member)?;
            rep.phase(format!("extracting layer {}/{n}", i + 1), size);
            let want = match (&l.digest, &l.diff_id) {
                (Some(d), _) => Some(d.clone()),
                (None, Some(_)) => None,
                (None, None) => Some(digest.clone()),
            };
            store
                .add_layer(&digest, |tree| {
                    let mut applier = Applier::for_layer(tree);
                    apply_layer(
                        &mut applier,
                        src,
                        &Layer {
                            member: l.member.clone(),
                            digest: want,
                            diff_id: l.diff_id.clone(),
                        },
                        rep,
                    )?;
                    Ok(applier.finish()?.unwrap_or_default())
                })
                .map_err(|e| io::Error::new(e.kind(), format!("layer {}: {e}", l.member)))?;
            rep.finish_phase();
        }
        digests.push(digest);
    }
    if !target.join("rootfs").is_dir() {
        let scratch = Scratch::new(store, "import")?;
        let rootfs = scratch.0.join("rootfs");
        std::fs::DirBuilder::new().mode(0o755).create(&rootfs)?;
        rep.phase("composing the image", 0);
        store.compose(&digests, &rootfs)?;
        rep.finish_phase();
        install(store, &scratch.0, &chosen.hex)?;
    }
    Ok(digests)
}

/// A docker-save archive or an OCI layout: each layer unpacked once into
/// the layer store, the image's rootfs composed from them.
fn import_layered(
    store: &ImageStore,
    src: Source,
    tag: Option<&str>,
    rep: &mut Reporter,
) -> io::Result<Imported> {
    let (chosen, source) = if src.has("manifest.json") {
        (docker_image(&src, tag)?, "docker-save")
    } else {
        (oci_image(&src, tag)?, "oci-layout")
    };
    let target = store.stored_dir(&chosen.hex);
    // Layers this import unpacked: removed again if it fails (the others
    // belong to recorded images, or to imports running beside it).
    let mut added: Vec<String> = Vec::new();
    let result = unpack_and_compose(store, &src, &chosen, &target, &mut added, rep);
    let digests = match result {
        Ok(d) => d,
        Err(e) => {
            let _ = store.remove_layers(&added);
            return Err(e);
        }
    };
    let n = digests.len();
    let size = tree::tree_size(&target.join("rootfs"))?;
    let mut layer_sizes = Vec::with_capacity(n);
    for d in &digests {
        layer_sizes.push(store.layer_size(d)?);
    }
    Ok(Imported {
        id: format!("sha256:{}", chosen.hex),
        source,
        layers: digests,
        layer_sizes,
        size_bytes: size,
        config: chosen.config,
    })
}

/// A rootfs directory: copied into the store, identified by its content.
fn import_dir(store: &ImageStore, path: &Path, rep: &mut Reporter) -> io::Result<Imported> {
    let total = tree::tree_size(path)?;
    let scratch = Scratch::new(store, "import")?;
    let rootfs = scratch.0.join("rootfs");
    rep.phase("copying", total);
    tree::TreeCopier::new().copy(path, &rootfs, &|_| false, &mut |n| rep.add(n))?;
    rep.finish_phase();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&rootfs, std::fs::Permissions::from_mode(0o755))?;
    }
    rep.phase("hashing", total);
    let hex = tree::digest_tree(&rootfs)?;
    rep.finish_phase();
    let installed = install(store, &scratch.0, &hex)?;
    Ok(Imported {
        id: format!("sha256:{hex}"),
        source: "rootfs-dir",
        layers: Vec::new(),
        layer_sizes: Vec::new(),
        config: None,
        size_bytes: tree::tree_size(&installed)?,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{hdr, names};
    use super::super::{ImageError, ImageStore, Progress};
    use std::path::Path;

    #[test]
    fn rootfs_dir_import_is_content_addressed() {
        use std::os::unix::fs::MetadataExt;
        let data = tempfile::tempdir().unwrap();
        let src = tempfile::tempdir().unwrap();
        let s = src.path();
        std::fs::create_dir_all(s.join("bin")).unwrap();
        std::fs::write(s.join("bin/tool"), b"tool").unwrap();
        std::fs::hard_link(s.join("bin/tool"), s.join("bin/alias")).unwrap();
        std::os::unix::fs::symlink("tool", s.join("bin/link")).unwrap();
        let store = ImageStore::new(data.path());
        let mut seen: Vec<Progress> = Vec::new();
        // Through a symlink to the directory: its content is imported.
        let link = data.path().join("link");
        std::os::unix::fs::symlink(s, &link).unwrap();
        let a = store.import(&link, &mut |p| seen.push(p)).unwrap();
        std::fs::remove_file(&link).unwrap();
        assert_eq!(a.source, "rootfs-dir");
        assert_eq!(a.size_bytes, 4, "hard links count once");
        assert!(seen.iter().any(|p| p.phase == "copying"));
        let rootfs = store.stored_rootfs(&a.id).unwrap();
        let (m1, m2) = (
            std::fs::metadata(rootfs.join("bin/tool")).unwrap(),
            std::fs::metadata(rootfs.join("bin/alias")).unwrap(),
        );
        assert_eq!(m1.ino(), m2.ino());
        assert_eq!(
            std::fs::read_link(rootfs.join("bin/link")).unwrap(),
            Path::new("tool")
        );
        // Same content: same id, nothing new on disk.
        let b = store.import(s, &mut |_| {}).unwrap();
        assert_eq!(a.id, b.id);
        assert_eq!(names(&data.path().join("images")).len(), 1);
        // Different content: another id.
        std::fs::write(s.join("bin/tool"), b"tool2").unwrap();
        let c = store.import(s, &mut |_| {}).unwrap();
        assert_ne!(a.id, c.id);
        store.remove_stored(&a.id).unwrap();
        store.remove_stored(&c.id).unwrap();
        assert!(store.stored_rootfs(&a.id).is_err());
        assert!(names(&data.path().join("images")).is_empty());
    }

    #[test]
    fn docker_save_with_linked_layer() {
        let mut layer = tar::Builder::new(Vec::new());
        layer
            .append_data(&mut hdr(tar::EntryType::Regular, 0o644, 2), "f", &b"hi"[..])
            .unwrap();
        let layer = layer.into_inner().unwrap();
        let manifest = br#"[{"Config":"c.json","Layers":["a/layer.tar","b/layer.tar"]}]"#;
        let config = br#"{"config":{"Cmd":["sh"]}}"#;
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(
            &mut hdr(tar::EntryType::Regular, 0o644, config.len() as u64),
            "c.json",
            &config[..],
        )
        .unwrap();
        b.append_data(
            &mut hdr(tar::EntryType::Regular, 0o644, layer.len() as u64),
            "a/layer.tar",
            &layer[..],
        )
        .unwrap();
        b.append_link(
            &mut hdr(tar::EntryType::Symlink, 0o644, 0),
            "b/layer.tar",
            "../a/layer.tar",
        )
        .unwrap();
        b.append_data(
            &mut hdr(tar::EntryType::Regular, 0o644, manifest.len() as u64),
            "manifest.json",
            &manifest[..],
        )
        .unwrap();
        let src = tempfile::tempdir().unwrap();
        let archive = src.path().join("save.tar");
        std::fs::write(&archive, b.into_inner().unwrap()).unwrap();
        let data = tempfile::tempdir().unwrap();
        let store = ImageStore::new(data.path());
        let img = store.import(&archive, &mut |_| {}).unwrap();
        assert_eq!(img.source, "docker-save");
        assert_eq!(img.layers.len(), 2);
        assert_eq!(img.layers[0], img.layers[1]);
        let rootfs = store.stored_rootfs(&img.id).unwrap();
        assert_eq!(std::fs::read(rootfs.join("f")).unwrap(), b"hi");
    }

    /// Writes `data` as a blob of an OCI layout; returns its digest.
    fn blob(layout: &Path, data: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        let hex = hex::encode(Sha256::digest(data));
        let dir = layout.join("blobs/sha256");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(&hex), data).unwrap();
        format!("sha256:{hex}")
    }

    /// An OCI layout whose index.json points, through a nested index, to
    /// a manifest with one layer (`layer_media` its media type). Returns the
    /// layout, the manifest's and the layer's digests.
    fn oci_layout(layer_media: &str) -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let l = dir.path();
        let mut layer = tar::Builder::new(Vec::new());
        layer
            .append_data(
                &mut hdr(tar::EntryType::Regular, 0o644, 3),
                "etc/os",
                &b"oci"[..],
            )
            .unwrap();
        let layer_digest = blob(l, &layer.into_inner().unwrap());
        let config = blob(
            l,
            br#"{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]}}"#,
        );
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
                "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":1}},
                "layers":[{{"mediaType":"{layer_media}","digest":"{layer_digest}","size":1}}]}}"#
        );
        let manifest_digest = blob(l, manifest.as_bytes());
        let nested = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json",
                "digest":"{manifest_digest}","size":1,"platform":{{"architecture":"riscv64","os":"linux"}}}}]}}"#
        );
        let nested_digest = blob(l, nested.as_bytes());
        std::fs::write(l.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        std::fs::write(
            l.join("index.json"),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.index.v1+json",
                    "digest":"{nested_digest}","size":1,
                    "annotations":{{"org.opencontainers.image.ref.name":"latest"}}}}]}}"#
            ),
        )
        .unwrap();
        (dir, manifest_digest, layer_digest)
    }

    #[test]
    fn oci_layout_through_a_nested_index() {
        let (layout, manifest, layer) = oci_layout("application/vnd.oci.image.layer.v1.tar");
        let data = tempfile::tempdir().unwrap();
        let store = ImageStore::new(data.path());
        let img = store.import(layout.path(), &mut |_| {}).unwrap();
        assert_eq!(img.source, "oci-layout");
        assert_eq!(img.id, manifest, "identified by its manifest");
        assert_eq!(img.layers, std::slice::from_ref(&layer));
        let rootfs = store.stored_rootfs(&img.id).unwrap();
        assert_eq!(std::fs::read(rootfs.join("etc/os")).unwrap(), b"oci");
        // Again: already stored, the same answer.
        assert_eq!(store.import(layout.path(), &mut |_| {}).unwrap(), img);

        // A layer whose content does not match its digest is refused.
        let hex = layer.strip_prefix("sha256:").unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        tar.append_data(
            &mut hdr(tar::EntryType::Regular, 0o644, 3),
            "etc/os",
            &b"bad"[..],
        )
        .unwrap();
        std::fs::write(
            layout.path().join("blobs/sha256").join(hex),
            tar.into_inner().unwrap(),
        )
        .unwrap();
        let other = tempfile::tempdir().unwrap();
        let err = ImageStore::new(other.path())
            .import(layout.path(), &mut |_| {})
            .unwrap_err();
        assert!(matches!(err, ImageError::Invalid(..)), "{err}");
        assert!(
            err.to_string().contains("does not match its digest"),
            "{err}"
        );

        // A manifest that does not match its digest is refused.
        let hex = manifest.strip_prefix("sha256:").unwrap();
        let p = layout.path().join("blobs/sha256").join(hex);
        let mut m = std::fs::read(&p).unwrap();
        m.push(b' ');
        std::fs::write(&p, m).unwrap();
        let err = ImageStore::new(other.path())
            .import(layout.path(), &mut |_| {})
            .unwrap_err();
        assert!(
            err.to_string().contains("does not match its content"),
            "{err}"
        );
        assert!(names(&other.path().join("images")).is_empty());
    }

    #[test]
    fn zstd_layers_are_applied_and_verified() {
        let (layout, manifest, old) = oci_layout("application/vnd.oci.image.layer.v1.tar+zstd");
        let mut layer = tar::Builder::new(Vec::new());
        layer
            .append_data(
                &mut hdr(tar::EntryType::Regular, 0o644, 4),
                "etc/zstd",
                &b"zstd"[..],
            )
            .unwrap();
        let plain = layer.into_inner().unwrap();
        // Two frames, as a parallel compressor writes them.
        let (a, b) = plain.split_at(100);
        let mut packed = zstd::encode_all(a, 3).unwrap();
        packed.extend(zstd::encode_all(b, 3).unwrap());
        let digest = blob(layout.path(), &packed);
        repoint_layer(layout.path(), &manifest, &old, &digest);
        let data = tempfile::tempdir().unwrap();
        let store = ImageStore::new(data.path());
        let img = store.import(layout.path(), &mut |_| {}).unwrap();
        assert_eq!(img.layers, [digest]);
        let rootfs = store.stored_rootfs(&img.id).unwrap();
        assert_eq!(std::fs::read(rootfs.join("etc/zstd")).unwrap(), b"zstd");
    }

    #[test]
    fn oci_layout_problems_are_invalid() {
        let (layout, _, _) = oci_layout("application/vnd.oci.image.layer.v1.tar");
        let data = tempfile::tempdir().unwrap();
        let store = ImageStore::new(data.path());
        for (index, want) in [
            (r#"{"manifests":[]}"#, "lists no manifests"),
            (r#"{"schemaVersion":2}"#, "lists no manifests"),
            (
                r#"{"manifests":[{"size":1}]}"#,
                "index.json: missing digest",
            ),
            (r#"{"manifests":[{"digest":"sha256:zz"}]}"#, "bad digest"),
            ("not json", "index.json is not valid JSON"),
        ] {
            std::fs::write(layout.path().join("index.json"), index).unwrap();
            let err = store.import(layout.path(), &mut |_| {}).unwrap_err();
            assert!(matches!(err, ImageError::Invalid(..)), "{index}: {err}");
            assert!(err.to_string().contains(want), "{index}: {err}");
        }
        let images = data.path().join("images");
        assert!(!images.exists() || names(&images).is_empty());
    }

    /// Rewrites the layout so its image's manifest names `layer_digest` for
    /// its layer (index.json -> nested index -> new manifest).
    fn repoint_layer(layout: &Path, manifest: &str, old_layer: &str, layer_digest: &str) {
        use sha2::{Digest, Sha256};
        let sha = |b: &[u8]| hex::encode(Sha256::digest(b));
        let blobs = layout.join("blobs/sha256");
        let m = std::fs::read_to_string(blobs.join(&manifest[7..]))
            .unwrap()
            .replace(old_layer, layer_digest);
        let new_manifest = format!("sha256:{}", sha(m.as_bytes()));
        std::fs::write(blobs.join(&new_manifest[7..]), &m).unwrap();
        let nested = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{new_manifest}","size":1}}]}}"#
        );
        let nested_digest = format!("sha256:{}", sha(nested.as_bytes()));
        std::fs::write(blobs.join(&nested_digest[7..]), &nested).unwrap();
        std::fs::write(
            layout.join("index.json"),
            format!(
                r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{nested_digest}","size":1}}]}}"#
            ),
        )
        .unwrap();
    }

    #[test]
    fn oci_blobs_stay_in_the_layout_and_every_digest_is_checked() {
        use sha2::{Digest, Sha512};
        // A manifest blob that is a symlink out of the layout is refused,
        // never read.
        let (layout, manifest, _) = oci_layout("application/vnd.oci.image.layer.v1.tar");
        let data = tempfile::tempdir().unwrap();
        let store = ImageStore::new(data.path());
        let mpath = layout.path().join("blobs/sha256").join(&manifest[7..]);
        std::fs::remove_file(&mpath).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &mpath).unwrap();
        let err = store.import(layout.path(), &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("leads out of the layout"), "{err}");

        // A layer named by sha512 is verified with sha512.
        for (tamper, ok) in [(false, true), (true, false)] {
            let (layout, manifest, layer) = oci_layout("application/vnd.oci.image.layer.v1.tar");
            let bytes =
                std::fs::read(layout.path().join("blobs/sha256").join(&layer[7..])).unwrap();
            let digest = hex::encode(Sha512::digest(&bytes));
            let mut stored = bytes.clone();
            if tamper {
                stored[600] ^= 1;
            }
            let dir = layout.path().join("blobs/sha512");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(&digest), &stored).unwrap();
            repoint_layer(
                layout.path(),
                &manifest,
                &layer,
                &format!("sha512:{digest}"),
            );
            let data = tempfile::tempdir().unwrap();
            let r = ImageStore::new(data.path()).import(layout.path(), &mut |_| {});
            match (r, ok) {
                (Ok(_), true) => {}
                (Err(e), false) => {
                    assert!(e.to_string().contains("does not match its digest"), "{e}")
                }
                (r, _) => panic!("tampered={tamper}: {r:?}"),
            }
        }

        // An unknown algorithm is a bad digest, never skipped.
        std::fs::write(
            layout.path().join("index.json"),
            r#"{"manifests":[{"digest":"md5:0123456789abcdef0123456789abcdef"}]}"#,
        )
        .unwrap();
        let err = store.import(layout.path(), &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("bad digest"), "{err}");
    }

    /// A layout of one image: `layers` (plain tars) and a config naming
    /// `diff_ids`. Returns the layout.
    fn layout_with(layers: &[Vec<u8>], diff_ids: &[String]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let l = dir.path();
        let ds: Vec<String> = layers.iter().map(|x| blob(l, x)).collect();
        let config = serde_json::json!({
            "config": {"Env": ["A=1"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = blob(l, config.to_string().as_bytes());
        let ls: Vec<serde_json::Value> = ds
            .iter()
            .map(|d| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": 1}))
            .collect();
        let manifest = serde_json::json!({"schemaVersion": 2, "config": {"digest": config, "size": 1}, "layers": ls});
        let m = blob(l, manifest.to_string().as_bytes());
        std::fs::write(l.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        std::fs::write(
            l.join("index.json"),
            serde_json::json!({"manifests": [{"digest": m, "size": 1}]}).to_string(),
        )
        .unwrap();
        dir
    }

    #[test]
    fn layers_are_stored_once_by_diff_id_and_checked() {
        use sha2::{Digest, Sha256};
        let tar_of = |entries: &[(&str, &[u8])]| {
            let mut b = tar::Builder::new(Vec::new());
            for (p, d) in entries {
                b.append_data(
                    &mut hdr(tar::EntryType::Regular, 0o644, d.len() as u64),
                    p,
                    *d,
                )
                .unwrap();
            }
            b.into_inner().unwrap()
        };
        let base = tar_of(&[("etc/a", b"a"), ("etc/b", b"b")]);
        let top = tar_of(&[("etc/.wh.a", b""), ("etc/c", b"c")]);
        let id = |x: &[u8]| format!("sha256:{}", hex::encode(Sha256::digest(x)));
        let data = tempfile::tempdir().unwrap();
        let store = ImageStore::new(data.path());
        let one = layout_with(std::slice::from_ref(&base), &[id(&base)]);
        let two = layout_with(&[base.clone(), top.clone()], &[id(&base), id(&top)]);
        let a = store.import(one.path(), &mut |_| {}).unwrap();
        let b = store.import(two.path(), &mut |_| {}).unwrap();
        assert_eq!(a.layers, [id(&base)]);
        assert_eq!(b.layers, [id(&base), id(&top)]);
        assert_eq!(b.config.unwrap().config.unwrap().env.unwrap(), ["A=1"]);
        // Two layers in the store; the image's files are the layer's.
        assert_eq!(names(&data.path().join("images/layers")).len(), 2);
        let rootfs = store.stored_rootfs(&b.id).unwrap();
        assert!(!rootfs.join("etc/a").exists(), "whiteout applied");
        assert_eq!(std::fs::read(rootfs.join("etc/c")).unwrap(), b"c");
        let m = std::fs::metadata(rootfs.join("etc/b")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert!(m.nlink() >= 3, "hard-linked from the layer: {}", m.nlink());
        // A config whose diff id does not match the layer is refused.
        let other = tempfile::tempdir().unwrap();
        let bad = layout_with(std::slice::from_ref(&top), &[id(&base)]);
        let err = ImageStore::new(other.path())
            .import(bad.path(), &mut |_| {})
            .unwrap_err();
        assert!(
            err.to_string().contains("does not match its diff id"),
            "{err}"
        );
        assert!(names(&other.path().join("images")).is_empty());
        // Removing a layer leaves the images composed from it whole.
        store.remove_layers(&a.layers).unwrap();
        assert_eq!(std::fs::read(rootfs.join("etc/b")).unwrap(), b"b");
        assert_eq!(store.stored_layers(), [id(&top)]);
    }

    #[test]
    fn concurrent_imports_agree() {
        let src = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(3);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, "etc/x", &b"abc"[..]).unwrap();
        let archive = src.path().join("r.tar");
        std::fs::write(&archive, b.into_inner().unwrap()).unwrap();
        let data = tempfile::tempdir().unwrap();
        let store = ImageStore::new(data.path());
        let ids: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| store.import(&archive, &mut |_| {}).unwrap().id))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
        assert_eq!(names(&data.path().join("images")).len(), 1);
        let rootfs = store.stored_rootfs(&ids[0]).unwrap();
        assert_eq!(std::fs::read(rootfs.join("etc/x")).unwrap(), b"abc");
    }

    #[test]
    fn bad_input_leaves_nothing() {
        let data = tempfile::tempdir().unwrap();
        let src = tempfile::tempdir().unwrap();
        let store = ImageStore::new(data.path());
        let junk = src.path().join("junk.tar.gz");
        // Gzip magic, then garbage.
        std::fs::write(&junk, [0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap();
        let err = store.import(&junk, &mut |_| {}).unwrap_err();
        assert!(matches!(err, ImageError::Invalid(..)), "{err}");
        let missing = store.import(&src.path().join("none"), &mut |_| {});
        assert!(matches!(missing, Err(ImageError::NotFound(..))));
        assert!(names(&data.path().join("images")).is_empty());
        // Leftover temp dirs of a crashed daemon are cleaned at start-up.
        std::fs::create_dir_all(data.path().join("images/.tmp-import-x/rootfs")).unwrap();
        store.remove_temp_dirs();
        assert!(names(&data.path().join("images")).is_empty());
    }
}
