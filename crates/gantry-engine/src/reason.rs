//! Why a job is not running yet, in words a developer reads on the run page.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::RunId;

/// One reason a job instance is waiting or queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum WaitReason {
    /// Some of the job's `needs` have not ended.
    Needs {
        /// The job ids still running or waiting, in `needs` order.
        jobs: Vec<String>,
    },
    /// A `concurrency` group (the run's or the job's) is not ours yet.
    ConcurrencyGroup {
        /// The group name as evaluated.
        group: String,
        /// The run holding the group, once the group bookkeeping has said.
        held_by: Option<RunId>,
    },
    /// `strategy.max-parallel` siblings are already queued or running.
    MaxParallel {
        /// The limit.
        limit: usize,
    },
    /// Queued: waiting for a runner with these labels (the dispatcher adds its own reasons).
    Runner {
        /// The evaluated `runs-on` labels.
        labels: Vec<String>,
    },
    /// Dispatcher: no online runner may take the job (labels, runner group or scope).
    NoOnlineRunner {
        /// The job's normalized `runs-on` labels.
        labels: Vec<String>,
        /// The runner group the job names, if any.
        group: Option<String>,
    },
    /// Dispatcher: the organization uses all of its hosted concurrency.
    OrgQuota {
        /// Jobs of the organization on hosted runners now.
        in_use: u32,
        /// The organization's hosted limit.
        limit: u32,
    },
    /// Dispatcher: the job's place among its organization's waiting jobs with the same labels,
    /// in the order the queue would hand them out if nothing else changed (1 = next).
    QueuePosition {
        /// 1-based position.
        position: usize,
        /// How many jobs of the organization wait with the same labels.
        of: usize,
    },
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::Needs { jobs } => write!(f, "waiting on needs: {}", jobs.join(", ")),
            WaitReason::ConcurrencyGroup {
                group,
                held_by: Some(run),
            } => write!(f, "concurrency group `{group}` held by run {run}"),
            WaitReason::ConcurrencyGroup {
                group,
                held_by: None,
            } => write!(f, "waiting for concurrency group `{group}`"),
            WaitReason::MaxParallel { limit } => {
                write!(f, "max-parallel reached ({limit} at a time)")
            }
            WaitReason::Runner { labels } if labels.is_empty() => {
                f.write_str("waiting for a runner")
            }
            WaitReason::Runner { labels } => {
                write!(f, "waiting for a runner with labels: {}", labels.join(", "))
            }
            WaitReason::NoOnlineRunner { labels, group } => {
                write!(f, "no online runner with labels [{}]", labels.join(", "))?;
                match group {
                    Some(group) => write!(f, " in group `{group}`"),
                    None => Ok(()),
                }
            }
            WaitReason::OrgQuota { in_use, limit } => {
                write!(f, "org quota {in_use} of {limit} in use")
            }
            WaitReason::QueuePosition { position, of } => {
                write!(f, "position {position} of {of} in its organization's queue")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_a_sentence() {
        let needs = WaitReason::Needs {
            jobs: vec!["a".into(), "b".into()],
        };
        assert_eq!(needs.to_string(), "waiting on needs: a, b");
        let held = WaitReason::ConcurrencyGroup {
            group: "deploy".into(),
            held_by: Some(RunId(4)),
        };
        assert_eq!(held.to_string(), "concurrency group `deploy` held by run 4");
        assert_eq!(
            WaitReason::MaxParallel { limit: 2 }.to_string(),
            "max-parallel reached (2 at a time)"
        );
        let runner = WaitReason::Runner {
            labels: vec!["ubuntu-latest".into()],
        };
        assert_eq!(
            runner.to_string(),
            "waiting for a runner with labels: ubuntu-latest"
        );
        let none = WaitReason::NoOnlineRunner {
            labels: vec!["gpu".into(), "linux".into()],
            group: Some("big".into()),
        };
        assert_eq!(
            none.to_string(),
            "no online runner with labels [gpu, linux] in group `big`"
        );
        let quota = WaitReason::OrgQuota {
            in_use: 3,
            limit: 3,
        };
        assert_eq!(quota.to_string(), "org quota 3 of 3 in use");
        let position = WaitReason::QueuePosition { position: 4, of: 9 };
        assert_eq!(
            position.to_string(),
            "position 4 of 9 in its organization's queue"
        );
    }
}
