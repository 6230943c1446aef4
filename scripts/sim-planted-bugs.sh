#!/usr/bin/env bash
# Shows that the simulator catches keel's planted bugs: for each one, builds
# keel-sim with that bug (a keel-sim cargo feature, off by default) and
# sweeps every scenario until its first failing seed, printing the table
# of seeds to first failure. Seeds per scenario: $1 (default 100).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds="${1:-100}"
bugs=(
  planted-bug-read-without-readindex
  planted-bug-vote-without-log-check
  planted-bug-ack-before-fsync
  planted-bug-commit-previous-term
  planted-bug-apply-twice-after-restart
  planted-bug-keep-conflicting-suffix
  planted-bug-watch-misses-start-revision
  planted-bug-follower-expires-leases
)
for bug in "${bugs[@]}"; do
  echo "== $bug"
  KEEL_SIM_FEATURES="$bug" bash scripts/sim.sh sweep --scenario all --seeds "$seeds" --stop-at-failure \
    | sed -n '/^summary:/,$p' || true
done
