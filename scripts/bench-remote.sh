#!/usr/bin/env bash
# One plan, many machines: what sharing a plan through a git remote buys and
# costs, over a `git daemon` on 127.0.0.1 (receive-pack enabled).
#
# 1. Speed-up: 24 tasks that each sleep 2 s (disjoint files), run by one
#    runner (`run --remote origin -j 1`) and then, on a fresh copy, by three
#    runners in three clones at once (each `-j 1`): wall time of each, ratio.
# 2. Claim round trip: the time of one remote claim (fetch the state, claim,
#    push state + task branch + lease under leases, as `ORCH_TRACE=1` reports
#    `remote task-claimed`), median over the tasks of one run, against a raw
#    `git fetch` of the same refs plus `git push --atomic --force-with-lease`
#    of three refs, median over as many tries.
#    Both sides without the relay (`orch.relay = false`): the floor uses the
#    same transport and connection set-up as git-orch. The claim through
#    the relay is printed beside it.
# 3. A slow remote (issue 22): an ssh stand-in whose every connection
#    waits SLOW_DELAY (0.5 s) and then runs git's command here
#    (`GIT_SSH_COMMAND`, `GIT_SSH_VARIANT=simple`), SLOW_TASKS (32) tasks
#    of 2 s, one runner against SLOW_RUNNERS (8): wall times, speed-up,
#    tasks landed per runner, and lost races per state change.
# Prints the figures and ratios measured in this run; asserts nothing.
#
# Usage: scripts/bench-remote.sh [TASKS] [SECONDS]   (default 24 2)
#        GIT_ORCH_BIN=path/to/git-orch skips the release build;
#        BENCH_SLOW=0 skips part 3.
set -euo pipefail

tasks=${1:-24}
pause=${2:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bin=${GIT_ORCH_BIN:-$target/release/git-orch}

if [ -z "${GIT_ORCH_BIN:-}" ] && ! (cd "$root" && cargo build --release --quiet); then
	if [ -x "$bin" ]; then
		echo "warning: release build failed; timing the existing $bin" >&2
	else
		echo "error: cannot build $bin" >&2
		exit 1
	fi
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/git-orch-bench-remote.XXXXXX")
daemon=
cleanup() {
	if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; fi
	rm -rf -- "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/bin" "$tmp/home" "$tmp/srv"
ln -s "$bin" "$tmp/bin/git-orch"
export PATH="$tmp/bin:$PATH" HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL="$tmp/home/.gitconfig"
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
export LC_ALL=C
unset ORCH_SKIP_GATES GIT_DIR GIT_WORK_TREE

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# git-daemon itself: killing the `git daemon` wrapper would leave it running.
"$(git --exec-path)/git-daemon" --reuseaddr --listen=127.0.0.1 --port="$port" --export-all \
	--enable=receive-pack --base-path="$tmp/srv" "$tmp/srv" 2>/dev/null &
daemon=$!

now() { date +%s.%N; }

# The slow-ssh stand-in: a hosted remote's cost per connection, then git's
# own command (`git-upload-pack '/path'`), run here. `simple`: git passes
# the host and the command only.
cat >"$tmp/bin/slow-ssh" <<SSH
#!/bin/sh
for last; do :; done
sleep ${SLOW_DELAY:-0.5}
exec sh -c "\$last"
SSH
chmod +x "$tmp/bin/slow-ssh"
export GIT_SSH_COMMAND=slow-ssh GIT_SSH_VARIANT=simple

plan() { # NAME PAUSE
	{
		echo "name = \"$1\""
		echo '[[phases]]'
		echo 'id = "one"'
		for i in $(seq 1 "$tasks"); do
			echo '  [[phases.tasks]]'
			echo "  id = \"t$i\""
			echo "  files = [\"f$i.txt\"]"
			echo "  run = \"sleep $2; echo $i > f$i.txt\""
		done
	} >"$tmp/$1.toml"
}

# A fresh server named $1 with the plan started and published, and $2
# clones; $3 `ssh` reaches it through the slow-ssh stand-in.
setup() {
	local srv=$1 n=$2
	git init -q --bare -b main "$tmp/srv/$srv.git"
	local url="git://127.0.0.1:$port/$srv.git"
	if [ "${3:-}" = ssh ]; then url="ssh://bench@stand-in$tmp/srv/$srv.git"; fi
	for i in $(seq 0 $((n - 1))); do
		local c=$tmp/$srv-c$i
		git init -q -b main "$c"
		git -C "$c" remote add origin "$url"
		git -C "$c" config orch.machine "m$i"
		if [ "$i" = 0 ]; then
			echo hello >"$c/README"
			git -C "$c" add README
			git -C "$c" commit -q -m initial
			git -C "$c" push -q origin main
			(cd "$c" && git orch start "$tmp/p.toml" >/dev/null 2>&1 && git orch sync p --remote origin >/dev/null 2>&1)
		else
			git -C "$c" pull -q origin main
			# A plan from another machine runs only once its user approves it.
			(cd "$c" && git orch sync p --remote origin >/dev/null 2>&1 && git orch trust p --yes >/dev/null 2>&1)
		fi
	done
}

git init -q --bare "$tmp/srv/probe.git"
for _ in $(seq 1 200); do
	git ls-remote "git://127.0.0.1:$port/probe.git" >/dev/null 2>&1 && break
	sleep 0.05
done

# 1. Three runners against one.
plan p "$pause"
setup one 1
t0=$(now)
(cd "$tmp/one-c0" && ORCH_TRACE=1 git orch run p --remote origin -j 1 >"$tmp/one.log" 2>&1)
t1=$(now)
setup three 3
t2=$(now)
pids=()
for i in 0 1 2; do
	(cd "$tmp/three-c$i" && ORCH_TRACE=1 git orch run p --remote origin -j 1 >"$tmp/runner$i.log" 2>&1) &
	pids+=($!)
done
for i in 0 1 2; do
	if ! wait "${pids[$i]}"; then
		echo "warning: runner $i failed; the end of its output:" >&2
		grep -v '^trace: ' "$tmp/runner$i.log" | tail -5 >&2
	fi
done
if [ -n "${BENCH_KEEP:-}" ]; then
	mkdir -p "$BENCH_KEEP" && cp "$tmp"/runner*.log "$tmp/one.log" "$BENCH_KEEP"/
fi
t3=$(now)
landed=$(git -C "$tmp/srv/three.git" log --format=%s orch/p/work | grep -c '^orch: land task' || true)

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# 2. Claim round trips (tasks that do nothing), then the raw git equivalent,
# neither through the relay; then git-orch's through the relay, for show.
plan p 0
setup relayed 1
(cd "$tmp/relayed-c0" && ORCH_TRACE=1 git orch run p --remote origin -j 1 2>"$tmp/trace-relayed" >/dev/null)
relayed=$(grep 'trace: remote task-claimed ' "$tmp/trace-relayed" | awk '{print $4}' | tr -d 'ms' | median)
setup claims 1
git -C "$tmp/claims-c0" config orch.relay false
(cd "$tmp/claims-c0" && ORCH_TRACE=1 git orch run p --remote origin -j 1 2>"$tmp/trace" >/dev/null)
claim=$(grep 'trace: remote task-claimed ' "$tmp/trace" | awk '{print $4}' | tr -d 'ms' | median)
c=$tmp/claims-c0
state=$(git -C "$c" rev-parse refs/heads/orch/p/state)
tree=$(git -C "$c" rev-parse "$state^{tree}")
: >"$tmp/raw"
for i in $(seq 1 "$tasks"); do
	s=$(now)
	git -C "$c" fetch -q --no-tags --no-write-fetch-head origin \
		"+refs/heads/orch/p/*:refs/remotes/origin/orch/p/*" "+refs/tags/orch/p/*:refs/tags/orch/p/*"
	old=$(git -C "$c" rev-parse -q --verify refs/remotes/origin/orch/raw/state || true)
	new=$(echo "raw $i" | git -C "$c" commit-tree "$tree" ${old:+-p "$old"})
	git -C "$c" push -q --atomic --porcelain \
		"--force-with-lease=refs/heads/orch/raw/state:$old" \
		"--force-with-lease=refs/heads/orch/raw/tasks/t:" \
		"--force-with-lease=refs/heads/orch/raw/leases/t:" \
		origin "$new:refs/heads/orch/raw/state" "$new:refs/heads/orch/raw/tasks/t" \
		"$new:refs/heads/orch/raw/leases/t" >/dev/null
	git -C "$c" update-ref refs/remotes/origin/orch/raw/state "$new"
	e=$(now)
	echo "$s $e" | awk '{printf "%.1f\n", ($2-$1)*1000}' >>"$tmp/raw"
	# Untimed: the next try creates them again.
	git -C "$c" push -q origin :refs/heads/orch/raw/tasks/t :refs/heads/orch/raw/leases/t >/dev/null 2>&1
done
raw=$(median <"$tmp/raw")

# 3. A slow remote: one runner against a fleet, through the slow-ssh stand-in.
# Runs the fleet on server $1 ($2 runners); prints its wall time in seconds.
fleet() {
	local srv=$1 n=$2 s e i pids=()
	s=$(now)
	for i in $(seq 0 $((n - 1))); do
		(cd "$tmp/$srv-c$i" && ORCH_TRACE=1 git orch run p --remote origin -j 1 >"$tmp/$srv-r$i.log" 2>&1) &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		if ! wait "${pids[$i]}"; then
			echo "warning: runner $i on $srv failed; the end of its output:" >&2
			grep -v '^trace: ' "$tmp/$srv-r$i.log" | tail -5 >&2
		fi
	done
	e=$(now)
	echo "$s $e" | awk '{printf "%.1f\n", $2-$1}'
}
slow_line="slow remote: skipped (BENCH_SLOW=0)"
if [ "${BENCH_SLOW:-1}" != 0 ]; then
	slow_tasks=${SLOW_TASKS:-32}
	slow_runners=${SLOW_RUNNERS:-8}
	tasks=$slow_tasks
	plan p 2
	setup slow1 1 ssh
	one_slow=$(fleet slow1 1)
	setup slown "$slow_runners" ssh
	n_slow=$(fleet slown "$slow_runners")
	per_runner=$(for i in $(seq 0 $((slow_runners - 1))); do grep -c '^trace: land ' "$tmp/slown-r$i.log" || true; done | tr '\n' ' ')
	lost=$(cat "$tmp"/slown-r*.log | grep -c '^trace: lost race' || true)
	changes=$(git -C "$tmp/srv/slown.git" rev-list --count orch/p/state)
	slow_line=$(python3 - "$one_slow" "$n_slow" "$slow_runners" "$slow_tasks" "$per_runner" "$lost" "$changes" "${SLOW_DELAY:-0.5}" <<'PY'
import sys
one, many = float(sys.argv[1]), float(sys.argv[2])
runners, tasks, per, lost, changes, delay = sys.argv[3], sys.argv[4], sys.argv[5].split(), int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
print(f"slow remote (ssh stand-in, {delay} s a connection), {tasks} tasks of 2s")
print(f"  1 runner:  {one:6.1f}s")
print(f"  {runners} runners: {many:6.1f}s   speed-up {one / many:.2f}x (target >= 5x)")
print(f"  landed per runner: {' '.join(per)}   (target: each >= 2)")
print(f"  lost races: {lost} over {changes} state changes = {lost / max(changes, 1):.2f} per change (target <= 1)")
PY
)
	tasks=${1:-24}
fi

python3 - "$t0" "$t1" "$t2" "$t3" "$claim" "$raw" "$tasks" "$pause" "$landed" "$relayed" <<'EOF'
import sys
t0, t1, t2, t3, claim, raw = map(float, sys.argv[1:7])
tasks, pause, landed, relayed = sys.argv[7], sys.argv[8], sys.argv[9], float(sys.argv[10])
one, three = t1 - t0, t3 - t2
print(f"{tasks} tasks of {pause}s over git daemon on 127.0.0.1")
print(f"  1 runner:  {one:6.1f}s")
print(f"  3 runners: {three:6.1f}s   ({landed} landed)   speed-up {one / three:.2f}x (target >= 2.7x)")
print(f"remote claim round trip (median), no relay: {claim:6.1f} ms")
print(f"raw git fetch + push --force-with-lease of 3 refs, no relay: {raw:6.1f} ms   ratio {claim / raw:.2f}x (target <= 1.5x)")
print(f"remote claim round trip through the relay (for comparison): {relayed:6.1f} ms")
EOF
echo "$slow_line"
