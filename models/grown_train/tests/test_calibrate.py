"""Loudness calibration against a stand-in renderer whose gain law is known."""

from __future__ import annotations

import shutil
import stat
import sys
from pathlib import Path

import pytest

from grown_train import calibrate as C
from grown_train.errors import GrownError
from grown_train.export import read_metadata
from grown_train.tests.conftest import MODELS_DIR

#: A ``grown render`` stand-in: a 220 Hz tone at -50 dBFS times 10^(level_db/20) (or ignoring
#: ``grown.level_db``, like a binary built before it existed), through a tanh limiter.
FAKE = """#!{python}
import sys, numpy as np, soundfile as sf
from grown_train.export import read_metadata
args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
level = float(read_metadata(args["--model"]).get("grown.level_db", "0")) if {honours} else 0.0
t = np.arange(int(4.5 * 22050)) / 22050
x = np.tanh(10 ** ((level - 50) / 20) * np.sqrt(2) * np.sin(2 * np.pi * 220 * t))
sf.write(args["--out"], np.stack([x, x], 1).astype(np.float32), 22050, subtype="FLOAT")
"""


def fake_binary(folder: Path, honours: bool) -> Path:
    path = folder / ("grown" if honours else "grown-old")
    path.write_text(FAKE.format(python=sys.executable, honours=honours))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "chord.onnx"
    shutil.copy(MODELS_DIR / "nca" / "chord.onnx", path)
    return path


def test_calibration_brings_the_render_to_the_recordings_level_and_keeps_the_rest(tmp_path, model, chord_wav):
    before = read_metadata(model)
    result = C.calibrate(model, chord_wav, fake_binary(tmp_path, honours=True), log=lambda _: None)
    assert abs(result["rounds"][-1]["error_db"]) <= C.TOLERANCE_DB
    # chord_wav peaks near 0.3 (about -14 dB RMS): roughly +36 dB over the stand-in's -50 dBFS.
    assert 30 < result["level_db"] < 42
    after = read_metadata(model)
    assert float(after[C.LEVEL_KEY]) == pytest.approx(result["level_db"], abs=0.01)
    others = lambda meta: {k: v for k, v in meta.items() if k != C.LEVEL_KEY}  # noqa: E731
    assert others(after) == others(before)
    assert C.read_level_db(model) == pytest.approx(result["level_db"], abs=0.01)


def test_a_binary_that_ignores_the_key_is_named_and_the_model_left_as_it_was(tmp_path, model, chord_wav):
    before = model.read_bytes()
    with pytest.raises(GrownError, match="ignores grown.level_db"):
        C.calibrate(model, chord_wav, fake_binary(tmp_path, honours=False), log=lambda _: None)
    assert model.read_bytes() == before
