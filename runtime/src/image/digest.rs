//! Content digests of OCI blobs: "sha256:<64 hex>" or "sha512:<128 hex>",
//! lower-case. Anything else is refused, never read or trusted.
use sha2::{Digest as _, Sha256, Sha512};

/// A parsed, well-formed digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobDigest {
    pub algorithm: Algorithm,
    /// Lower-case hex of the expected length.
    pub hex: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

impl BlobDigest {
    /// Parses "sha256:<hex>" / "sha512:<hex>"; None for any other algorithm
    /// or a malformed value.
    pub fn parse(s: &str) -> Option<BlobDigest> {
        let (alg, hex) = s.split_once(':')?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return None,
        };
        let ok = hex.len() == algorithm.hex_len()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| BlobDigest {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// Where an OCI layout keeps the blob: "blobs/<alg>/<hex>".
    pub fn layout_path(&self) -> String {
        format!("blobs/{}/{}", self.algorithm.name(), self.hex)
    }

    /// Whether `bytes` have this digest.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        let mut h = Hasher::new(self.algorithm);
        h.update(bytes);
        h.finish_hex() == self.hex
    }
}

impl std::fmt::Display for BlobDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

/// An incremental hash of either algorithm.
#[derive(Debug, Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(a: Algorithm) -> Hasher {
        match a {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish_hex(self) -> String {
        match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_algorithms_and_exact_hex() {
        let h256 = "a".repeat(64);
        let h512 = "b".repeat(128);
        assert!(BlobDigest::parse(&format!("sha256:{h256}")).is_some());
        assert!(BlobDigest::parse(&format!("sha512:{h512}")).is_some());
        for bad in [
            format!("md5:{}", "a".repeat(32)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha512:{h256}"),
            format!("sha256:../{}", "a".repeat(61)),
            "sha256".to_owned(),
            String::new(),
        ] {
            assert!(BlobDigest::parse(&bad).is_none(), "{bad}");
        }
        let d = BlobDigest::parse(&format!("sha256:{h256}")).unwrap();
        assert_eq!(d.layout_path(), format!("blobs/sha256/{h256}"));
    }

    #[test]
    fn both_algorithms_verify() {
        for a in [Algorithm::Sha256, Algorithm::Sha512] {
            let mut h = Hasher::new(a);
            h.update(b"blob");
            let d = BlobDigest::parse(&format!("{}:{}", a.name(), h.finish_hex())).unwrap();
            assert!(d.matches(b"blob"));
            assert!(!d.matches(b"blob!"));
        }
    }
}
