//! One module per top-level command.

pub mod bench;
pub mod expr;
pub mod workflow;
