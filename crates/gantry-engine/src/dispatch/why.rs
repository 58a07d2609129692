//! "Why is it waiting?": the dispatcher's reasons for one queued job, computed on demand.

use std::collections::BTreeSet;
use std::iter::Peekable;

use super::error::DispatchError;
use super::hash::FastMap;
use super::model::{Placement, QueuedJobRef, RepoRef, RunRef, RunnerView};
use super::queue::{FairQueue, JobKey, RunKey, find};
use crate::reason::WaitReason;

impl FairQueue {
    /// Why `job` still waits, given the runners online now: no online runner may take it, its
    /// organization uses all of its hosted limit, and its position in its organization's queue.
    /// A running job has no reasons. Costs O(n log n) in the organization's jobs with the same
    /// labels; meant for the on-demand `why` view, not for every poll.
    pub fn reasons(
        &self,
        job: QueuedJobRef,
        runners_online: &[RunnerView],
    ) -> Result<Vec<WaitReason>, DispatchError> {
        let record = self.jobs.get(&job).ok_or(DispatchError::UnknownJob(job))?;
        if record.running.is_some() {
            return Ok(Vec::new());
        }
        let mut reasons = Vec::new();
        let capable: Vec<&RunnerView> = runners_online
            .iter()
            .filter(|runner| runner.can_take(&record.job))
            .collect();
        if capable.is_empty() {
            reasons.push(WaitReason::NoOnlineRunner {
                labels: record.job.labels.to_vec(),
                group: record.job.group.clone(),
            });
        }
        let own_runner = capable
            .iter()
            .any(|runner| runner.placement() == Placement::SelfHosted);
        if let Some(org) = self.orgs.get(&record.job.org)
            && let Some(limit) = org.settings.hosted_limit
            && org.running_hosted >= limit
            && !own_runner
        {
            reasons.push(WaitReason::OrgQuota {
                in_use: org.running_hosted,
                limit,
            });
        }
        let (position, of) = self.position(job);
        reasons.push(WaitReason::QueuePosition { position, of });
        Ok(reasons)
    }

    /// The job's 1-based place among its organization's waiting jobs of the same pool, and how
    /// many those are: front jobs in order, then the repository → run → job order replayed as
    /// if one runner kept taking this organization's jobs and nothing else changed.
    pub(crate) fn position(&self, job: QueuedJobRef) -> (usize, usize) {
        let Some(record) = self.jobs.get(&job) else {
            return (0, 0);
        };
        let (org, pool) = (record.job.org, record.pool);
        let Some(pool_org) = self.orgs.get(&org).and_then(|state| state.pool(pool)) else {
            return (0, 0);
        };
        let runs_in_pool = |repo: RepoRef| {
            self.repos
                .get(&repo)
                .and_then(|state| find(&state.pools, pool))
                .map(|entry| &entry.set)
        };
        let jobs_in_pool = |run: RunRef| {
            self.runs
                .get(&run)
                .and_then(|state| find(&state.pools, pool))
                .map(|entry| &entry.set)
        };
        let in_tree: usize = pool_org
            .repos
            .iter()
            .filter_map(|&(_, _, repo)| runs_in_pool(repo))
            .flatten()
            .filter_map(|&(_, _, run)| jobs_in_pool(run))
            .map(BTreeSet::len)
            .sum();
        let of = pool_org.front.len() + in_tree;
        if record.job.front {
            let ahead = pool_org.front.range(..record.front_key()).count();
            return (ahead + 1, of);
        }
        let mut position = pool_org.front.len();
        let mut picks = self.picks;
        let mut repos = pool_org.repos.clone();
        let mut runs_of: FastMap<RepoRef, BTreeSet<RunKey>> = FastMap::default();
        let mut jobs_of: FastMap<RunRef, Peekable<std::collections::btree_set::Iter<'_, JobKey>>> =
            FastMap::default();
        while let Some((repo_running, _, repo)) = repos.pop_first() {
            let runs = runs_of
                .entry(repo)
                .or_insert_with(|| runs_in_pool(repo).cloned().unwrap_or_default());
            let Some((run_running, _, run)) = runs.pop_first() else {
                continue;
            };
            let jobs = jobs_of.entry(run).or_insert_with(|| {
                match jobs_in_pool(run) {
                    Some(jobs) => jobs.iter(),
                    None => Default::default(),
                }
                .peekable()
            });
            let Some(&(_, _, next)) = jobs.next() else {
                continue;
            };
            position += 1;
            if next == job {
                return (position, of);
            }
            // The pick that served `next` makes its run and repository one busier and the
            // most recently served, exactly as `FairQueue::pick` would.
            picks += 1;
            if jobs.peek().is_some() {
                runs.insert((run_running + 1, picks, run));
            }
            if !runs.is_empty() {
                repos.insert((repo_running + 1, picks, repo));
            }
        }
        (position, of)
    }
}
