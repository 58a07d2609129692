#!/usr/bin/env bash
# Runs gantry's whole test suite: formatting, lints, then every test of the workspace.
# Installs nothing yet; later steps (bubblewrap, PostgreSQL) are started here when tests need them.
set -euo pipefail
cd "$(dirname "$0")/.."

# Fuzz-style property tests run a bounded number of cases; CI may raise this.
export PROPTEST_CASES="${PROPTEST_CASES:-256}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
