# Shared by the training records beside it in runs/ (source it; not run on its own): a frozen copy of the package per training
# stream, so later edits in grown_train/ do not leak into a running stream, and `train NAME TARGET CREDIT LICENSE
# ARGS...`, which appends to runs/$RUN/NAME.log and writes runs/$RUN/NAME.onnx with the common settings.
# Needs RUN (output folder under runs/), NICE (nice level) and the stream name as $1 of the caller.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=/root/.cache/grown/venv-1f192627d16d4ac0/bin/python
mkdir -p "runs/$RUN"
SNAP="$(pwd)/runs/pkg-$RUN-$STREAM-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$SNAP" && cp -r grown_train "$SNAP/" && rm -rf "$SNAP/grown_train/tests"
export PYTHONPATH="$SNAP"
COMMON="--hidden 64 --batch 3 --pool-size 96 --min-steps 24 --max-steps 48 --threads 1 --checkpoint-every 10 --preview-every 25 --checkpoint-dir runs/$RUN"
train() {
  local name=$1 target=$2 credit=$3 license=$4
  shift 4
  echo "=== $name $(date -Is) $*" >>"runs/$RUN/$name.log"
  nice -n "$NICE" "$PY" -P -m grown_train train --target "targets/$target" --out "runs/$RUN/$name.onnx" \
    --credit "$credit" --license "$license" $COMMON "$@" >>"runs/$RUN/$name.log" 2>&1
  echo "=== $name exit $? $(date -Is)" >>"runs/$RUN/$name.log"
}
STRINGS="strings.ogg — Johannes Brahms, Hungarian Dance No. 5 / US Army Strings (Musopen)"
TRUMPET="trumpet.ogg — Mihai Sorohan (Freesound 77711)"
ROBIN="robin.ogg — InspectorJ (Freesound 456440)"
CLICKS="clicks.wav — synthetic 4 clicks/s (grown_train.synth)"
CHORD="chord.wav — synthetic A minor triad + octave (grown_train.synth)"
