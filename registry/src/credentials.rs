//! Registry credentials in docker's file format: `config.json` in
//! `$DOCKER_CONFIG` or `~/.docker/`, whose `auths` map a registry to a
//! base64 `user:password` (`auth`). Read by pulls, written by `quilt login`
//! and `quilt logout`; keys this code does not know are kept as they are.
use crate::error::RegistryError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The key docker uses for Docker Hub.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// Config files larger than this are refused.
const MAX_CONFIG: u64 = 4 * 1024 * 1024;

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// A docker `config.json`, loaded.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
}

/// The host part of an `auths` key: `https://host:port/v1/` -> `host:port`.
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// The keys a registry may be stored under.
fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

impl DockerConfig {
    /// Where the file is: `$DOCKER_CONFIG/config.json`, else
    /// `$HOME/.docker/config.json`.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(dir).join("config.json"));
        }
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".docker/config.json"))
    }

    /// Loads PATH; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<DockerConfig, RegistryError> {
        let bytes = match std::fs::metadata(path) {
            Ok(m) if m.len() > MAX_CONFIG => {
                return Err(RegistryError::Invalid(format!(
                    "{} is larger than {MAX_CONFIG} bytes",
                    path.display()
                )));
            }
            Ok(_) => std::fs::read(path).map_err(|e| RegistryError::io(path, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(RegistryError::io(path, e)),
        };
        let doc = if bytes.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(RegistryError::Invalid(format!(
                        "{} is not a JSON object",
                        path.display()
                    )));
                }
                Err(e) => {
                    return Err(RegistryError::Invalid(format!(
                        "{} is not valid JSON: {e}",
                        path.display()
                    )));
                }
            }
        };
        Ok(DockerConfig {
            path: path.to_path_buf(),
            doc,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn auths(&self) -> Option<&Map<String, Value>> {
        self.doc.get("auths").and_then(Value::as_object)
    }

    /// The key REGISTRY's entry has (or would have).
    fn find_key(&self, registry: &str) -> Option<String> {
        let hub = is_docker_hub(registry);
        self.auths()?
            .keys()
            .find(|k| {
                let h = key_host(k);
                h == registry || (hub && is_docker_hub(h))
            })
            .cloned()
    }

    /// The credentials stored for REGISTRY (`docker.io` matches docker's
    /// `https://index.docker.io/v1/` key).
    pub fn lookup(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        let Some(key) = self.find_key(registry) else {
            return Ok(None);
        };
        let entry = &self.auths().expect("a key was found")[&key];
        let bad = |why: &str| {
            RegistryError::Invalid(format!(
                "{}: the entry for {key} {why}",
                self.path.display()
            ))
        };
        if let Some(auth) = entry.get("auth").and_then(Value::as_str)
            && !auth.is_empty()
        {
            let raw = STANDARD
                .decode(auth.trim())
                .map_err(|_| bad("has an `auth` that is not base64"))?;
            let text =
                String::from_utf8(raw).map_err(|_| bad("has an `auth` that is not UTF-8"))?;
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| bad("has an `auth` without \"user:password\""))?;
            return Ok(Some(Credentials {
                username: u.to_owned(),
                password: p.to_owned(),
            }));
        }
        match (
            entry.get("username").and_then(Value::as_str),
            entry.get("password").and_then(Value::as_str),
        ) {
            (Some(u), Some(p)) => Ok(Some(Credentials {
                username: u.to_owned(),
                password: p.to_owned(),
            })),
            _ => Ok(None),
        }
    }

    /// Stores CREDS for REGISTRY (replacing an older entry).
    pub fn set(&mut self, registry: &str, creds: &Credentials) {
        let key = self.find_key(registry).unwrap_or_else(|| {
            if is_docker_hub(registry) {
                DOCKER_HUB_KEY.to_owned()
            } else {
                registry.to_owned()
            }
        });
        let auth = STANDARD.encode(format!("{}:{}", creds.username, creds.password));
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        let mut entry = Map::new();
        entry.insert("auth".into(), Value::String(auth));
        auths
            .as_object_mut()
            .expect("made an object")
            .insert(key, Value::Object(entry));
    }

    /// Drops REGISTRY's entry; false when there was none.
    pub fn remove(&mut self, registry: &str) -> bool {
        let Some(key) = self.find_key(registry) else {
            return false;
        };
        self.doc
            .get_mut("auths")
            .and_then(Value::as_object_mut)
            .is_some_and(|a| a.remove(&key).is_some())
    }

    /// Writes the file (mode 0600, its directory 0700 when created),
    /// replacing it atomically.
    pub fn save(&self) -> Result<(), RegistryError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| RegistryError::io(dir, e))?;
        let tmp = dir.join(format!(".config.json.{}.tmp", std::process::id()));
        let body = serde_json::to_vec_pretty(&Value::Object(self.doc.clone()))
            .expect("a JSON map serialises");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&body)?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            RegistryError::io(&self.path, e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_lookup_logout_keep_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.json");
        let mut c = DockerConfig::load(&path).unwrap();
        assert_eq!(c.lookup("127.0.0.1:5000").unwrap(), None);
        let creds = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        c.set("127.0.0.1:5000", &creds);
        c.set("docker.io", &creds);
        c.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(DOCKER_HUB_KEY) && text.contains("dTpwOnc="),
            "{text}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Another tool's keys survive.
        let mut v: Value = serde_json::from_str(&text).unwrap();
        v["credsStore"] = Value::String("x".into());
        v["auths"]["https://other.example/v1/"] =
            serde_json::json!({"username": "a", "password": "b"});
        std::fs::write(&path, v.to_string()).unwrap();
        let mut c = DockerConfig::load(&path).unwrap();
        assert_eq!(c.lookup("127.0.0.1:5000").unwrap().as_ref(), Some(&creds));
        assert_eq!(c.lookup("index.docker.io").unwrap().as_ref(), Some(&creds));
        assert_eq!(c.lookup("other.example").unwrap().unwrap().password, "b");
        assert!(c.remove("127.0.0.1:5000"));
        assert!(!c.remove("127.0.0.1:5000"));
        c.save().unwrap();
        let c = DockerConfig::load(&path).unwrap();
        assert_eq!(c.lookup("127.0.0.1:5000").unwrap(), None);
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("credsStore")
        );
        assert!(!format!("{creds:?}").contains("p:w"));
    }

    #[test]
    fn malformed_files_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "[1]").unwrap();
        assert!(
            DockerConfig::load(&path)
                .unwrap_err()
                .to_string()
                .contains("not a JSON object")
        );
        std::fs::write(&path, r#"{"auths":{"r:1":{"auth":"!!"}}}"#).unwrap();
        let c = DockerConfig::load(&path).unwrap();
        assert!(
            c.lookup("r:1")
                .unwrap_err()
                .to_string()
                .contains("not base64")
        );
    }
}
