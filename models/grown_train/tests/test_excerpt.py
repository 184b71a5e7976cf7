"""Excerpt seeds: the passage, its loop crossfade, the bank in the file, and training that regrows it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from grown_train import cli
from grown_train.excerpt import (
    choose_bank,
    decode_bank,
    encode_bank,
    excerpt_states,
    loopable_crop,
    restore_loss,
    start_span,
)
from grown_train.export import read_metadata
from grown_train.grow import grow_onnx
from grown_train.tests.conftest import TINY


def test_passage_crossfades_its_end_into_its_start():
    # The same case as the plugin's bank test (src/grow/bank.rs): one band holding its frame index.
    bank = torch.arange(40, dtype=torch.float32)[None]
    crop = loopable_crop(bank, 3, 20)[0]
    assert crop[8:].tolist() == list(range(11, 23))
    assert float(crop[0]) == (0.5 / 8) * 3 + (7.5 / 8) * 23
    assert float(crop[7]) == (7.5 / 8) * 10 + (0.5 / 8) * 30
    assert start_span(40, 20) == 13 and start_span(10, 20) == 1


def test_bank_is_the_loudest_span_and_survives_the_file():
    # 17 dB quieter than the loud part: part of the recording, not a quiet end.
    target = torch.full((4, 100), 0.5)
    target[:, 60:80] = 1.0
    bank = choose_bank(target, 30)
    assert bank.shape == (4, 30) and float(bank.mean()) > 0.8
    assert choose_bank(target, 500).shape == (4, 100)
    exact = bank.half().float()
    assert torch.equal(decode_bank(encode_bank(exact), 4), exact)


def test_seed_states_are_passages_plus_noise():
    # Within the overflow bound (|x| <= 4), so a clean passage scores exactly zero.
    bank = torch.randn(6, 50, generator=torch.Generator().manual_seed(3)).clamp(-3, 3)
    states, clean = excerpt_states(bank, [1, 2, 3], channels=3, frames=16, std=0.1)
    assert states.shape == (3, 3, 6, 16) and clean.shape == (3, 6, 16)
    noise = states[:, 0] - clean
    assert 0.07 < float(noise.std()) < 0.13
    assert 0.07 < float(states[:, 1:].std()) < 0.13
    # Different seeds, different passages; the same seed, the same state.
    assert not torch.equal(clean[0], clean[1])
    again, _ = excerpt_states(bank, [1], channels=3, frames=16, std=0.1)
    assert torch.equal(again[0], states[0])
    # The loss is the passage back: zero on the clean passage, positive on the seed.
    exact = states.clone()
    exact[:, 0] = clean
    assert restore_loss(exact, clean).abs().max() == 0
    assert (restore_loss(states, clean) > 0.05).all()


def test_excerpt_training_regrows_the_passage_and_writes_contract_2(tmp_path, chord_wav, capsys):
    out = tmp_path / "m.onnx"
    rc = cli.main(["train", "--target", str(chord_wav), "--out", str(out), "--iters", "12",
                   "--seed-kind", "excerpt", "--lr", "1e-2",
                   "--checkpoint-dir", str(tmp_path / "runs"), *TINY])
    assert rc == 0
    capsys.readouterr()
    ckpt = torch.load(next((tmp_path / "runs").glob("m-*.pt")), weights_only=False)
    totals = [h["total"] for h in ckpt["history"]]
    assert np.isfinite(totals).all() and ckpt["pool_clean"].shape == (8, 80, 32)
    meta = read_metadata(out)
    assert meta["grown.contract"] == "2"
    assert json.loads(meta["grown.seed_state"]) == {"kind": "excerpt", "std": 0.1}
    bank = decode_bank(meta["grown.seed_bank"], 80)
    assert bank.shape[0] == 80 and bank.shape[1] >= 32
    # Grown with ONNX Runtime as the plugin grows it: still the recording's passage, not noise.
    scale, offset = float(meta["grown.spec_scale"]), float(meta["grown.spec_offset"])
    grown = grow_onnx(out, [5], 32, meta=meta)[0][0] * scale + offset
    assert np.isfinite(grown).all()
    ln_bank = bank.numpy() * scale + offset
    assert abs(float(grown.mean()) - float(ln_bank.mean())) < 1.0
    # The chord's harmonic rows stay the loudest rows.
    assert np.corrcoef(grown.mean(axis=1), ln_bank.mean(axis=1))[0, 1] > 0.8


def test_unknown_seed_kind_is_refused(tmp_path, chord_wav, capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--target", str(chord_wav), "--out", str(tmp_path / "m.onnx"),
                  "--seed-kind", "crop", *TINY])
    assert "--seed-kind" in capsys.readouterr().err


def test_bank_leaves_out_a_quiet_lead_in_and_tail():
    target = torch.full((4, 100), -3.0)
    target[:, 20:70] = 0.5
    target[:, 40] = -3.0  # a rest inside the passage stays
    bank = choose_bank(target, 500)
    assert bank.shape == (4, 50) and float(bank[:, 20].mean()) == -3.0
