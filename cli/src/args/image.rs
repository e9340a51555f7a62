//! `quilt image ...`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

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
    /// Give an image another name (`quilt tag`).
    Tag(TagArgs),
    /// Write images as a `docker save` archive (`quilt save`).
    Save(SaveArgs),
    /// Load the images of a `docker save` archive, an OCI layout tar or a
    /// rootfs tarball (`quilt load`).
    Load(LoadArgs),
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The image: name, id or unique id prefix.
    #[arg(value_name = "SOURCE_IMAGE")]
    pub source: String,
    /// The new name, [REGISTRY/]REPO[:TAG] (":latest" when no tag).
    #[arg(value_name = "TARGET_IMAGE")]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Images: names, ids or unique id prefixes.
    #[arg(value_name = "IMAGE", required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from this file instead of stdin.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// No progress.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author of the new image.
    #[arg(short = 'a', long = "author")]
    pub author: Option<String>,
    /// A Dockerfile instruction for the configuration (repeatable): CMD,
    /// ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER or WORKDIR.
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Commit message.
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// Freeze a running container while its files are read (default true).
    #[arg(short = 'p', long = "pause", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub pause: bool,
    /// Container id, unique id prefix or name.
    #[arg(value_name = "CONTAINER")]
    pub id: String,
    /// Name of the new image, [REGISTRY/]REPO[:TAG].
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Container id, unique id prefix or name.
    #[arg(value_name = "CONTAINER")]
    pub id: String,
}
