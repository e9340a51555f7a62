//! In the workload's process (or an exec'd command's), right before
//! execve: the daemon's compiled filters, decoded and installed. Installing
//! needs no_new_privs, which the shim has set with the capabilities.
use super::SeccompError;
use super::compile::decode;
use crate::spec::SeccompFilters;
use seccompiler::BpfProgram;

/// Filters ready to install (decoded early, so that a damaged config fails
/// the setup before anything runs).
#[derive(Debug, Default)]
pub struct Program {
    filters: Vec<BpfProgram>,
}

impl Program {
    /// Decodes the filters of a config; None: nothing to install.
    pub fn decode(filters: Option<&SeccompFilters>) -> Result<Program, SeccompError> {
        let filters = filters
            .map(|f| f.filters.iter().map(|h| decode(h)).collect())
            .transpose()?
            .unwrap_or_default();
        Ok(Program { filters })
    }

    /// Whether there is nothing to install.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Installs every filter on the calling thread, in order. From here on
    /// the thread (and what it execs or forks) is filtered.
    pub fn install(&self) -> Result<(), SeccompError> {
        for f in &self.filters {
            seccompiler::apply_filter(f).map_err(|e| SeccompError::Install(e.to_string()))?;
        }
        Ok(())
    }
}
