//! The OCI image layout a pull leaves for the import: `oci-layout`,
//! `index.json` naming the one image manifest (its tag as
//! `org.opencontainers.image.ref.name`, its platform when one was chosen)
//! and `blobs/<alg>/<hex>` for the manifest, config and layers.
use crate::blob::blob_path;
use crate::error::RegistryError;
use crate::platform::Platform;
use serde_json::json;
use std::path::Path;

/// Writes FILE in DIR through a temp file and a rename.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), RegistryError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    std::fs::write(&tmp, bytes).map_err(|e| RegistryError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| RegistryError::io(&path, e))
}

/// Stores the (verified) manifest bytes as a blob.
pub(crate) fn put_manifest(layout: &Path, digest: &str, bytes: &[u8]) -> Result<(), RegistryError> {
    let path = blob_path(layout, digest)?;
    let dir = path.parent().expect("blobs/<alg>/<hex>");
    std::fs::create_dir_all(dir).map_err(|e| RegistryError::io(dir, e))?;
    let name = path.file_name().and_then(|n| n.to_str()).expect("hex");
    write_atomic(dir, name, bytes)
}

/// The image manifest as index.json names it.
pub(crate) struct Top<'a> {
    pub media_type: &'a str,
    pub digest: &'a str,
    pub size: u64,
    pub tag: Option<&'a str>,
    pub platform: Option<&'a Platform>,
}

/// Writes `oci-layout` and `index.json` (last: a layout with an index is
/// complete).
pub(crate) fn finish(layout: &Path, top: &Top) -> Result<(), RegistryError> {
    write_atomic(layout, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut entry = json!({
        "mediaType": top.media_type,
        "digest": top.digest,
        "size": top.size,
    });
    if let Some(t) = top.tag {
        entry["annotations"] = json!({ "org.opencontainers.image.ref.name": t });
    }
    if let Some(p) = top.platform {
        entry["platform"] = serde_json::to_value(p).expect("a platform serialises");
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry],
    });
    write_atomic(layout, "index.json", index.to_string().as_bytes())
}
