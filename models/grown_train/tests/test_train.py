"""Training end to end on tiny grids: it learns, resumes and refuses to ship NaNs."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from grown_train import cli
from grown_train.errors import Diverged
from grown_train.export import read_metadata
from grown_train.losses import LossWeights, TextureLoss
from grown_train.tests.conftest import TINY, files_under


def test_twenty_iterations_lower_the_loss(tmp_path, chord_wav, capsys):
    out = tmp_path / "out" / "m.onnx"
    out.parent.mkdir()
    rc = cli.main(["train", "--target", str(chord_wav), "--out", str(out), "--iters", "20",
                   "--checkpoint-dir", str(tmp_path / "runs"), "--lr", "2e-2", *TINY, "--seed-kind", "noise"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    ckpt = torch.load(next((tmp_path / "runs").glob("m-*.pt")), weights_only=False)
    totals = np.array([h["total"] for h in ckpt["history"]])
    assert len(totals) == 20 and np.isfinite(totals).all()
    # The first iteration scores untouched seed noise (the last layer starts at zero);
    # the summary scores states freshly grown from new seeds by the trained model.
    assert summary["first_loss"] == pytest.approx(totals[0])
    assert summary["grown_loss"]["total"] < 0.8 * summary["first_loss"]
    assert summary["grown_loss"]["l1"] < 0.7 * ckpt["history"][0]["l1"]
    assert summary["grown_loss"]["gram"] < 0.9 * ckpt["history"][0]["gram"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.onnx", "m.png"]
    meta = read_metadata(out)
    assert meta["grown.channels"] == "8" and meta["grown.train_frames"] == "32"
    assert meta["grown.growth_steps"] == "12" and meta["grown.target"] == "chord.wav"
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"state": np.zeros((1, 8, 80, 20), np.float32), "update_mask": np.ones((1, 1, 80, 20), np.float32)})
    assert y[0].shape == (1, 8, 80, 20)


def test_rerun_resumes_from_the_checkpoint(tmp_path, chord_wav, capsys):
    out = tmp_path / "m.onnx"
    args = ["train", "--target", str(chord_wav), "--out", str(out), "--checkpoint-dir", str(tmp_path / "runs"),
            "--checkpoint-every", "2", *TINY]
    assert cli.main([*args, "--iters", "3"]) == 0
    first = out.read_bytes()
    assert cli.main([*args, "--iters", "5"]) == 0
    assert "resuming" not in capsys.readouterr().err  # --quiet hides the notice, not the behaviour
    ckpt = torch.load(next((tmp_path / "runs").glob("m-*.pt")), weights_only=False)
    assert [h["iter"] for h in ckpt["history"]] == [1, 2, 3, 4, 5]
    assert out.read_bytes() != first
    # A different architecture for the same output is refused, not silently mixed.
    rc = cli.main([*args, "--iters", "6", "--hidden", "16"])
    err = capsys.readouterr().err.strip()
    assert rc == 9 and err.startswith("error: checkpoint") and "--fresh" in err and "\n" not in err
    assert cli.main([*args, "--iters", "1", "--hidden", "16", "--fresh"]) == 0


def test_init_from_carries_weights_to_a_wider_grid(tmp_path, chord_wav, capsys):
    runs = tmp_path / "runs"
    base = ["train", "--target", str(chord_wav), "--checkpoint-dir", str(runs), *TINY]
    assert cli.main([*base, "--out", str(tmp_path / "narrow.onnx"), "--iters", "3", "--lr", "2e-2"]) == 0
    narrow = next(runs.glob("narrow-*.pt"))
    # A new run on a wider grid starts from those weights (a tiny lr keeps one step from moving them).
    wide = [*base, "--out", str(tmp_path / "wide.onnx"), "--frames", "40", "--iters", "1", "--lr", "1e-9"]
    assert cli.main([*wide, "--init-from", str(narrow)]) == 0
    before = torch.load(narrow, weights_only=False)["model"]
    after = torch.load(next(runs.glob("wide-*.pt")), weights_only=False)
    assert after["arch"]["frames"] == 40 and after["iter"] == 1
    changed = [k for k in before if before[k].abs().sum() > 0]
    assert changed, "the narrow run should have trained its update layer"
    for k in before:
        torch.testing.assert_close(after["model"][k], before[k], atol=1e-6, rtol=0)
    capsys.readouterr()
    # Weights from a different architecture are refused with one line, before anything is written.
    other = tmp_path / "other.onnx"
    rc = cli.main([*base, "--out", str(other), "--hidden", "16", "--iters", "1", "--init-from", str(narrow)])
    err = capsys.readouterr().err.strip()
    assert rc == 9 and err.startswith("error: --init-from") and "\n" not in err
    assert not other.exists() and not list(runs.glob("other-*.pt"))


def test_nan_loss_exits_with_one_line_and_no_model(tmp_path, chord_wav, capsys, monkeypatch):
    real = TextureLoss.forward
    calls = {"n": 0}

    def poisoned(self, s, state=None):
        terms = real(self, s, state)
        calls["n"] += 1
        if calls["n"] > 4:  # let a few iterations pass so a checkpoint could exist
            terms["total"] = terms["total"] * float("nan")
        return terms

    monkeypatch.setattr(TextureLoss, "forward", poisoned)
    out = tmp_path / "out" / "m.onnx"
    out.parent.mkdir()
    rc = cli.main(["train", "--target", str(chord_wav), "--out", str(out), "--iters", "10",
                   "--checkpoint-dir", str(tmp_path / "runs"), *TINY, "--seed-kind", "noise"])
    err = capsys.readouterr().err.strip()
    assert rc == Diverged.exit_code == 8
    assert err.startswith("error: training diverged") and "\n" not in err
    assert files_under(out.parent) == []


def test_loss_terms_respond_to_what_they_measure():
    fps = 22050 / 256
    t = torch.arange(400)
    beat = (t % 22 < 3).float()  # ~4 clicks per second
    texture = 0.3 * torch.randn(80, 400, generator=torch.Generator().manual_seed(0))
    target = torch.full((80, 400), -1.0) + 1.5 * beat + texture
    loss = TextureLoss(target, 128, fps)  # lags 17..42 frames: the beat period (22) is inside
    assert len(loss.lags) > 0 and len(TextureLoss(target, 48, fps).lags) == 0
    crop = target[:, :128].unsqueeze(0)
    flat = torch.full_like(crop, float(target.mean()))
    same, other = loss(crop), loss(flat)
    assert same["acf"] < 0.3 * other["acf"]
    assert same["gram"] < 0.5 * other["gram"]
    # Same texture 2 ln-units louder (0.5 scaled): only the spectrum alignment term objects.
    louder = loss(crop + 0.5)
    assert same["l1"] < 0.05 and louder["l1"] > 0.45
    # Diversity: two copies of one loop (up to a circular shift) are penalised,
    # two different crops of a varied target are not, and neither are two seeds
    # that differ a lot more than any two excerpts of the target (over-diverse).
    assert 0 < loss.margin < loss.ceiling
    a = target[:, 5:133]
    pair_same = torch.stack([a, torch.roll(a, 9, dims=-1)])
    assert loss(pair_same)["diversity"].mean() > 0.9
    crops = torch.stack([target[:, 40:168], target[:, 250:378]])
    assert loss(crops)["diversity"].mean() == 0
    noise = torch.randn(2, 80, 128, generator=torch.Generator().manual_seed(1))
    assert loss(noise)["diversity"].mean() > 1.0
    # Pulling the over-diverse pair together lowers the term (its gradient points the right way).
    closer = torch.stack([noise[0], 0.5 * noise[0] + 0.5 * noise[1]])
    assert loss(closer)["diversity"].mean() < loss(noise)["diversity"].mean()


def test_rhythm_target_is_what_an_excerpt_of_the_target_has():
    """A recording with slow dynamics (a swell over 40 s) under a steady 4 Hz beat: any loop-length
    excerpt of it is a perfect rhythm match, and a loop without the beat is not. Against the whole
    recording's autocorrelation (the old target) the excerpt itself scored as badly as a flat loop."""
    fps = 22050 / 256
    t = torch.arange(3500)
    beat = (t % 22 < 3).float()
    swell = 2.0 * torch.sin(2 * torch.pi * t / 3500)
    target = (-1.0 + 0.8 * beat + swell).expand(80, -1).clone()
    loss = TextureLoss(target, 129, fps)
    for start in (100, 1700, 3000):
        assert loss(target[None, :, start : start + 129])["acf"] < 0.01
    no_beat = target[None, :, 100:229].mean(dim=-1, keepdim=True).expand(-1, -1, 129)
    assert loss(no_beat + 0.01 * torch.randn(1, 80, 129, generator=torch.Generator().manual_seed(0)))["acf"] > 0.03


def test_marginal_term_splits_a_flat_field_into_events():
    fps = 22050 / 256
    t = torch.arange(128)
    beat = (t % 16 < 2).float()  # 8 clicks in the loop, all bands at once
    target = -1.0 + 1.5 * beat.expand(80, -1) + 0.1 * torch.linspace(0, 1, 80)[:, None]
    loss = TextureLoss(target, 128, fps, LossWeights(marginal=1.0))
    assert "marginal" not in TextureLoss(target, 128, fps)(target[None])  # off by default
    # The same values in another order (a circular shift) are the same distribution.
    shifted = torch.roll(target, 5, dims=-1)[None]
    assert loss(shifted)["marginal"] < 1e-10
    flat = target.mean(dim=-1, keepdim=True).expand(-1, 128)[None].clone().requires_grad_(True)
    value = loss(flat)["marginal"]
    assert value > 0.1
    # On a constant field the gradient is not zero and descending it creates loud and quiet frames.
    value.sum().backward()
    assert flat.grad.abs().max() > 0
    stepped = (flat - 0.5 * flat.grad / flat.grad.abs().max()).detach()
    assert stepped.std(dim=-1).mean() > 0.05
    assert loss(stepped)["marginal"] < 0.5 * value.detach()
    # Events at per-band random times match each band's distribution but not the broadband one.
    g = torch.Generator().manual_seed(3)
    scattered = torch.stack([torch.roll(row, int(torch.randint(0, 128, (1,), generator=g))) for row in target])
    assert loss(scattered[None])["marginal"] > 10 * loss(shifted)["marginal"] + 1e-3


def test_short_rhythm_lags_see_event_width_and_spacing():
    """From one frame on, the rhythm term covers an event's width and the gap after it: the target's own
    loop scores 0, one-frame events score high at the target's period and at shorter ones."""
    fps = 22050 / 256
    t = torch.arange(2000)
    clicks = -1.0 + 1.5 * (t % 22 < 3).float().expand(80, -1)
    short = TextureLoss(clicks, 88, fps, acf_min_s=1 / fps)
    assert short.lags.tolist() == list(range(1, 88 // 3 + 1))
    assert short(clicks[None, :, 5:93])["acf"] < 1e-6
    for period in (22, 8, 5):
        thin = -1.0 + 1.5 * (torch.arange(88) % period == 0).float().expand(1, 80, -1)
        assert short(thin)["acf"] > 0.05, period
    assert TextureLoss(clicks, 88, fps).lags[0] == round(0.2 * fps)  # the evaluation's lags by default


def test_diversity_band_is_configurable():
    fps = 22050 / 256
    target = torch.randn(80, 400, generator=torch.Generator().manual_seed(0))
    crops = torch.stack([target[:, 40:168], target[:, 250:378]])
    default = TextureLoss(target, 128, fps)
    tight = TextureLoss(target, 128, fps, LossWeights(diversity_low=0.1, diversity_high=0.2))
    assert tight.ceiling == pytest.approx(0.1 * default.ceiling) and tight.margin == pytest.approx(0.2 * default.margin)
    # Two independent crops sit at the median distance: fine by default, too far apart for the tight band.
    assert default(crops)["diversity"].mean() == 0
    assert tight(crops)["diversity"].mean() > 1.0
    with pytest.raises(ValueError):
        TextureLoss(target, 128, fps, LossWeights(diversity_low=0.3, diversity_high=0.2))


def test_device_auto_picks_cuda_only_when_torch_sees_one(monkeypatch, tmp_path, chord_wav, capsys):
    from grown_train.errors import BadOption
    from grown_train.train import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto").type == "cpu" and resolve_device("cpu").type == "cpu"
    with pytest.raises(BadOption, match="no CUDA GPU"):
        resolve_device("cuda")
    rc = cli.main(["train", "--target", str(chord_wav), "--out", str(tmp_path / "m.onnx"), "--iters", "1",
                   "--device", "cuda", "--checkpoint-dir", str(tmp_path / "runs"), *TINY])
    assert rc != 0 and "no CUDA GPU" in capsys.readouterr().err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"

