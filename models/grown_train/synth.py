"""Synthetic training targets (``chord`` and ``clicks``), generated deterministically.

``python -m grown_train.synth models/targets`` rewrites the shipped WAVs; they are
CC0 because we made them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SAMPLE_RATE = 22050
#: A minor triad plus the octave: A3, C4, E4, A4.
CHORD_HZ = (220.0, 261.63, 329.63, 440.0)
#: Clicks per second in the click train.
CLICK_RATE = 4.0


def chord(seconds: float = 6.0, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Steady sine chord with equal partial amplitudes, peak 0.5."""
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * f * t) for f in CHORD_HZ)
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)


def clicks(seconds: float = 6.0, sr: int = SAMPLE_RATE, rate: float = CLICK_RATE) -> np.ndarray:
    """Click train: 3 ms exponentially decaying noise bursts at ``rate`` per second."""
    n = int(seconds * sr)
    y = np.zeros(n, dtype=np.float64)
    burst_len = int(0.003 * sr)
    rng = np.random.default_rng(4)
    burst = rng.standard_normal(burst_len) * np.exp(-np.arange(burst_len) / (0.0008 * sr))
    period = sr / rate
    k = 0
    while int(k * period) + burst_len < n:
        start = int(k * period)
        y[start : start + burst_len] += burst
        k += 1
    return (0.8 * y / np.max(np.abs(y))).astype(np.float32)


def write_all(folder: Path) -> list[Path]:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, audio in (("chord", chord()), ("clicks", clicks())):
        path = folder / f"{name}.wav"
        sf.write(str(path), audio, SAMPLE_RATE, subtype="PCM_16")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "targets")):
        print(p)
