"""The stft-ms representation: exact inversion, metric, picture, training/export, shipped model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from grown_train import stftms as S
from grown_train import stftms_eval as SE
from grown_train import stftms_train as ST
from grown_train.excerpt import decode_bank, excerpt_states, restore_loss
from grown_train.metrics import stereo_similarity
from grown_train.tests.conftest import MODELS_DIR

SHIPPED = MODELS_DIR / "nca" / "strings_stereo.onnx"


@pytest.mark.parametrize("name", ["strings", "trumpet", "robin"])
def test_round_trip_on_recordings(name):
    audio = S.load_stereo(MODELS_DIR / "targets" / f"{name}.ogg", S.DEFAULT_STFT.sample_rate)
    audio = audio[:, : 4 * S.DEFAULT_STFT.sample_rate + 77]  # not a hop multiple: encode pads
    visible = S.encode(torch.from_numpy(audio))
    assert visible.shape[:2] == (4, 513)
    back = S.decode(visible).numpy()
    assert back.shape[1] == visible.shape[-1] * 256 >= audio.shape[1]
    sim = stereo_similarity(audio, back)
    assert sim >= 0.999, sim
    # Not just similar: the inverse is exact up to float rounding, trailing padding included.
    np.testing.assert_allclose(back[:, : audio.shape[1]], audio, atol=2e-5)
    assert np.abs(back[:, audio.shape[1] :]).max() < 2e-5


def test_stft_matches_a_direct_circular_frame():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(256 * 7)
    spec = S.stft(torch.from_numpy(x)).numpy()
    w = np.hanning(1025)[:-1]  # periodic Hann
    for t in (0, 3, 6):
        idx = (t * 256 - 512 + np.arange(1024)) % len(x)
        np.testing.assert_allclose(spec[:, t], np.fft.rfft(x[idx] * w), atol=1e-9)
    assert spec.shape == (513, 7)
    assert S.ola_norm() == pytest.approx(1.5)


def test_compression_is_exactly_invertible_and_declared():
    x = torch.tensor([-300.0, -1.0, -1e-3, 0.0, 1e-4, 0.5, 256.0], dtype=torch.float64)
    v = S.compress(x)
    torch.testing.assert_close(S.expand(v), x, rtol=1e-12, atol=1e-15)
    # The declared mapping: x = sign(v) * (exp(scale*|v| + offset) - exp(offset)).
    ref = np.sign(v.numpy()) * (np.exp(S.SCALE * np.abs(v.numpy()) + S.OFFSET) - math.exp(S.OFFSET))
    np.testing.assert_allclose(ref, x.numpy(), atol=1e-12)
    assert abs(float(S.compress(torch.tensor(256.0)))) < 3.0  # full-scale sine stays in the overflow bound


def test_stereo_similarity_rules():
    rng = np.random.default_rng(0)
    st = rng.standard_normal((2, 1000))
    assert stereo_similarity(st, st) == pytest.approx(1.0)
    mono = st[0]
    assert stereo_similarity(mono, mono[:900]) > 0.9  # zero-padded, mid nearly equal, side silent in both
    assert stereo_similarity(mono, mono) == pytest.approx(1.0)
    # A mono copy of a stereo signal loses the side: side cosine 0 → at most 1/sqrt(2).
    assert stereo_similarity(st, np.stack([mono, mono])) <= 1 / math.sqrt(2) + 1e-9
    assert stereo_similarity(st, -st) == pytest.approx(-1.0)
    assert stereo_similarity(np.zeros((2, 10)), np.zeros((2, 12))) == 1.0


def test_picture_colours_and_axis():
    v = np.zeros((4, 513, 3))
    v[0, :, 0] = 1.0  # |M re| = 1: cyan ink, inverted → red
    v[3, :, 1] = -2.0  # |S im| clipped to 1: black ink, inverted → white
    img = S.picture(v, height=64)
    assert img.shape == (64, 3, 3) and img.dtype == np.uint8
    assert img[:, 0].tolist() == [[255, 0, 0]] * 64
    assert img[:, 1].tolist() == [[255, 255, 255]] * 64
    assert img[:, 2].max() == 0  # silence is black
    rows = S.picture_rows(513, 64)
    assert rows[0] == 0 and rows[1] == 1 and rows[-1] == 512
    assert np.all(np.diff(rows) >= 0)
    # log2 axis: the upper half of the picture covers only the top ~4.5 octaves' upper part.
    assert rows[32] < 64


@pytest.mark.parametrize("seed_kind", ["excerpt", "noise"])
def test_tiny_training_exports_a_stft_ms_model(tmp_path, seed_kind):
    import onnxruntime as ort

    from grown_train.export import read_metadata

    sr = S.DEFAULT_STFT.sample_rate
    t = np.arange(sr) / sr
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t + 1.0)]) * 0.3
    import soundfile as sf

    target = tmp_path / "wide.wav"
    sf.write(str(target), stereo.T.astype(np.float32), sr)
    out = tmp_path / "tiny.onnx"
    cfg = ST.StereoTrainConfig(
        target=target, out=out, iters=2, frames=16, channels=6, hidden=8, batch=2, pool_size=4,
        min_steps=2, max_steps=3, log_every=0, checkpoint_dir=tmp_path / "runs", seed_kind=seed_kind,
    )
    summary = ST.train_stereo(cfg)
    assert summary["iterations"] == 2 and math.isfinite(summary["grown_loss"]["total"])
    meta = read_metadata(out)
    # An excerpt model carries the whole 1 s target (all four visible grids) under contract 2.
    assert json.loads(meta["grown.seed_state"])["kind"] == {"excerpt": "excerpt", "noise": "normal"}[seed_kind]
    assert meta["grown.contract"] == {"excerpt": "2", "noise": "1"}[seed_kind]
    if seed_kind == "excerpt":
        bank = decode_bank(meta["grown.seed_bank"], 4 * 513)
        whole = S.encode(torch.from_numpy(stereo.astype(np.float32)))
        assert bank.shape == (4 * 513, whole.shape[-1])
        # The file is 16-bit PCM: near-silent bins move in the signed log, the rest agree.
        assert float((bank - whole.reshape(4 * 513, -1)).abs().mean()) < 0.005
        # Seed states start as a passage of it in channels 0..3, plus noise everywhere.
        states, clean = excerpt_states(bank, [1, 2], 6, 16, 0.1, visible=4)
        assert clean.shape == (2, 4 * 513, 16)
        assert 0.09 < float((states[:, :4].flatten(1, 2) - clean).std()) < 0.11
        assert 0.09 < float(states[:, 4:].std()) < 0.11
        assert float(restore_loss(states, clean, visible=4).min()) > 0.05
    else:
        assert "grown.seed_bank" not in meta
    assert meta["grown.representation"] == "stft-ms"
    assert json.loads(meta["grown.stft"])["bins"] == 513 and "grown.mel" not in meta
    assert float(meta["grown.spec_scale"]) == S.SCALE and float(meta["grown.spec_offset"]) == S.OFFSET
    assert SE.is_stereo_model(out)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for frames in (8, 20):  # dynamic frames
        x = np.zeros((1, 6, 513, frames), np.float32)
        m = np.ones((1, 1, 513, frames), np.float32)
        assert sess.run(["next_state"], {"state": x, "update_mask": m})[0].shape == x.shape
    # The EVAL.md section: one recording row (exact round trip) and one grown row.
    section = SE.evaluate_stereo([out], tmp_path, seeds=1, frames=16)
    rows = [line for line in section.splitlines() if line.startswith("| tiny |")]
    assert len(rows) == 2 and rows[0].endswith("| 1.000000 |"), section
    # Re-running only the stereo part keeps the mel report and replaces its own section.
    report = tmp_path / "EVAL.md"
    report.write_text("# Grown model evaluation\n\nmel rows\n", encoding="utf-8")
    for _ in range(2):
        SE.update_eval_report(report, [out], tmp_path)
    text = report.read_text(encoding="utf-8")
    assert text.startswith("# Grown model evaluation\n\nmel rows\n") and text.count(SE.SECTION_HEADING) == 1


@pytest.mark.skipif(not SHIPPED.exists(), reason="stereo model not trained yet")
def test_shipped_stereo_model_has_side_energy():
    assert SE.is_stereo_model(SHIPPED)
    assert not SE.is_stereo_model(MODELS_DIR / "nca" / "strings.onnx")
    (grown,) = SE.grow_stereo_onnx(SHIPPED, [5], 32)
    audio = S.decode(torch.from_numpy(grown)).numpy()
    ms = S.to_mid_side(torch.from_numpy(audio)).numpy()
    mid, side = (float(np.sqrt(np.mean(c.astype(np.float64) ** 2))) for c in ms)
    assert mid > 1e-3, "grown sound is silent"
    assert side / mid > 0.05, f"side/mid RMS {side / mid:.4f}: a mono copy, not stereo"
    assert np.isfinite(audio).all() and np.abs(audio).max() < 4.0
