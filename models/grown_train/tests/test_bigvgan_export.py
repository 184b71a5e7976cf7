"""export-bigvgan: a tiny random BigVGAN exports to ONNX that matches torch, with contract metadata."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from grown_train.bigvgan_export import (
    TINY_ONNX,
    TINY_REFERENCE,
    mel_config,
    tiny_config,
    tiny_state_dict,
    write_checkpoint,
)
from grown_train.cli import main
from grown_train.export import read_metadata
from grown_train.mel import DEFAULT_MEL
from grown_train.tests.conftest import MODELS_DIR


@pytest.fixture(scope="module")
def state():
    return tiny_state_dict()


@pytest.fixture
def ckpt(tmp_path, state):
    return write_checkpoint(tmp_path / "ck", tiny_config(), state)


def reference_model(state):
    """The package's own model, built independently of the exporter's code path."""
    import warnings

    from bigvgan import BigVGAN
    from bigvgan.env import AttrDict

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = BigVGAN(AttrDict(tiny_config()), use_cuda_kernel=False)
    model.load_state_dict(state)
    return model.eval()


def test_export_matches_torch_and_follows_the_contract(tmp_path, ckpt, state, capsys):
    out = tmp_path / "vocoder" / "bigvgan.onnx"
    assert main(["export-bigvgan", "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["max_abs_diff"] <= 1e-4

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = sess.get_inputs(), sess.get_outputs()
    assert inp.name == "mel" and inp.shape[:2] == [1, 80] and isinstance(inp.shape[2], str)
    assert outp.name == "audio" and outp.shape[:2] == [1, 1]
    assert onnx.load(str(out)).opset_import[0].version == 17

    model = reference_model(state)
    for frames in (1, 37):
        mel = torch.randn(1, 80, frames, generator=torch.Generator().manual_seed(frames)) * 2.0 - 5.0
        with torch.no_grad():
            want = model(mel).numpy()
        got = sess.run(["audio"], {"mel": mel.numpy()})[0]
        assert got.shape == (1, 1, frames * 256)
        # A silent output would make the comparison meaningless.
        assert want.std() > 0.05
        assert np.abs(got - want).max() <= 1e-4

    m = read_metadata(out)
    assert m["grown.kind"] == "vocoder"
    assert m["grown.contract"] == "1"
    assert m["grown.mel"] == DEFAULT_MEL.to_json()


def test_mel_metadata_follows_the_checkpoint_config():
    cfg = tiny_config()
    assert mel_config(cfg) == DEFAULT_MEL
    # fmax null (the full-band 22 kHz release) means Nyquist, which does not match the default mel.
    full = mel_config({**cfg, "fmax": None})
    assert full.fmax == 11025.0 and full != DEFAULT_MEL
    big = mel_config({**cfg, "sampling_rate": 24000, "num_mels": 100, "fmax": 12000})
    assert json.loads(big.to_json()) == {
        "sample_rate": 24000, "n_fft": 1024, "hop": 256, "win": 1024, "n_mels": 100, "fmin": 0.0, "fmax": 12000.0,
    }


def _run_error(capsys, args):
    code = main(["export-bigvgan", *args])
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return code, err


def test_missing_inputs_fail_with_one_line(tmp_path, ckpt, capsys):
    out = str(tmp_path / "o.onnx")
    code, err = _run_error(capsys, ["--checkpoint", str(tmp_path / "nope"), "--out", out])
    assert code == 3 and "not found" in err
    (ckpt / "bigvgan_generator.pt").unlink()
    code, err = _run_error(capsys, ["--checkpoint", str(ckpt), "--out", out])
    assert code == 3 and "bigvgan_generator.pt" in err
    assert not (tmp_path / "o.onnx").exists()


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda p: p.write_text("{not json"), "not valid JSON"),
        (lambda p: p.write_text(json.dumps({**tiny_config(), "hop_size": 300})), "multiply to 256"),
        (lambda p: p.write_text(json.dumps({k: v for k, v in tiny_config().items() if k != "num_mels"})), "num_mels"),
        (lambda p: p.write_text(json.dumps({**tiny_config(), "upsample_initial_channel": 64})), "does not match"),
    ],
)
def test_bad_config_fails_with_one_line(tmp_path, ckpt, capsys, edit, needle):
    edit(ckpt / "config.json")
    out = tmp_path / "o.onnx"
    code, err = _run_error(capsys, ["--checkpoint", str(ckpt), "--out", str(out)])
    assert code == 11 and needle in err
    assert not out.exists()


def test_unwritable_out_fails_before_loading(tmp_path, ckpt, capsys):
    code, err = _run_error(capsys, ["--checkpoint", str(ckpt), "--out", str(tmp_path)])
    assert code == 7
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = _run_error(capsys, ["--checkpoint", str(ckpt), "--out", str(blocker / "v.onnx")])
    assert code == 7 and "cannot create" in err


def test_tiny_testdata_is_current(state):
    path = MODELS_DIR / "testdata" / TINY_ONNX
    assert path.stat().st_size < 1_000_000
    assert read_metadata(path)["grown.kind"] == "vocoder" and read_metadata(path)["grown.mel"] == DEFAULT_MEL.to_json()
    ref = json.loads((MODELS_DIR / "testdata" / TINY_REFERENCE).read_text())
    mel = np.array(ref["mel"], dtype=np.float32)[None]
    want = np.array(ref["audio"], dtype=np.float32)
    assert want.shape == (ref["frames"] * 256,) and want.std() > 0.05
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["audio"], {"mel": mel})[0]
    assert np.abs(got[0, 0] - want).max() <= ref["tolerance"]
    # The committed file still comes from today's seeded weights (re-run the module to refresh it).
    with torch.no_grad():
        fresh = reference_model(state)(torch.from_numpy(mel))[0, 0].numpy()
    assert np.abs(fresh - want).max() <= 1e-5
