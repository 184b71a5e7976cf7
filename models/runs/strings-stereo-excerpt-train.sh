#!/usr/bin/env bash
# strings_stereo as an excerpt-seeded stft-ms model (contract 2): it carries the loudest 6 s of
# strings.ogg's mid/side STFT and regrows a passage of it from seed noise and damage, because
# grown from noise it grew an unvoiced wash (issue 16). Re-running resumes from the checkpoint.
# Usage: runs/strings-stereo-excerpt-train.sh
{
STREAM=strings_stereo RUN=stereo-excerpt NICE=10
source "$(dirname "${BASH_SOURCE[0]}")/train-stream-common.sh"
echo "=== strings_stereo $(date -Is)" >>"runs/$RUN/strings_stereo.log"
nice -n "$NICE" "$PY" -P -m grown_train.stftms train --target targets/strings.ogg --out "runs/$RUN/strings_stereo.onnx" \
  --credit "$STRINGS" --license "Public Domain" --seed-kind excerpt --frames 64 --seed-std 0.05 \
  --iters 600 --lr 2e-3 --threads 2 --time-budget 60 --log-every 10 --checkpoint-dir "runs/$RUN" \
  >>"runs/$RUN/strings_stereo.log" 2>&1
echo "=== strings_stereo exit $? $(date -Is)" >>"runs/$RUN/strings_stereo.log"
exit
}
