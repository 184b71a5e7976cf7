#!/usr/bin/env bash
# Leak check (docs/RELIABILITY.md): runs the `lifecycle` child scenario of
# tests/host_abuse.rs (two instances: create, activate, first sound, reactivate at
# another rate, destroy) under valgrind against the debug-assertion build of the
# plugin that `cargo test` made, and fails on any "definitely lost" or
# "indirectly lost" byte. "Possibly lost" and "still reachable" are allowed:
# ONNX Runtime's process-wide environment and nice-plug's background worker live
# until exit by design.
#
# Run after `cargo test` (it reuses that build). GROWN_LEAK_SCENARIO picks another
# child scenario; GROWN_LEAK_TIMEOUT_S bounds the run (default 470 s).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
scenario="${GROWN_LEAK_SCENARIO:-lifecycle}"
limit="${GROWN_LEAK_TIMEOUT_S:-470}"

command -v valgrind >/dev/null || {
    echo "leak check: valgrind is not installed (.ci/run installs it)" >&2
    exit 1
}
# cargo names the test executable it built (up to date after `cargo test`).
exe=$(cargo test --test host_abuse --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*host_abuse-[0-9a-f]*\)).*/\1/p' | tail -1)
[[ -x "$exe" ]] || {
    echo "leak check: could not find the host_abuse test executable" >&2
    exit 1
}
library="$(dirname "$exe")/libgrown.so"
ort="$target/onnxruntime/libonnxruntime.so.1.31.1"
for f in "$library" "$ort"; do
    [[ -f "$f" ]] || {
        echo "leak check: $f is missing (run cargo xtask fetch-ort, then cargo test)" >&2
        exit 1
    }
done

log="$target/leak-check.log"
started=$SECONDS
status=0
GROWN_ABUSE_CHILD="$scenario" GROWN_ABUSE_TIMEOUT_S=600 GROWN_ABUSE_LIBRARY="$library" \
    ORT_DYLIB_PATH="$ort" timeout "$limit" \
    valgrind --leak-check=full --log-file="$log" \
    "$exe" --exact child_scenario --test-threads=1 --nocapture || status=$?
echo "leak check: valgrind on '$scenario' took $((SECONDS - started)) s (log: $log)"
if ((status == 124)); then
    echo "leak check: timed out after $limit s" >&2
    exit 1
elif ((status != 0)); then
    echo "leak check: the scenario failed under valgrind (exit $status)" >&2
    tail -40 "$log" >&2
    exit 1
fi

# "All heap blocks were freed" replaces the summary when nothing is left at all.
if grep -q "All heap blocks were freed" "$log"; then
    echo "leak check: no leaks"
    exit 0
fi
bytes() {
    grep -E "==[0-9]+==[[:space:]]+$1 lost:" "$log" | tail -1 | awk '{gsub(",", "", $4); print $4}'
}
definite=$(bytes definitely)
indirect=$(bytes indirectly)
grep -A7 "LEAK SUMMARY" "$log" || true
if [[ -z "$definite" || -z "$indirect" ]]; then
    echo "leak check: no LEAK SUMMARY in $log" >&2
    exit 1
fi
if ((definite > 0 || indirect > 0)); then
    echo "leak check: FAILED: definitely lost $definite B, indirectly lost $indirect B" >&2
    grep -B2 -A25 "definitely lost in\|indirectly lost in" "$log" | head -120 >&2
    exit 1
fi
echo "leak check: definitely lost 0 B, indirectly lost 0 B"
