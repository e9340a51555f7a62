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

/// `--network`: a mode, a network's name, or `container:ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkArg {
    /// Private network namespace with loopback only.
    None,
    /// Share the host's network namespace.
    Host,
    /// A bridge network (`bridge`: the default one).
    Bridge(String),
    /// Another running container's namespace.
    Container(String),
}

pub fn parse_network(s: &str) -> Result<NetworkArg, String> {
    Ok(match s {
        "none" => NetworkArg::None,
        "host" => NetworkArg::Host,
        "" => return Err("the network mode is empty".into()),
        _ => match s.strip_prefix("container:") {
            Some("") => return Err("container: needs a container id or name".into()),
            Some(id) => NetworkArg::Container(id.to_owned()),
            None => NetworkArg::Bridge(s.to_owned()),
        },
    })
}

/// `-p`: host address (empty: the daemon's default, 127.0.0.1), host port
/// (0: any free one), container port, protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub host_ip: String,
    pub host_port: u32,
    pub container_port: u32,
    pub protocol: String,
}

fn port_number(s: &str, zero: bool) -> Result<u32, String> {
    match s.parse::<u16>() {
        Ok(n) if n > 0 || zero => Ok(n.into()),
        _ => Err(format!("invalid port {s:?}: 1 to 65535")),
    }
}

pub fn parse_port(s: &str) -> Result<PortSpec, String> {
    let (rest, protocol) = match s.rsplit_once('/') {
        Some((r, p)) if p == "tcp" || p == "udp" => (r, p.to_owned()),
        Some((_, p)) => return Err(format!("invalid protocol {p:?}: tcp or udp")),
        None => (s, "tcp".to_owned()),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (host_ip, host, ctr) = match parts.as_slice() {
        [ctr] => ("", "0", *ctr),
        [host, ctr] => ("", *host, *ctr),
        [ip, host, ctr] => (*ip, *host, *ctr),
        _ => {
            return Err(format!(
                "invalid published port {s:?}: [IP:]HOSTPORT:CTRPORT[/PROTO]"
            ));
        }
    };
    if !host_ip.is_empty() && host_ip.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(format!("invalid host address {host_ip:?}: an IPv4 address"));
    }
    Ok(PortSpec {
        host_ip: host_ip.to_owned(),
        host_port: if host.is_empty() {
            0
        } else {
            port_number(host, true)?
        },
        container_port: port_number(ctr, false)?,
        protocol,
    })
}

pub fn parse_add_host(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((n, ip)) if !n.is_empty() && ip.parse::<std::net::Ipv4Addr>().is_ok() => {
            Ok((n.to_owned(), ip.to_owned()))
        }
        _ => Err(format!("invalid --add-host {s:?}: NAME:IPV4")),
    }
}

#[cfg(test)]
mod network_tests {
    use super::*;

    #[test]
    fn networks_and_ports() {
        assert_eq!(parse_network("none"), Ok(NetworkArg::None));
        assert_eq!(
            parse_network("bridge"),
            Ok(NetworkArg::Bridge("bridge".into()))
        );
        assert_eq!(
            parse_network("container:web"),
            Ok(NetworkArg::Container("web".into()))
        );
        assert!(parse_network("container:").is_err());
        let p = parse_port("8080:80").unwrap();
        assert_eq!(
            (
                p.host_ip.as_str(),
                p.host_port,
                p.container_port,
                p.protocol.as_str()
            ),
            ("", 8080, 80, "tcp")
        );
        let p = parse_port("0.0.0.0:53:5353/udp").unwrap();
        assert_eq!(
            (
                p.host_ip.as_str(),
                p.host_port,
                p.container_port,
                p.protocol.as_str()
            ),
            ("0.0.0.0", 53, 5353, "udp")
        );
        assert_eq!(parse_port("80").unwrap().host_port, 0);
        for bad in [
            "", "0", "70000", "a:80", "1:2:3:4", "80/sctp", "x.y:1:2", "8080:0",
        ] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
        assert!(parse_add_host("db:10.0.0.3").is_ok());
        assert!(parse_add_host("db").is_err());
        assert!(parse_add_host(":10.0.0.3").is_err());
    }
}
