//! Integration tests of the run engine: scenarios driven from small workflow files, the
//! concurrency bookkeeping across runs, large graphs, property tests over random graphs, and
//! the dispatcher's fair queue.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod calls;
mod cancel;
mod concurrency;
mod conditions;
mod dispatch;
mod failures;
mod graph;
mod harness;
mod matrix;
mod props;
mod rerun;
mod scale;
