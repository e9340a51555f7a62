//! Platforms (`os/architecture[/variant]`) and choosing one manifest of an
//! index or manifest list: the host's by default, `--platform` otherwise.
use crate::error::RegistryError;
use serde::{Deserialize, Serialize};

/// A platform in the spelling images use (GOOS/GOARCH).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The host's: linux and its architecture.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "riscv64" => "riscv64",
            "s390x" => "s390x",
            a => a,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// Parses `os/arch[/variant]` or `arch` (on linux).
    pub fn parse(s: &str) -> Result<Platform, RegistryError> {
        let bad = || {
            RegistryError::Invalid(format!(
                "invalid platform {:?}: expected OS/ARCH[/VARIANT], e.g. linux/arm64/v8",
                s.chars().take(64).collect::<String>()
            ))
        };
        let ok = |p: &str| {
            !p.is_empty()
                && p.len() <= 32
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        let parts: Vec<&str> = s.split('/').collect();
        if !parts.iter().all(|p| ok(p)) {
            return Err(bad());
        }
        let (os, arch, variant) = match parts[..] {
            [arch] => ("linux", arch, None),
            [os, arch] => (os, arch, None),
            [os, arch, v] => (os, arch, Some(v)),
            _ => return Err(bad()),
        };
        Ok(Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(str::to_owned),
        })
    }

    /// Whether an index entry for CANDIDATE serves this platform: same OS
    /// and architecture; a variant asked for must match (arm64's "v8" is
    /// its default).
    pub fn matches(&self, candidate: &Platform) -> bool {
        let norm = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", Some("v8")) => None,
            (_, v) => v.map(str::to_owned),
        };
        self.os == candidate.os
            && self.architecture == candidate.architecture
            && (self.variant.is_none() || norm(self) == norm(candidate))
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert_eq!(Platform::parse("arm64").unwrap().to_string(), "linux/arm64");
        let plain = Platform::parse("linux/arm64").unwrap();
        assert!(p.matches(&plain) && plain.matches(&p));
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(!v7.matches(&Platform::parse("linux/arm/v6").unwrap()));
        assert!(Platform::parse("linux/arm").unwrap().matches(&v7));
        assert!(!plain.matches(&Platform::parse("linux/amd64").unwrap()));
        for bad in ["", "linux/", "a/b/c/d", "Linux/amd64", "linux/amd 64"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Platform::host().os, "linux");
    }
}
