//! Names given through the API: containers, hostnames, images, volumes.
use crate::error::{EngineError, Result};
use quilt_runtime::image::DEFAULT_IMAGE;

/// Longest container name and hostname (the name doubles as the hostname).
const MAX_NAME: usize = 63;

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidArgument(msg.into())
}

/// Container names: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 63 characters (the
/// name doubles as the hostname).
pub fn container_name(name: &str) -> Result<()> {
    let ok_first = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok_first || !ok_rest || name.len() > MAX_NAME {
        return Err(invalid(format!(
            "invalid container name {}: use letters, digits, '_', '.', '-' (starting with a letter or digit), at most {MAX_NAME} characters",
            super::echo(name)
        )));
    }
    Ok(())
}

/// A node's name in a cluster: as a container name (letters, digits,
/// '_', '.', '-'), at most 63 characters.
pub fn node_name(name: &str) -> Result<()> {
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        return Err(invalid(format!(
            "invalid node name {}: use letters, digits, '_', '.', '-' (starting with a letter or \
             digit), at most 63 characters",
            super::echo(name)
        )));
    }
    Ok(())
}

pub fn hostname(h: &str) -> Result<()> {
    let ok = !h.is_empty()
        && h.len() <= MAX_NAME
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !ok {
        return Err(invalid(format!("invalid hostname {}", super::echo(h))));
    }
    Ok(())
}

/// Longest image name.
const MAX_IMAGE_NAME: usize = 128;

/// Image names: [A-Za-z0-9][A-Za-z0-9._:/-]*, at most 128 characters, not
/// "default" and not an id.
pub fn image_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_IMAGE_NAME
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '-' | '@'))
        && name.matches('@').count() <= 1
        && name != DEFAULT_IMAGE
        && !name.starts_with("sha256:");
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidArgument(format!(
            "invalid image name {}: use letters, digits and . _ : / - @ (starting with a \
             letter or digit, at most {MAX_IMAGE_NAME} characters; not \"default\" or \"sha256:...\")",
            super::echo(name)
        )))
    }
}

/// Volume names: `[A-Za-z0-9][A-Za-z0-9_-]*`, at most 64 characters.
pub fn volume_name(name: &str) -> Result<()> {
    let ok = name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if !ok {
        return Err(invalid(format!(
            "invalid volume name {}: use letters, digits, '_' and '-' (starting with a letter or digit), at most 64 characters",
            super::echo(name)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(container_name("web-1").is_ok());
        assert!(container_name("a.b_c").is_ok());
        for bad in ["", "-x", "a/b", "..", "a b", &"x".repeat(64)] {
            assert!(container_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn volume_names() {
        for ok in ["a", "data", "A-1_b", &"x".repeat(64)] {
            assert!(volume_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".x",
            "a/b",
            "a.b",
            "-a",
            "_a",
            &"x".repeat(65),
        ] {
            assert!(volume_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn image_names() {
        for ok in ["py", "python3.11", "library/alpine:3.19", "a_b-c"] {
            image_name(ok).unwrap();
        }
        for bad in [
            "",
            "default",
            "sha256:abc",
            "/abs",
            "-x",
            "a b",
            &"x".repeat(129),
        ] {
            assert!(image_name(bad).is_err(), "{bad:?}");
        }
    }
}
