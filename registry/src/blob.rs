//! Downloading one blob into a layout: resumed from the partial file an
//! interrupted pull left (a Range request; a registry that answers with
//! the whole blob starts it over), checked against the size and digest its
//! descriptor gives, and moved into `blobs/` only once it matches. A blob
//! that does not match is deleted, never kept.
use crate::error::RegistryError;
use crate::progress::BlobReporter;
use futures::StreamExt;
use oci_client::Client;
use oci_client::Reference;
use oci_client::client::BlobResponse;
use sha2::{Digest as _, Sha256, Sha512};
use std::io::Read;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// A blob to fetch, as its descriptor names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlobSpec {
    /// "sha256:<hex>" or "sha512:<hex>", checked.
    pub digest: String,
    pub size: u64,
}

/// An incremental hash of the digest's algorithm.
#[derive(Clone)]
pub(crate) enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }

    fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Hasher::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        }
    }
}

/// Splits a digest into algorithm and hex, refusing anything that is not
/// a well-formed sha256 or sha512 digest (it becomes a file name).
pub(crate) fn parse_digest(d: &str) -> Result<(&str, &str), RegistryError> {
    let bad = || RegistryError::Verification(format!("malformed digest {:?}", cut(d)));
    let (alg, hex) = d.split_once(':').ok_or_else(bad)?;
    let len = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(bad()),
    };
    let ok = hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if ok { Ok((alg, hex)) } else { Err(bad()) }
}

fn cut(s: &str) -> String {
    s.chars().take(80).collect()
}

pub(crate) fn hasher_for(digest: &str) -> Result<Hasher, RegistryError> {
    Ok(match parse_digest(digest)?.0 {
        "sha256" => Hasher::Sha256(Sha256::new()),
        _ => Hasher::Sha512(Sha512::new()),
    })
}

/// Whether BYTES have DIGEST.
pub(crate) fn matches(digest: &str, bytes: &[u8]) -> Result<bool, RegistryError> {
    let mut h = hasher_for(digest)?;
    h.update(bytes);
    Ok(h.finish() == digest)
}

/// Where a verified blob lives in the layout.
pub(crate) fn blob_path(layout: &Path, digest: &str) -> Result<PathBuf, RegistryError> {
    let (alg, hex) = parse_digest(digest)?;
    Ok(layout.join("blobs").join(alg).join(hex))
}

fn partial_path(layout: &Path, digest: &str) -> Result<PathBuf, RegistryError> {
    let (alg, hex) = parse_digest(digest)?;
    Ok(layout.join("partial").join(format!("{alg}-{hex}")))
}

/// Hashes the first LEN bytes of PATH (off the async reactor).
async fn hash_prefix(path: PathBuf, digest: String, len: u64) -> Result<Hasher, RegistryError> {
    tokio::task::spawn_blocking(move || {
        let mut h = hasher_for(&digest)?;
        let f = std::fs::File::open(&path).map_err(|e| RegistryError::io(&path, e))?;
        let mut r = f.take(len);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = r.read(&mut buf).map_err(|e| RegistryError::io(&path, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(h)
    })
    .await
    .map_err(|e| RegistryError::Unavailable(format!("hashing task failed: {e}")))?
}

fn mismatch(spec: &BlobSpec, got: &str, registry: &str) -> RegistryError {
    RegistryError::Verification(format!(
        "blob {} from {registry} does not match its digest (got {got}): refused, nothing was stored",
        spec.digest
    ))
}

/// Fetches SPEC into LAYOUT/blobs (see the module docs).
pub(crate) async fn fetch(
    client: &Client,
    image: &Reference,
    spec: &BlobSpec,
    layout: &Path,
    mut rep: BlobReporter,
) -> Result<(), RegistryError> {
    let registry = image.registry().to_owned();
    let done = blob_path(layout, &spec.digest)?;
    let partial = partial_path(layout, &spec.digest)?;
    // Verified by an earlier try: checked again (the disk may have changed).
    if let Ok(m) = tokio::fs::metadata(&done).await {
        if m.len() == spec.size
            && hash_prefix(done.clone(), spec.digest.clone(), spec.size)
                .await?
                .finish()
                == spec.digest
        {
            rep.resumed(spec.size);
            rep.done();
            return Ok(());
        }
        tokio::fs::remove_file(&done)
            .await
            .map_err(|e| RegistryError::io(&done, e))?;
    }
    for dir in [done.parent(), partial.parent()].into_iter().flatten() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| RegistryError::io(dir, e))?;
    }
    let mut have = match tokio::fs::metadata(&partial).await {
        Ok(m) if m.len() <= spec.size => m.len(),
        _ => 0,
    };
    let mut hasher = if have > 0 {
        hash_prefix(partial.clone(), spec.digest.clone(), have).await?
    } else {
        hasher_for(&spec.digest)?
    };
    let desc = spec.digest.as_str();
    let fail = |e: oci_client::errors::OciDistributionError| {
        crate::pull::map_error(e, &registry, &format!("blob {}", spec.digest))
    };
    let mut stream = if have > 0 && have < spec.size {
        match client
            .pull_blob_stream_partial(image, desc, have, None)
            .await
            .map_err(fail)?
        {
            BlobResponse::Partial(s) => Some(s),
            BlobResponse::Full(s) => {
                // No range support: start over.
                have = 0;
                hasher = hasher_for(&spec.digest)?;
                Some(s)
            }
        }
    } else if have == spec.size {
        None // all there: only the digest is left to check
    } else {
        Some(client.pull_blob_stream(image, desc).await.map_err(fail)?)
    };
    rep.resumed(have);
    rep.now(have);
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(have == 0)
        .append(have > 0)
        .open(&partial)
        .await
        .map_err(|e| RegistryError::io(&partial, e))?;
    let mut got = have;
    let mut interrupted = None;
    while let Some(s) = stream.as_mut()
        && let Some(chunk) = s.next().await
    {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                interrupted = Some(e.to_string());
                break;
            }
        };
        got += chunk.len() as u64;
        if got > spec.size {
            drop(file);
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(RegistryError::Verification(format!(
                "blob {} from {registry} is larger than the {} bytes its manifest gives: refused, \
                 nothing was stored",
                spec.digest, spec.size
            )));
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(|e| RegistryError::io(&partial, e))?;
        rep.progress(got);
    }
    file.flush()
        .await
        .map_err(|e| RegistryError::io(&partial, e))?;
    file.sync_all()
        .await
        .map_err(|e| RegistryError::io(&partial, e))?;
    drop(file);
    if got < spec.size {
        // Kept for the next try, which continues where this one stopped.
        let why = interrupted.unwrap_or_else(|| "the registry ended the response early".into());
        return Err(RegistryError::Unavailable(format!(
            "downloading blob {} from {registry} stopped after {got} of {} bytes ({why}); pull \
             again to resume",
            spec.digest, spec.size
        )));
    }
    let actual = hasher.finish();
    if actual != spec.digest {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(mismatch(spec, &actual, &registry));
    }
    tokio::fs::rename(&partial, &done)
        .await
        .map_err(|e| RegistryError::io(&done, e))?;
    rep.done();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_checked_before_they_name_files() {
        let h = "ab".repeat(32);
        assert!(parse_digest(&format!("sha256:{h}")).is_ok());
        for bad in [
            format!("sha256:{}", "AB".repeat(32)),
            format!("sha384:{h}"),
            format!("sha256:../{}", "a".repeat(61)),
            "sha256".into(),
        ] {
            assert!(parse_digest(&bad).is_err(), "{bad}");
        }
        let d = format!("sha256:{}", hex::encode(Sha256::digest(b"x")));
        assert!(matches(&d, b"x").unwrap());
        assert!(!matches(&d, b"y").unwrap());
    }
}
