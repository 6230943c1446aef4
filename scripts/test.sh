#!/usr/bin/env bash
# Runs every test keel has: formatting, lints (warnings are errors), and the
# unit, integration and property tests of the whole workspace. Slow suites
# (simulation sweeps, Jepsen runs, fuzzing, benchmarks) have their own
# commands in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
