"""The exporter's graph layouts (blocked features, padded features) only reorder the maths."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from grown_train import export
from grown_train.errors import CheckpointMismatch
from grown_train.tests.conftest import MODELS_DIR
from grown_train.tests.test_export import INFO, SHIPPED, random_nca, session


def mlp_inputs(path) -> int:
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    widths = [inits[n.input[1]].dims[1] for n in model.graph.node
              if n.op_type == "Conv" and n.input[1] in inits and list(inits[n.input[1]].dims[2:]) == [1, 1]]
    return widths[0]


def feature_blocks(path) -> list[int]:
    """Channels of each input of the Concat that feeds the update MLP, where a
    Conv makes it (0 where something else does: a plain-layout tensor)."""
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    mlp = next(n for n in model.graph.node
               if n.op_type == "Conv" and list(inits[n.input[1]].dims[2:]) == [1, 1])
    cat = producer[mlp.input[0]]
    assert cat.op_type == "Concat"
    blocks = []
    for name in cat.input:
        node = producer.get(name)
        blocks.append(inits[node.input[1]].dims[0] if node is not None and node.op_type == "Conv" else 0)
    return blocks


def traced_only(monkeypatch):
    monkeypatch.setattr(export.BlockedStep, "fits", staticmethod(lambda nca: False))


def rollout(a, b, frames: int = 37, steps: int = 8):
    rng = np.random.default_rng(1)
    x = y = (rng.standard_normal((1, 16, 80, frames)) * 0.1).astype(np.float32)
    for _ in range(steps):
        mask = (rng.random((1, 1, 80, frames)) < 0.5).astype(np.float32)
        x = a.run(None, {"state": x, "update_mask": mask})[0]
        y = b.run(None, {"state": y, "update_mask": mask})[0]
    return x, y


@pytest.mark.parametrize("perception", ["id,sobel_x,sobel_y,lap,time9,freq9", "id,time9,freq9,band9", "id,lap"])
def test_blocked_features_are_whole_blocks_and_match_the_traced_step(tmp_path, monkeypatch, perception):
    nca = random_nca(perception)
    blocked = export.export_onnx(nca, tmp_path / "blocked.onnx", INFO)
    assert all(b > 0 and b % export.BLOCK == 0 for b in feature_blocks(blocked)), feature_blocks(blocked)
    traced_only(monkeypatch)
    plain = export.export_onnx(nca, tmp_path / "plain.onnx", INFO)
    assert 0 in feature_blocks(plain) or any(b % export.BLOCK for b in feature_blocks(plain))
    x, y = rollout(session(plain), session(blocked))
    # The same maths summed in another order: equal to rounding, and really running.
    assert np.abs(x - y).max() < 1e-5
    assert np.abs(x).max() > 0.2


def test_a_model_that_does_not_fill_blocks_is_traced_and_padded(tmp_path):
    nca = random_nca(channels=12)
    assert not export.BlockedStep.fits(nca)
    path = export.export_onnx(nca, tmp_path / "m.onnx", INFO)
    assert mlp_inputs(path) % export.FEATURE_CHANNEL_MULTIPLE == 0


def test_relayout_rewrites_a_traced_file_and_keeps_its_metadata(tmp_path, monkeypatch):
    nca = random_nca("id,sobel_x,sobel_y,lap,time9,freq9,band9")
    traced_only(monkeypatch)
    path = export.export_onnx(nca, tmp_path / "m.onnx", INFO)
    monkeypatch.undo()
    from grown_train.eval import weights_digest

    before, digest = export.read_metadata(path), weights_digest(path)
    plain = session(path)
    assert export.relayout(path)
    assert export.read_metadata(path) == before
    # The same learnt weights, so run records naming them still apply.
    assert weights_digest(path) == digest
    assert all(b % export.BLOCK == 0 for b in feature_blocks(path))
    x, y = rollout(plain, session(path))
    assert np.abs(x - y).max() < 1e-5
    # A file already in the blocked layout has no traced weights to read back.
    with pytest.raises(CheckpointMismatch, match="already re-laid out"):
        export.relayout(path)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_mel_models_are_in_the_blocked_layout(name):
    blocks = feature_blocks(MODELS_DIR / "nca" / f"{name}.onnx")
    assert blocks and all(b > 0 and b % export.BLOCK == 0 for b in blocks), blocks


def test_padding_is_bit_exact_and_aligned(tmp_path, monkeypatch):
    nca = random_nca()
    traced_only(monkeypatch)
    padded = export.export_onnx(nca, tmp_path / "padded.onnx", INFO)
    monkeypatch.setattr(export, "pad_feature_channels", lambda model: False)
    plain = export.export_onnx(nca, tmp_path / "plain.onnx", INFO)
    assert mlp_inputs(plain) == 97
    assert mlp_inputs(padded) == 104
    x, y = rollout(session(plain), session(padded))
    assert np.array_equal(x.view(np.uint32), y.view(np.uint32))
    assert np.abs(x).max() > 0.2


def test_padding_leaves_aligned_or_unknown_graphs_alone(tmp_path, monkeypatch):
    nca = random_nca()
    traced_only(monkeypatch)
    monkeypatch.setattr(export, "pad_feature_channels", lambda model: False)
    model = onnx.load(str(export.export_onnx(nca, tmp_path / "plain.onnx", INFO)))
    monkeypatch.undo()
    assert export.pad_feature_channels(model)
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    # Already a multiple of 8: a second pass changes nothing.
    assert not export.pad_feature_channels(model)
    assert all(np.array_equal(numpy_helper.to_array(i), weights[i.name]) for i in model.graph.initializer)


@pytest.mark.parametrize("perception", ["id,sobel_x,sobel_y,lap,time9,freq9", "id,time9,freq9,band9"])
def test_a_blocked_file_reads_back_as_the_same_nca(tmp_path, perception):
    nca = random_nca(perception)
    path = export.export_onnx(nca, tmp_path / "m.onnx", INFO)
    back = export.nca_from_onnx(path)
    assert back.cfg == nca.cfg
    ours, theirs = nca.state_dict(), back.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
