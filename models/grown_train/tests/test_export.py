"""Exported ONNX graphs follow the contract and match PyTorch step for step."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from grown_train.calibrate import LEVEL_KEY
from grown_train.eval import grow_onnx, load_spec
from grown_train.export import METADATA_KEYS, ModelInfo, export_onnx, read_metadata
from grown_train.nca import NCA, NCAConfig, step
from grown_train.tests.conftest import MODELS_DIR

SHIPPED = ["trumpet", "robin", "strings", "chord", "clicks"]


def random_nca(perception: str = "id,sobel_x,sobel_y,lap,time9,freq9", channels: int = 16) -> NCA:
    """An NCA with a non-trivial rule (the zero-initialised last layer would hide bugs)."""
    torch.manual_seed(3)
    nca = NCA(NCAConfig(channels=channels, n_mels=80, hidden=48, perception=perception))
    with torch.no_grad():
        nca.w2.weight.normal_(0, 0.05)
    return nca.eval()


INFO = ModelInfo(
    spec_scale=4.0, spec_offset=-5.0, growth_steps=64, fire_rate=0.5, seed_std=0.1,
    train_frames=48, target="unit.wav — test", license="CC0-1.0",
)


def session(path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def rollout_both(nca: NCA, path, frames: int, steps: int, seed: int = 0):
    sess = session(path)
    g = torch.Generator().manual_seed(seed)
    c = nca.cfg.channels
    x = torch.randn(1, c, 80, frames, generator=g) * 0.1
    y = x.numpy().copy()
    worst = 0.0
    for _ in range(steps):
        mask = (torch.rand(1, 1, 80, frames, generator=g) < 0.5).float()
        with torch.no_grad():
            x = step(nca, x, mask)
        y = sess.run(["next_state"], {"state": y, "update_mask": mask.numpy()})[0]
        worst = max(worst, float(np.abs(y - x.numpy()).max()))
    return x.numpy(), y, worst


@pytest.mark.parametrize(
    "perception", ["id,sobel_x,sobel_y,lap,time9,freq9", "id,lap,time9", "id,time9,freq9,band9"]
)
def test_onnx_matches_torch_over_64_steps(tmp_path, perception):
    nca = random_nca(perception)
    path = export_onnx(nca, tmp_path / "m.onnx", INFO)
    # 41 frames: not the tracing width, so the dynamic axis and the wrap-around are exercised.
    x, y, worst = rollout_both(nca, path, frames=41, steps=64)
    assert worst <= 1e-4
    assert np.abs(x).max() > 0.2, "rule too weak for the parity check to mean anything"


def test_band9_lets_every_band_see_a_broadband_event_and_wraps_in_time():
    """``band9`` reaches every band and +-12 frames (around the loop), and nothing further."""
    from grown_train.nca import perceive

    nca = random_nca("id,band9")
    x = torch.zeros(1, 16, 80, 40)
    x[0, :, 5, 1] = 1.0  # one cell in band 5, frame 1
    feats = perceive(nca, x)[0, 16:32]  # the band9 block
    seen = feats.abs().amax(dim=0)  # [bands, frames]
    # Every band, the lowest and highest included, sees the event at frames 1 +- 3k, k <= 4 ...
    hit = [(1 + 3 * k) % 40 for k in range(-4, 5)]
    assert (seen[:, hit] > 1e-4).all()
    # ... and only there: frames the 3-frame stride skips, and frames beyond 12, see nothing.
    miss = [t for t in range(40) if t not in hit]
    assert (seen[:, miss] == 0).all()
    # Identical in every band: it is the frame's broadband value, not a local one.
    assert torch.equal(feats[:, 0], feats[:, 79])


def test_time_axis_is_circular(tmp_path):
    nca = random_nca()
    path = export_onnx(nca, tmp_path / "m.onnx", INFO)
    sess = session(path)
    x = np.random.default_rng(0).normal(size=(1, 16, 80, 40)).astype(np.float32)
    mask = np.ones((1, 1, 80, 40), np.float32)
    a = sess.run(None, {"state": x, "update_mask": mask})[0]
    b = sess.run(None, {"state": np.roll(x, 7, axis=3), "update_mask": mask})[0]
    assert np.abs(np.roll(a, 7, axis=3) - b).max() < 1e-5
    # Cells whose mask is zero keep their value exactly.
    mask[..., :10] = 0
    c = sess.run(None, {"state": x, "update_mask": mask})[0]
    assert np.array_equal(c[..., :10], x[..., :10])
    assert not np.allclose(c[..., 10:], x[..., 10:])


def test_graph_interface_and_metadata(tmp_path):
    nca = random_nca()
    path = export_onnx(nca, tmp_path / "m.onnx", INFO)
    model = onnx.load(str(path))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 17
    assert not any(n.op_type == "Pad" for n in model.graph.node), "time wrap must be Slice+Concat"
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    ins = {v.name: dims(v) for v in model.graph.input}
    outs = {v.name: dims(v) for v in model.graph.output}
    assert ins == {"state": [1, 16, 80, "frames"], "update_mask": [1, 1, 80, "frames"]}
    assert outs == {"next_state": [1, 16, 80, "frames"]}
    meta = read_metadata(path)
    assert tuple(meta) == METADATA_KEYS
    assert meta["grown.contract"] == "1" and meta["grown.kind"] == "nca"
    assert meta["grown.representation"] == "mel"
    assert meta["grown.channels"] == "16" and meta["grown.spec_channel"] == "0"
    assert float(meta["grown.spec_scale"]) == 4.0 and float(meta["grown.spec_offset"]) == -5.0
    assert json.loads(meta["grown.mel"]) == {
        "sample_rate": 22050, "n_fft": 1024, "hop": 256, "win": 1024, "n_mels": 80, "fmin": 0.0, "fmax": 8000.0,
    }
    assert meta["grown.growth_steps"] == "64" and float(meta["grown.fire_rate"]) == 0.5
    assert json.loads(meta["grown.seed_state"]) == {"kind": "normal", "std": 0.1}
    assert meta["grown.train_frames"] == "48"
    assert meta["grown.perception"] == "id,sobel_x,sobel_y,lap,time9,freq9"
    assert meta["grown.unroll"] == "1"
    assert meta["grown.target"] == "unit.wav — test" and meta["grown.license"] == "CC0-1.0"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_models_follow_the_contract(name):
    path = MODELS_DIR / "nca" / f"{name}.onnx"
    assert path.stat().st_size < 2_000_000
    assert (MODELS_DIR / "nca" / f"{name}.png").is_file()
    meta = read_metadata(path)
    # The contract's keys in order, an excerpt seed's bank (contract 2), then the loudness
    # calibration every shipped model carries.
    excerpt = json.loads(meta["grown.seed_state"])["kind"] == "excerpt"
    assert meta["grown.contract"] == ("2" if excerpt else "1")
    assert tuple(meta) == (*METADATA_KEYS, *(("grown.seed_bank",) if excerpt else ()), LEVEL_KEY)
    assert abs(float(meta[LEVEL_KEY])) <= 60
    assert meta["grown.license"] and meta["grown.target"].startswith(name)
    sess = session(path)
    c = int(meta["grown.channels"])
    frames = int(meta["grown.train_frames"])
    x = np.random.default_rng(1).normal(0, 0.1, size=(1, c, 80, frames)).astype(np.float32)
    rng = np.random.default_rng(2)
    for _ in range(int(meta["grown.growth_steps"])):
        mask = (rng.random((1, 1, 80, frames)) < float(meta["grown.fire_rate"])).astype(np.float32)
        x = sess.run(None, {"state": x, "update_mask": mask})[0]
    assert np.isfinite(x).all()
    ln_mel = float(meta["grown.spec_scale"]) * x[0, int(meta["grown.spec_channel"])] + float(meta["grown.spec_offset"])
    # Below ln(1e-5) is merely silence; far above ~5 would be louder than full scale.
    assert -25 < ln_mel.min() and ln_mel.max() < 8, "grown spectrogram far outside the log-mel range"


@pytest.mark.parametrize("seed", [5, 6])
def test_shipped_clicks_model_grows_four_broadband_clicks_a_second(seed):
    """The research failed on click trains; the shipped model must grow one, not a flat field or speckle."""
    fps = 22050 / 256
    frames = 344  # 4 s, wider than any grid it was trained on, so the loop does not force the period
    spec = load_spec(MODELS_DIR / "nca" / "clicks.onnx", MODELS_DIR / "targets")
    ln = grow_onnx(spec, [seed], frames)[0]  # exactly as the evaluation (and the plugin) grows it
    loud = ln > (ln.max() + ln.min()) / 2
    # Broadband: in a click frame nearly every band is loud at once (speckle is loud band by band).
    column = loud.mean(axis=0)
    click_frames = column > 0.5
    assert (column[click_frames] > 0.9).mean() > 0.8
    # Four clicks a second: count the runs of click frames around the loop.
    onsets = click_frames & ~np.roll(click_frames, 1)
    rate = onsets.sum() / (frames / fps)
    assert 3.5 <= rate <= 4.5, f"{onsets.sum()} clicks in {frames / fps:.1f} s"
    # ... evenly spaced: the broadband envelope repeats every 21.5 frames (0.25 s).
    env = ln.mean(axis=0) - ln.mean()
    acf = np.fft.irfft(np.abs(np.fft.rfft(env)) ** 2, n=frames)
    period = 10 + int(np.argmax(acf[10:40]))
    assert 20 <= period <= 23 and acf[period] > 0.5 * acf[0]


@pytest.mark.parametrize("name", ["strings", "trumpet"])
def test_shipped_excerpt_models_grow_their_recording(name):
    """An excerpt-seeded model grows its passage back: the grown spectrogram has the bank's
    partials (band by band) and level, at the trained growth, for several seeds."""
    from grown_train.grow import seed_bank

    spec = load_spec(MODELS_DIR / "nca" / f"{name}.onnx", MODELS_DIR / "targets")
    bank = seed_bank(spec.meta)
    assert bank is not None, f"{name} is not excerpt-seeded"
    scale, offset = float(spec.meta["grown.spec_scale"]), float(spec.meta["grown.spec_offset"])
    ln_bank = bank.numpy() * scale + offset
    for ln in grow_onnx(spec, [1, 2, 3], int(spec.meta["grown.train_frames"])):
        assert abs(float(ln.mean()) - float(ln_bank.mean())) < 1.0
        # Fine structure across bands (each band's level minus its neighbours' mean).
        profile, ref = ln.mean(axis=1), ln_bank.mean(axis=1)
        smooth = np.convolve(profile, np.ones(5) / 5, "same")
        smooth_ref = np.convolve(ref, np.ones(5) / 5, "same")
        assert np.corrcoef(profile - smooth, ref - smooth_ref)[0, 1] > 0.6
