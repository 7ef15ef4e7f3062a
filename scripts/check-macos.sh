#!/usr/bin/env bash
# Type-checks git-orch's platform module (src/platform: process start
# times, host name, liveness, signals) for macOS, Intel and Apple silicon,
# from Linux. The whole crate cannot be checked for macOS here (libgit2-sys
# compiles C for the target); the module is built on its own in
# scripts/platform-check with clippy's -D warnings. Needs the two rustup
# targets (added here when missing; skipped, saying so, when they cannot be).
set -euo pipefail
cd "$(dirname "$0")/platform-check"
for target in x86_64-apple-darwin aarch64-apple-darwin; do
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    if ! rustup target add "$target" >/dev/null 2>&1; then
      echo "skipped: the rustup target $target cannot be installed here" >&2
      exit 0
    fi
  fi
  cargo clippy -q --target "$target" -- -D warnings
  echo "src/platform type-checks for $target"
done
