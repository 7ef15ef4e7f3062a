#!/usr/bin/env bash
# What the git-orch pre-push hook costs when every gate is cached.
#
# Makes a throwaway repository with a started plan (one gate that sleeps 1s
# and counts its runs) and a bare remote, fills the gate cache once, then
# times N pushes of a new commit on the plan's work branch (same tree, so
# every gate is cached) through the installed hook, against N pushes of the
# same kind of commit with no hook at all. Prints both medians and the ratio.
#
# Usage: scripts/bench-prepush.sh [N]      (default 10)
set -euo pipefail

n=${1:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bin=$target/release/git-orch

if ! (cd "$root" && cargo build --release --quiet); then
	if [ -x "$bin" ]; then
		echo "warning: release build failed; timing the existing $bin" >&2
	else
		echo "error: cannot build $bin" >&2
		exit 1
	fi
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/git-orch-bench.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/home"
ln -s "$bin" "$tmp/bin/git-orch"
export PATH="$tmp/bin:$PATH" HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL="$tmp/home/.gitconfig"
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
unset ORCH_SKIP_GATES GIT_DIR GIT_WORK_TREE

marker=$tmp/gate-runs
git init -q --bare "$tmp/remote.git"
git init -q -b main "$tmp/repo"
cd "$tmp/repo"
echo hello >README
git add README
git commit -q -m initial
git remote add origin "$tmp/remote.git"
cat >"$tmp/plan.toml" <<EOF
name = "bench"
[[gates]]
name = "slow"
run = "echo ran >> '$marker'; sleep 1"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "t"
  files = ["**"]
EOF
git orch start "$tmp/plan.toml" >/dev/null 2>&1
git orch gate >/dev/null 2>&1 # fills the cache for this tree
git orch hook install >/dev/null 2>&1
git checkout -q orch/bench/work
git push -q origin orch/bench/work 2>/dev/null
git push -q --no-verify origin main:refs/heads/plain 2>/dev/null
runs_before=$(wc -l <"$marker")

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# push_times REF: N times, a new commit (same tree) on the checked-out branch
# pushed to REF; prints one duration in ms per line.
push_times() {
	local ref=$1 i t0 t1
	for ((i = 0; i < n; i++)); do
		git commit -q --allow-empty -m "bench $i"
		t0=$(now_ms)
		git push -q origin "HEAD:$ref" 2>/dev/null
		t1=$(now_ms)
		echo $((t1 - t0))
	done
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# Sanity: the hook runs and finds the gate cached.
git commit -q --allow-empty -m "bench check"
check=$(git push origin HEAD:refs/heads/orch/bench/work 2>&1)
if ! grep -q cached <<<"$check"; then
	echo "$check" >&2
	echo "error: the pushed commit was not checked against the cache" >&2
	exit 1
fi

hooked=$(push_times refs/heads/orch/bench/work | median)
if [ "$(wc -l <"$marker")" != "$runs_before" ]; then
	echo "error: a cached gate ran during the benchmark" >&2
	exit 1
fi
git orch hook uninstall >/dev/null 2>&1
bare=$(push_times refs/heads/plain | median)

echo "pre-push, every gate cached: median ${hooked} ms over $n pushes"
echo "bare git push, no hook:      median ${bare} ms over $n pushes"
awk -v h="$hooked" -v b="$bare" 'BEGIN { printf "ratio: %.2fx (+%.0f ms per push)\n", h / b, h - b }'
