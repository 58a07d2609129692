//! The rounds of `gantry bench drain --rounds N` and their medians.
//!
//! The development and CI machines are shared: a neighbour's load can halve every rate for a
//! minute (seen on 2026-11-29: graphile-worker's local queue drained 12,251 jobs/s alone, then
//! 5,947 jobs/s a few minutes later inside a drain run). A ratio of two drains made minutes
//! apart then says more about the neighbour than about gantry. So each round drains gantry
//! over HTTP, gantry in-process and (with `--graphile`) graphile-worker's local queue one after
//! another, each round's ratios are taken against that round's peer, and the figures reported
//! are the medians of the rounds' rates and of their ratios.

use serde::Serialize;

use super::graphile::GraphileDrain;
use super::median;

/// The figures of one way of draining.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Drained {
    pub jobs: usize,
    pub seconds: f64,
    pub jobs_per_sec: f64,
}

/// One round: gantry's two ways and, with `--graphile`, the peer's fastest configuration,
/// measured back to back.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Round {
    pub http: Drained,
    pub in_process: Drained,
    pub peer: Option<GraphileDrain>,
}

impl Round {
    /// gantry's rates over the peer's in this round: (HTTP, in-process).
    pub fn ratios(&self) -> Option<(f64, f64)> {
        let peer = self.peer.as_ref()?.jobs_per_sec;
        Some((
            self.http.jobs_per_sec / peer,
            self.in_process.jobs_per_sec / peer,
        ))
    }
}

/// The medians of the rounds (each the upper middle of an even count, as [`median`] takes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Medians {
    pub rounds: usize,
    pub http_jobs_per_sec: f64,
    pub in_process_jobs_per_sec: f64,
    pub peer_jobs_per_sec: Option<f64>,
    /// The median of the rounds' own HTTP / peer ratios (not a ratio of medians).
    pub http_over_peer: Option<f64>,
    /// The median of the rounds' own in-process / peer ratios.
    pub in_process_over_peer: Option<f64>,
}

/// The medians of `rounds`, which must not be empty; the peer's figures are there only if
/// every round measured it.
pub(super) fn medians(rounds: &[Round]) -> Medians {
    let of = |field: fn(&Round) -> f64| median(&mut rounds.iter().map(field).collect::<Vec<_>>());
    // A figure that some round lacks (no peer) has no median.
    let of_every = |field: fn(&Round) -> Option<f64>| {
        let values: Option<Vec<f64>> = rounds.iter().map(field).collect();
        values.map(|mut values| median(&mut values))
    };
    Medians {
        rounds: rounds.len(),
        http_jobs_per_sec: of(|round| round.http.jobs_per_sec),
        in_process_jobs_per_sec: of(|round| round.in_process.jobs_per_sec),
        peer_jobs_per_sec: of_every(|round| round.peer.as_ref().map(|peer| peer.jobs_per_sec)),
        http_over_peer: of_every(|round| round.ratios().map(|(http, _)| http)),
        in_process_over_peer: of_every(|round| round.ratios().map(|(_, in_process)| in_process)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::bench::graphile::Mode;

    fn drained(jobs_per_sec: f64) -> Drained {
        Drained {
            jobs: 1000,
            seconds: 1000.0 / jobs_per_sec,
            jobs_per_sec,
        }
    }

    fn round(http: f64, in_process: f64, peer: Option<f64>) -> Round {
        Round {
            http: drained(http),
            in_process: drained(in_process),
            peer: peer.map(|jobs_per_sec| GraphileDrain {
                version: "0.17.3".to_owned(),
                mode: Mode::LocalQueue,
                concurrency: 24,
                jobs: 1000,
                add_secs: 0.1,
                drain_secs: 1000.0 / jobs_per_sec,
                jobs_per_sec,
            }),
        }
    }

    #[test]
    fn ratios_are_taken_within_each_round_before_the_median() {
        // A slow round (the neighbour busy) halves both gantry and the peer: its ratio is
        // like the others', while a ratio of the medians would mix rounds.
        let rounds = [
            round(15_000.0, 17_000.0, Some(10_000.0)),
            round(7_000.0, 8_000.0, Some(5_000.0)),
            round(16_000.0, 18_000.0, Some(12_000.0)),
        ];
        let medians = medians(&rounds);
        assert_eq!(medians.rounds, 3);
        assert_eq!(medians.http_jobs_per_sec, 15_000.0);
        assert_eq!(medians.in_process_jobs_per_sec, 17_000.0);
        assert_eq!(medians.peer_jobs_per_sec, Some(10_000.0));
        // Per round: 1.5, 1.4, 1.333… → median 1.4; the ratio of medians would be 1.5.
        assert_eq!(medians.http_over_peer, Some(7_000.0 / 5_000.0));
        // Per round: 1.7, 1.6, 1.5 → median 1.6.
        assert_eq!(medians.in_process_over_peer, Some(8_000.0 / 5_000.0));
    }

    #[test]
    fn without_a_peer_in_every_round_there_are_no_ratios() {
        let medians = medians(&[round(1.0, 2.0, None), round(3.0, 4.0, Some(1.0))]);
        assert_eq!(medians.peer_jobs_per_sec, None);
        assert_eq!(medians.http_over_peer, None);
        assert_eq!(medians.in_process_over_peer, None);
        // The upper middle of an even count.
        assert_eq!(medians.http_jobs_per_sec, 3.0);
    }
}
