#!/usr/bin/env bash
# Trains the five shipped models sequentially (resumable: re-run to continue).
# Usage: models/train_all.sh [extra train options...]   e.g. --iters 30 --frames 32 for a quick pass.
# Environment: PYTHON (interpreter with grown_train's deps), RUNS (checkpoint/log dir).
set -u
cd "$(dirname "$0")"
PY=${PYTHON:-python}
RUNS=${RUNS:-runs}
mkdir -p "$RUNS" nca
# Train from a frozen copy of the package: other people keep editing grown_train/
# while these hour-long runs go on, and each run re-imports it.
SNAP="$(cd "$RUNS" && pwd)/pkg-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$SNAP" && cp -r grown_train "$SNAP/" && rm -rf "$SNAP/grown_train/tests"
export PYTHONPATH="$SNAP"
train() {
  local name=$1 target=$2 credit=$3 license=$4
  shift 4
  echo "=== $name $(date -Is)" >>"$RUNS/$name.log"
  nice -n "${NICE:-19}" "$PY" -P -m grown_train train --target "targets/$target" --out "nca/$name.onnx" \
    --checkpoint-dir "$RUNS" --credit "$credit" --license "$license" "$@" >>"$RUNS/$name.log" 2>&1
  echo "=== $name exit $? $(date -Is)" >>"$RUNS/$name.log"
}
# Only train the names given in ONLY (space-separated), default all five.
ONLY=${ONLY:-"strings trumpet robin chord clicks"}
want() { case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
want strings && train strings strings.ogg "strings.ogg — Johannes Brahms, Hungarian Dance No. 5 / US Army Strings (Musopen)" "Public Domain" "$@"
want trumpet && train trumpet trumpet.ogg "trumpet.ogg — Mihai Sorohan (Freesound 77711)" "CC-BY 3.0" "$@"
want robin && train robin robin.ogg "robin.ogg — InspectorJ (Freesound 456440)" "CC-BY 3.0" "$@"
want chord && train chord chord.wav "chord.wav — synthetic A minor triad + octave (grown_train.synth)" "CC0-1.0" "$@"
want clicks && train clicks clicks.wav "clicks.wav — synthetic 4 clicks/s (grown_train.synth)" "CC0-1.0" "$@"
