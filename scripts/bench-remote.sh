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
# Prints the figures and ratios measured in this run; asserts nothing.
#
# Usage: scripts/bench-remote.sh [TASKS] [SECONDS]   (default 24 2)
#        GIT_ORCH_BIN=path/to/git-orch skips the release build.
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

# A fresh server named $1 with the plan started and published, and $2 clones.
setup() {
	local srv=$1 n=$2
	git init -q --bare -b main "$tmp/srv/$srv.git"
	local url="git://127.0.0.1:$port/$srv.git"
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

# 2. Claim round trips (tasks that do nothing), then the raw git equivalent.
plan p 0
setup claims 1
(cd "$tmp/claims-c0" && ORCH_TRACE=1 git orch run p --remote origin -j 1 2>"$tmp/trace" >/dev/null)
claim=$(grep 'trace: remote task-claimed ' "$tmp/trace" | awk '{print $4}' | tr -d 'ms' | sort -n |
	awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
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
raw=$(sort -n "$tmp/raw" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')

python3 - "$t0" "$t1" "$t2" "$t3" "$claim" "$raw" "$tasks" "$pause" "$landed" <<'EOF'
import sys
t0, t1, t2, t3, claim, raw = map(float, sys.argv[1:7])
tasks, pause, landed = sys.argv[7], sys.argv[8], sys.argv[9]
one, three = t1 - t0, t3 - t2
print(f"{tasks} tasks of {pause}s over git daemon on 127.0.0.1")
print(f"  1 runner:  {one:6.1f}s")
print(f"  3 runners: {three:6.1f}s   ({landed} landed)   speed-up {one / three:.2f}x (target >= 2.7x)")
print(f"remote claim round trip (median): {claim:6.1f} ms")
print(f"raw git fetch + push --force-with-lease of 3 refs: {raw:6.1f} ms   ratio {claim / raw:.2f}x (target <= 1.5x)")
EOF
