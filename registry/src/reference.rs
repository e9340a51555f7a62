//! Image references as docker users write them, normalised the way docker
//! does: `python:3.12` is `docker.io/library/python:3.12`, a missing tag is
//! `latest`, and a first component with a dot, a colon or `localhost` is a
//! registry host.
use crate::error::RegistryError;
use oci_client::Reference;

const DOCKER_HUB: &str = "docker.io";
const OFFICIAL: &str = "library/";
/// Longest reference accepted (docker's name limit plus tag and digest).
const MAX_LEN: usize = 512;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    inner: Reference,
}

impl ImageRef {
    /// Parses REF (`name[:tag][@digest]`, optionally with a registry host).
    pub fn parse(s: &str) -> Result<ImageRef, RegistryError> {
        let shown: String = s.chars().take(80).collect();
        if s.len() > MAX_LEN {
            return Err(RegistryError::Invalid(format!(
                "invalid image reference {shown:?}...: longer than {MAX_LEN} bytes"
            )));
        }
        let inner: Reference = s.parse().map_err(|e| {
            RegistryError::Invalid(format!(
                "invalid image reference {shown:?}: {e} (expected [REGISTRY/]NAME[:TAG][@DIGEST], \
                 names in lower case)"
            ))
        })?;
        if let Some(d) = inner.digest()
            && !(d.starts_with("sha256:") || d.starts_with("sha512:"))
        {
            return Err(RegistryError::Invalid(format!(
                "invalid image reference {shown:?}: only sha256 and sha512 digests are supported"
            )));
        }
        Ok(ImageRef { inner })
    }

    /// `docker.io/library/python:3.12`.
    pub fn canonical(&self) -> String {
        self.inner.whole()
    }

    /// The short name docker shows: `python:3.12`, `user/app:1`,
    /// `127.0.0.1:5000/app:1`, `app@sha256:...` (the tag dropped when a
    /// digest pins the image).
    pub fn familiar(&self) -> String {
        let mut name = self.inner.repository().to_owned();
        if self.inner.registry() == DOCKER_HUB {
            if let Some(rest) = name.strip_prefix(OFFICIAL)
                && !rest.contains('/')
            {
                name = rest.to_owned();
            }
        } else {
            name = format!("{}/{name}", self.inner.registry());
        }
        match (self.inner.digest(), self.inner.tag()) {
            (Some(d), _) => format!("{name}@{d}"),
            (None, Some(t)) => format!("{name}:{t}"),
            (None, None) => format!("{name}:latest"),
        }
    }

    /// The registry as written (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    /// The host the registry is reached at (`index.docker.io` for docker.io).
    pub fn registry_host(&self) -> &str {
        self.inner.resolve_registry()
    }

    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    pub(crate) fn oci(&self) -> &Reference {
        &self.inner
    }

    /// The same repository, pinned to DIGEST.
    pub(crate) fn with_digest(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.inner.registry().to_owned(),
            self.inner.repository().to_owned(),
            digest.to_owned(),
        )
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// Whether IMAGE (as given to `create`/`run`) names something a registry
/// could serve, rather than a local path, an archive, a store id or the
/// built-in image.
pub fn looks_like_reference(image: &str) -> bool {
    if image.is_empty()
        || image == "default"
        || image.starts_with('/')
        || image.starts_with('.')
        || image.starts_with("sha256:")
        || [".tar", ".tgz", ".gz", ".zst"]
            .iter()
            .any(|e| image.ends_with(e))
    {
        return false;
    }
    ImageRef::parse(image).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_style_normalisation() {
        let hex = "a".repeat(64);
        for (given, canonical, familiar) in [
            (
                "python:3.12",
                "docker.io/library/python:3.12",
                "python:3.12",
            ),
            ("python", "docker.io/library/python:latest", "python:latest"),
            ("user/app:1", "docker.io/user/app:1", "user/app:1"),
            (
                "docker.io/library/python:3.12",
                "docker.io/library/python:3.12",
                "python:3.12",
            ),
            (
                "127.0.0.1:5000/test/img:v1",
                "127.0.0.1:5000/test/img:v1",
                "127.0.0.1:5000/test/img:v1",
            ),
            (
                "localhost/img",
                "localhost/img:latest",
                "localhost/img:latest",
            ),
            ("ghcr.io/o/r/x:2", "ghcr.io/o/r/x:2", "ghcr.io/o/r/x:2"),
        ] {
            let r = ImageRef::parse(given).unwrap();
            assert_eq!(r.canonical(), canonical, "{given}");
            assert_eq!(r.familiar(), familiar, "{given}");
        }
        let pinned = format!("127.0.0.1:5000/img@sha256:{hex}");
        let r = ImageRef::parse(&pinned).unwrap();
        assert_eq!(r.familiar(), pinned);
        assert_eq!(r.tag(), None);
        assert_eq!(
            ImageRef::parse("python").unwrap().registry_host(),
            "index.docker.io"
        );
    }

    #[test]
    fn bad_references_are_refused() {
        for bad in ["", "Python", "a b", "x:", "-x", "x@sha256:12", "x@md5:abcd"] {
            let e = ImageRef::parse(bad).unwrap_err();
            assert!(matches!(e, RegistryError::Invalid(_)), "{bad}: {e}");
        }
        assert!(ImageRef::parse(&"a".repeat(600)).is_err());
    }

    #[test]
    fn what_looks_like_a_reference() {
        for yes in ["python:3.12", "busybox", "127.0.0.1:5000/a/b:c"] {
            assert!(looks_like_reference(yes), "{yes}");
        }
        for no in [
            "default",
            "/srv/rootfs",
            "./img",
            "img.tar",
            "img.tgz",
            "sha256:abcd",
            "Upper",
            "",
        ] {
            assert!(!looks_like_reference(no), "{no}");
        }
    }
}
