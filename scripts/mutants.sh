#!/usr/bin/env bash
# Mutation testing of keel's kernel and WAL recovery with cargo-mutants.
# Not part of CI: every mutant is a rebuild and a test run, hours for the
# whole set on a 2-core machine. Each module runs the tests of its crate that
# exercise it (below): the Raft mutants skip the MVCC suites and the other
# way round, which halves the run without hiding a test that could catch them.
#
#   scripts/mutants.sh                      # every module below
#   scripts/mutants.sh auth lease           # some of them
#   MUTANTS_SHARD=1/8 scripts/mutants.sh    # a sample: every 8th mutant
#   MUTANTS_JOBS=2 scripts/mutants.sh raft  # two mutants at a time
#   MUTANTS_TIMEOUT_S=40 (default): a test run that hangs longer is a timeout
#   MUTANTS_ARGS='--baseline=skip'          # more cargo-mutants options
#
# A faster screening pass of the Raft module, then the full test on what it
# missed (--iterate skips the mutants already caught or unviable):
#   KEEL_RAFT_SEEDS=100 scripts/mutants.sh raft
#   MUTANTS_ARGS=--iterate scripts/mutants.sh raft
#
# Results: target/mutants/<module>/mutants.out (caught.txt, missed.txt,
# timeout.txt, unviable.txt), and a table printed at the end in the form of
# docs/mutation-testing.md.
set -euo pipefail
cd "$(dirname "$0")/.."

version=27.1.0
if ! cargo mutants --version 2>/dev/null | grep -q "$version"; then
  cargo install cargo-mutants --locked --version "$version"
fi

declare -A files=(
  [raft]='kernel/src/raft/**'
  [mvcc]='kernel/src/mvcc/**'
  [lease]='kernel/src/lease/**'
  [auth]='kernel/src/auth/**'
  [recovery]='wal/src/recovery.rs'
)
declare -A package=(
  [raft]=keel-kernel [mvcc]=keel-kernel [lease]=keel-kernel [auth]=keel-kernel
  [recovery]=keel-wal
)
# The test targets each module's mutants build and run (cargo arguments, one
# word each). The lib target holds every module's unit tests.
declare -A tests=(
  [raft]='--lib --test=raft_random --test=raft_scenarios --test=raft_step_arbitrary --test=membership_cluster --test=apply_snapshot'
  [mvcc]='--lib --test=mvcc_model --test=mvcc_watch --test=mvcc_etcd --test=mvcc_cow --test=apply_state_machine --test=apply_snapshot'
  [lease]='--lib --test=lease_lessor --test=apply_state_machine --test=apply_snapshot'
  [auth]='--lib --test=auth_store --test=auth_matrix --test=apply_state_machine'
  [recovery]='--lib --tests'
)
modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then
  modules=(raft recovery mvcc lease auth)
fi

shard=()
if [ -n "${MUTANTS_SHARD:-}" ]; then
  shard=(--shard "$MUTANTS_SHARD" --sharding round-robin)
fi

count() { if [ -f "$1" ]; then wc -l < "$1" | tr -d ' '; else echo 0; fi; }

rows=()
for module in "${modules[@]}"; do
  if [ -z "${files[$module]:-}" ]; then
    echo "scripts/mutants.sh: unknown module '$module' (raft mvcc lease auth recovery)" >&2
    exit 2
  fi
  out="target/mutants/$module"
  mkdir -p "$out"
  echo "== cargo mutants: $module (${files[$module]})"
  # Exit 2 (missed mutants) and 3 (timeouts) are results, not failures.
  status=0
  # Only the module's test targets are built (and linked) for each mutant.
  targets=()
  for arg in ${tests[$module]}; do targets+=("--cargo-arg=$arg"); done
  # No debug info: linking each mutant's test binaries is most of its cost.
  # shellcheck disable=SC2086 # MUTANTS_ARGS holds words
  CARGO_PROFILE_DEV_DEBUG=0 CARGO_PROFILE_TEST_DEBUG=0 \
  cargo mutants -p "${package[$module]}" -f "${files[$module]}" --timeout "${MUTANTS_TIMEOUT_S:-40}" \
    --jobs "${MUTANTS_JOBS:-1}" ${MUTANTS_ARGS:-} "${shard[@]}" "${targets[@]}" -o "$out" || status=$?
  if [ "$status" -ne 0 ] && [ "$status" -ne 2 ] && [ "$status" -ne 3 ]; then
    echo "scripts/mutants.sh: cargo mutants failed for $module (exit $status)" >&2
    exit "$status"
  fi
  dir="$out/mutants.out"
  caught=$(count "$dir/caught.txt"); missed=$(count "$dir/missed.txt")
  timeout=$(count "$dir/timeout.txt"); unviable=$(count "$dir/unviable.txt")
  viable=$((caught + missed + timeout))
  score=$(( viable > 0 ? (100 * (caught + timeout)) / viable : 100 ))
  rows+=("| $module | $caught | $missed | $timeout | $unviable | $score % |")
done

echo
echo "| module | caught | missed | timeout | unviable | caught (timeouts count as caught) |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
