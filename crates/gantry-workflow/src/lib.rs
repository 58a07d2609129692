//! Workflow files as gantry understands them: YAML with source positions, a typed model,
//! validation, matrix expansion, trigger filters, cron schedules and the job graph.
//!
//! This crate does no IO: callers hand it file contents and the current time.
//!
//! The flow is [`load::parse`] (YAML → [`model::Workflow`], shape errors) →
//! [`validate::validate`] (meaning: ids, `needs`, expressions, matrices, limits) →
//! [`plan::plan`] (job instances) and [`trigger::decide`] (does an event start it).
//! [`load::load`] runs the first two.

pub mod contexts;
pub mod cron;
pub mod diag;
pub mod dispatch;
pub mod filter;
pub mod graph;
pub mod limits;
pub mod load;
pub mod matrix;
pub mod model;
pub mod plan;
pub mod reusable;
pub mod trigger;
pub mod validate;
pub mod yaml;

pub use diag::{Diagnostic, Diagnostics};
pub use limits::Limits;
pub use load::{load, parse};
pub use model::Workflow;
