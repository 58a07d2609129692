//! The runner agent: claims jobs and runs their steps in a sandbox.
//!
//! So far it holds the workspace side of the expression language: [`WorkspaceHost`] answers
//! `hashFiles()` and the status functions for expressions evaluated inside a job, and
//! [`sandbox`] is the interface every job's isolated environment is made through (with the
//! host executor for trusted machines), and [`steps`] runs a job's steps inside a sandbox as
//! GitHub's runner does. [`agent`] is the loop around them: it registers with a server,
//! claims jobs and reports steps, log lines and results over the runner protocol.

#![forbid(unsafe_code)]

pub mod agent;
pub mod hash_files;
pub mod sandbox;
pub mod steps;

pub use hash_files::{HashFilesError, WorkspaceHost, hash_files, matching_files};
