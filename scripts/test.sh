#!/usr/bin/env bash
# Runs gantry's whole test suite: formatting, lints, then every test of the workspace.
# Installs what the tests need first (bubblewrap); services such as PostgreSQL are started here
# when tests need them.
set -euo pipefail
cd "$(dirname "$0")/.."

# The sandbox tests run jobs under bubblewrap (`bwrap`) and, under CI=true, fail without it.
# CI runs as root with Debian's package registry: install it when missing, refreshing the
# package lists only if the first attempt cannot find it.
if ! command -v bwrap >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y bubblewrap || { apt-get update && apt-get install -y bubblewrap; }
fi

# Fuzz-style property tests run a bounded number of cases; CI may raise this.
export PROPTEST_CASES="${PROPTEST_CASES:-256}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
