//! Concurrency groups across runs: GitHub's rule that a group has at most one running and one
//! pending holder, a newer request replacing the pending one, and `cancel-in-progress`
//! cancelling the running one.
//!
//! Groups span runs (GitHub scopes them to a repository), so this bookkeeping lives outside any
//! one [`crate::RunState`]: the server keeps one [`ConcurrencyGroups`] per repository, hands it
//! the [`Effect::AcquireConcurrency`] and [`Effect::ReleaseConcurrency`] effects of every run,
//! and delivers the [`Delivery`] events it answers with to the runs they name.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::effect::Effect;
use crate::event::Event;
use crate::ids::{JobKey, RunId};

/// Who holds or waits for a group: a whole run (workflow-level `concurrency`) or one instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Holder {
    /// The run.
    pub run: RunId,
    /// The instance, or `None` for the run itself.
    pub job: Option<JobKey>,
}

/// One group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The name as first written (names compare case-insensitively).
    pub name: String,
    /// The holder running now.
    pub running: Option<Holder>,
    /// The holder waiting for it.
    pub pending: Option<Holder>,
}

/// An event for a run, produced by the group bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The run to give it to.
    pub run: RunId,
    /// The event.
    pub event: Event,
}

/// Every concurrency group of one scope (a repository), by case-folded name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConcurrencyGroups {
    groups: IndexMap<String, Group>,
}

impl ConcurrencyGroups {
    /// No groups.
    pub fn new() -> ConcurrencyGroups {
        ConcurrencyGroups::default()
    }

    /// A group by name (any case), while it has a holder.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.get(&name.to_lowercase())
    }

    /// Carries out a run's concurrency effect; other effects are ignored.
    pub fn handle(&mut self, run: RunId, effect: &Effect) -> Vec<Delivery> {
        match effect {
            Effect::AcquireConcurrency {
                group,
                job,
                cancel_in_progress,
            } => {
                let holder = Holder {
                    run,
                    job: job.clone(),
                };
                self.acquire(group, holder, *cancel_in_progress)
            }
            Effect::ReleaseConcurrency { group, job } => {
                let holder = Holder {
                    run,
                    job: job.clone(),
                };
                self.release(group, &holder)
            }
            _ => Vec::new(),
        }
    }

    /// `holder` asks for `name`: granted when free; otherwise it becomes the pending holder,
    /// superseding the previous one, and with `cancel_in_progress` the running holder is asked
    /// to cancel.
    pub fn acquire(
        &mut self,
        name: &str,
        holder: Holder,
        cancel_in_progress: bool,
    ) -> Vec<Delivery> {
        let group = self
            .groups
            .entry(name.to_lowercase())
            .or_insert_with(|| Group {
                name: name.to_owned(),
                running: None,
                pending: None,
            });
        let granted = |holder: Holder| Delivery {
            run: holder.run,
            event: Event::ConcurrencyGranted { job: holder.job },
        };
        let Some(running) = group.running.clone() else {
            group.running = Some(holder.clone());
            return vec![granted(holder)];
        };
        if running == holder {
            return vec![granted(holder)];
        }
        let mut deliveries = Vec::new();
        if let Some(previous) = group.pending.replace(holder.clone())
            && previous != holder
        {
            deliveries.push(Delivery {
                run: previous.run,
                event: Event::Superseded {
                    job: previous.job,
                    by: holder.run,
                },
            });
        }
        deliveries.push(Delivery {
            run: holder.run,
            event: Event::ConcurrencyWaiting {
                job: holder.job,
                held_by: running.run,
            },
        });
        if cancel_in_progress {
            deliveries.push(Delivery {
                run: running.run,
                event: Event::CancelRequested { job: running.job },
            });
        }
        deliveries
    }

    /// `holder` gives `name` back (or withdraws its pending request); the pending holder, if
    /// any, gets the group.
    pub fn release(&mut self, name: &str, holder: &Holder) -> Vec<Delivery> {
        let key = name.to_lowercase();
        let Some(group) = self.groups.get_mut(&key) else {
            return Vec::new();
        };
        let mut deliveries = Vec::new();
        if group.running.as_ref() == Some(holder) {
            group.running = group.pending.take();
            if let Some(next) = &group.running {
                deliveries.push(Delivery {
                    run: next.run,
                    event: Event::ConcurrencyGranted {
                        job: next.job.clone(),
                    },
                });
            }
        } else if group.pending.as_ref() == Some(holder) {
            group.pending = None;
        }
        if group.running.is_none() && group.pending.is_none() {
            self.groups.shift_remove(&key);
        }
        deliveries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: u64) -> Holder {
        Holder {
            run: RunId(id),
            job: None,
        }
    }

    #[test]
    fn one_running_one_pending_newest_wins() {
        let mut groups = ConcurrencyGroups::new();
        let granted = groups.acquire("Deploy", run(1), false);
        assert_eq!(
            granted,
            [Delivery {
                run: RunId(1),
                event: Event::ConcurrencyGranted { job: None }
            }]
        );
        let waiting = groups.acquire("deploy", run(2), false);
        assert_eq!(
            waiting[0].event,
            Event::ConcurrencyWaiting {
                job: None,
                held_by: RunId(1)
            }
        );
        let superseding = groups.acquire("DEPLOY", run(3), false);
        assert_eq!(
            superseding[0],
            Delivery {
                run: RunId(2),
                event: Event::Superseded {
                    job: None,
                    by: RunId(3)
                }
            }
        );
        let promoted = groups.release("deploy", &run(1));
        assert_eq!(
            promoted,
            [Delivery {
                run: RunId(3),
                event: Event::ConcurrencyGranted { job: None }
            }]
        );
        assert!(groups.release("deploy", &run(3)).is_empty());
        assert!(groups.group("deploy").is_none());
    }

    #[test]
    fn cancel_in_progress_cancels_the_running_holder() {
        let mut groups = ConcurrencyGroups::new();
        groups.acquire("g", run(1), true);
        let deliveries = groups.acquire("g", run(2), true);
        assert_eq!(
            deliveries.last(),
            Some(&Delivery {
                run: RunId(1),
                event: Event::CancelRequested { job: None }
            })
        );
        // A withdrawn pending request leaves the running holder alone.
        assert!(groups.release("g", &run(2)).is_empty());
        assert_eq!(
            groups.group("g").and_then(|g| g.running.clone()),
            Some(run(1))
        );
    }
}
