#!/usr/bin/env bash
# The real-process Jepsen suite's slow part (not in scripts/test.sh): builds
# a keel with the planted bug `planted-bug-read-without-readindex` into its
# own target dir (target/jepsen-planted, a full server build) and checks
# that keel-jepsen reports the register workload under partitions
# `invalid`. Then, with `long` as $1, one longer run of every fault against
# the real keel, which must be `valid`. Needs root (network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== planted bug: read-without-readindex under partitions must be invalid"
KEEL_JEPSEN_PLANTED_BUG=1 cargo test --locked -p keel-jepsen-runner --test planted_bug -- --nocapture
if [ "${1:-}" = "long" ]; then
  cargo build --locked -p keel-server --bin keel -p keel-jepsen-runner
  target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
  echo "== 60 s of kill, pause, partition and leader faults against keel"
  "$target_dir/debug/keel-jepsen" --time-limit 60 --nemesis kill,pause,partition,leader \
    --results "$target_dir/jepsen-store"
fi
