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
    /// OCI image layout (directory or tar); prints the image id.
    Import {
        /// The file or directory (on the daemon's host).
        #[arg(value_name = "FILE|DIR")]
        path: PathBuf,
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
        /// A host program to include: a name looked up in PATH or an
        /// absolute path (repeatable).
        #[arg(long = "bin", value_name = "PROGRAM", required = true)]
        binaries: Vec<String>,
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
}
