#!/usr/bin/env bash
# git-orch benchmark: its own bookkeeping against the raw git operations it
# is built from, measured in the same run on generated repositories of 1,000
# and 20,000 files. Prints figures and ratios; asserts nothing (machines are
# shared and noisy: read the ratios, run it twice).
#
#   scripts/bench.sh            # everything (a few minutes; the 20k repo dominates)
#   scripts/bench.sh quick      # skip the 20,000-file repository
#   scripts/bench.sh task       # only the per-task floor cases (issue 14)
#   scripts/bench.sh task1k     # only the first of them (1,000 files)
#   scripts/bench.sh agents     # one real Claude Code and Codex attempt, git-orch
#                               # against the CLI alone (issue 21)
#   scripts/bench.sh remote [TASKS] [SECONDS]
#                               # sharing a plan over git daemon (issue 13):
#                               # scripts/bench-remote.sh
#
# Uses the release binary (built if missing) and a scratch dir under $TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-full}
# scripts/bench.sh agents: git-orch's own time around one real Claude Code
# and one Codex attempt against the scripted model server, beside the same
# CLI run alone in the same worktree (issue 21; tests/agent_runs.rs).
if [ "$MODE" = agents ]; then
  exec cargo test --release --all-features -q --test suite agent_runs::bench_agents -- --ignored --nocapture --test-threads 1
fi
if [ "$MODE" = remote ]; then
  shift
  exec scripts/bench-remote.sh "$@"
fi
cargo build --release -q
ORCH="$PWD/target/release/git-orch"
BIN=$(mktemp -d "${TMPDIR:-/tmp}/orch-bench-bin.XXXXXX")
ln -s "$ORCH" "$BIN/git-orch"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/orch-bench.XXXXXX")
trap 'rm -rf "$WORK" "$BIN"' EXIT
export PATH="$BIN:$PATH" NO_COLOR=1 GIT_CONFIG_NOSYSTEM=1 HOME="$WORK/home"
mkdir -p "$HOME"
git config --global user.name bench
git config --global user.email bench@example.com
git config --global init.defaultBranch main
git config --global gc.auto 0

now_ms() { date +%s%N | awk '{printf "%.3f", $1 / 1000000}'; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2] + a[NR/2+1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# make_repo DIR FILES [DIRS]: a repository with FILES small files in DIRS
# directories (100 unless told).
make_repo() {
  local dir=$1 n=$2 dirs=${3:-100}
  mkdir -p "$dir" && cd "$dir"
  git init -q
  awk -v n="$n" -v dirs="$dirs" 'BEGIN { for (i = 0; i < dirs; i++) system("mkdir -p " sprintf("src/d%04d", i)); for (i = 0; i < n; i++) { f = sprintf("src/d%04d/f%05d.txt", i % dirs, i); print "line " i > f; close(f) } }'
  git add -A && git commit -q -m "generated $n files"
  cd - >/dev/null
}

# A plan of N tasks in one phase, each writing its own file.
task_plan() {
  local name=$1 n=$2 cmd=$3 checkout=${4:-full}
  {
    printf 'name = "%s"\n[defaults]\ncheckout = "%s"\n[[phases]]\nid = "p"\n' "$name" "$checkout"
    for i in $(seq 1 "$n"); do
      printf '  [[phases.tasks]]\n  id = "t%d"\n  files = ["out/t%d.txt"]\n  run = "%s"\n' "$i" "$i" "$cmd"
    done
  } > "$WORK/$name.toml"
  echo "$WORK/$name.toml"
}

# raw_floor REPO N: per-task cost of the bare git operations a task needs
# (worktree add --no-checkout, merge-tree + commit-tree + update-ref for the
# landing, a 4-process state commit, worktree remove, branch delete).
raw_floor() {
  local repo=$1 n=$2 samples=()
  cd "$repo"
  local base; base=$(git rev-parse HEAD)
  git branch -f rawwork "$base"
  for i in $(seq 1 "$n"); do
    # The task's own commit, made beforehand: not part of the floor.
    local blob tree c
    blob=$(echo "task $i" | git hash-object -w --stdin)
    tree=$(GIT_INDEX_FILE="$WORK/idx" sh -c "git read-tree $base && git update-index --add --cacheinfo 100644,$blob,out/raw$i.txt && git write-tree")
    c=$(git commit-tree -p "$base" -m "task $i" "$tree")
    local t0; t0=$(now_ms)
    git worktree add -q --no-checkout -b "raw$i" "$WORK/raw$i" "$c"
    local w m mt
    w=$(git rev-parse rawwork)
    mt=$(git merge-tree --write-tree "$w" "$c")
    m=$(git commit-tree -p "$w" -p "$c" -m "land $i" "$mt")
    git update-ref refs/heads/rawwork "$m" "$w"
    local sb st sc
    sb=$(echo "{\"task\": $i}" | git hash-object -w --stdin)
    st=$(printf '100644 blob %s\tstate.json\n' "$sb" | git mktree)
    sc=$(git commit-tree -m "task $i: done" "$st")
    git update-ref refs/heads/rawstate "$sc"
    git worktree remove --force "$WORK/raw$i"
    git branch -q -D "raw$i"
    local t1; t1=$(now_ms)
    samples+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
  done
  cd - >/dev/null
  printf '%s\n' "${samples[@]}" | median
}

# orch_per_task REPO N CHECKOUT: wall time of `git orch run -j 1` over N
# trivial tasks, divided by N (start and the final checkpoint included).
orch_per_task() {
  local repo=$1 n=$2 checkout=$3 name="per$RANDOM"
  local plan; plan=$(task_plan "$name" "$n" 'mkdir -p out && echo x > out/$ORCH_TASK.txt' "$checkout")
  cd "$repo"
  git orch start "$plan" >/dev/null 2>&1
  local t0 t1; t0=$(now_ms)
  git orch run "$name" -j 1 >/dev/null 2>&1
  t1=$(now_ms)
  git orch finish "$name" >/dev/null 2>&1
  cd - >/dev/null
  awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN {printf "%.1f", (b - a) / n}'
}

# landing_ms REPO N: median `trace: land` of N tasks (merge-tree, commit,
# state commit: everything but the task's own commit).
landing_ms() {
  local repo=$1 n=$2 name="land$RANDOM"
  local plan; plan=$(task_plan "$name" "$n" 'mkdir -p out && echo x > out/$ORCH_TASK.txt' sparse)
  cd "$repo"
  git orch start "$plan" >/dev/null 2>&1
  ORCH_TRACE=1 git orch run "$name" -j 1 2>&1 >/dev/null | awk '/^trace: land / {sub("ms", "", $3); print $3}' | median
  git orch finish "$name" >/dev/null 2>&1
  cd - >/dev/null
}

# task_floor REPO N: per-task floor of a task run in a full checkout (issue
# 14): recycle a kept worktree to the work head (`checkout -f -B`), the
# task's one file, `add -A`, `commit`, and the landing (`merge-tree
# --write-tree`, `commit-tree`, `update-ref`), as separate git processes.
task_floor() {
  local repo=$1 n=$2 samples=()
  cd "$repo"
  git branch -f floorwork HEAD
  git worktree add -q --detach "$WORK/floorwt" HEAD
  for i in $(seq 1 "$n"); do
    local t0; t0=$(now_ms)
    local w; w=$(git rev-parse floorwork)
    git -C "$WORK/floorwt" checkout -q -f -B "floor$i" "$w"
    mkdir -p "$WORK/floorwt/out" && echo x > "$WORK/floorwt/out/floor$i.txt"
    git -C "$WORK/floorwt" add -A
    git -C "$WORK/floorwt" commit -q -m "task $i"
    local c mt m
    c=$(git rev-parse "floor$i")
    mt=$(git merge-tree --write-tree "$w" "$c")
    m=$(git commit-tree -p "$w" -p "$c" -m "land $i" "$mt")
    git update-ref refs/heads/floorwork "$m" "$w"
    local t1; t1=$(now_ms)
    samples+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
  done
  git worktree remove --force "$WORK/floorwt"
  cd - >/dev/null
  printf '%s\n' "${samples[@]}" | median
}

# orch_task_trace REPO N: `run -j 1` of N tasks in full checkouts under
# ORCH_TRACE; prints the per-task wall time (the run divided by N, start and
# the first worktree's creation included), then per step the median time,
# the median number of git processes a task starts, and the steady cost of
# a task (median time between two landings, the first task left out).
orch_task_trace() {
  local repo=$1 n=$2 name="trace$RANDOM"
  local plan; plan=$(task_plan "$name" "$n" 'mkdir -p out && echo x > out/$ORCH_TASK.txt' full)
  cd "$repo"
  git orch start "$plan" >/dev/null 2>&1
  local t0 t1; t0=$(now_ms)
  ORCH_TRACE=1 git orch run "$name" -j 1 2>"$WORK/trace.txt" >/dev/null
  t1=$(now_ms)
  git orch finish "$name" >/dev/null 2>&1
  cd - >/dev/null
  awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN {printf "%.1f\n", (b - a) / n}'
  # Steps between two `trace: land` lines belong to one task; the first
  # task (which creates its worktree) is left out.
  awk '
    /^trace: / { sub("ms", "", $(NF-2)); step = $2; for (i = 3; i < NF - 2; i++) if ($i !~ /^-/) step = step "_" $i; else break
                 ms[task, step] += $(NF-2); seen[step] = 1; git = $(NF-1); sub("git#", "", git); t = $NF; sub("t=", "", t) }
    /^trace: land / { gits[task] = git - lastgit; lastgit = git; wall[task] = t - lastt; lastt = t; task++ }
    END { for (k = 1; k < task; k++) { for (s in seen) print s, ms[k, s] + 0; print "git_processes_per_task", gits[k]; print "steady_per_task_ms", wall[k] } }
  ' "$WORK/trace.txt" > "$WORK/steps.raw"
  local s
  for s in $(awk '{print $1}' "$WORK/steps.raw" | sort -u); do
    printf '    %-24s %8.1f\n' "$s" "$(awk -v s="$s" '$1 == s {print $2}' "$WORK/steps.raw" | median)"
  done
}

# first_command_ms REPO: from `run` to the first task's command starting,
# and the `git worktree add` inside that run (a fresh add swings widely).
first_command_ms() {
  local repo=$1 name="first$RANDOM"
  local plan; plan=$(task_plan "$name" 1 "date +%s%N > $WORK/first.ns; mkdir -p out && echo x > out/\$ORCH_TASK.txt" full)
  cd "$repo"
  git orch start "$plan" >/dev/null 2>&1
  local t0; t0=$(now_ms)
  ORCH_TRACE=1 git orch run "$name" -j 1 2>"$WORK/first.txt" >/dev/null
  git orch finish "$name" >/dev/null 2>&1
  cd - >/dev/null
  local add; add=$(awk '/^trace: git worktree add / {sub("ms", "", $5); print $5}' "$WORK/first.txt")
  awk -v a="$t0" -v b="$(cat "$WORK/first.ns")" -v add="${add:-0}" 'BEGIN {printf "%.1f %.1f", b / 1000000 - a, add}'
}

# plain_add_ms REPO: median of three plain `git worktree add`s.
plain_add_ms() {
  local repo=$1 samples=()
  cd "$repo"
  for i in 1 2 3; do
    local t0; t0=$(now_ms)
    git -c checkout.workers=0 worktree add -q --detach "$WORK/add$i" HEAD
    local t1; t1=$(now_ms)
    samples+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
  done
  for i in 1 2 3; do git worktree remove --force "$WORK/add$i"; done
  cd - >/dev/null
  printf '%s\n' "${samples[@]}" | median
}

# wide_adds REPO: 16 tasks at -j 4 in full checkouts; prints the wall time
# and how many fresh `git worktree add`s the run made.
wide_adds() {
  local repo=$1 name="wide$RANDOM"
  local plan; plan=$(task_plan "$name" 16 'mkdir -p out && echo x > out/$ORCH_TASK.txt' full)
  cd "$repo"
  git orch start "$plan" >/dev/null 2>&1
  local t0 t1; t0=$(now_ms)
  ORCH_TRACE=1 git orch run "$name" -j 4 2>"$WORK/wide.txt" >/dev/null
  t1=$(now_ms)
  git orch finish "$name" >/dev/null 2>&1
  cd - >/dev/null
  printf '%.2f %d\n' "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1000}')" "$(grep -c '^trace: git worktree add' "$WORK/wide.txt" || true)"
}

# per_task_case REPO: the floor against `run -j 1`, with the trace, in
# three alternating rounds (floor, run, floor, run, …) so that the load of a
# shared machine falls on both alike; the medians of the rounds.
per_task_case() {
  local repo=$1 floors=() steadies=() orchs=()
  for round in 1 2 3; do
    floors+=("$(task_floor "$repo" 4)")
    orch_task_trace "$repo" 5 > "$WORK/steps$round.txt"
    orchs+=("$(head -1 "$WORK/steps$round.txt")")
    steadies+=("$(awk '$1 == "steady_per_task_ms" {print $2}' "$WORK/steps$round.txt")")
  done
  local floor orch steady
  floor=$(printf '%s\n' "${floors[@]}" | median)
  orch=$(printf '%s\n' "${orchs[@]}" | median)
  steady=$(printf '%s\n' "${steadies[@]}" | median)
  printf '  floor: checkout -f -B, add -A, commit, merge-tree, commit-tree, update-ref  %8.1f ms  (rounds: %s)\n' "$floor" "${floors[*]}"
  printf '  git orch run -j 1, steady per task (between two landings)  %8.1f ms  (%sx; rounds: %s)\n' "$steady" "$(ratio "$steady" "$floor")" "${steadies[*]}"
  printf '  git orch run -j 1, run / tasks (start, first worktree add) %8.1f ms  (%sx)\n' "$orch" "$(ratio "$orch" "$floor")"
  echo "  trace of the last round, median per task:"; tail -n +2 "$WORK/steps3.txt"
  echo
}

task_cases() {
  make_repo "$WORK/t1k" 1000 1000
  echo "## Per task in a full checkout, 1,000 files in 1,000 directories, -j 1 (target: ≤ 1.2x the floor)"
  per_task_case "$WORK/t1k"
  make_repo "$WORK/t20k" 20000 1000
  echo "## Per task in a full checkout, 20,000 files in 1,000 directories, -j 1 (target: ≤ 1.5x the floor)"
  per_task_case "$WORK/t20k"
  echo "## 20,000 files: 16 tasks at -j 4 (target: ≤ 4 fresh worktree adds), first command (target: ≤ 1.2x one add)"
  local add wide first
  add=$(plain_add_ms "$WORK/t20k")
  wide=$(wide_adds "$WORK/t20k")
  first=$(first_command_ms "$WORK/t20k")
  printf '  git worktree add, median of 3      %8.1f ms\n' "$add"
  printf '  16 tasks at -j 4                   %8.2f s, %s fresh worktree adds (%sx of one add)\n' "${wide% *}" "${wide#* }" "$(ratio "${wide% *}" "$(awk -v a="$add" 'BEGIN {print a / 1000}')")"
  printf '  run to first command               %8.1f ms  (%sx of one add; the add in that run: %s ms)\n' "${first% *}" "$(ratio "${first% *}" "$add")" "${first#* }"
}

echo "git-orch benchmark — $(git --version), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
if [ "$MODE" = task ]; then
  task_cases
  exit 0
fi
if [ "$MODE" = task1k ]; then
  make_repo "$WORK/t1k" 1000 1000
  echo "## Per task in a full checkout, 1,000 files in 1,000 directories, -j 1 (target: ≤ 1.2x the floor)"
  per_task_case "$WORK/t1k"
  exit 0
fi
make_repo "$WORK/r1k" 1000

echo "## Per-task overhead, 1,000-file repository (target: ≤ 2x the raw floor)"
raw=$(raw_floor "$WORK/r1k" 10)
full=$(orch_per_task "$WORK/r1k" 16 full)
sparse=$(orch_per_task "$WORK/r1k" 16 sparse)
printf '  raw git floor per task           %8.1f ms\n' "$raw"
printf '  git orch run, checkout = full    %8.1f ms  (%sx)\n' "$full" "$(ratio "$full" "$raw")"
printf '  git orch run, checkout = sparse  %8.1f ms  (%sx)\n' "$sparse" "$(ratio "$sparse" "$raw")"
echo

echo "## status of a 1,000-task plan (target: ≤ 4x one git rev-parse HEAD)"
{
  printf 'name = "big"\n'
  for p in $(seq 1 10); do
    printf '[[phases]]\nid = "p%d"\n' "$p"
    for t in $(seq 1 100); do printf '  [[phases.tasks]]\n  id = "p%dt%d"\n  files = ["p%d/t%d/**"]\n' "$p" "$t" "$p" "$t"; done
  done
} > "$WORK/big.toml"
cd "$WORK/r1k" && git orch start "$WORK/big.toml" >/dev/null 2>&1
rp=(); st=()
for _ in $(seq 1 20); do
  t0=$(now_ms); git rev-parse HEAD >/dev/null; t1=$(now_ms); rp+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
  t0=$(now_ms); git orch status big --json >/dev/null; t1=$(now_ms); st+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
done
cd - >/dev/null
rpm=$(printf '%s\n' "${rp[@]}" | median); stm=$(printf '%s\n' "${st[@]}" | median)
printf '  git rev-parse HEAD               %8.1f ms\n' "$rpm"
printf '  git orch status big --json       %8.1f ms  (%sx)\n' "$stm" "$(ratio "$stm" "$rpm")"
echo

echo "## Parallel speed-up: 8 independent tasks sleeping 1 s (target: ≥ 6x)"
plan=$(task_plan par1 8 'sleep 1; mkdir -p out && echo x > out/$ORCH_TASK.txt' sparse)
sed 's/"par1"/"par8"/' "$plan" > "$WORK/par8.toml"
cd "$WORK/r1k"
git orch start "$plan" >/dev/null 2>&1; t0=$(now_ms); git orch run par1 -j 1 >/dev/null 2>&1; t1=$(now_ms); git orch finish par1 >/dev/null 2>&1
j1=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1000}')
git orch start "$WORK/par8.toml" >/dev/null 2>&1; t0=$(now_ms); git orch run par8 -j 8 >/dev/null 2>&1; t1=$(now_ms); git orch finish par8 >/dev/null 2>&1
j8=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1000}')
cd - >/dev/null
printf '  -j 1  %6.2f s\n  -j 8  %6.2f s   speed-up %sx\n' "$j1" "$j8" "$(ratio "$j1" "$j8")"
echo

l1k=$(landing_ms "$WORK/r1k" 10)
if [ "$MODE" = quick ]; then
  echo "## Landing: 1,000 files ${l1k} ms (quick mode: 20,000-file repository skipped)"
  exit 0
fi

make_repo "$WORK/r20k" 20000
echo "## Landing a task, flat in repository size (target: 20k within 1.5x of 1k)"
l20k=$(landing_ms "$WORK/r20k" 10)
printf '  1,000 files   %6.1f ms\n  20,000 files  %6.1f ms  (%sx)\n' "$l1k" "$l20k" "$(ratio "$l20k" "$l1k")"
echo

echo "## 16 tasks at -j 4, 20,000-file repository (target: ≤ 6 plain worktree adds)"
cd "$WORK/r20k"
head=$(git rev-parse HEAD)
t0=$(now_ms)
for i in 1 2 3 4 5 6; do git -c checkout.workers=0 worktree add -q --detach "$WORK/plain$i" "$head"; done
t1=$(now_ms)
six=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1000}')
for i in 1 2 3 4 5 6; do git worktree remove --force "$WORK/plain$i"; done
cd - >/dev/null
for checkout in full sparse; do
  name="wide$checkout"
  plan=$(task_plan "$name" 16 'mkdir -p out && echo x > out/$ORCH_TASK.txt' "$checkout")
  cd "$WORK/r20k"
  git orch start "$plan" >/dev/null 2>&1
  t0=$(now_ms); git orch run "$name" -j 4 >/dev/null 2>&1; t1=$(now_ms)
  git orch finish "$name" >/dev/null 2>&1
  cd - >/dev/null
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1000}')
  printf '  git orch run -j 4, checkout = %-6s %6.2f s  (%sx of 6 worktree adds)\n' "$checkout" "$secs" "$(ratio "$secs" "$six")"
done
printf '  6 x git worktree add               %6.2f s\n' "$six"
echo
task_cases
