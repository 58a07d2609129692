//! The engine's knobs: retries, timeouts and limits, with GitHub's values as defaults.

use serde::{Deserialize, Serialize};

use crate::ids::Millis;

/// Settings a run is created with; stored with the run so later events see the same values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// How many times an instance whose runner was lost is queued again before it fails with
    /// "runner lost" (default 2).
    pub max_runner_lost_retries: u32,
    /// How long an instance may wait for a runner before it fails (GitHub: 24 hours).
    pub queue_timeout: Millis,
    /// `timeout-minutes` of a job that does not set it (GitHub: 360).
    pub default_timeout_minutes: f64,
    /// How long a runner has to confirm a cancellation before the instance is ended anyway.
    pub cancel_grace: Millis,
    /// Most instances one matrix may expand to (GitHub: 256).
    pub max_matrix_jobs: usize,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            max_runner_lost_retries: 2,
            queue_timeout: Millis(24 * Millis::HOUR.0),
            default_timeout_minutes: 360.0,
            cancel_grace: Millis(5 * Millis::MINUTE.0),
            max_matrix_jobs: gantry_workflow::matrix::GITHUB_MAX_CONFIGURATIONS,
        }
    }
}
