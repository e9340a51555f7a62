//! How the daemon reaches registries: HTTPS everywhere, except the
//! loopback registries named with `--insecure-registry`, and how many blobs
//! are downloaded at once.
use crate::error::RegistryError;
use std::net::IpAddr;

/// Blobs downloaded at once by one pull.
pub const DEFAULT_CONCURRENT_DOWNLOADS: usize = 3;

#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `host:port` of registries reached over plain HTTP (loopback only).
    insecure: Vec<String>,
    pub concurrent_downloads: usize,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: Vec::new(),
            concurrent_downloads: DEFAULT_CONCURRENT_DOWNLOADS,
        }
    }
}

impl RegistryOptions {
    /// Allows plain HTTP to REGISTRY (`HOST[:PORT]`), which must be a
    /// loopback address (`127.0.0.0/8`, `[::1]`, `localhost`): credentials
    /// and images never cross a network in the clear.
    pub fn allow_insecure(&mut self, registry: &str) -> Result<(), RegistryError> {
        let bad = |why: &str| {
            RegistryError::Invalid(format!(
                "--insecure-registry {:?}: {why}",
                registry.chars().take(80).collect::<String>()
            ))
        };
        let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            (h, after.strip_prefix(':'))
        } else {
            match registry.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (registry, None),
            }
        };
        if let Some(p) = port
            && p.parse::<u16>().ok().filter(|p| *p > 0).is_none()
        {
            return Err(bad("expected HOST:PORT with a port from 1 to 65535"));
        }
        let loopback =
            host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(bad(
                "plain HTTP is allowed only for loopback registries (127.0.0.0/8, [::1], localhost)",
            ));
        }
        if !self.insecure.iter().any(|r| r == registry) {
            self.insecure.push(registry.to_owned());
        }
        Ok(())
    }

    pub fn is_insecure(&self, registry: &str) -> bool {
        self.insecure.iter().any(|r| r == registry)
    }

    pub(crate) fn insecure(&self) -> &[String] {
        &self.insecure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_may_be_insecure() {
        let mut o = RegistryOptions::default();
        for ok in [
            "127.0.0.1:5000",
            "127.1.2.3:80",
            "localhost:5000",
            "[::1]:5000",
            "localhost",
        ] {
            o.allow_insecure(ok).unwrap();
            assert!(o.is_insecure(ok));
        }
        for bad in [
            "10.0.0.1:5000",
            "registry.example:5000",
            "127.0.0.1:0",
            "127.0.0.1:x",
            "[::1",
            "0.0.0.0:5000",
        ] {
            let e = o.allow_insecure(bad).unwrap_err();
            assert!(matches!(e, RegistryError::Invalid(_)), "{bad}");
        }
    }
}
