#!/usr/bin/env bash
# Issue 16, item 3: strings, trumpet and robin trained with exactly the default command
# (`python -m grown_train train --target AUDIO --out MODEL.onnx`, no other flags), timed, from a
# frozen copy of the package. Usage: runs/default-command-train.sh strings|trumpet|robin
{
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NAME=$1
PY=/root/.cache/grown/venv-1f192627d16d4ac0/bin/python
SNAP="$(pwd)/runs/pkg-default-$NAME-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$SNAP" runs/default && cp -r grown_train "$SNAP/" && rm -rf "$SNAP/grown_train/tests"
case $NAME in strings) T=strings.ogg ;; trumpet) T=trumpet.ogg ;; robin) T=robin.ogg ;; esac
echo "=== $NAME $(date -Is)" >>"runs/default/$NAME.log"
START=$(date +%s)
PYTHONPATH="$SNAP" "$PY" -P -m grown_train train --target "targets/$T" --out "runs/default/$NAME.onnx" >>"runs/default/$NAME.log" 2>&1
echo "=== $NAME exit $? after $(( $(date +%s) - START )) s wall $(date -Is)" >>"runs/default/$NAME.log"
exit
}
