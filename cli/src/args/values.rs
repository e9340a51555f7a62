//! Value parsers shared by several subcommands.

/// Accepts `KEY=VALUE` with a non-empty key.
pub fn parse_env(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((key, _)) if !key.is_empty() => Ok(s.to_owned()),
        Some(_) => Err("the variable name must not be empty".to_owned()),
        None => Err("expected KEY=VALUE".to_owned()),
    }
}

/// Accepts `KEY=VALUE` or `KEY` (empty value).
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    let (key, value) = s.split_once('=').unwrap_or((s, ""));
    if key.is_empty() {
        return Err("the label key must not be empty".to_owned());
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// `--restart`: `no`, `on-failure[:N]`, `always` or `unless-stopped`, as
/// (name, maximum restarts; 0 = no limit).
pub fn parse_restart(s: &str) -> Result<(String, u32), String> {
    let bad = || "expected no, on-failure[:N], always or unless-stopped".to_owned();
    match s {
        "no" | "on-failure" | "always" | "unless-stopped" => Ok((s.to_owned(), 0)),
        _ => match s.strip_prefix("on-failure:") {
            Some(n) => Ok((
                "on-failure".to_owned(),
                n.parse()
                    .map_err(|_| format!("invalid maximum restart count {n:?}"))?,
            )),
            None => Err(bad()),
        },
    }
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
    fn env_without_equals_is_a_usage_error() {
        let err = parse(&["run", "-e", "FOO", "default", "true"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        let err = parse(&["exec", "-e", "=x", "c1", "true"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        // An empty value is fine.
        let (_, spec) = run_spec(&["run", "-e", "FOO=", "default", "true"]);
        assert_eq!(spec.env, ["FOO="]);
    }
}
