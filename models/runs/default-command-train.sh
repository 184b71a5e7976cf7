#!/usr/bin/env bash
# Issue 16, item 3: strings, trumpet and robin trained with exactly the default command
# (`python -m grown_train train --target AUDIO --out MODEL.onnx`, no other flags), timed, from a
# frozen copy of the package. A stopped run resumes from its checkpoint when started again; every
# run's wall time is added to models/default-command/runs.json, and a finished model is calibrated
# (level only) into models/default-command/NAME.onnx, where `eval` hears it beside the shipped one.
# Usage: runs/default-command-train.sh strings|trumpet|robin
{
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NAME=$1
PY=${GROWN_PYTHON:-/root/.cache/grown/venv-1f192627d16d4ac0/bin/python}
SNAP="$(pwd)/runs/pkg-default-$NAME-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$SNAP" runs/default default-command && cp -r grown_train "$SNAP/" && rm -rf "$SNAP/grown_train/tests"
case $NAME in strings) T=strings.ogg ;; trumpet) T=trumpet.ogg ;; robin) T=robin.ogg ;; *) echo "strings|trumpet|robin"; exit 2 ;; esac
echo "=== $NAME $(date -Is)" >>"runs/default/$NAME.log"
START=$(date +%s)
PYTHONPATH="$SNAP" "$PY" -P -m grown_train train --target "targets/$T" --out "runs/default/$NAME.onnx" >>"runs/default/$NAME.log" 2>&1
CODE=$?
WALL=$(( $(date +%s) - START ))
echo "=== $NAME exit $CODE after $WALL s wall $(date -Is)" >>"runs/default/$NAME.log"
"$PY" - "$NAME" "$WALL" "$CODE" <<'PY'
import json, sys
from pathlib import Path
name, wall, code = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
path = Path("default-command/runs.json")
record = json.loads(path.read_text()) if path.exists() else {}
run = record.setdefault(name, {"iterations": 0, "wall_s": 0, "segments_s": []})
run["segments_s"].append(wall)
run["wall_s"] = sum(run["segments_s"])
if code == 0:
    from grown_train.train import TrainConfig
    run["iterations"] = TrainConfig().iters
path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
PY
if [ "$CODE" = 0 ]; then
    cp "runs/default/$NAME.onnx" "default-command/$NAME.onnx"
    PYTHONPATH="$(pwd)" "$PY" -m grown_train calibrate --models "default-command/$NAME.onnx"
fi
exit
}
