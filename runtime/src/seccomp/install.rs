//! In the workload's process (or an exec'd command's), right before
//! execve: the daemon's compiled filter, decoded and installed (by
//! seccompiler). Installing needs no_new_privs, which the shim has set with
//! the capabilities.
use super::SeccompError;
use super::compile::decode;
use crate::spec::SeccompFilter;
use seccompiler::BpfProgram;

/// A filter ready to install (decoded early, so that a damaged config fails
/// the setup before anything runs).
#[derive(Debug, Default)]
pub struct Program {
    bpf: Option<BpfProgram>,
}

impl Program {
    /// Decodes the filter of a config; None: nothing to install.
    pub fn decode(filter: Option<&SeccompFilter>) -> Result<Program, SeccompError> {
        let bpf = filter.map(|f| decode(&f.bpf)).transpose()?;
        Ok(Program { bpf })
    }

    /// Whether there is nothing to install.
    pub fn is_empty(&self) -> bool {
        self.bpf.is_none()
    }

    /// Installs the filter on the calling thread. From here on the thread
    /// (and what it execs or forks) is filtered.
    pub fn install(&self) -> Result<(), SeccompError> {
        match &self.bpf {
            Some(bpf) => {
                seccompiler::apply_filter(bpf).map_err(|e| SeccompError::Install(e.to_string()))
            }
            None => Ok(()),
        }
    }
}
