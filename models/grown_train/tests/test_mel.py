"""The mel front end matches BigVGAN's own implementation and the shipped reference file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from bigvgan.meldataset import mel_spectrogram

from grown_train.mel import DEFAULT_MEL, log_mel, n_frames
from grown_train.reference import build, reference_signal
from grown_train.tests.conftest import MODELS_DIR

REFERENCE = MODELS_DIR / "testdata" / "mel_reference.json"


def bigvgan_mel(y: np.ndarray) -> np.ndarray:
    c = DEFAULT_MEL
    out = mel_spectrogram(
        torch.from_numpy(y.astype(np.float32))[None], c.n_fft, c.n_mels, c.sample_rate, c.hop, c.win, c.fmin, c.fmax
    )
    return out[0].numpy()


@pytest.mark.parametrize("n", [1024, 1500, 8192, 22050])
def test_matches_bigvgan_package(n):
    rng = np.random.default_rng(n)
    y = (reference_signal(n) + 0.2 * rng.standard_normal(n)).clip(-1, 1).astype(np.float32)
    ours32 = log_mel(torch.from_numpy(y)).numpy()
    ours64 = log_mel(y.astype(np.float64)).numpy()
    theirs = bigvgan_mel(y)
    assert ours32.shape == theirs.shape == (80, n_frames(n))
    assert np.abs(ours32 - theirs).max() <= 1e-4
    assert np.abs(ours64 - theirs).max() <= 1e-4


def test_silence_hits_the_log_floor():
    y = np.zeros(4096, dtype=np.float32)
    assert np.allclose(log_mel(torch.from_numpy(y)).numpy(), np.log(1e-5))
    assert np.allclose(bigvgan_mel(y), np.log(1e-5))


def test_reference_file_is_current_and_small():
    assert REFERENCE.stat().st_size < 1_000_000
    ref = json.loads(REFERENCE.read_text())
    assert ref["config"] == json.loads(DEFAULT_MEL.to_json())
    fresh = build()
    assert [c["name"] for c in ref["cases"]] == [c["name"] for c in fresh["cases"]]
    for old, new in zip(ref["cases"], fresh["cases"]):
        assert old["signal"] == new["signal"]
        want = np.array(old["log_mel"])
        assert want.shape == (80, old["n_frames"]) == (80, n_frames(old["n_samples"]))
        assert np.abs(want - np.array(new["log_mel"])).max() < 1e-6
        # The reference agrees with BigVGAN's f32 implementation too.
        assert np.abs(want - bigvgan_mel(np.array(old["signal"], dtype=np.float32))).max() <= 1e-4
    one = ref["cases"][1]
    assert one["n_samples"] == DEFAULT_MEL.n_fft and one["n_frames"] == 4
