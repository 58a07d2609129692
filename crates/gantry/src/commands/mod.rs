//! One module per top-level command.

pub mod bench;
mod client;
pub mod expr;
pub mod git_repo;
pub mod runs;
pub mod server;
pub mod workflow;
