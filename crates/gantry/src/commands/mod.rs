//! One module per top-level command.

pub mod bench;
mod client;
pub mod expr;
pub mod jobs;
pub mod logs;
pub mod runner;
pub mod runs;
pub mod server;
pub mod workflow;
