//! `-v` and `--tmpfs` options as quilt.v1 mounts.

use std::path::Path;

use quilt_proto::units::parse_size;
use quilt_proto::v1::{Mount, TmpfsMount, mount::Source};

use crate::error::CliError;

/// `-v NAME:/path[:ro|rw]` and `-v /host/path:/path[:ro|rw]` (a source
/// starting with `/` or `.` is a host path, made absolute here), then
/// `--tmpfs /path[:size=64m][,ro]`.
pub fn parse(volumes: &[String], tmpfs: &[String]) -> Result<Vec<Mount>, CliError> {
    let mut out = Vec::new();
    for v in volumes {
        let bad = |why: &str| CliError::engine(format!("invalid volume {v:?}: {why}"));
        let parts: Vec<&str> = v.split(':').collect();
        let (src, target, read_only) = match parts.as_slice() {
            [s, t] => (*s, *t, false),
            [s, t, "ro"] => (*s, *t, true),
            [s, t, "rw"] => (*s, *t, false),
            [_, _, o] => return Err(bad(&format!("unknown option {o:?} (ro or rw)"))),
            _ => return Err(bad("expected SRC:DST[:ro]")),
        };
        if src.is_empty() || target.is_empty() {
            return Err(bad("expected SRC:DST[:ro]"));
        }
        let source = if src.starts_with('/') || src.starts_with('.') {
            let abs = std::path::absolute(Path::new(src))
                .map_err(|e| bad(&format!("cannot resolve {src:?}: {e}")))?;
            Source::HostPath(
                abs.into_os_string()
                    .into_string()
                    .map_err(|_| bad("the host path is not valid UTF-8"))?,
            )
        } else {
            Source::Volume(src.to_owned())
        };
        out.push(Mount {
            target: target.to_owned(),
            read_only,
            source: Some(source),
        });
    }
    for t in tmpfs {
        let bad = |why: &str| CliError::engine(format!("invalid tmpfs {t:?}: {why}"));
        let (target, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        let mut size_bytes = 0;
        let mut read_only = false;
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o.split_once('=') {
                Some(("size", s)) => size_bytes = parse_size(s).map_err(|_| bad("bad size"))?,
                None if o == "ro" => read_only = true,
                None if o == "rw" => read_only = false,
                _ => return Err(bad(&format!("unknown option {o:?} (size=N[kmg], ro, rw)"))),
            }
        }
        out.push(Mount {
            target: target.to_owned(),
            read_only,
            source: Some(Source::Tmpfs(TmpfsMount { size_bytes })),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_binds_and_tmpfs() {
        let m = parse(
            &["data:/data:ro".into(), "/srv:/srv".into()],
            &["/t:size=64m,ro".into(), "/u".into()],
        )
        .unwrap();
        assert_eq!(m[0].source, Some(Source::Volume("data".into())));
        assert!(m[0].read_only);
        assert_eq!(m[1].source, Some(Source::HostPath("/srv".into())));
        assert!(!m[1].read_only);
        assert_eq!(
            m[2].source,
            Some(Source::Tmpfs(TmpfsMount {
                size_bytes: 64 << 20
            }))
        );
        assert!(m[2].read_only);
        assert_eq!(
            m[3].source,
            Some(Source::Tmpfs(TmpfsMount { size_bytes: 0 }))
        );
        assert!(parse(&["a".into()], &[]).is_err());
        assert!(parse(&["a:/b:xx".into()], &[]).is_err());
        assert!(parse(&[], &["/t:size=lots".into()]).is_err());
        // The size grammar is quilt_proto::units::parse_size's.
        let m = parse(&[], &["/a:size=1g".into(), "/b:size=10MiB,ro".into()]).unwrap();
        assert_eq!(
            m[0].source,
            Some(Source::Tmpfs(TmpfsMount {
                size_bytes: 1 << 30
            }))
        );
        assert_eq!(
            m[1].source,
            Some(Source::Tmpfs(TmpfsMount {
                size_bytes: 10 << 20
            }))
        );
        assert!(m[1].read_only);
    }
}
