"""Reference vectors for other implementations of the mel front end (the Rust crate).

``python -m grown_train.reference models/testdata/mel_reference.json`` rewrites
the file. Values are computed in float64 from float32-exact input samples, so an
f32 implementation should match to about 1e-4 in natural-log units.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from grown_train.io import atomic_write
from grown_train.mel import DEFAULT_MEL, LOG_FLOOR, MAG_EPS, MelConfig, log_mel, mel_basis


def reference_signal(n: int, sr: int = DEFAULT_MEL.sample_rate, seed: int = 0) -> np.ndarray:
    """Two sines, a linear chirp and a little seeded noise, rounded to float32."""
    t = np.arange(n) / sr
    rng = np.random.default_rng(seed)
    y = (
        0.3 * np.sin(2 * np.pi * 440.0 * t)
        + 0.2 * np.sin(2 * np.pi * 1234.5 * t)
        + 0.2 * np.sin(2 * np.pi * (200.0 * t + 0.5 * 8000.0 * t * t / max(t[-1], 1e-9)))
        + 0.01 * rng.standard_normal(n)
    )
    return y.astype(np.float32)


def _f(x: float, digits: int) -> float:
    """Shortest float that prints with ``digits`` significant digits (keeps the file small)."""
    return float(f"{x:.{digits}g}")


def case(name: str, signal: np.ndarray, cfg: MelConfig) -> dict:
    mel = log_mel(torch.from_numpy(signal.astype(np.float64)), cfg).numpy()
    return {
        "name": name,
        "n_samples": int(len(signal)),
        "n_frames": int(mel.shape[1]),
        # 9 significant digits round-trip float32 exactly.
        "signal": [_f(v, 9) for v in signal.tolist()],
        "log_mel": [[_f(v, 8) for v in row] for row in mel.tolist()],
    }


def build(cfg: MelConfig = DEFAULT_MEL) -> dict:
    basis = mel_basis(cfg)
    rows = []
    for i in (0, 1, 2, cfg.n_mels - 3, cfg.n_mels - 2, cfg.n_mels - 1):
        nz = np.nonzero(basis[i])[0]
        rows.append({"row": i, "start": int(nz[0]), "values": [_f(v, 9) for v in basis[i, nz[0] : nz[-1] + 1]]})
    return {
        "description": (
            "Grown mel front end (identical to BigVGAN meldataset.mel_spectrogram): periodic Hann window, "
            "reflect padding (n_fft-hop)/2 both sides, STFT center=False, magnitude sqrt(re^2+im^2+1e-9), "
            "librosa Slaney mel basis (htk=False, norm='slaney'), ln(max(x,1e-5)). log_mel is [n_mels][frames], "
            "computed in float64 from the float32 signal."
        ),
        "config": asdict(cfg),
        "mag_eps": MAG_EPS,
        "log_floor": LOG_FLOOR,
        "tolerance": 1e-4,
        "mel_basis_rows": rows,
        "cases": [
            case("tones_chirp_noise_8192", reference_signal(8192), cfg),
            case("one_window_1024", reference_signal(cfg.n_fft, seed=1), cfg),
        ],
    }


def write(path: Path) -> Path:
    text = json.dumps(build(), separators=(",", ":"))
    return atomic_write(Path(path), lambda tmp: tmp.write_text(text + "\n"))


if __name__ == "__main__":
    print(write(Path(sys.argv[1] if len(sys.argv) > 1 else "testdata/mel_reference.json")))
