//! The `gantry` command line: argument parsing and dispatch to one module per command.
//!
//! Each command is a thin shell over library calls. Machine output (`--json`) goes to stdout,
//! human messages to stderr, and the process exit code says whether the command succeeded.

mod commands;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// gantry: a self-hostable CI/CD service for GitHub-Actions-compatible workflows.
#[derive(Debug, Parser)]
#[command(name = "gantry", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check workflow files and see what events start them.
    #[command(subcommand)]
    Workflow(commands::workflow::WorkflowCommand),
    /// Evaluate `${{ }}` expressions.
    #[command(subcommand)]
    Expr(commands::expr::ExprCommand),
    /// Benchmarks that print their figures.
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Workflow(command) => commands::workflow::run(command),
        Command::Expr(command) => commands::expr::run(command),
        Command::Bench(command) => commands::bench::run(command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            output::error(&format!("{error:#}"));
            ExitCode::from(2)
        }
    }
}
