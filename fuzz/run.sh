#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 30 s each): `bash fuzz/run.sh [SECONDS]`.
#
# * Installs cargo-fuzz through crates.io when it is missing.
# * Uses the nightly toolchain when rustup has one; otherwise stable with
#   RUSTC_BOOTSTRAP=1 (cargo-fuzz passes nightly-only -Z flags to rustc).
# * Builds without a sanitizer (`--sanitizer none`): the targets call safe Rust
#   only, where AddressSanitizer finds nothing a panic would not, and it would
#   cost another full instrumented build of every dependency.
# * Builds in its own target dir, kept in the CI cache between runs, so the
#   instrumented build does not invalidate the main target dir's cache.
# * Seeds the corpora from the committed seeds and the shipped models; a crash
#   stops the run, keeps the input under fuzz/artifacts/ and fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${1:-30}"
cache="${GROWN_CACHE:-$HOME/.cache/grown}"
export CARGO_TARGET_DIR="${GROWN_FUZZ_TARGET:-$cache/fuzz-target}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (one time)"
    cargo install --locked cargo-fuzz
fi
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/state_restore" "$work/model_metadata"
cp fuzz/corpus/state_restore/* "$work/state_restore/"
cp models/nca/*.onnx models/testdata/*.onnx "$work/model_metadata/"

cargo "${toolchain[@]}" fuzz build --sanitizer none
for target in state_restore model_metadata; do
    echo "==> fuzzing $target for ${seconds}s"
    # -rss_limit_mb: a parser that allocates without bound is a bug too.
    cargo "${toolchain[@]}" fuzz run --sanitizer none "$target" "$work/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=1024 -max_len=65536 -print_final_stats=1
done
