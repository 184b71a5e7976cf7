#!/usr/bin/env bash
# Session 3 continued training (2026-11-26 ~11:45-12:50 UTC), two streams of one torch thread each, nice 19.
# Outputs go to runs/s3/NAME.onnx (not nca/: a retrained model is only copied into nca/ when EVAL.md says it
# is better); each run starts from the session-2 checkpoint's weights (--init-from) on a wider grid.
# Usage: runs/robin-strings-trumpet-clicks-wider-grid-train.sh A|B|C|R|R2   (stream A: clicks, robin; stream B: strings, trumpet; C, R, R2: the
# later resumes described beside them). What actually ran, in order (UTC): B 11:38 (stopped 11:47, restarted with
# the weights now below), A 11:40 (stopped 11:47, restarted; stopped 11:58 for the marginal-term fix, restarted),
# C 12:16, A stopped 12:28 during robin, R 12:28-12:37, R2 12:37-12:45; B ended 12:46.
# Shipped from this: robin (runs/s3/robin.onnx/.png -> nca/). Not shipped: clicks, strings, trumpet (README).
# Also done (not training): baseline (a) caches for strings/trumpet at 129 frames were built ahead of the eval
# with eval.py's own notebook_config/cache_path/train_notebook (unused, since those two stay at 48 frames);
# chord.onnx and clicks.onnx were re-exported from runs/chord-37f7da2a.pt and runs/clicks-4cb9bcdb.pt through
# grown_train.export.export_onnx with their files' own metadata (padded 104-channel features, bit-identical output).
# Then: nice -n 19 python -m grown_train eval --extra-baseline trumpet:250
RUN=s3 NICE=19 STREAM=$1
# shellcheck source=train-stream-common.sh
source "$(dirname "$0")/train-stream-common.sh"
case "$1" in
B)
  # Weights 10: on these nearly event-free fields the acf/marginal gradients are ~10x (acf: 10-40x) smaller than
  # the Gram/L1 ones (the first 50 iterations at weight 1-2 did not move them; the runs were stopped and resumed
  # from their iteration-50 checkpoints with these weights, which is what this script now does from scratch).
  # strings/trumpet were only trained at 48 frames (rhythm term off); 129 frames = 1.5 s turns on lags 0.2-0.5 s.
  train strings strings.ogg "$STRINGS" "Public Domain" --frames 129 --lr 3e-3 --iters 400 --w-acf 10 \
    --time-budget 28 --init-from runs/strings-fba9d505.pt
  train trumpet trumpet.ogg "$TRUMPET" "CC-BY 3.0" --frames 129 --lr 3e-3 --iters 400 --w-acf 10 \
    --time-budget 30 --init-from runs/trumpet-f3cde83b.pt
  ;;
A)
  # (weights 10: see stream B.) clicks grew a flat field (ACF stuck at 0.21): the new marginal term (1-D OT of per-band frame values)
  # has a gradient that splits a flat field into loud and quiet frames. A first try (150 iterations, the broadband
  # row at 1/81 of the term) grew per-cell speckles instead of clicks, so the term now weighs the broadband row as
  # much as all bands together and clicks restarts (--fresh) from the session-2 weights.
  train clicks clicks.wav "$CLICKS" "CC0-1.0" --frames 86 --lr 3e-3 --iters 400 --w-marginal 10 --w-acf 10 \
    --time-budget 22 --fresh --init-from runs/clicks-4cb9bcdb.pt
  # robin's seeds were 3x as diverse as the recording's (overlapping, 154-frame) evaluation crops: at 86 frames
  # the median crop distance is 2.23 nats^2, the evaluation's reference 0.65, so keep seeds at 0.27-0.30 medians.
  train robin robin.ogg "$ROBIN" "CC-BY 3.0" --frames 86 --lr 3e-3 --iters 400 --w-diversity 1 \
    --diversity-low 0.27 --diversity-high 0.3 --time-budget 24 --init-from runs/robin-efc97428.pt
  ;;
C)
  # Third process (12:16, once the baseline-(a) caches below were built): strings reached eval ACF 0.4076 at
  # iteration 250 (baseline (a) at 129 frames: 0.4097, so < 1% better); resume the same run with the rhythm
  # term weighted 3x more. Its Gram/L1/diversity margins over (a) are wide.
  train strings strings.ogg "$STRINGS" "Public Domain" --frames 129 --lr 3e-3 --iters 400 --w-acf 30 \
    --time-budget 25 --init-from runs/strings-fba9d505.pt
  ;;
R)
  # 12:28: robin at iteration 30 already had every metric but one on its side of baseline (a); its seeds sat at the
  # band's floor (evaluation diversity 0.609 nats^2 against the recording's 0.652, error 0.067 > (a)'s 0.049), so
  # stream A was stopped and robin resumed with a narrower band centred on the reference (0.285-0.295 medians).
  train robin robin.ogg "$ROBIN" "CC-BY 3.0" --frames 86 --lr 3e-3 --iters 400 --w-diversity 1 \
    --diversity-low 0.285 --diversity-high 0.295 --time-budget 16 --init-from runs/robin-efc97428.pt
  ;;
R2)
  # 12:38: at iteration 110 the seeds grown fresh at the evaluation width were 0.586 nats^2 apart, ~0.91x what the
  # band asks of the pool's pairs during training, so the band moves up to 0.315-0.325 medians (~0.64-0.66 at eval).
  train robin robin.ogg "$ROBIN" "CC-BY 3.0" --frames 86 --lr 3e-3 --iters 400 --w-diversity 1 \
    --diversity-low 0.315 --diversity-high 0.325 --time-budget 7 --init-from runs/robin-efc97428.pt
  ;;
esac
