#!/usr/bin/env bash
# git-orch state benchmark (issue 9): what the state branch costs as plans
# grow, against raw git operations measured in the same run. Prints
# figures and ratios; asserts nothing (machines are shared and noisy).
#
#   scripts/bench-state.sh          # 1,000 and 2,000-task runs, 10,000-task plans (~10 min)
#   scripts/bench-state.sh quick    # 200/400-task runs and 2,000-task plans
#   scripts/bench-state.sh full transition   # only the transition, status and report parts
#
# The real runs use git's default gc.auto: git-orch runs git's maintenance
# itself where it cannot race its worktree moves. The 10,000-task plans get
# their history from `git orch synth-land`, which lands made-up commits
# through the same claim and landing transactions as `run`.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-full}
ONLY=${2:-all}   # all | runs | transition (the second also reports on its plan)
if [ "$MODE" = quick ]; then RUN1=200 RUN2=400 BIG=2000; else RUN1=1000 RUN2=2000 BIG=10000; fi
cargo build --release -q
ORCH="$PWD/target/release/git-orch"
BIN=$(mktemp -d "${TMPDIR:-/tmp}/orch-bench-bin.XXXXXX")
ln -s "$ORCH" "$BIN/git-orch"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/orch-bench-state.XXXXXX")
trap 'rm -rf "$WORK" "$BIN"' EXIT
export PATH="$BIN:$PATH" NO_COLOR=1 GIT_CONFIG_NOSYSTEM=1 HOME="$WORK/home"
mkdir -p "$HOME"
git config --global user.name bench
git config --global user.email bench@example.com
git config --global init.defaultBranch main

now_ms() { date +%s%N | awk '{printf "%.3f", $1 / 1000000}'; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2] + a[NR/2+1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
# time_ms CMD...: wall milliseconds of one run of CMD (output discarded).
time_ms() { local t0 t1; t0=$(now_ms); "$@" >/dev/null 2>&1; t1=$(now_ms); awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}'; }
# median_ms N CMD...: median of N runs.
median_ms() { local n=$1; shift; for _ in $(seq 1 "$n"); do time_ms "$@"; done | median; }

new_repo() {
  rm -rf "$1" && mkdir -p "$1" && cd "$1"
  git init -q && echo hello >README && git add -A && git commit -q -m initial
  cd - >/dev/null
}

# plan_file NAME N [PHASES [EXTRA]]: N tasks spread over PHASES phases, each
# writing out/<id>.txt; EXTRA is one more path in every scope (synth-land
# rewrites synthetic.txt).
plan_file() {
  local name=$1 n=$2 phases=${3:-1} extra=${4:-}
  awk -v name="$name" -v n="$n" -v phases="$phases" -v extra="$extra" 'BEGIN {
    more = extra == "" ? "" : sprintf(", \"%s\"", extra)
    printf "name = \"%s\"\n", name
    per = int((n + phases - 1) / phases)
    for (i = 1; i <= n; i++) {
      if ((i - 1) % per == 0) printf "[[phases]]\nid = \"p%d\"\n", int((i - 1) / per) + 1
      printf "  [[phases.tasks]]\n  id = \"t%d\"\n  files = [\"out/t%d.txt\"%s]\n  run = \"mkdir -p out && echo x > out/t%d.txt\"\n", i, i, more, i
    }
  }' > "$WORK/$name.toml"
  echo "$WORK/$name.toml"
}

# state_bytes PLAN: bytes of every object the state branch reaches (as
# stored uncompressed: what the 0.1 figures counted).
state_bytes() {
  git rev-list --objects "orch/$1/state" | cut -d' ' -f1 |
    git cat-file --batch-check='%(objectsize)' | awk '{s += $1} END {print s}'
}
mb() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }

echo "git-orch state benchmark — $(git --version), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), mode $MODE"
echo

echo "## A whole run -j 8, default gc.auto (targets: $RUN1 tasks ≤ 25 MB of state objects; $RUN2 ≤ 2.2x $RUN1; finishes every time)"
declare -A BYTES
[ "$ONLY" = transition ] && RUNS="" || RUNS="$RUN1 $RUN2"
for n in $RUNS; do
  repo="$WORK/run$n"
  new_repo "$repo"
  plan=$(plan_file "run$n" "$n" 4)
  cd "$repo"
  git orch start "$plan" >/dev/null
  t0=$(now_ms)
  if git orch run "run$n" -j 8 >"$WORK/run$n.log" 2>&1; then result=ok; else result="FAILED (exit $?, see below)"; fi
  t1=$(now_ms)
  BYTES[$n]=$(state_bytes "run$n")
  commits=$(git rev-list --count "orch/run$n/state")
  objects=$(du -sk .git/objects | cut -f1)
  printf '  %5d tasks: run %s in %.0f s, %d state commits, state objects %s MB, .git/objects %s MB on disk\n' \
    "$n" "$result" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1000}')" "$commits" "$(mb "${BYTES[$n]}")" "$(awk -v k="$objects" 'BEGIN {printf "%.1f", k / 1024}')"
  [ "$result" = ok ] || tail -n 5 "$WORK/run$n.log" | sed 's/^/      /'
  # The report of the finished run, against git log of its state branch.
  if [ "$n" = "$RUN1" ]; then
    logms=$(median_ms 5 git log --oneline "orch/run$n/state")
    repms=$(median_ms 5 git orch report "run$n" --format json)
    printf '  report --format json of %d tasks %8.1f ms vs git log --oneline %6.1f ms  (%sx; target ≤ 3x)\n' "$n" "$repms" "$logms" "$(ratio "$repms" "$logms")"
  fi
  cd - >/dev/null
done
[ -n "$RUNS" ] && printf '  %d tasks / %d tasks: %sx (target ≤ 2.2x)\n' "$RUN2" "$RUN1" "$(ratio "${BYTES[$RUN2]}" "${BYTES[$RUN1]}")"
echo
[ "$ONLY" = runs ] && exit 0

echo "## A task transition at $BIG tasks against 10 tasks (target ≤ 1.3x)"
# Two repositories: a 10-task plan and a $BIG-task plan whose tasks but the
# last eight have landed (synth-land). Then the next tasks are started and
# finished by hand in both, alternating between the two so that the
# machine's load falls on both alike; medians of eight.
prepare_transition() {
  local n=$1 repo="$WORK/tr$1"
  new_repo "$repo"
  local plan; plan=$(plan_file "tr$n" "$n" 1 synthetic.txt)
  cd "$repo"
  git orch start "$plan" >/dev/null
  git orch synth-land "tr$n" -n $((n - 8)) >/dev/null
  cd - >/dev/null
}
# one_transition N I: prints "start_ms done_ms" for task tI of the N-task repo.
one_transition() {
  local n=$1 i=$2 t0 t1 t2 wt
  cd "$WORK/tr$n"
  t0=$(now_ms); wt=$(git orch task start "t$i" 2>/dev/null); t1=$(now_ms)
  mkdir -p "$wt/out" && echo x >"$wt/out/t$i.txt"
  git orch task done "t$i" >/dev/null 2>&1; t2=$(now_ms)
  cd - >/dev/null
  awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {print b - a, c - b}'
}
synth0=$(now_ms)
prepare_transition 10
prepare_transition "$BIG"
synth1=$(now_ms)
: >"$WORK/small" && : >"$WORK/large"
for k in $(seq 1 8); do
  one_transition 10 $((2 + k)) >>"$WORK/small"
  one_transition "$BIG" $((BIG - 8 + k)) >>"$WORK/large"
done
s10=$(cut -d' ' -f1 "$WORK/small" | median); d10=$(cut -d' ' -f2 "$WORK/small" | median)
sbig=$(cut -d' ' -f1 "$WORK/large" | median); dbig=$(cut -d' ' -f2 "$WORK/large" | median)
printf '  task start: 10 tasks %7.1f ms, %d tasks %7.1f ms  (%sx)\n' "$s10" "$BIG" "$sbig" "$(ratio "$sbig" "$s10")"
printf '  task done:  10 tasks %7.1f ms, %d tasks %7.1f ms  (%sx)\n' "$d10" "$BIG" "$dbig" "$(ratio "$dbig" "$d10")"
printf '  (the two histories took %.0f s to synthesise)\n' "$(awk -v a="$synth0" -v b="$synth1" 'BEGIN {print (b - a) / 1000}')"
echo

echo "## status and report of a finished $BIG-task plan (targets: status --json ≤ 150 ms, report --format json ≤ 1 s)"
cd "$WORK/tr$BIG"
git orch checkpoint "tr$BIG" >/dev/null
rp=$(median_ms 5 git rev-parse HEAD)
st=$(median_ms 5 git orch status "tr$BIG" --json)
rep=$(median_ms 3 git orch report "tr$BIG" --format json)
logms=$(median_ms 3 git log --oneline "orch/tr$BIG/state")
printf '  git rev-parse HEAD                 %8.1f ms\n' "$rp"
printf '  git orch status --json             %8.1f ms\n' "$st"
printf '  git log --oneline of the state     %8.1f ms\n' "$logms"
printf '  git orch report --format json      %8.1f ms  (%sx of git log)\n' "$rep" "$(ratio "$rep" "$logms")"
printf '  state objects                      %8s MB over %d state commits\n' "$(mb "$(state_bytes "tr$BIG")")" "$(git rev-list --count "orch/tr$BIG/state")"
cd - >/dev/null
