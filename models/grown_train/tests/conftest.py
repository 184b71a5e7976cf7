"""Shared fixtures: tiny synthetic targets and a tiny training configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

# One thread: the suite is small, and on a shared 2-core machine extra threads
# mostly spin-wait for each other.
torch.set_num_threads(1)

MODELS_DIR = Path(__file__).resolve().parents[2]

#: Options that make a training run take seconds on two CPU cores.
TINY = [
    "--frames", "32", "--channels", "8", "--hidden", "32", "--batch", "3",
    "--min-steps", "8", "--max-steps", "12", "--pool-size", "8",
    "--preview-every", "0", "--quiet", "--threads", "1",
]


@pytest.fixture
def chord_wav(tmp_path: Path) -> Path:
    """Two seconds of a two-note chord with a 4 Hz tremolo (so every loss term is active)."""
    sr = 22050
    t = np.arange(2 * sr) / sr
    y = (np.sin(2 * np.pi * 330 * t) + 0.5 * np.sin(2 * np.pi * 660 * t)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    path = tmp_path / "in" / "chord.wav"
    path.parent.mkdir()
    sf.write(str(path), (0.3 * y).astype(np.float32), sr)
    return path


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())
