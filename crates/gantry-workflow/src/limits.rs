//! Configurable limits that protect gantry from oversized or hostile workflow files.

/// Limits applied while loading and planning a workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest workflow file accepted, in bytes (default 1 MiB).
    pub max_file_bytes: usize,
    /// Most jobs one matrix may expand to (GitHub: 256).
    pub max_matrix_jobs: usize,
    /// Most jobs one workflow may have after matrix expansion (default 1,000).
    pub max_workflow_jobs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 1024 * 1024,
            max_matrix_jobs: 256,
            max_workflow_jobs: 1000,
        }
    }
}
