#!/usr/bin/env bash
# The kill -9 soak: `scripts/soak.sh [N]` (default 300) kills a real
# `git orch run -j 3` at N pseudo-random moments (fixed seed; set
# ORCH_SOAK_SEED for another sequence), each followed by `status`,
# `resume` and the checks of tests/crash.rs (fsck, state vs refs, every
# task landed exactly once, nothing lost, no stray worktree), against a
# release build. Prints each failure, then `N runs, K failures`.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-300}"
case "$runs" in
  ''|*[!0-9]*) echo "error: N must be a number of runs, got \`$runs\`" >&2; exit 2 ;;
esac
cargo build --release --quiet --tests
set +e
out=$(ORCH_SOAK_RUNS="$runs" cargo test --release --quiet --test suite \
  crash::kill_nine_at_random_moments_then_resume_loses_nothing -- --exact --nocapture 2>&1)
rc=$?
set -e
printf '%s\n' "$out" | grep -A40 '^FAILED ' || true
line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ runs, [0-9]+ failures' | tail -1)
if [ -z "$line" ]; then
  printf '%s\n' "$out" | tail -30
  echo "error: the soak did not finish" >&2
  exit 1
fi
echo "$line"
exit "$rc"
