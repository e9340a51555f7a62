//! `quilt cp`.

use clap::Args;

#[derive(Debug, Args)]
pub struct CpArgs {
    /// A host path, or ID:PATH in the container.
    #[arg(value_name = "SRC")]
    pub src: String,
    /// ID:DIR in the container, or a host directory.
    #[arg(value_name = "DST")]
    pub dst: String,
}
