"""The lossless stereo representation ``stft-ms`` and its loss terms.

A stereo signal ``L, R`` becomes its mid ``M = (L + R) / 2`` and side
``S = (L - R) / 2`` channels; each is analysed with a *circular* STFT (Hann,
n_fft 1024, hop 256, every one of the 513 bins kept, DC included) and the real
and imaginary parts of both become four image channels, compressed by an
invertible signed logarithm. Nothing is thrown away, so the inverse needs no
vocoder: inverse FFT, window, overlap-add, divide by the window's constant
overlap sum, ``L = M + S``, ``R = M - S``.

Why circular: the NCA's time axis wraps around, so a grown spectrogram is a
loop; analysing the training audio as a loop too makes ``frames = samples / hop``
exactly, the transform a tight frame (exactly invertible for any length that is
a multiple of ``hop``) and the played loop seamless. The exact mapping is the
contract's ``stft-ms`` section in ``models/README.md``; ``src/dsp/stft_ms.rs`` is
the Rust side of the same definition.

Run ``python -m grown_train.stftms train --help`` to train a stereo model
(:mod:`grown_train.stftms_train`); its EVAL.md section is :mod:`grown_train.stftms_eval`.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

#: Value of ``grown.representation`` for this representation.
REPRESENTATION = "stft-ms"
#: Visible channels, in state order starting at ``grown.spec_channel``.
VISIBLE = ("mid_re", "mid_im", "side_re", "side_im")
#: Signed-log gain: a state value ``v`` maps to ``sign(v)*(exp(SCALE*|v| + OFFSET) - exp(OFFSET))``.
#: 4 keeps a full-scale sine (|X| ~ 256) near 2.5, inside the training overflow bound of 3.
SCALE = 4.0
#: ``ln(eps)``: eps = 0.01 is the linear amplitude where compression turns from linear to
#: logarithmic (-88 dB below a full-scale sine's peak bin), so seed noise stays near-silent.
OFFSET = math.log(0.01)
#: State values are clamped to +-STATE_LIMIT before expansion (the training overflow bound):
#: |x| <= exp(12 - 4.6) ~ 1600, above any full-scale signal's bin (<= 512), so audio
#: round trips are unaffected while a runaway cell cannot become an exponential blast.
STATE_LIMIT = 3.0


@dataclass(frozen=True)
class StftConfig:
    """The analysis the model's grid is expressed in (``grown.stft``)."""

    #: Audio sample rate in Hz (targets are resampled to it).
    sample_rate: int = 22050
    #: FFT size; bins = n_fft / 2 + 1 = 513 rows of the grid.
    n_fft: int = 1024
    #: Hop between frames in samples; one grid column per hop, samples = frames * hop.
    hop: int = 256
    #: Window length (periodic Hann, equal to n_fft).
    win: int = 1024
    #: Grid height: every rFFT bin, the DC bin included (without it the low end distorts).
    bins: int = 513
    #: Window name, declared so another implementation cannot silently differ.
    window: str = "hann_periodic"
    #: Time padding of the analysis: frame t covers samples ``t*hop - n_fft/2 ..`` modulo the loop length.
    padding: str = "circular"

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


DEFAULT_STFT = StftConfig()


def _window(cfg: StftConfig, dtype=torch.float32) -> torch.Tensor:
    return torch.hann_window(cfg.win, periodic=True, dtype=dtype)


def _frame_index(n_samples: int, cfg: StftConfig) -> torch.Tensor:
    """``[frames, n_fft]`` sample index of every frame position (wraps around the loop)."""
    frames = n_samples // cfg.hop
    t = torch.arange(frames)[:, None] * cfg.hop - cfg.n_fft // 2
    return (t + torch.arange(cfg.n_fft)[None, :]) % n_samples


def ola_norm(cfg: StftConfig = DEFAULT_STFT) -> float:
    """Sum of the squared window over the frames covering one sample (1.5 for Hann, hop n/4)."""
    w = _window(cfg, torch.float64)
    return float((w * w).sum() / cfg.hop)


def stft(x: torch.Tensor, cfg: StftConfig = DEFAULT_STFT) -> torch.Tensor:
    """Circular STFT: ``[..., samples]`` (a multiple of hop) → complex ``[..., bins, samples/hop]``."""
    n = x.shape[-1]
    if n % cfg.hop or n == 0:
        raise ValueError(f"length {n} is not a positive multiple of hop {cfg.hop}")
    frames = x[..., _frame_index(n, cfg)] * _window(cfg, x.dtype)
    return torch.fft.rfft(frames, n=cfg.n_fft, dim=-1).transpose(-1, -2)


def istft(spec: torch.Tensor, cfg: StftConfig = DEFAULT_STFT) -> torch.Tensor:
    """Inverse of :func:`stft` (least squares for spectrograms that are not a signal's STFT)."""
    frames = spec.shape[-1]
    n = frames * cfg.hop
    real_dtype = spec.real.dtype
    seg = torch.fft.irfft(spec.transpose(-1, -2), n=cfg.n_fft, dim=-1) * _window(cfg, real_dtype)
    idx = _frame_index(n, cfg).reshape(-1)
    out = torch.zeros(*seg.shape[:-2], n, dtype=real_dtype)
    out = out.index_add(-1, idx, seg.reshape(*seg.shape[:-2], -1))
    return out / ola_norm(cfg)


def compress(x: torch.Tensor) -> torch.Tensor:
    """Linear STFT part → state value: ``sign(x) * (ln(|x| + eps) - ln(eps)) / SCALE``."""
    return torch.sign(x) * (torch.log(x.abs() + math.exp(OFFSET)) - OFFSET) / SCALE


def expand(v: torch.Tensor) -> torch.Tensor:
    """State value → linear STFT part, the exact inverse of :func:`compress` within ``STATE_LIMIT``."""
    return torch.sign(v) * (torch.exp(SCALE * v.abs().clamp(max=STATE_LIMIT) + OFFSET) - math.exp(OFFSET))


def to_mid_side(stereo: torch.Tensor) -> torch.Tensor:
    """``[..., 2, samples]`` (L, R) → ``[..., 2, samples]`` (M, S)."""
    left, right = stereo[..., 0, :], stereo[..., 1, :]
    return torch.stack([(left + right) * 0.5, (left - right) * 0.5], dim=-2)


def from_mid_side(ms: torch.Tensor) -> torch.Tensor:
    """``[..., 2, samples]`` (M, S) → (L, R)."""
    return torch.stack([ms[..., 0, :] + ms[..., 1, :], ms[..., 0, :] - ms[..., 1, :]], dim=-2)


def visible_to_complex(v: torch.Tensor) -> torch.Tensor:
    """Four visible channels ``[..., 4, bins, T]`` → complex mid/side spectra ``[..., 2, bins, T]``."""
    x = expand(v)
    return torch.complex(x[..., 0::2, :, :], x[..., 1::2, :, :])


def complex_to_visible(spec: torch.Tensor) -> torch.Tensor:
    """Complex ``[..., 2, bins, T]`` → four channels (M re, M im, S re, S im)."""
    parts = torch.stack([spec.real, spec.imag], dim=-3)  # [..., 2(ms), 2(re/im), bins, T]
    return compress(parts.flatten(-4, -3))


def encode(stereo: torch.Tensor, cfg: StftConfig = DEFAULT_STFT) -> torch.Tensor:
    """Stereo audio ``[2, samples]`` → visible channels ``[4, bins, frames]`` (samples padded to a hop multiple)."""
    n = stereo.shape[-1]
    pad = (-n) % cfg.hop
    if pad:
        stereo = torch.nn.functional.pad(stereo, (0, pad))
    return complex_to_visible(stft(to_mid_side(stereo), cfg))


def decode(visible: torch.Tensor, cfg: StftConfig = DEFAULT_STFT) -> torch.Tensor:
    """Visible channels ``[..., 4, bins, frames]`` → stereo audio ``[..., 2, frames * hop]``."""
    return from_mid_side(istft(visible_to_complex(visible), cfg))


def load_stereo(path: Path, sample_rate: int) -> np.ndarray:
    """Stereo float32 ``[2, samples]`` at ``sample_rate`` (mono files are duplicated; peaks above 1 scaled down)."""
    import soundfile as sf

    from grown_train.errors import MissingInput, NotAudio, SilentInput

    path = Path(path)
    if not path.is_file():
        raise MissingInput(f"target file not found: {path}")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile reports unknown formats in several ways
        raise NotAudio(f"not a readable audio file: {path} ({type(exc).__name__})") from None
    if data.shape[1] == 1:
        data = np.repeat(data, 2, axis=1)
    data = data[:, :2]
    if sr != sample_rate:
        import soxr

        data = soxr.resample(data, sr, sample_rate, quality="HQ")
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if peak < 1e-4:
        raise SilentInput(f"target is silent: {path}")
    if peak > 1.0:
        data = data / peak
    return np.ascontiguousarray(data.T, dtype=np.float32)


# --------------------------------------------------------------------------- losses

#: Bands the magnitude is pooled into for the texture (Gram) statistics: 512 bins above DC / 8.
TEXTURE_BANDS = 64
#: Floor (linear amplitude) inside the log-magnitude: the compression's own eps.
LOGMAG_EPS = math.exp(OFFSET)


def log_magnitude(spec: torch.Tensor) -> torch.Tensor:
    """``ln(sqrt(|X|^2 + eps^2))`` of complex ``[..., bins, T]``."""
    return 0.5 * torch.log(spec.real.square() + spec.imag.square() + LOGMAG_EPS**2)


def texture_view(logmag: torch.Tensor) -> torch.Tensor:
    """``[B, 2, bins, T]`` log-magnitudes → ``[B, 2*TEXTURE_BANDS, T]`` pooled, scaled features.

    The Gram statistics of :class:`grown_train.losses.TextureLoss` do not need
    every bin (the full-resolution spectrum has its own L1 term); pooling keeps
    the random-filter ensemble cheap. Scaled by 1/4 like the mel models' domain.
    """
    b, c, _, t = logmag.shape
    bands = logmag[:, :, 1:, :].reshape(b, c, TEXTURE_BANDS, -1, t).mean(dim=3)
    return (bands.reshape(b, c * TEXTURE_BANDS, t) + 2.0) / 4.0


@dataclass(frozen=True)
class StereoWeights:
    """Weights of the stereo loss terms (``--w-NAME``)."""

    #: Random-filter Gram statistics of the pooled mid+side log-magnitude (texture).
    #: This and ``spectrum`` are measured on STFT(ISTFT(X)), the spectrogram of what is heard.
    gram: float = 1.0
    #: L1 of the time-averaged full-resolution log-magnitude (per bin, mid and side): timbre and stereo width.
    spectrum: float = 1.0
    #: ||encode(STFT(ISTFT(X))) - v||^2: the grown spectrogram must be a real signal's STFT.
    consistency: float = 1.0
    #: Diversity hinge between batch items (from TextureLoss).
    diversity: float = 0.2
    #: State values outside +-3 (long growth stability).
    overflow: float = 1.0


class StereoLoss(torch.nn.Module):
    """Target statistics of a stereo recording and the loss against them."""

    def __init__(self, target_visible: torch.Tensor, frames: int, fps: float, weights: StereoWeights = StereoWeights()):
        from grown_train.losses import LossWeights, TextureLoss

        super().__init__()
        self.weights = weights
        logmag = log_magnitude(visible_to_complex(target_visible))  # [2, bins, T]
        self.register_buffer("t_mean", logmag.mean(dim=-1))
        tex = texture_view(logmag.unsqueeze(0))[0]
        self.texture = TextureLoss(
            tex, frames, fps, LossWeights(gram=1.0, acf=0.0, diversity=1.0, l1=0.0, sot=0.0, overflow=0.0)
        )

    def forward(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-item terms for states ``[B, C, bins, T]`` (visible channels 0..3) including ``total``."""
        w = self.weights
        v = state[:, :4]
        # What is heard is the grid projected onto real signals (ISTFT then STFT):
        # an inconsistent grid's overlap-add cancels itself, so the statistics are
        # taken on the projection, and `consistency` keeps the grid close to it.
        heard = stft(istft(visible_to_complex(v)))
        logmag = log_magnitude(heard)
        tex = self.texture(texture_view(logmag))
        terms = {
            "gram": tex["gram"],
            "spectrum": (logmag.mean(dim=-1) - self.t_mean).abs().mean(dim=(1, 2)) / 4.0,
            "diversity": tex["diversity"],
        }
        terms["consistency"] = (complex_to_visible(heard) - v).square().mean(dim=(1, 2, 3))
        from grown_train.losses import OVERFLOW_BOUND

        terms["overflow"] = (state - state.clamp(-OVERFLOW_BOUND, OVERFLOW_BOUND)).abs().mean(dim=(1, 2, 3))
        total = torch.zeros(state.shape[0])
        for name, value in terms.items():
            total = total + getattr(w, name) * value
        terms["total"] = total
        return terms


# --------------------------------------------------------------------------- picture


def picture(visible: np.ndarray, height: int = 256, gain: float = 1.0) -> np.ndarray:
    """The research's picture: RGB ``[height, frames, 3]`` uint8 (row 0 = top = highest frequency).

    The absolute values of the four visible channels are the ink amounts of
    C, M, Y, K (M re → cyan, M im → magenta, S re → yellow, S im → black),
    clipped to [0, 1] after ``gain``; CMYK → RGB is ``(1-c)(1-k)`` etc., and the
    colours are then inverted, so silence is black and loud cells are bright.
    Frequency is on a log2 axis from bin 1 (the DC row is drawn at the bottom
    row) up to the top bin; ``src/dsp/stft_ms.rs::stft_ms_picture`` is the same function.
    """
    v = np.abs(np.asarray(visible, dtype=np.float64)[:4]) * gain
    v = np.clip(v, 0.0, 1.0)
    bins = v.shape[1]
    rows = picture_rows(bins, height)
    ink = v[:, rows, :]  # [4, height, frames], row 0 = lowest frequency
    c, m, y, k = ink
    rgb = np.stack([(1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)], axis=-1)
    rgb = 1.0 - rgb
    return (np.round(rgb[::-1] * 255.0)).astype(np.uint8)


def picture_rows(bins: int, height: int) -> np.ndarray:
    """Bin drawn in each output row (row 0 = bottom): row 0 is DC, the rest log2-spaced from bin 1 to bins-1."""
    if height < 2:
        return np.zeros(max(height, 0), dtype=np.int64)
    pos = np.arange(height - 1) / max(height - 2, 1)
    b = np.exp2(pos * math.log2(bins - 1))
    return np.concatenate([[0], np.clip(np.floor(b), 1, bins - 1)]).astype(np.int64)


def main(argv: list[str] | None = None) -> int:
    """``python -m grown_train.stftms train|eval``, the documented command (see :mod:`grown_train.stftms_train`)."""
    from grown_train.stftms_train import main as stereo_main

    return stereo_main(argv)


if __name__ == "__main__":
    sys.exit(main())
