//! Figures for the fair queue, as pure functions: the fairness simulation (the same trace
//! through the fair queue and through plain FIFO) and the throughput workload. Randomness is a
//! seed argument (splitmix64) and time is simulated, so both are deterministic; the
//! throughput workload asks its caller for elapsed seconds, so the engine reads no clock.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use serde::{Deserialize, Serialize};

use super::model::{
    LabelSet, OrgRef, QueueConfig, QueuedJob, QueuedJobRef, RepoRef, RunRef, RunnerView,
};
use super::queue::FairQueue;
use crate::ids::Millis;

/// The splitmix64 generator: tiny, fast, and good enough to draw a benchmark trace.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform float in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform integer in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        // Multiply-shift maps 64 random bits onto the range with negligible bias.
        ((u128::from(self.next_u64()) * u128::from(bound.max(1))) >> 64) as u64
    }
}

/// The fairness experiment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FairnessConfig {
    /// Seed of the trace.
    pub seed: u64,
    /// Organizations, all of weight 1; organization 0 is the noisy one.
    pub orgs: u32,
    /// The noisy organization's share of submitted jobs.
    pub noisy_share: f64,
    /// Hosted runners, all with the same labels: the bottleneck.
    pub runners: u32,
    /// Jobs in the trace.
    pub jobs: u32,
    /// Job durations are uniform in `[duration_min, duration_max]`.
    pub duration_min: Millis,
    /// See `duration_min`.
    pub duration_max: Millis,
    /// Offered load over capacity (> 1: the queue grows while jobs arrive).
    pub load: f64,
    /// Repositories per organization.
    pub repos_per_org: u32,
    /// Each arrival is a run of 1 ..= this many jobs.
    pub max_jobs_per_run: u32,
    /// Jain samples are taken this often while jobs arrive and some wait.
    pub sample_every: Millis,
}

impl Default for FairnessConfig {
    fn default() -> FairnessConfig {
        FairnessConfig {
            seed: 1,
            orgs: 100,
            noisy_share: 0.9,
            runners: 50,
            jobs: 20_000,
            duration_min: Millis(5_000),
            duration_max: Millis(30_000),
            load: 1.25,
            repos_per_org: 3,
            max_jobs_per_run: 4,
            sample_every: Millis(1_000),
        }
    }
}

/// Waits (queued → started) of one policy on the trace, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyFigures {
    /// The quiet organizations' median wait.
    pub quiet_p50_ms: u64,
    /// The quiet organizations' 99th-percentile wait.
    pub quiet_p99_ms: u64,
    /// The noisy organization's median wait.
    pub noisy_p50_ms: u64,
    /// The noisy organization's 99th-percentile wait.
    pub noisy_p99_ms: u64,
    /// The mean Jain index over the samples (see [`fairness`]).
    pub jain_mean: f64,
    /// The lowest Jain index of a sample.
    pub jain_min: f64,
    /// When the last job started, in simulated time.
    pub makespan_ms: u64,
}

/// The fairness figures: the same trace through the fair queue and through FIFO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FairnessReport {
    /// Jobs in the trace.
    pub jobs: usize,
    /// Of which from quiet organizations.
    pub quiet_jobs: usize,
    /// Jain samples taken per policy.
    pub samples: usize,
    /// The fair queue.
    pub fair: PolicyFigures,
    /// Plain FIFO on the same trace.
    pub fifo: PolicyFigures,
    /// Fair quiet p99 over FIFO quiet p99 (goal ≤ 0.1).
    pub quiet_p99_ratio: f64,
}

#[derive(Debug, Clone)]
struct TraceJob {
    org: u32,
    repo: u32,
    run: u32,
    arrival: Millis,
    duration: Millis,
}

fn trace(config: &FairnessConfig) -> Vec<TraceJob> {
    let mut random = SplitMix64::new(config.seed);
    let mean_duration = (config.duration_min.0 + config.duration_max.0) as f64 / 2.0;
    let mean_run_size = (f64::from(config.max_jobs_per_run.max(1)) + 1.0) / 2.0;
    // Runs arrive as a Poisson process whose job rate is `load` times the runners' capacity.
    let runs_per_ms = f64::from(config.runners) * config.load / mean_duration / mean_run_size;
    let mut jobs = Vec::with_capacity(config.jobs as usize);
    let mut now = 0.0f64;
    let mut run = 0u32;
    while jobs.len() < config.jobs as usize {
        now += -(1.0 - random.unit()).ln() / runs_per_ms;
        let org = if config.orgs <= 1 || random.unit() < config.noisy_share {
            0
        } else {
            1 + random.below(u64::from(config.orgs - 1)) as u32
        };
        let repo = org * config.repos_per_org
            + random.below(u64::from(config.repos_per_org.max(1))) as u32;
        let size = 1 + random.below(u64::from(config.max_jobs_per_run.max(1))) as u32;
        run += 1;
        for _ in 0..size {
            if jobs.len() == config.jobs as usize {
                break;
            }
            let span = config.duration_max.0.saturating_sub(config.duration_min.0);
            jobs.push(TraceJob {
                org,
                repo,
                run,
                arrival: Millis(now as u64),
                duration: Millis(config.duration_min.0 + random.below(span + 1)),
            });
        }
    }
    jobs
}

/// The order a policy hands out jobs in: the fair queue or FIFO.
trait Policy {
    fn push(&mut self, index: usize, job: &TraceJob);
    fn pick(&mut self, now: Millis) -> Option<usize>;
    fn finish(&mut self, index: usize);
}

struct Fifo(VecDeque<usize>);

impl Policy for Fifo {
    fn push(&mut self, index: usize, _: &TraceJob) {
        self.0.push_back(index);
    }
    fn pick(&mut self, _: Millis) -> Option<usize> {
        self.0.pop_front()
    }
    fn finish(&mut self, _: usize) {}
}

struct Fair {
    queue: FairQueue,
    runner: RunnerView,
    labels: LabelSet,
}

impl Policy for Fair {
    fn push(&mut self, index: usize, job: &TraceJob) {
        let job = QueuedJob::new(
            QueuedJobRef(index as i64),
            OrgRef(i64::from(job.org)),
            RepoRef(i64::from(job.repo)),
            RunRef(i64::from(job.run)),
            self.labels.clone(),
            job.arrival,
        );
        // Trace ids are unique and consistent, so a refusal cannot happen; ignoring it would
        // only lose a job, which the waits would show.
        let _ = self.queue.push(job);
    }
    fn pick(&mut self, now: Millis) -> Option<usize> {
        self.queue.pick(&self.runner, now).map(|job| job.0 as usize)
    }
    fn finish(&mut self, index: usize) {
        let _ = self.queue.finish(QueuedJobRef(index as i64));
    }
}

/// Runs the fairness experiment: the trace of `config` through the fair queue and through
/// FIFO, with `config.runners` identical hosted runners.
///
/// Jain's index is sampled every `sample_every` of simulated time while jobs still arrive and
/// at least one job waits (runners are the bottleneck). At each sample, the organizations with
/// demand (running + waiting > 0) are given their max-min fair allocation of the runners by
/// water-filling over their demands (equal weights); with `x_i` = running_i / allocation_i the
/// index is `(Σ x_i)² / (n · Σ x_i²)`: 1 when every organization runs exactly its fair share.
pub fn fairness(config: &FairnessConfig) -> FairnessReport {
    let jobs = trace(config);
    let labels = LabelSet::new(["ubuntu-latest"]);
    let mut fair = Fair {
        queue: FairQueue::new(QueueConfig::default()),
        runner: RunnerView::hosted(labels.clone()),
        labels,
    };
    let (fair_figures, samples) = replay(config, &jobs, &mut fair);
    let (fifo_figures, _) = replay(config, &jobs, &mut Fifo(VecDeque::new()));
    let quiet_jobs = jobs.iter().filter(|job| job.org != 0).count();
    let quiet_p99_ratio =
        fair_figures.quiet_p99_ms as f64 / (fifo_figures.quiet_p99_ms.max(1)) as f64;
    FairnessReport {
        jobs: jobs.len(),
        quiet_jobs,
        samples,
        fair: fair_figures,
        fifo: fifo_figures,
        quiet_p99_ratio,
    }
}

fn replay(
    config: &FairnessConfig,
    jobs: &[TraceJob],
    policy: &mut dyn Policy,
) -> (PolicyFigures, usize) {
    let orgs = config.orgs.max(1) as usize;
    let mut running = vec![0u32; orgs];
    let mut waiting = vec![0u32; orgs];
    let mut started = vec![Millis(0); jobs.len()];
    let mut ends: BinaryHeap<Reverse<(Millis, usize)>> = BinaryHeap::new();
    let mut idle = config.runners;
    let mut next = 0;
    let mut jain = Vec::new();
    let last_arrival = jobs.last().map_or(Millis(0), |job| job.arrival);
    let step = config.sample_every.0.max(1);
    let mut next_sample = step;
    let mut makespan = Millis(0);
    loop {
        let next_arrival = jobs.get(next).map(|job| job.arrival);
        let next_end = ends.peek().map(|Reverse((at, _))| *at);
        let now = match (next_arrival, next_end) {
            (Some(a), Some(e)) => a.min(e),
            (Some(a), None) => a,
            (None, Some(e)) => e,
            (None, None) => break,
        };
        // The state is constant between events: take the samples that fall before `now`.
        while next_sample < now.0 && next_sample <= last_arrival.0 {
            if waiting.iter().any(|&count| count > 0) {
                jain.push(jain_index(&running, &waiting, config.runners));
            }
            next_sample += step;
        }
        while let Some(&Reverse((at, index))) = ends.peek() {
            if at > now {
                break;
            }
            ends.pop();
            policy.finish(index);
            running[jobs[index].org as usize] -= 1;
            idle += 1;
        }
        while let Some(job) = jobs.get(next) {
            if job.arrival > now {
                break;
            }
            policy.push(next, job);
            waiting[job.org as usize] += 1;
            next += 1;
        }
        while idle > 0 {
            let Some(index) = policy.pick(now) else {
                break;
            };
            let org = jobs[index].org as usize;
            waiting[org] -= 1;
            running[org] += 1;
            started[index] = now;
            makespan = now;
            ends.push(Reverse((now.after(jobs[index].duration), index)));
            idle -= 1;
        }
    }
    let mut quiet = Vec::new();
    let mut noisy = Vec::new();
    for (job, start) in jobs.iter().zip(&started) {
        let wait = start.0.saturating_sub(job.arrival.0);
        if job.org == 0 {
            noisy.push(wait)
        } else {
            quiet.push(wait)
        }
    }
    let samples = jain.len();
    let jain_mean = if jain.is_empty() {
        1.0
    } else {
        jain.iter().sum::<f64>() / jain.len() as f64
    };
    let jain_min = jain.iter().copied().fold(1.0f64, f64::min);
    let figures = PolicyFigures {
        quiet_p50_ms: percentile(&mut quiet, 50.0),
        quiet_p99_ms: percentile(&mut quiet, 99.0),
        noisy_p50_ms: percentile(&mut noisy, 50.0),
        noisy_p99_ms: percentile(&mut noisy, 99.0),
        jain_mean,
        jain_min,
        makespan_ms: makespan.0,
    };
    (figures, samples)
}

/// The nearest-rank percentile of `values` (0 when empty).
fn percentile(values: &mut [u64], percent: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let rank = ((percent / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// Jain's index of running shares relative to the max-min fair allocation; see [`fairness`].
fn jain_index(running: &[u32], waiting: &[u32], runners: u32) -> f64 {
    let mut demands: Vec<(f64, f64)> = running
        .iter()
        .zip(waiting)
        .filter(|(r, w)| **r + **w > 0)
        .map(|(r, w)| (f64::from(*r + *w), f64::from(*r)))
        .collect();
    if demands.is_empty() {
        return 1.0;
    }
    demands.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut capacity = f64::from(runners);
    let mut left = demands.len() as f64;
    let mut sum = 0.0;
    let mut squares = 0.0;
    for (demand, running) in &demands {
        let allocation = demand.min(capacity / left);
        capacity -= allocation;
        left -= 1.0;
        let x = if allocation > 0.0 {
            running / allocation
        } else {
            1.0
        };
        sum += x;
        squares += x * x;
    }
    if squares == 0.0 {
        return 0.0;
    }
    sum * sum / (demands.len() as f64 * squares)
}

/// The throughput workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThroughputConfig {
    /// Seed of the workload.
    pub seed: u64,
    /// Jobs waiting when the timed churn starts.
    pub jobs: u32,
    /// Organizations the jobs spread over.
    pub orgs: u32,
    /// Repositories per organization.
    pub repos_per_org: u32,
    /// Jobs per run.
    pub jobs_per_run: u32,
    /// Push + pick + finish cycles timed at steady state.
    pub cycles: u32,
}

impl Default for ThroughputConfig {
    fn default() -> ThroughputConfig {
        ThroughputConfig {
            seed: 7,
            jobs: 200_000,
            orgs: 2_000,
            repos_per_org: 5,
            jobs_per_run: 10,
            cycles: 1_000_000,
        }
    }
}

/// Throughput figures; rates are per second of the caller's clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputReport {
    /// Jobs pushed into the empty queue.
    pub pushed: u64,
    /// Pushes per second while filling the queue.
    pub push_per_second: f64,
    /// Push + pick + finish cycles at steady state (the queue stays at `jobs`).
    pub cycles: u64,
    /// Cycles per second.
    pub cycles_per_second: f64,
    /// Jobs drained (pick + finish until empty).
    pub drained: u64,
    /// Pick + finish per second while draining.
    pub drain_per_second: f64,
}

/// Runs the throughput workload: fill the queue with `jobs` jobs over many organizations,
/// repositories, runs and four label pools; churn `cycles` times (pick for a runner of the
/// next kind, finish it, push a new job); then drain. `seconds` is the caller's clock (seconds
/// since any fixed point); only the three phases are timed.
pub fn throughput(config: &ThroughputConfig, seconds: &mut dyn FnMut() -> f64) -> ThroughputReport {
    let mut random = SplitMix64::new(config.seed);
    let pools = [
        LabelSet::new(["ubuntu-latest"]),
        LabelSet::new(["linux", "x64"]),
        LabelSet::new(["linux", "gpu"]),
        LabelSet::new(["windows-latest"]),
    ];
    let runners: Vec<RunnerView> = [
        LabelSet::new(["ubuntu-latest", "linux", "x64"]),
        LabelSet::new(["linux", "gpu", "x64"]),
        LabelSet::new(["windows-latest"]),
    ]
    .into_iter()
    .map(RunnerView::hosted)
    .collect();
    let orgs = u64::from(config.orgs.max(1));
    let repos = u64::from(config.repos_per_org.max(1));
    let per_run = i64::from(config.jobs_per_run.max(1));
    let seed = config.seed;
    let make = |id: i64, random: &mut SplitMix64| {
        // Consecutive ids form a run of `jobs_per_run` jobs; the run's organization and
        // repository are drawn from the run number, so every job of a run agrees on them.
        let run = id / per_run;
        let mut of_run = SplitMix64::new(seed ^ (run as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let org = of_run.below(orgs);
        let repo = org * repos + of_run.below(repos);
        let labels = pools[random.below(pools.len() as u64) as usize].clone();
        let mut job = QueuedJob::new(
            QueuedJobRef(id),
            OrgRef(org as i64),
            RepoRef(repo as i64),
            RunRef(run),
            labels,
            Millis(id as u64),
        );
        job.priority = (random.below(3) as i32) - 1;
        job
    };
    let mut queue = FairQueue::new(QueueConfig::default());
    let prepared: Vec<QueuedJob> = (0..i64::from(config.jobs))
        .map(|id| make(id, &mut random))
        .collect();
    let start = seconds();
    let pushed = prepared.len() as u64;
    for job in prepared {
        let _ = queue.push(job);
    }
    let push_seconds = seconds() - start;

    let fresh: Vec<QueuedJob> = (0..i64::from(config.cycles))
        .map(|n| make(i64::from(config.jobs) + n, &mut random))
        .collect();
    let start = seconds();
    let mut cycles = 0u64;
    for (n, job) in fresh.into_iter().enumerate() {
        let runner = &runners[n % runners.len()];
        if let Some(picked) = queue.pick(runner, Millis(n as u64)) {
            let _ = queue.finish(picked);
        }
        let _ = queue.push(job);
        cycles += 1;
    }
    let cycle_seconds = seconds() - start;

    let start = seconds();
    let mut drained = 0u64;
    let mut idle_kinds = 0;
    let mut n = 0usize;
    while idle_kinds < runners.len() {
        let runner = &runners[n % runners.len()];
        n += 1;
        match queue.pick(runner, Millis(n as u64)) {
            Some(picked) => {
                let _ = queue.finish(picked);
                drained += 1;
                idle_kinds = 0;
            }
            None => idle_kinds += 1,
        }
    }
    let drain_seconds = seconds() - start;
    let rate = |count: u64, elapsed: f64| count as f64 / elapsed.max(1e-9);
    ThroughputReport {
        pushed,
        push_per_second: rate(pushed, push_seconds),
        cycles,
        cycles_per_second: rate(cycles, cycle_seconds),
        drained,
        drain_per_second: rate(drained, drain_seconds),
    }
}
