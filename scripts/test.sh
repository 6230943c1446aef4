#!/usr/bin/env bash
# Runs every test keel has: formatting, lints (warnings are errors), the
# unit, integration and property tests of the whole workspace (the server's
# tests start real keel and etcd processes on loopback and drive them with
# etcdctl and the etcd-client crate), then the madsim simulation tests in
# their own target dir. Slow suites (simulation sweeps, long seed sweeps,
# fuzzing, benchmarks) have their own commands in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== madsim simulation tests (RUSTFLAGS=--cfg madsim, own target dir)"
RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR="$target_dir/madsim" \
  cargo test -p keel-sim --locked
