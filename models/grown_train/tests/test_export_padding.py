"""The exporter's feature-channel padding is invisible in the step's output."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from grown_train import export
from grown_train.tests.test_export import INFO, random_nca, session


def mlp_inputs(path) -> int:
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    widths = [inits[n.input[1]].dims[1] for n in model.graph.node
              if n.op_type == "Conv" and n.input[1] in inits and list(inits[n.input[1]].dims[2:]) == [1, 1]]
    return widths[0]


def test_padding_is_bit_exact_and_aligned(tmp_path, monkeypatch):
    nca = random_nca()
    padded = export.export_onnx(nca, tmp_path / "padded.onnx", INFO)
    monkeypatch.setattr(export, "pad_feature_channels", lambda model: False)
    plain = export.export_onnx(nca, tmp_path / "plain.onnx", INFO)
    assert mlp_inputs(plain) == 97
    assert mlp_inputs(padded) == 104
    a, b = session(plain), session(padded)
    rng = np.random.default_rng(1)
    x = y = (rng.standard_normal((1, 16, 80, 37)) * 0.1).astype(np.float32)
    for _ in range(8):
        mask = (rng.random((1, 1, 80, 37)) < 0.5).astype(np.float32)
        x = a.run(None, {"state": x, "update_mask": mask})[0]
        y = b.run(None, {"state": y, "update_mask": mask})[0]
    assert np.array_equal(x.view(np.uint32), y.view(np.uint32))
    assert np.abs(x).max() > 0.2


def test_padding_leaves_aligned_or_unknown_graphs_alone(tmp_path, monkeypatch):
    nca = random_nca()
    monkeypatch.setattr(export, "pad_feature_channels", lambda model: False)
    model = onnx.load(str(export.export_onnx(nca, tmp_path / "plain.onnx", INFO)))
    monkeypatch.undo()
    assert export.pad_feature_channels(model)
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    # Already a multiple of 8: a second pass changes nothing.
    assert not export.pad_feature_channels(model)
    assert all(np.array_equal(numpy_helper.to_array(i), weights[i.name]) for i in model.graph.initializer)
