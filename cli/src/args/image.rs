//! `quilt image ...`.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImageFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import a rootfs tarball or directory, a `docker save` archive or an
    /// OCI image layout (directory or tar); prints the image id. PATH:TAG
    /// (or --tag) chooses one image of a multi-image layout or archive.
    Import {
        /// The file or directory (on the daemon's host), optionally :TAG.
        #[arg(value_name = "FILE|DIR[:TAG]")]
        path: PathBuf,
        /// Which image of a multi-image layout or archive: its tag, ref
        /// name or repo:tag.
        #[arg(long)]
        tag: Option<String>,
        /// Name to give the image.
        #[arg(long)]
        name: Option<String>,
    },
    /// Build an image from host programs and the shared libraries they need.
    #[command(override_usage = "quilt image build --from-host NAME --bin PROGRAM...")]
    Build {
        /// Name of the new image.
        #[arg(long = "from-host", value_name = "NAME", required = true)]
        name: String,
        /// A host program to include: a name looked up in this shell's
        /// PATH or a path (repeatable); linked as /usr/local/bin/NAME.
        #[arg(long = "bin", value_name = "PROGRAM", required = true)]
        binaries: Vec<String>,
        /// Include the host's CA certificate bundle (/etc/ssl/certs).
        #[arg(long = "ca-certs")]
        ca_certs: bool,
    },
    /// List images.
    Ls {
        #[arg(long, value_enum, default_value = "table")]
        format: ImageFormat,
    },
    /// Print images as pretty JSON.
    Inspect {
        #[arg(value_name = "NAME", required = true)]
        names: Vec<String>,
    },
    /// Remove images (refused while a container uses one); with several
    /// names, only the name given goes.
    Rm {
        #[arg(value_name = "NAME", required = true)]
        names: Vec<String>,
    },
    /// Remove the images that have no name and no container, and every
    /// layer no image uses.
    Prune,
}
