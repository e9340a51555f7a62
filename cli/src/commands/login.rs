//! `quilt login` and `quilt logout`: the user's credentials in docker's
//! config.json format (`$DOCKER_CONFIG/config.json` or
//! `~/.docker/config.json`), sent with the pulls this CLI asks for.

use std::io::Read;

use quilt_registry::{Credentials, DockerConfig};

use crate::args::registry::{LoginArgs, LogoutArgs};
use crate::error::CliError;
use crate::output::stream::print_stdout;

/// `https://host:port/v2/` -> `host:port`.
fn registry_host(s: &str) -> Result<String, CliError> {
    let r = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let r = r.split('/').next().unwrap_or_default();
    let ok = !r.is_empty()
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
    if ok {
        Ok(r.to_ascii_lowercase())
    } else {
        Err(CliError::engine(format!(
            "invalid registry {s:?}: expected HOST[:PORT]"
        )))
    }
}

fn config() -> Result<DockerConfig, CliError> {
    let path = DockerConfig::default_path().ok_or_else(|| {
        CliError::engine("neither DOCKER_CONFIG nor HOME is set: nowhere to keep credentials")
    })?;
    DockerConfig::load(&path).map_err(|e| CliError::engine(e.to_string()))
}

pub fn login(args: LoginArgs) -> Result<u8, CliError> {
    let registry = registry_host(&args.registry)?;
    let mut password = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut password)
        .map_err(|e| CliError::engine(format!("cannot read the password from stdin: {e}")))?;
    let password = password.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        return Err(CliError::engine("empty password on stdin"));
    }
    if args.username.is_empty() || args.username.contains(':') {
        return Err(CliError::engine(
            "the user name must be non-empty and without ':'",
        ));
    }
    let mut c = config()?;
    c.set(
        &registry,
        &Credentials {
            username: args.username,
            password,
        },
    );
    c.save().map_err(|e| CliError::engine(e.to_string()))?;
    print_stdout(&format!(
        "credentials for {registry} stored in {}\n",
        c.path().display()
    ))?;
    Ok(0)
}

pub fn logout(args: LogoutArgs) -> Result<u8, CliError> {
    let registry = registry_host(&args.registry)?;
    let mut c = config()?;
    if !c.remove(&registry) {
        return Err(CliError::engine(format!(
            "not logged in to {registry} (no credentials in {})",
            c.path().display()
        )));
    }
    c.save().map_err(|e| CliError::engine(e.to_string()))?;
    print_stdout(&format!("removed the credentials for {registry}\n"))?;
    Ok(0)
}
