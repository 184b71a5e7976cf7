"""eval: the metrics on known cases, and a --quick end-to-end run that writes the report."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from grown_train import metrics as M
from grown_train.cli import main
from grown_train.losses import LossWeights, TextureLoss
from grown_train.mel import DEFAULT_MEL, log_mel, mel_basis

SR = DEFAULT_MEL.sample_rate


def texture(frames=64, seed=0):
    """A log-mel 'texture': a fixed spectral envelope plus a periodic 8-frame pulse and noise."""
    rng = np.random.default_rng(seed)
    env = np.linspace(-2.0, -8.0, 80)[:, None]
    pulse = 2.0 * (np.arange(frames) % 8 == 0)[None, :]
    return (env + pulse + 0.3 * rng.standard_normal((80, frames))).astype(np.float32)


def tone(freq, seconds=1.0, phase=0.0):
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def test_identical_spectrograms_score_perfectly():
    x = texture()
    assert M.spectrum_l1(x, x) == 0.0
    assert M.shift_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    assert M.diversity_error(0.3, 0.3) == 0.0
    y = tone(440.0)
    assert M.stft_cosine(y, y) == {"mid": pytest.approx(1.0)}
    assert M.avg_spectrum_cosine(y, y) == {"mid": pytest.approx(1.0)}


def test_shifted_texture_has_no_diversity_but_another_texture_does():
    x = texture()
    shifted = [np.roll(x, k, axis=1) for k in (0, 5, 17, 40)]
    assert M.diversity(shifted) == pytest.approx(0.0, abs=1e-9)
    others = [texture(seed=s) for s in range(4)]
    assert M.diversity(others) > 0.1
    # A plain mean-squared distance would call the shifted copy very different.
    assert np.mean((x - shifted[2]) ** 2) > 1.0
    # Collapse (0) and excess are both penalised relative to the recording's level.
    ref = M.diversity(others)
    assert M.diversity_error(0.0, ref) > 1.0
    assert M.diversity_error(20 * ref, ref) > 1.0


def test_spectrum_l1_measures_level_in_nats():
    x = texture()
    assert M.spectrum_l1(x + 0.5, x) == pytest.approx(0.5, abs=1e-6)
    # Time order does not matter: a texture has no frame correspondence with its target.
    assert M.spectrum_l1(x[:, ::-1], x) == pytest.approx(0.0, abs=1e-6)


def test_audio_cosines_separate_alignment_from_spectrum():
    a = tone(440.0)
    late = np.roll(a, 3000)
    other = tone(1760.0)
    # A time shift keeps the average spectrum ...
    assert M.avg_spectrum_cosine(a, late)["mid"] > 0.99
    # ... and a different pitch does not.
    assert M.avg_spectrum_cosine(a, other)["mid"] < 0.2
    assert M.stft_cosine(a, other)["mid"] < 0.2
    # Unequal lengths are zero-padded: half the signal matches, half is silence.
    half = M.stft_cosine(a, a[: len(a) // 2])["mid"]
    assert 0.6 < half < 0.8


def test_mid_side_for_stereo():
    left, right = tone(440.0), tone(660.0)
    st = np.stack([left, right])
    assert set(M.stft_cosine(st, st)) == {"mid", "side"}
    swapped = np.stack([right, left])
    cos = M.stft_cosine(st, swapped)
    assert cos["mid"] == pytest.approx(1.0)
    # Side flips sign when channels swap; magnitudes do not see the sign.
    assert cos["side"] == pytest.approx(1.0)
    assert set(M.stft_cosine(left, left)) == {"mid"}
    with pytest.raises(ValueError):
        M.mid_side(np.zeros((3, 10)))


def test_mel_inversion_and_griffin_lim_round_trip():
    y = tone(440.0) + 0.5 * tone(1234.0)
    ln = log_mel(torch.from_numpy(y)).numpy()
    mag = M.mel_to_magnitude(ln)
    assert mag.min() >= 0.0
    # The magnitude's mel projection reproduces the input mel where there is energy.
    rebuilt = np.log(np.maximum(mel_basis() @ mag, 1e-5))
    loud = ln > np.log(1e-3)
    assert np.abs(rebuilt - ln)[loud].mean() < 0.08
    audio = M.griffin_lim(ln, n_iter=16)
    assert audio.shape == (ln.shape[1] * DEFAULT_MEL.hop,)
    assert M.avg_spectrum_cosine(audio, y)["mid"] > 0.9
    assert np.array_equal(audio, M.griffin_lim(ln, n_iter=16))


def test_gram_and_acf_prefer_the_target_texture():
    period = texture(frames=16, seed=3)
    target = np.tile(period, (1, 8))  # 128 frames of a looping texture
    scale, offset = 4.0, -5.0
    loss = TextureLoss(torch.from_numpy((target - offset) / scale), 64, DEFAULT_MEL.frames_per_second, LossWeights())
    same = target[:, :64]
    noise = np.random.default_rng(0).normal(-5.0, 1.0, (80, 64)).astype(np.float32)
    t = M.texture_terms(loss, [same, noise, same + 2.0], scale, offset)
    assert t["gram"][0] < 0.05
    assert t["gram"][1] > 5 * t["gram"][0] and t["gram"][2] > 5 * t["gram"][0]
    assert t["acf"][0] < t["acf"][1]


def _tiny_model(path, target_name):
    """An untrained (identity-update) NCA in the contract's format: enough to exercise eval's plumbing."""
    from grown_train.export import ModelInfo, export_onnx
    from grown_train.nca import NCA, NCAConfig

    torch.manual_seed(0)
    nca = NCA(NCAConfig(channels=4, n_mels=80, hidden=8))
    with torch.no_grad():
        nca.w2.weight.normal_(0.0, 0.01)
    info = ModelInfo(spec_scale=4.0, spec_offset=-5.0, growth_steps=6, fire_rate=0.5, seed_std=0.1,
                     train_frames=24, target=f"{target_name} — test", license="CC0-1.0")
    return export_onnx(nca, path, info)


def test_verdict_names_metrics_where_a_beats_the_recording_too():
    from grown_train.eval import METRICS, Row, _versus_a, comparisons

    def row(label, **scores):
        base = {key: (0.5 if higher else 1.0) for key, _, higher in METRICS}
        return Row(label, scores={**base, **scores})

    # (a) wins Gram and STFT cos; the recording beats (a) on Gram but not on STFT cos.
    rows = [row("shipped", gram=2.0, cos_stft=0.1), row("notebook (a)", gram=1.5, cos_stft=0.3),
            row("L-BFGS (b)"), row("recording", gram=0.1, cos_stft=0.2)]
    cmp = comparisons({"rows": rows})
    assert cmp["a_wins"] == ["Gram", "STFT cos (mid)"]
    assert cmp["a_beats_recording"] == ["STFT cos (mid)"]
    text = _versus_a(cmp)
    assert "(a) is better on: Gram, STFT cos (mid)" in text
    assert "also beats the recording's own excerpts: STFT cos (mid))" in text
    # Nothing is added where (a) does not win.
    swapped = [row("shipped", gram=1.5, cos_stft=0.3), row("notebook (a)", gram=2.0, cos_stft=0.1), *rows[2:]]
    text = _versus_a(comparisons({"rows": swapped}))
    assert "(a) is better" not in text and "recording" not in text


def test_training_budget_comes_from_the_last_report_only_for_the_same_file(tmp_path):
    import json

    from grown_train.eval import file_digest, previous_training

    model = tmp_path / "m.onnx"
    model.write_bytes(b"weights v1")
    info = {"iterations": 344, "planned": 400, "batch": 3, "lineage": [{"frames": 86, "iters": 400}],
            "score_s": 2.0, "onnx_sha256": file_digest(model)}
    sidecar = tmp_path / "results.json"
    sidecar.write_text(json.dumps([{"name": "m", "rows": {"shipped": {"info": info}}}]))
    assert previous_training("m", file_digest(model), sidecar) == {
        "iterations": 344, "planned": 400, "batch": 3, "lineage": [{"frames": 86, "iters": 400}], "from_report": True}
    assert previous_training("other", file_digest(model), sidecar) == {}
    model.write_bytes(b"weights v2")  # retrained: the old budget is not this file's
    assert previous_training("m", file_digest(model), sidecar) == {}
    sidecar.write_text(json.dumps(["not an entry", {"name": "m"}]))
    assert previous_training("m", file_digest(model), sidecar) == {}
    sidecar.write_text("{not json")
    assert previous_training("m", file_digest(model), sidecar) == {}


def test_a_run_record_gives_the_budget_only_to_the_weights_it_names(tmp_path, chord_wav):
    import json

    import onnx

    from grown_train.eval import training_record, weights_digest

    model = _tiny_model(tmp_path / "m.onnx", chord_wav.name)
    record = {"iterations": 283, "planned": 400, "batch": 3, "lineage": [{"frames": 48, "iters": 343}],
              "weights_sha256": weights_digest(model)}
    (tmp_path / "m-run.json").write_text(json.dumps(record))
    want = {"iterations": 283, "planned": 400, "batch": 3, "lineage": [{"frames": 48, "iters": 343}],
            "from_record": True}
    assert training_record("m", model, tmp_path) == want
    # New metadata (a calibration) keeps the weights, and so the record.
    proto = onnx.load(str(model))
    onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props}, "grown.level_db": "3.0"})
    onnx.save(proto, str(model))
    assert training_record("m", model, tmp_path) == want
    # Retrained weights do not inherit it.
    init = proto.graph.initializer[0]
    arr = onnx.numpy_helper.to_array(init).copy()
    arr.flat[0] += 1.0
    init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
    onnx.save(proto, str(model))
    assert training_record("m", model, tmp_path) == {}
    assert training_record("other", model, tmp_path) == {}


def test_quick_eval_writes_the_table_and_caches_baseline_a(tmp_path, chord_wav, capsys):
    model = _tiny_model(tmp_path / "tinychord.onnx", chord_wav.name)
    out = tmp_path / "report" / "EVAL.md"
    args = ["eval", "--quick", "--models", str(model), "--out", str(out), "--targets-dir", str(chord_wav.parent),
            "--baseline-dir", str(tmp_path / "bl"), "--png-dir", str(tmp_path / "png")]
    assert main(args) == 0
    text = out.read_text()
    assert "### tinychord" in text
    rows = {}
    for label in ("shipped", "notebook (a)", "L-BFGS (b)", "recording"):
        m = re.search(rf"^\| {re.escape(label)} \| (.*) \|$", text, re.M)
        assert m, f"no {label} row"
        rows[label] = [float(c.split(" ")[0]) for c in m.group(1).split(" | ")[:6]]
    for label, vals in rows.items():
        assert all(np.isfinite(vals)), (label, vals)
        assert 0.0 <= vals[4] <= 1.0 + 1e-9 and 0.0 <= vals[5] <= 1.0 + 1e-9
    # A crop of the recording is far closer to the recording than an untrained model's noise.
    assert rows["recording"][0] < rows["shipped"][0]
    assert rows["recording"][1] < rows["shipped"][1]
    assert (tmp_path / "png" / "tinychord.png").stat().st_size > 1000
    # The hearing section: the model and baseline (a) as the plugin plays them, beside both scales.
    hearing = text.split("## What a listener hears")[1].split("## Texture statistics")[0]
    for label in ("self", "ceiling", "shipped @ 6", "shipped @ 1024", "notebook (a) @ 8", "notebook (a) @ 1024"):
        m = re.search(rf"^\| tinychord \| {re.escape(label)} \| ([-+\d.]+) \| ([-\d.]+) \| ([-\d.]+) \|", hearing, re.M)
        assert m, f"no hearing row {label}"
        assert all(np.isfinite(float(v)) for v in m.groups())
    assert re.search(r"^\| tinychord \| self \|.*\| scale \|$", hearing, re.M)
    assert re.search(r"^\| tinychord \| shipped @ 6 \|.*\| (\*\*meets the floor\*\*|misses: .+) \|$", hearing, re.M)
    assert (tmp_path / "png" / "tinychord-hearing.png").stat().st_size > 1000
    assert len(json.loads((tmp_path / "png" / "hearing.json").read_text())) == 1
    assert "(cached)" not in text.split("### tinychord")[1]
    cache = list((tmp_path / "bl").glob("tinychord-notebook-*.pt"))
    assert len(cache) == 1

    # Second run: baseline (a) comes from the cache, and the numbers are reproducible.
    out2 = tmp_path / "EVAL2.md"
    args2 = [a if a != str(out) else str(out2) for a in args] + ["--extra-baseline", "tinychord:1"]
    assert main(args2) == 0
    text2 = out2.read_text()
    assert "(cached)" in text2
    assert re.search(r"^\| notebook \(a\), 1 it\. \| \d", text2, re.M)
    row = re.compile(r"^\| (shipped|notebook \(a\)|L-BFGS \(b\)|recording) \|.*$", re.M)
    assert [m.group(0) for m in row.finditer(text)] == [m.group(0) for m in row.finditer(text2)]
    capsys.readouterr()


def test_missing_target_is_one_clear_line(tmp_path, chord_wav, capsys):
    model = _tiny_model(tmp_path / "m.onnx", "nowhere.wav")
    code = main(["eval", "--quick", "--models", str(model), "--out", str(tmp_path / "E.md"),
                 "--targets-dir", str(chord_wav.parent), "--baseline-dir", str(tmp_path / "bl")])
    err = capsys.readouterr().err.strip()
    assert code == 3 and err.startswith("error: target of m.onnx not found") and "\n" not in err
    assert main(["eval", "--quick", "--models", "no_such_model", "--out", str(tmp_path / "E.md")]) == 3
    code = main(["eval", "--quick", "--models", str(model), "--out", str(tmp_path / "E.md"),
                 "--extra-baseline", "m:zero"])
    assert code == 2 and "NAME:ITERS" in capsys.readouterr().err


def test_baseline_a_gets_the_shipped_models_cell_updates():
    from types import SimpleNamespace

    from grown_train.eval import BASELINE_ITERS, EQUAL, Budget, baseline_iterations, cell_updates

    # 100 iterations × batch 2 × ¾·64 steps × 50 frames, after 10 iterations at 20 frames.
    info = {"iterations": 100, "batch": 2, "lineage": [{"frames": 20, "iters": 10}]}
    assert cell_updates(info, 64, 50) == 100 * 2 * 48 * 50 + 10 * 2 * 48 * 20
    assert cell_updates({}, 64, 50) is None
    budget = Budget(seeds=2, frames=40, baseline_iters=EQUAL, baseline_steps=96, baseline_batch=3, lbfgs_iters=1,
                    gl_iters=1, crop_pairs=1)
    spec = SimpleNamespace(meta={"grown.growth_steps": "64", "grown.train_frames": "50"})
    iters, note = baseline_iterations(budget, info, spec, 50)
    assert iters == -(-(480000 + 19200) // (3 * 96 * 50)) and "equal" in note
    assert baseline_iterations(budget, {}, spec, 50)[0] == BASELINE_ITERS  # unknown budget: the fixed default
    budget.baseline_iters = 7
    assert baseline_iterations(budget, info, spec, 50)[0] == 7


def test_default_command_rows_say_how_long_each_run_took(tmp_path):
    from grown_train import hearing as H
    from grown_train.hearing_eval import DEFAULT_COMMAND_LABEL, Heard, default_command_lines

    row = dict.fromkeys(("level_db", "fine", "modulation", "voiced", "flatness", "onsets"), 0.0)
    scales = H.Scales(self=row, ceiling=row, reference={})
    trained = Heard("strings", "strings.ogg", 3.5, scales, rows={"shipped": {}, DEFAULT_COMMAND_LABEL: {}})
    missing = Heard("trumpet", "trumpet.ogg", 3.5, scales, rows={"shipped": {}, DEFAULT_COMMAND_LABEL: {}})
    shipped_only = Heard("chord", "chord.wav", 3.5, scales, rows={"shipped": {}})
    (tmp_path / "runs.json").write_text(json.dumps(
        {"strings": {"iterations": 400, "wall_s": 2987, "segments_s": [1354, 1633]}}))

    lines = "\n".join(default_command_lines([trained, missing, shipped_only], tmp_path))

    assert "`python -m grown_train train --target AUDIO --out MODEL.onnx`" in lines
    assert "* strings: 400 iterations, 50 min wall in 2 resumed runs (1354 + 1633 s)" in lines
    assert "* trumpet: no run record in `runs.json`" in lines
    assert "chord" not in lines
    assert default_command_lines([shipped_only], tmp_path) == []
