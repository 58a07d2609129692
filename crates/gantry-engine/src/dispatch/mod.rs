//! The dispatcher's decisions: which waiting job a runner gets now, fairly, and why a job is
//! still waiting. Pure like the rest of the engine: no IO, no clock (time is a [`Millis`]
//! argument), no randomness (the simulations take a seed).
//!
//! The server keeps one [`FairQueue`] in memory, rebuilt from the store on start
//! ([`FairQueue::rebuild`]): it pushes every queued job attempt ([`FairQueue::push`]), asks
//! [`FairQueue::pick`] when a runner polls, writes the claim, and gives the running slot back on
//! every way out of running ([`FairQueue::finish`], [`FairQueue::release`],
//! [`FairQueue::remove`]), so a zombie job never holds quota.
//!
//! # Matching
//! A job fits a runner when its `runs-on` labels are a subset of the runner's (compared
//! case-insensitively, as GitHub does), its runner group equals the runner's (hosted runners have
//! none), and the runner's scope allows it: hosted runners serve every organization within its
//! hosted limit; a self-hosted runner serves only its organization, optionally only some
//! repositories, and does not count toward the hosted limit. Jobs are kept in one pool per
//! distinct (label set, group), and `pick` looks only at the pools a runner fits (cached per
//! distinct runner label set), so a waiting `gpu` job never blocks a `linux` runner: there is no
//! head-of-line blocking between label pools.
//!
//! # Order: hierarchical weighted fair share
//! 1. **Front.** Infrastructure retries (`front`: the runner was lost) go first within their
//!    organization, oldest first.
//! 2. **Organizations** (hosted runners only; a self-hosted runner has one organization). The
//!    organization with demand in the runner's pools and below its hosted limit that minimizes
//!    `(running on hosted + 1) / weight` gets the runner. This is least-attained service measured
//!    in running jobs, and it is exactly the D'Hondt (Jefferson) highest-averages rule: with
//!    enough demand every organization's share of the hosted runners converges to its weight
//!    over the weights of organizations with demand, and a newcomer with nothing running comes
//!    before anyone already running. Equal quotients go to the organization served least
//!    recently (a pick counter acts as virtual time; a newcomer joins at the back), so equals
//!    take turns in round robin.
//!    Running counts rather than virtual finishing times (WFQ/stride) are used because job
//!    durations are unknown when a job starts, and because the goal is a share of *running*
//!    jobs: counting them needs no clock, rebuilds trivially from the store after a crash, and
//!    recovers immediately when a burst ends (no accumulated credit or debt).
//! 3. **Repositories** inside an organization, equal weights: fewest running jobs, then least
//!    recently served. A burst of 10,000 jobs in one repository therefore delays a quiet
//!    repository's single job by at most the picks until the organization's next turn.
//! 4. **Runs** inside a repository, the same way.
//! 5. **Jobs** inside a run: higher effective priority first, where the effective priority
//!    grows by one point per [`QueueConfig::aging_step`] of waiting (continuous aging, so low
//!    priority is never starved), then FIFO by enqueue time, then id. Because aging is linear
//!    and the same for every job, comparing two jobs' effective priorities at any instant
//!    compares `priority × step − enqueued_at`: the order never changes with time, and the
//!    sorted sets never need re-sorting.
//!
//! # Cost
//! `push`, `pick`, `finish`, `release`, `remove` and `set_priority` are O(p · log n): `p` is the
//! number of pools the runner fits (or the job's organization, repository and run wait in),
//! usually a handful, and `n` the number of jobs; no operation scans the waiting jobs.
//! [`FairQueue::reasons`] replays the organization's order and costs O(m log m) in the
//! organization's waiting jobs with the same labels.
//!
//! Module map: `model` (ids, label sets, jobs, runners, settings), `queue` (the index and the
//! operations), `why` (wait reasons), `simulate` (the fairness and throughput figures), `hash`
//! (the maps' hasher), `error`.

mod error;
mod hash;
mod model;
mod queue;
pub mod simulate;
mod why;

pub use error::DispatchError;
pub use model::{
    LabelSet, OrgRef, OrgSettings, Placement, QueueConfig, QueuedJob, QueuedJobRef, RepoRef,
    RunRef, RunnerScope, RunnerView, SelfHostedScope,
};
pub use queue::FairQueue;

#[cfg(doc)]
use crate::ids::Millis;
