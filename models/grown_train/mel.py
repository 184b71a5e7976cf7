"""The one mel front end, identical to BigVGAN's ``meldataset.mel_spectrogram``.

Everything in Grown (training targets, the Rust plugin, the vocoder) must agree on
this transform bit-for-bit up to float rounding, so it lives in exactly one place.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import torch


@dataclass(frozen=True)
class MelConfig:
    """Mel front-end parameters; the defaults are BigVGAN's 22 kHz / 80-band setup."""

    #: Audio sample rate in Hz; targets are resampled to it.
    sample_rate: int = 22050
    #: FFT size in samples.
    n_fft: int = 1024
    #: Hop between frames in samples (one NCA cell column per hop).
    hop: int = 256
    #: Analysis window length in samples.
    win: int = 1024
    #: Number of mel bands (the NCA grid height).
    n_mels: int = 80
    #: Lowest mel filter edge in Hz.
    fmin: float = 0.0
    #: Highest mel filter edge in Hz.
    fmax: float = 8000.0

    def to_json(self) -> str:
        """Compact JSON written into ``grown.mel`` (key order is the contract's)."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop


DEFAULT_MEL = MelConfig()

#: Floor applied before the logarithm (BigVGAN's ``spectral_normalize_torch``).
LOG_FLOOR = 1e-5
#: Added under the square root of the power spectrum (BigVGAN's magnitude).
MAG_EPS = 1e-9


@lru_cache(maxsize=4)
def mel_basis(cfg: MelConfig = DEFAULT_MEL) -> np.ndarray:
    """Slaney-scale, Slaney-normalised mel basis ``[n_mels, n_fft/2+1]`` (float64)."""
    import librosa

    return librosa.filters.mel(
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        n_mels=cfg.n_mels,
        fmin=cfg.fmin,
        fmax=cfg.fmax,
        htk=False,
        norm="slaney",
        dtype=np.float64,
    )


def n_frames(n_samples: int, cfg: MelConfig = DEFAULT_MEL) -> int:
    """Frames produced for ``n_samples`` of audio (at least ``n_fft - (n_fft-hop)`` samples)."""
    pad = (cfg.n_fft - cfg.hop) // 2
    return (n_samples + 2 * pad - cfg.n_fft) // cfg.hop + 1


def log_mel(audio: torch.Tensor | np.ndarray, cfg: MelConfig = DEFAULT_MEL) -> torch.Tensor:
    """Natural-log mel spectrogram ``[..., n_mels, frames]`` of ``audio [..., samples]``.

    Runs in the input's floating dtype (float64 numpy input stays float64) so the
    reference vectors can be produced at higher precision than training uses.
    """
    y = torch.as_tensor(audio)
    if not torch.is_floating_point(y):
        y = y.float()
    lead = y.shape[:-1]
    y = y.reshape(-1, y.shape[-1])
    pad = (cfg.n_fft - cfg.hop) // 2
    if y.shape[-1] <= pad:
        raise ValueError(f"need more than {pad} samples for reflect padding, got {y.shape[-1]}")
    y = torch.nn.functional.pad(y.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(cfg.win, periodic=True, dtype=y.dtype, device=y.device)
    spec = torch.stft(
        y,
        cfg.n_fft,
        hop_length=cfg.hop,
        win_length=cfg.win,
        window=window,
        center=False,
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    mag = torch.sqrt(spec.real.square() + spec.imag.square() + MAG_EPS)
    basis = torch.from_numpy(mel_basis(cfg)).to(dtype=y.dtype, device=y.device)
    mel = torch.matmul(basis, mag)
    out = torch.log(torch.clamp(mel, min=LOG_FLOOR))
    return out.reshape(*lead, cfg.n_mels, out.shape[-1])
