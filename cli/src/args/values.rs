//! Value parsers shared by several subcommands.

/// Accepts `KEY=VALUE` or `KEY` (resolved later from the caller's
/// environment, see `resolve_env`), with a non-empty key.
pub fn parse_env(s: &str) -> Result<String, String> {
    let key = s.split_once('=').map_or(s, |(k, _)| k);
    if key.is_empty() {
        return Err("the variable name must not be empty".to_owned());
    }
    Ok(s.to_owned())
}

/// Docker's meaning of `-e KEY` (no `=`): the caller's value of KEY, or
/// nothing when KEY is not set. `KEY=VALUE` entries are kept as they are.
pub fn resolve_env(entries: &[String]) -> Vec<String> {
    resolve_env_from(entries, |k| std::env::var(k).ok())
}

fn resolve_env_from(entries: &[String], lookup: impl Fn(&str) -> Option<String>) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| {
            if e.contains('=') {
                return Some(e.clone());
            }
            lookup(e).map(|v| format!("{e}={v}"))
        })
        .collect()
}

/// The lines of an env file as docker reads them: `KEY=VALUE` or `KEY`,
/// blank lines and lines starting with `#` skipped, the key trimmed on the
/// left, the value kept exactly.
pub fn read_env_file(path: &std::path::Path) -> Result<Vec<String>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--env-file {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        parse_env(line)
            .map_err(|e| format!("--env-file {} line {}: {e}", path.display(), n + 1))?;
        out.push(line.to_owned());
    }
    Ok(out)
}

/// A memory size in MiB: a plain (possibly negative) number is MiB, a
/// number with a unit (`512m`, `1g`, `1048576k`, `2097152b`) is rounded up
/// to whole MiB.
pub fn parse_memory_mib(s: &str) -> Result<i64, String> {
    if let Ok(n) = s.trim().parse::<i64>() {
        return Ok(n);
    }
    let bytes = quilt_proto::units::parse_size(s).map_err(|e| e.to_string())?;
    i64::try_from(bytes.div_ceil(1 << 20)).map_err(|_| format!("invalid size {s:?}: too large"))
}

/// Accepts `KEY=VALUE` or `KEY` (empty value).
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    let (key, value) = s.split_once('=').unwrap_or((s, ""));
    if key.is_empty() {
        return Err("the label key must not be empty".to_owned());
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// `NAME=SOFT[:HARD]` (HARD defaults to SOFT); -1 means unlimited.
pub fn parse_ulimit(s: &str) -> Result<(String, i64, i64), String> {
    let (name, limits) = s
        .split_once('=')
        .ok_or_else(|| "expected NAME=SOFT[:HARD]".to_owned())?;
    if name.is_empty() {
        return Err("the limit name must not be empty".to_owned());
    }
    let num = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| format!("{v:?} is not a number (use -1 for unlimited)"))
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (num(s)?, num(h)?),
        None => {
            let v = num(limits)?;
            (v, v)
        }
    };
    Ok((name.to_owned(), soft, hard))
}

#[cfg(test)]
mod tests {
    use super::super::container::run_spec;
    use super::super::parse;

    #[test]
    fn env_names_alone_come_from_the_caller() {
        let (_, spec) = run_spec(&["run", "-e", "FOO", "default", "true"]);
        assert_eq!(spec.env, ["FOO"]);
        let lookup = |k: &str| (k == "SET").then(|| "from caller".to_owned());
        let entries = ["SET", "UNSET", "A=1"].map(String::from);
        assert_eq!(
            super::resolve_env_from(&entries, lookup),
            ["SET=from caller", "A=1"]
        );
        assert_eq!(super::parse_memory_mib("64"), Ok(64));
        assert_eq!(super::parse_memory_mib("-5"), Ok(-5));
        assert_eq!(super::parse_memory_mib("64m"), Ok(64));
        assert_eq!(super::parse_memory_mib("1g"), Ok(1024));
        assert_eq!(super::parse_memory_mib("1536k"), Ok(2));
        assert!(super::parse_memory_mib("64x").is_err());
        let err = parse(&["run", "-e", "=x", "default", "true"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        let err = parse(&["exec", "-e", "=x", "c1", "true"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        // An empty value is fine.
        let (_, spec) = run_spec(&["run", "-e", "FOO=", "default", "true"]);
        assert_eq!(spec.env, ["FOO="]);
    }
}
