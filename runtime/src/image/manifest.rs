//! The JSON documents of an image archive, typed: the OCI image index and
//! manifest with their descriptors, a `docker save` archive's
//! `manifest.json`, and the image configuration (what the image asks a
//! container to run with). Fields not listed here are ignored; fields the
//! specifications require but an import can do without are optional, so
//! checking them stays with the import.
use serde::Deserialize;
use std::collections::BTreeMap;

/// Media types of an index (a list of manifests, e.g. one per platform).
pub const INDEX_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// The annotation that names an image in an OCI layout's index.json.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// A reference to a blob: a manifest, a config or a layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: Option<String>,
    /// "<algorithm>:<hex>", e.g. "sha256:...".
    pub digest: Option<String>,
    pub size: Option<u64>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// For the entries of an index: the platform the manifest is for.
    pub platform: Option<Platform>,
}

impl Descriptor {
    /// The `org.opencontainers.image.ref.name` annotation (a tag).
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations
            .get(REF_NAME_ANNOTATION)
            .map(String::as_str)
    }

    /// True when the media type says this is a layer compressed with zstd.
    pub fn is_zstd(&self) -> bool {
        self.media_type
            .as_deref()
            .is_some_and(|m| m.contains("zstd"))
    }
}

/// The platform of an index entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Platform {
    /// GOARCH spelling: "amd64", "arm64", ...
    pub architecture: Option<String>,
    pub os: Option<String>,
    pub variant: Option<String>,
    #[serde(rename = "os.version")]
    pub os_version: Option<String>,
}

/// The architecture name images use for the host (GOARCH spelling).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

/// An OCI image index (`index.json` of a layout, or a nested index blob).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: Option<u32>,
    pub media_type: Option<String>,
    /// None when absent (an image manifest has none).
    pub manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl ImageIndex {
    /// The entry for the host's architecture, or else the first one.
    pub fn choose(&self) -> Option<&Descriptor> {
        let manifests = self.manifests.as_deref()?;
        let arch = host_architecture();
        manifests
            .iter()
            .find(|m| m.platform.as_ref().and_then(|p| p.architecture.as_deref()) == Some(arch))
            .or_else(|| manifests.first())
    }
}

/// An OCI (or docker v2 schema 2) image manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: Option<u32>,
    pub media_type: Option<String>,
    /// The image configuration blob.
    pub config: Option<Descriptor>,
    /// The layers, bottom first; None when absent.
    pub layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// What decides whether a blob an index points to is itself an index.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Probe {
    pub(super) media_type: Option<String>,
    pub(super) manifests: Option<serde::de::IgnoredAny>,
}

/// One image of a `docker save` archive (`manifest.json` is a list).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerManifestEntry {
    /// Path of the image configuration inside the archive.
    pub config: Option<String>,
    /// "name:tag" of the image; null for an untagged one.
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layer tarballs inside the archive, bottom first.
    pub layers: Option<Vec<String>>,
}

/// The image configuration (OCI image-spec config.md; docker writes the
/// same shape).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct ImageConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// What a container of this image runs with by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<RunConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<RootFs>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

/// The defaults an image gives its containers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    /// "user", "uid", "user:group", "uid:gid", ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// "80/tcp", "53/udp", ... (the values are empty objects).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    /// "KEY=value" entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// A signal name or number ("SIGTERM", "9").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

/// An empty JSON object (what a set of ports or volumes maps to).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Empty {}

/// The layers of the image as the filesystem sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct RootFs {
    /// Always "layers".
    #[serde(rename = "type")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Digests of the uncompressed layers, bottom first.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// One step of the image's build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct History {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the step made no layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// Parses an image configuration blob.
pub fn parse_config(bytes: &[u8]) -> serde_json::Result<ImageConfig> {
    serde_json::from_slice(bytes)
}

/// "sha256:<hex>" -> "blobs/sha256/<hex>" (where an OCI layout keeps it);
/// None for a malformed digest or an algorithm other than sha256 and
/// sha512.
pub fn blob_path(digest: &str) -> Option<String> {
    super::digest::BlobDigest::parse(digest).map(|d| d.layout_path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_with_platforms() {
        let other = if host_architecture() == "amd64" {
            "arm64"
        } else {
            "amd64"
        };
        let json = format!(
            r#"{{
              "schemaVersion": 2,
              "mediaType": "application/vnd.oci.image.index.v1+json",
              "manifests": [
                {{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "digest": "sha256:aaaa", "size": 7,
                  "platform": {{"architecture": "{other}", "os": "linux"}}}},
                {{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "digest": "sha256:bbbb", "size": 9,
                  "platform": {{"architecture": "{}", "os": "linux",
                                "os.version": "x", "variant": "v8"}},
                  "annotations": {{"org.opencontainers.image.ref.name": "1.0"}},
                  "unknown": [1, 2]}}
              ]
            }}"#,
            host_architecture()
        );
        let index: ImageIndex = serde_json::from_str(&json).unwrap();
        assert_eq!(index.schema_version, Some(2));
        assert!(INDEX_MEDIA_TYPES.contains(&index.media_type.as_deref().unwrap()));
        let chosen = index.choose().unwrap();
        assert_eq!(chosen.digest.as_deref(), Some("sha256:bbbb"));
        assert_eq!(chosen.size, Some(9));
        assert_eq!(chosen.ref_name(), Some("1.0"));
        let p = chosen.platform.as_ref().unwrap();
        assert_eq!(
            (
                p.os.as_deref(),
                p.variant.as_deref(),
                p.os_version.as_deref()
            ),
            (Some("linux"), Some("v8"), Some("x"))
        );
        // No entry for the host: the first one.
        let json = r#"{"manifests": [{"digest": "sha256:cc"},
                                      {"digest": "sha256:dd", "platform": {"architecture": "s390x"}}]}"#;
        let index: ImageIndex = serde_json::from_str(json).unwrap();
        assert_eq!(index.choose().unwrap().digest.as_deref(), Some("sha256:cc"));
        let empty: ImageIndex = serde_json::from_str("{}").unwrap();
        assert!(empty.manifests.is_none() && empty.choose().is_none());
    }

    #[test]
    fn manifest_with_layers() {
        let json = r#"{
          "schemaVersion": 2,
          "mediaType": "application/vnd.oci.image.manifest.v1+json",
          "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                     "digest": "sha256:c0", "size": 100},
          "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
             "digest": "sha256:l1", "size": 10},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
             "digest": "sha256:l2", "size": 20}
          ],
          "annotations": {"a": "b"}
        }"#;
        let m: ImageManifest = serde_json::from_str(json).unwrap();
        assert_eq!(m.config.unwrap().digest.as_deref(), Some("sha256:c0"));
        let layers = m.layers.unwrap();
        assert_eq!(layers.len(), 2);
        assert!(!layers[0].is_zstd());
        assert!(layers[1].is_zstd());
        assert_eq!(m.annotations["a"], "b");
        let probe: Probe = serde_json::from_str(json).unwrap();
        assert!(probe.manifests.is_none());
        let probe: Probe = serde_json::from_str(r#"{"manifests": []}"#).unwrap();
        assert!(probe.manifests.is_some() && probe.media_type.is_none());
    }

    #[test]
    fn docker_save_manifest() {
        let json = r#"[{"Config": "abc.json", "RepoTags": ["busybox:latest"],
                        "Layers": ["l1/layer.tar", "l2/layer.tar"], "LayerSources": {}},
                       {"Config": "def.json", "RepoTags": null, "Layers": []}]"#;
        let entries: Vec<DockerManifestEntry> = serde_json::from_str(json).unwrap();
        assert_eq!(entries[0].config.as_deref(), Some("abc.json"));
        assert_eq!(
            entries[0].repo_tags.as_deref(),
            Some(&["busybox:latest".to_string()][..])
        );
        assert_eq!(entries[0].layers.as_ref().unwrap().len(), 2);
        assert_eq!(entries[1].repo_tags, None);
    }

    #[test]
    fn image_config_parsed_fully() {
        let json = br#"{
          "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
          "config": {
            "User": "1000:1000",
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
            "Env": ["PATH=/usr/bin:/bin", "A=b"],
            "Entrypoint": ["/entry.sh"],
            "Cmd": ["serve", "--port", "80"],
            "Volumes": {"/data": {}},
            "WorkingDir": "/srv",
            "Labels": {"maintainer": "me"},
            "StopSignal": "SIGQUIT",
            "ArgsEscaped": true
          },
          "rootfs": {"type": "layers", "diff_ids": ["sha256:d1", "sha256:d2"]},
          "history": [
            {"created": "2024-01-01T00:00:00Z", "created_by": "ADD rootfs /"},
            {"created_by": "ENV A=b", "empty_layer": true, "comment": "c"}
          ]
        }"#;
        let c = parse_config(json).unwrap();
        assert_eq!(c.architecture.as_deref(), Some("amd64"));
        assert_eq!(c.os.as_deref(), Some("linux"));
        let run = c.config.unwrap();
        assert_eq!(run.user.as_deref(), Some("1000:1000"));
        let ports: Vec<&str> = run
            .exposed_ports
            .as_ref()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(ports, ["53/udp", "80/tcp"]);
        assert_eq!(run.env.unwrap(), ["PATH=/usr/bin:/bin", "A=b"]);
        assert_eq!(run.entrypoint.unwrap(), ["/entry.sh"]);
        assert_eq!(run.cmd.unwrap(), ["serve", "--port", "80"]);
        assert!(run.volumes.unwrap().contains_key("/data"));
        assert_eq!(run.working_dir.as_deref(), Some("/srv"));
        assert_eq!(run.labels.unwrap()["maintainer"], "me");
        assert_eq!(run.stop_signal.as_deref(), Some("SIGQUIT"));
        let rootfs = c.rootfs.unwrap();
        assert_eq!(rootfs.kind.as_deref(), Some("layers"));
        assert_eq!(rootfs.diff_ids, ["sha256:d1", "sha256:d2"]);
        assert_eq!(c.history.len(), 2);
        assert!(!c.history[0].empty_layer);
        assert!(c.history[1].empty_layer);
        assert_eq!(c.history[1].created_by.as_deref(), Some("ENV A=b"));
        // Docker writes null for what an image does not set.
        let c = parse_config(br#"{"config": {"Entrypoint": null, "Cmd": null, "Labels": null}}"#)
            .unwrap();
        let run = c.config.unwrap();
        assert!(run.entrypoint.is_none() && run.cmd.is_none() && run.labels.is_none());
        assert!(parse_config(b"{}").unwrap().config.is_none());
    }

    #[test]
    fn blob_paths() {
        let hex = "0af9".repeat(16);
        assert_eq!(
            blob_path(&format!("sha256:{hex}")).as_deref(),
            Some(format!("blobs/sha256/{hex}").as_str())
        );
        for bad in [
            "sha256:",
            "sha256",
            "sha256:xyz",
            "sha-256:ab",
            "sha256:../ab",
            "sha256:0aF9",
            "md5:0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(blob_path(bad), None, "{bad}");
        }
    }
}
