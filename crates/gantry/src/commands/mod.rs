//! One module per top-level command.

pub mod bench;
mod called_files;
pub(crate) mod client;
pub mod expr;
pub mod git_repo;
mod interrupt;
pub mod job_selection;
pub mod jobs;
pub mod local_run;
pub mod logs;
pub mod runner;
pub mod runners;
pub mod runs;
pub mod server;
pub mod up;
pub mod watch;
pub mod workflow;
