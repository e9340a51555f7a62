//! `quilt cp`.

use clap::Args;

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Keep uid/gid of the copied files (copy out only: what is copied in
    /// belongs to the container's root, as without -a in docker).
    #[arg(short = 'a', long)]
    pub archive: bool,

    /// Follow a symbolic link given as SRC (a container's SRC is always
    /// followed).
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,

    /// A host path, ID:PATH in the container, or - for a tar stream on stdin.
    #[arg(value_name = "SRC", allow_hyphen_values = true)]
    pub src: String,
    /// ID:PATH in the container, a host path, or - for a tar stream on stdout.
    #[arg(value_name = "DST", allow_hyphen_values = true)]
    pub dst: String,
}
