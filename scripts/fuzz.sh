#!/usr/bin/env bash
# Fuzzes plan parsing and validation (fuzz/fuzz_targets/plan.rs) with
# cargo-fuzz for SECONDS (default 60), starting from the seed corpus in
# fixtures/fuzz/plan. New inputs go to fuzz/corpus/plan (not committed); a
# crash leaves its input in fuzz/artifacts/plan/ and exits non-zero.
#
# Needs `cargo install cargo-fuzz`. cargo-fuzz passes nightly-only flags to
# rustc (-Zsanitizer=address, …); RUSTC_BOOTSTRAP=1 lets a stable toolchain
# accept them, so no nightly is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "error: cargo-fuzz is not installed; run \`cargo install cargo-fuzz\`" >&2
  exit 2
fi
mkdir -p fuzz/corpus/plan
RUSTC_BOOTSTRAP=1 cargo fuzz run plan fuzz/corpus/plan fixtures/fuzz/plan -- \
  -max_total_time="$seconds" -timeout=10 -print_final_stats=1
