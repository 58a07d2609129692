//! Statuses and conclusions as stored: GitHub's spellings in `TEXT` columns.
//!
//! These mirror the engine's enums without depending on them, so the stored format changes only
//! with a migration. An unknown spelling read back is [`StoreError::Corrupt`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;

macro_rules! stored_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stored spelling (GitHub's).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Reads a stored spelling back.
            pub(crate) fn parse(text: &str) -> Result<$name, StoreError> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(StoreError::corrupt(format!(
                        "unknown {} `{other}`",
                        stringify!($name)
                    ))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_enum!(
    /// Where a run is in its life.
    RunStatus {
        /// Created (or re-run); no job has started yet.
        Queued => "queued",
        /// At least one job has started.
        InProgress => "in_progress",
        /// Every job has ended; the run has a conclusion.
        Completed => "completed",
    }
);

stored_enum!(
    /// Where a job instance is in its life.
    JobStatus {
        /// Not ready: waiting on needs, a concurrency group or a `max-parallel` slot.
        Waiting => "waiting",
        /// Ready and waiting for a runner; only queued jobs can be claimed.
        Queued => "queued",
        /// A runner has claimed it.
        InProgress => "in_progress",
        /// Ended; the job has a conclusion.
        Completed => "completed",
    }
);

stored_enum!(
    /// Where a step of a job attempt is.
    StepStatus {
        /// Not started.
        Queued => "queued",
        /// Running.
        InProgress => "in_progress",
        /// Ended; the step has a conclusion.
        Completed => "completed",
    }
);

stored_enum!(
    /// How a run, job, attempt or step ended.
    Conclusion {
        /// It ran and succeeded.
        Success => "success",
        /// It ran and failed, or could not be run.
        Failure => "failure",
        /// It was cancelled.
        Cancelled => "cancelled",
        /// It did not run.
        Skipped => "skipped",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::parse(status.as_str()).ok(), Some(*status));
        }
        for conclusion in Conclusion::ALL {
            assert_eq!(
                Conclusion::parse(conclusion.as_str()).ok(),
                Some(*conclusion)
            );
        }
        assert_eq!(
            serde_json::to_string(&RunStatus::InProgress)
                .ok()
                .as_deref(),
            Some("\"in_progress\"")
        );
    }

    #[test]
    fn unknown_spelling_is_corrupt() {
        assert!(matches!(
            RunStatus::parse("running"),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
