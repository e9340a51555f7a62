//! A pull: resolve the reference to one image manifest (choosing a
//! platform from an index or manifest list), verify it, fetch its config and
//! layers concurrently into an OCI layout under the work directory, and
//! hand the layout back. The layout is keyed by the manifest digest, so a
//! pull that failed half-way is continued by the next one; the caller
//! removes it once imported ([`Pulled::remove`]).
use crate::blob::{self, BlobSpec};
use crate::credentials::Credentials;
use crate::error::RegistryError;
use crate::layout::{self, Top};
use crate::options::RegistryOptions;
use crate::platform::Platform;
use crate::progress::{BlobKind, BlobReporter, PullEvent, Reporter};
use crate::reference::ImageRef;
use futures::StreamExt;
use oci_client::Client;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const ACCEPT: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];
/// Manifests larger than this are refused (the distribution spec's limit).
const MAX_MANIFEST: usize = 4 * 1024 * 1024;
/// Nested indexes followed at most.
const MAX_DEPTH: usize = 4;
/// A layout untouched this long belongs to a pull nobody retried.
const STALE: Duration = Duration::from_secs(24 * 3600);

/// What to pull.
#[derive(Debug, Clone)]
pub struct PullRequest {
    pub reference: ImageRef,
    /// None: the host's platform.
    pub platform: Option<Platform>,
    /// None: anonymous (with a token if the registry asks for one).
    pub credentials: Option<Credentials>,
}

/// A pulled image: a complete, verified OCI layout. Holds the layout's
/// lock until dropped or removed.
#[derive(Debug)]
pub struct Pulled {
    pub layout: PathBuf,
    pub reference: ImageRef,
    pub manifest_digest: String,
    /// The platform chosen from an index (None for a single-image manifest).
    pub platform: Option<Platform>,
    _lock: tokio::sync::OwnedMutexGuard<()>,
}

impl Pulled {
    /// Deletes the layout (after the import took it). Blocking.
    pub fn remove(self) -> Result<(), RegistryError> {
        match std::fs::remove_dir_all(&self.layout) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RegistryError::io(&self.layout, e)),
        }
    }
}

/// Pulls images into layouts under one work directory.
#[derive(Debug)]
pub struct Puller {
    opts: RegistryOptions,
    work: PathBuf,
    locks: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
}

/// A descriptor in a manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Desc {
    media_type: Option<String>,
    digest: String,
    size: Option<u64>,
    platform: Option<Platform>,
}

/// An image manifest or an index, told apart by their fields.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    schema_version: Option<u32>,
    media_type: Option<String>,
    manifests: Option<Vec<Desc>>,
    config: Option<Desc>,
    layers: Option<Vec<Desc>>,
}

/// Maps an `oci-client` error about WHAT on REGISTRY to one a user can act on.
pub(crate) fn map_error(e: OciDistributionError, registry: &str, what: &str) -> RegistryError {
    use OciDistributionError as E;
    let login = format!("log in with `quilt login {registry}` or check the credentials");
    match e {
        E::UnauthorizedError { .. } => {
            RegistryError::Unauthorized(format!("{registry} refused access to {what}: {login}"))
        }
        E::AuthenticationFailure(m) => RegistryError::Unauthorized(format!(
            "authentication to {registry} failed: {}: {login}",
            m.trim()
        )),
        E::ImageManifestNotFoundError(m) => {
            RegistryError::NotFound(format!("{what} not found in {registry}: {m}"))
        }
        E::RegistryError { envelope, .. } => {
            let first = envelope.errors.first();
            let msg = first
                .map(|e| e.message.clone())
                .unwrap_or_else(|| "no details".into());
            match first.map(|e| &e.code) {
                Some(
                    OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::BlobUnknown
                    | OciErrorCode::NotFound,
                ) => RegistryError::NotFound(format!("{what} not found in {registry}: {msg}")),
                Some(OciErrorCode::Unauthorized | OciErrorCode::Denied) => {
                    RegistryError::Unauthorized(format!(
                        "{registry} refused access to {what} ({msg}): {login}"
                    ))
                }
                _ => RegistryError::Unavailable(format!("{registry} failed on {what}: {msg}")),
            }
        }
        E::ServerError { code, message, .. } => match code {
            404 => RegistryError::NotFound(format!("{what} not found in {registry}")),
            401 | 403 => {
                RegistryError::Unauthorized(format!("{registry} refused access to {what}: {login}"))
            }
            _ => RegistryError::Unavailable(format!(
                "{registry} answered HTTP {code} for {what}: {}",
                message.chars().take(200).collect::<String>().trim()
            )),
        },
        E::DigestError(d) => RegistryError::Verification(format!(
            "{what} from {registry} does not match its digest ({d}): refused, nothing was stored"
        )),
        E::RequestError(r) => {
            let mut chain = r.to_string();
            let mut src = std::error::Error::source(&r);
            while let Some(s) = src {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                src = s.source();
            }
            RegistryError::Unavailable(format!("cannot reach {registry} for {what}: {chain}"))
        }
        other => RegistryError::Unavailable(format!("{registry}: {what}: {other}")),
    }
}

fn parse_doc(bytes: &[u8], what: &str) -> Result<Doc, RegistryError> {
    serde_json::from_slice(bytes)
        .map_err(|e| RegistryError::Invalid(format!("{what} is not a valid manifest: {e}")))
}

fn spec_of(d: &Desc, what: &str) -> Result<BlobSpec, RegistryError> {
    blob::parse_digest(&d.digest)?;
    let size = d
        .size
        .ok_or_else(|| RegistryError::Invalid(format!("{what} {} has no size", d.digest)))?;
    Ok(BlobSpec {
        digest: d.digest.clone(),
        size,
    })
}

impl Puller {
    /// Pulls with OPTS into layouts under WORK (created when needed).
    pub fn new(opts: RegistryOptions, work: PathBuf) -> Puller {
        Puller {
            opts,
            work,
            locks: Mutex::new(HashMap::new()),
        }
    }

    pub fn options(&self) -> &RegistryOptions {
        &self.opts
    }

    fn client(&self) -> Result<Client, RegistryError> {
        // reqwest is built without a default crypto provider: use ring,
        // like the rest of the daemon. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let protocol = if self.opts.insecure().is_empty() {
            ClientProtocol::Https
        } else {
            ClientProtocol::HttpsExcept(self.opts.insecure().to_vec())
        };
        let config = ClientConfig {
            protocol,
            connect_timeout: Some(Duration::from_secs(15)),
            read_timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        Client::try_from(config)
            .map_err(|e| RegistryError::Unavailable(format!("cannot set up the HTTP client: {e}")))
    }

    fn lock_for(&self, layout: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().expect("lock map poisoned");
        // Forget locks nobody holds.
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(layout.to_path_buf()).or_default().clone()
    }

    /// Fetches a manifest and checks it against EXPECTED (when the digest
    /// is known beforehand) or returns its sha256 digest.
    async fn manifest(
        &self,
        client: &Client,
        auth: &RegistryAuth,
        image: &oci_client::Reference,
        expected: Option<&str>,
        registry: &str,
        what: &str,
    ) -> Result<(Vec<u8>, String), RegistryError> {
        let (bytes, _) = client
            .pull_manifest_raw(image, auth, &ACCEPT)
            .await
            .map_err(|e| self.explain(map_error(e, registry, what), registry))?;
        if bytes.len() > MAX_MANIFEST {
            return Err(RegistryError::Invalid(format!(
                "{what} is larger than {MAX_MANIFEST} bytes"
            )));
        }
        let digest = match expected {
            Some(d) => {
                if !blob::matches(d, &bytes)? {
                    return Err(RegistryError::Verification(format!(
                        "{what} from {registry} does not match its digest {d}: refused, nothing \
                         was stored"
                    )));
                }
                d.to_owned()
            }
            None => {
                use sha2::Digest as _;
                format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)))
            }
        };
        Ok((bytes.to_vec(), digest))
    }

    /// Adds the `--insecure-registry` hint to errors reaching a loopback
    /// registry over HTTPS.
    fn explain(&self, e: RegistryError, registry: &str) -> RegistryError {
        let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
        let loopback = host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|i| i.is_loopback());
        match e {
            RegistryError::Unavailable(m) if loopback && !self.opts.is_insecure(registry) => {
                RegistryError::Unavailable(format!(
                    "{m} (for a plain-HTTP registry on this host, start quiltd with \
                     --insecure-registry {registry})"
                ))
            }
            e => e,
        }
    }

    /// Removes layouts of pulls nobody continued for a day.
    fn prune_stale(&self) {
        let Ok(entries) = std::fs::read_dir(&self.work) else {
            return;
        };
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE);
            let held = self
                .locks
                .lock()
                .expect("lock map poisoned")
                .contains_key(&e.path());
            if old && !held {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// Pulls REQ (see the module docs), reporting to EVENTS.
    pub async fn pull(
        &self,
        req: &PullRequest,
        events: mpsc::Sender<PullEvent>,
    ) -> Result<Pulled, RegistryError> {
        let rep = Reporter::new(events);
        let client = self.client()?;
        let r = &req.reference;
        let registry = r.registry().to_owned();
        let auth = match &req.credentials {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
            None => RegistryAuth::Anonymous,
        };
        client
            .auth(r.oci(), &auth, oci_client::RegistryOperation::Pull)
            .await
            .map_err(|e| self.explain(map_error(e, &registry, "the token"), &registry))?;

        // Resolve to one image manifest.
        let what = format!("image {}", r.familiar());
        let (mut bytes, mut digest) = self
            .manifest(&client, &auth, r.oci(), r.digest(), &registry, &what)
            .await?;
        let mut media = None;
        let mut chosen_platform = None;
        let mut doc = parse_doc(&bytes, &what)?;
        for depth in 0..=MAX_DEPTH {
            let Some(entries) = doc.manifests.take() else {
                break;
            };
            if depth == MAX_DEPTH {
                return Err(RegistryError::Invalid(format!(
                    "{what}: too many nested indexes"
                )));
            }
            let want = req.platform.clone().unwrap_or_else(Platform::host);
            let entry = entries
                .iter()
                .find(|e| e.platform.as_ref().is_some_and(|p| want.matches(p)))
                .ok_or_else(|| {
                    let have: Vec<String> = entries
                        .iter()
                        .filter_map(|e| e.platform.as_ref())
                        .filter(|p| p.os != "unknown")
                        .map(ToString::to_string)
                        .collect();
                    RegistryError::NotFound(format!(
                        "{what} has no image for {want} (it has: {}){}",
                        if have.is_empty() {
                            "none".into()
                        } else {
                            have.join(", ")
                        },
                        if req.platform.is_none() {
                            "; choose one with --platform"
                        } else {
                            ""
                        }
                    ))
                })?
                .clone();
            blob::parse_digest(&entry.digest)?;
            let (b, d) = self
                .manifest(
                    &client,
                    &auth,
                    &r.with_digest(&entry.digest),
                    Some(&entry.digest),
                    &registry,
                    &format!("{what} for {want}"),
                )
                .await?;
            bytes = b;
            digest = d;
            media = entry.media_type.clone();
            chosen_platform = entry.platform.clone();
            doc = parse_doc(&bytes, &what)?;
        }
        if doc.schema_version != Some(2) {
            return Err(RegistryError::Invalid(format!(
                "{what}: only schema 2 manifests (OCI or docker v2) are supported"
            )));
        }
        let media = media
            .or(doc.media_type.clone())
            .unwrap_or_else(|| OCI_MANIFEST.to_owned());
        let config = doc
            .config
            .as_ref()
            .ok_or_else(|| RegistryError::Invalid(format!("{what}: the manifest has no config")))?;
        let layers = doc.layers.as_deref().ok_or_else(|| {
            RegistryError::Invalid(format!("{what}: the manifest lists no layers"))
        })?;
        let mut blobs = vec![(spec_of(config, "config")?, BlobKind::Config)];
        let mut seen = HashSet::from([config.digest.clone()]);
        for l in layers {
            let s = spec_of(l, "layer")?;
            if seen.insert(s.digest.clone()) {
                blobs.push((s, BlobKind::Layer));
            }
        }
        rep.send(PullEvent::Resolved {
            reference: r.canonical(),
            digest: digest.clone(),
            platform: chosen_platform.as_ref().map(ToString::to_string),
            blobs: blobs
                .iter()
                .map(|(s, k)| (s.digest.clone(), s.size, *k))
                .collect(),
        });

        // Fetch into the layout of this manifest, one pull at a time.
        let (alg, hex) = blob::parse_digest(&digest)?;
        let dir = self.work.join(format!("{alg}-{hex}"));
        let guard = self.lock_for(&dir).lock_owned().await;
        {
            let work = self.work.clone();
            std::fs::create_dir_all(&work).map_err(|e| RegistryError::io(&work, e))?;
        }
        self.prune_stale();
        std::fs::create_dir_all(&dir).map_err(|e| RegistryError::io(&dir, e))?;
        layout::put_manifest(&dir, &digest, &bytes)?;
        let image = r.oci().clone();
        let n = self.opts.concurrent_downloads.max(1);
        let results: Vec<Result<(), RegistryError>> = futures::stream::iter(blobs)
            .map(|(spec, kind)| {
                let rep = BlobReporter::new(rep.clone(), &spec.digest, kind, spec.size);
                let (client, image, dir, registry) = (&client, &image, &dir, &registry);
                async move {
                    blob::fetch(client, image, &spec, dir, rep)
                        .await
                        .map_err(|e| self.explain(e, registry))
                }
            })
            .buffer_unordered(n)
            .collect()
            .await;
        // A verification failure says more than a sibling's interruption.
        let mut errors: Vec<RegistryError> = results.into_iter().filter_map(Result::err).collect();
        errors.sort_by_key(|e| !matches!(e, RegistryError::Verification(_)));
        if let Some(e) = errors.into_iter().next() {
            return Err(e);
        }
        let _ = std::fs::remove_dir_all(dir.join("partial"));
        layout::finish(
            &dir,
            &Top {
                media_type: &media,
                digest: &digest,
                size: bytes.len() as u64,
                tag: r.tag().filter(|_| r.digest().is_none()),
                platform: chosen_platform.as_ref(),
            },
        )?;
        Ok(Pulled {
            layout: dir,
            reference: r.clone(),
            manifest_digest: digest,
            platform: chosen_platform,
            _lock: guard,
        })
    }
}
