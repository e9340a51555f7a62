//! `quilt pull`, `quilt login`, `quilt logout`.

use clap::Args;

#[derive(Debug, Args)]
pub struct PullArgs {
    /// [REGISTRY/]NAME[:TAG][@DIGEST]; "python:3.12" is docker.io/library/python:3.12.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// OS/ARCH[/VARIANT] to pick from a multi-platform image (default: the
    /// daemon host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Print only the image id (no progress).
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry, e.g. registry.example:5000 (docker.io for Docker Hub).
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
    #[arg(short, long, value_name = "USER", required = true)]
    pub username: String,
    /// Read the password from standard input.
    #[arg(long, required = true)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
}
