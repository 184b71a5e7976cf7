"""Loudness calibration: a model plays as loud as the recording it grew from.

A grown spectrogram's level is whatever training left it at, so models differed by
40 dB. ``grown.level_db`` (contract version 1, optional, default 0) is the gain the
plugin applies to every generation after the vocoder; this module measures what it
must be: the Rust ``grown render`` plays the root note at default gain and velocity,
and the settled part is compared with the recording's loudest excerpt of the same
length (:mod:`grown_train.hearing`). The soft limiter makes the chain slightly
non-linear near full scale, so it renders again until the level is within
:data:`TOLERANCE_DB`.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: The metadata key the plugin reads.
LEVEL_KEY = "grown.level_db"
#: Close enough: well inside the ±3 dB the plugin promises.
TOLERANCE_DB = 0.5
#: Renders at most (the first is usually within tolerance; the limiter may need one more).
ROUNDS = 3
#: The gain a model may ask for: beyond it the grown sound is silence or broken.
LIMIT_DB = 60.0


def read_level_db(path: Path) -> float:
    from grown_train.export import read_metadata

    return float(read_metadata(path).get(LEVEL_KEY, "0"))


def write_level_db(path: Path, level_db: float) -> None:
    """Set ``grown.level_db`` in an ONNX file in place (atomically), leaving everything else as it is."""
    import onnx

    from grown_train.io import atomic_write

    model = onnx.load(str(path))
    for entry in model.metadata_props:
        if entry.key == LEVEL_KEY:
            entry.value = f"{level_db:.2f}"
            break
    else:
        entry = model.metadata_props.add()
        entry.key, entry.value = LEVEL_KEY, f"{level_db:.2f}"
    atomic_write(Path(path), lambda tmp: onnx.save(model, str(tmp)))


def calibrate(path: Path, target: Path, binary: Path, growth: int | None = None, log=None) -> dict:
    """Measure and store ``grown.level_db`` so ``path`` renders at ``target``'s level; returns the rounds."""
    from grown_train import hearing as H
    from grown_train.errors import GrownError
    from grown_train.hearing_eval import SEED, excerpt_seconds
    from grown_train.io import atomic_write, load_audio

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    recording = load_audio(target, H.SAMPLE_RATE)
    seconds = excerpt_seconds(len(recording))
    loud, _ = H.reference_excerpts(recording, seconds)
    n = len(loud)
    rounds = []
    original = Path(path).read_bytes()
    level = read_level_db(path)
    for _ in range(ROUNDS):
        rendered = H.render_model(binary, path, seed=SEED, growth=growth)[:n]
        error = -H.level_calibration_db(rendered, loud)
        log(f"{path.name}: level_db {level:+.2f} renders {error:+.2f} dB from {target.name}")
        if rounds and abs(error - rounds[-1]["error_db"]) < 0.1 * abs(level - rounds[-1]["level_db"]):
            atomic_write(Path(path), lambda tmp: tmp.write_bytes(original))
            raise GrownError(f"{binary} ignores {LEVEL_KEY} (built before it existed?): {path.name} left as it was")
        rounds.append({"level_db": level, "error_db": error})
        if abs(error) <= TOLERANCE_DB:
            break
        level -= error
        if abs(level) > LIMIT_DB:
            raise GrownError(f"{path.name} would need {level:+.1f} dB to reach its recording: it grows silence")
        write_level_db(path, level)
    return {"model": path.name, "target": target.name, "level_db": level, "rounds": rounds}
