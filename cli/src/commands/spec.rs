//! Turning `run`/`create` options into a CreateContainerRequest.

use std::path::Path;

use quilt_proto::v1::{CreateContainerRequest, NetworkMode, Resources};

use crate::args::container::{ContainerSpec, NetworkArg};
use crate::error::CliError;

/// The image reference sent to the server: "default", absolute paths and
/// stored image names or ids as given; relative paths made absolute against
/// the current directory (symlinks resolved when the path exists; the server
/// reports missing ones). A relative reference is a path when it exists,
/// starts with "." or names a tarball; otherwise it is an image name.
pub fn resolve_image(image: &str) -> Result<String, CliError> {
    if image == "default" || Path::new(image).is_absolute() {
        return Ok(image.to_owned());
    }
    let path = Path::new(image);
    let path_like = image.starts_with('.')
        || [".tar", ".tar.gz", ".tgz"]
            .iter()
            .any(|e| image.ends_with(e))
        || path.symlink_metadata().is_ok();
    if !path_like {
        return Ok(image.to_owned());
    }
    let resolved = match path.canonicalize() {
        Ok(p) => p,
        Err(_) => std::path::absolute(path)
            .map_err(|e| CliError::engine(format!("cannot resolve image path {image:?}: {e}")))?,
    };
    resolved
        .into_os_string()
        .into_string()
        .map_err(|p| CliError::engine(format!("image path is not valid UTF-8: {p:?}")))
}

/// Builds the request. `no_start` stores the container without starting it.
pub fn create_request(
    spec: &ContainerSpec,
    no_start: bool,
) -> Result<CreateContainerRequest, CliError> {
    let resources =
        (spec.memory.is_some() || spec.cpus.is_some() || spec.pids.is_some()).then(|| Resources {
            memory_mb: spec.memory.unwrap_or(0),
            cpus: spec.cpus.unwrap_or(0.0),
            pids_limit: spec.pids.unwrap_or(0),
        });
    let network = match spec.network {
        None => NetworkMode::Unspecified,
        Some(NetworkArg::None) => NetworkMode::None,
        Some(NetworkArg::Host) => NetworkMode::Host,
    };
    Ok(CreateContainerRequest {
        image: resolve_image(spec.image())?,
        command: spec.command().to_vec(),
        name: spec.name.clone().unwrap_or_default(),
        env: spec.env.clone(),
        working_dir: spec.workdir.clone().unwrap_or_default(),
        hostname: spec.hostname.clone().unwrap_or_default(),
        resources,
        network: network as i32,
        auto_remove: spec.rm,
        labels: spec.labels.iter().cloned().collect(),
        no_start,
        init: spec.init,
        mounts: super::mounts::parse(&spec.volumes, &spec.tmpfs)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};

    fn spec(args: &[&str]) -> ContainerSpec {
        let cli = Cli::parse_args(["quilt", "create"].iter().chain(args)).unwrap();
        match cli.command {
            Command::Create(c) => c.spec,
            _ => unreachable!(),
        }
    }

    #[test]
    fn defaults_leave_fields_empty() {
        let req = create_request(&spec(&["default", "true"]), false).unwrap();
        assert_eq!(req.image, "default");
        assert_eq!(req.command, ["true"]);
        assert_eq!(req.resources, None);
        assert_eq!(req.network, NetworkMode::Unspecified as i32);
        assert!(req.name.is_empty() && req.working_dir.is_empty() && req.hostname.is_empty());
        assert!(!req.auto_remove && !req.no_start);
    }

    #[test]
    fn options_are_carried_over() {
        let req = create_request(
            &spec(&[
                "--name",
                "n",
                "-e",
                "A=1",
                "-w",
                "/w",
                "--memory",
                "-3",
                "--network",
                "none",
                "--rm",
                "-l",
                "k=v",
                "/abs/rootfs.tar",
                "sh",
                "-c",
                "a b",
            ]),
            true,
        )
        .unwrap();
        assert_eq!(req.image, "/abs/rootfs.tar");
        assert_eq!(req.command, ["sh", "-c", "a b"]);
        assert_eq!(req.name, "n");
        assert_eq!(req.env, ["A=1"]);
        assert_eq!(req.working_dir, "/w");
        assert_eq!(
            req.resources,
            Some(Resources {
                memory_mb: -3,
                cpus: 0.0,
                pids_limit: 0
            })
        );
        assert_eq!(req.network, NetworkMode::None as i32);
        assert!(req.auto_remove && req.no_start);
        assert_eq!(req.labels.get("k").map(String::as_str), Some("v"));
    }

    #[test]
    fn relative_images_become_absolute() {
        let cwd = std::env::current_dir().unwrap();
        // An existing path is canonicalized.
        let resolved = resolve_image("src").unwrap();
        assert_eq!(
            Path::new(&resolved),
            cwd.join("src").canonicalize().unwrap()
        );
        // A missing one is still made absolute, for the server to reject.
        let resolved = resolve_image("no/such/rootfs.tar").unwrap();
        assert!(Path::new(&resolved).is_absolute());
        assert!(resolved.ends_with("no/such/rootfs.tar"));
        // Anything else is an image name, sent as is.
        assert_eq!(resolve_image("python").unwrap(), "python");
        assert_eq!(
            resolve_image("library/alpine:3").unwrap(),
            "library/alpine:3"
        );
    }
}
