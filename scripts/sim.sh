#!/usr/bin/env bash
# Runs keel's simulator: builds the keel-sim binary with madsim's simulated
# tokio/tonic (RUSTFLAGS="--cfg madsim") in its own target dir, so the
# normal build's artifacts stay warm, and passes every argument through:
#   scripts/sim.sh run --scenario split-brain --seed 1234
#   scripts/sim.sh replay --scenario split-brain --seed 1234
#   scripts/sim.sh sweep --scenario all --seeds 1000 [--first 1]
# KEEL_SIM_TARGET_DIR overrides the target dir (default:
# ${CARGO_TARGET_DIR:-target}/madsim). KEEL_SIM_FEATURES builds keel with
# planted bugs (comma-separated keel-sim features, e.g.
# planted-bug-read-without-readindex) to show the scenarios catch them.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg madsim"
export CARGO_TARGET_DIR="${KEEL_SIM_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/madsim}"
features=()
if [ -n "${KEEL_SIM_FEATURES:-}" ]; then
  features=(--features "$KEEL_SIM_FEATURES")
fi
exec cargo run --quiet --locked -p keel-sim --bin keel-sim "${features[@]}" -- "$@"
