"""The neural cellular automaton: perceive, update, step.

Written in the spirit of Distill's "Self-Organising Textures": a handful of small
functions, no framework ceremony. The grid is a log-mel spectrogram
``[batch, channels, n_mels, frames]``; channel ``spec_channel`` is the visible,
scaled spectrogram and the other channels are hidden state.

Everything here must export to ONNX opset 17, so circular padding is spelled out
with slicing and concatenation rather than ``mode="circular"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

#: Every perception kernel a model may use, in the order features are stacked.
ALL_KERNELS = ("id", "sobel_x", "sobel_y", "lap", "time9", "freq9", "band9")
#: Kernels with fixed 3x3 weights (x = time axis, y = frequency axis).
FIXED_KERNELS = ("id", "sobel_x", "sobel_y", "lap")
#: Length of the learnable audio-shaped kernels (1x9 along time, 9x1 along frequency).
LONG = 9
#: Frames between the taps of the broadband kernel ``band9``: 9 taps span +-12 frames (0.14 s).
BAND_STRIDE = 3
#: Kernels of a model that does not choose (``band9`` is opt-in: it is for broadband events).
DEFAULT_PERCEPTION = "id,sobel_x,sobel_y,lap,time9,freq9"


def fixed_kernel(name: str) -> torch.Tensor:
    """3x3 kernel for a fixed perception filter, indexed ``[freq, time]``."""
    ident = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
    lap = torch.tensor([[1.0, 2.0, 1.0], [2.0, -12.0, 2.0], [1.0, 2.0, 1.0]]) / 16.0
    return {"id": ident, "sobel_x": sobel, "sobel_y": sobel.T, "lap": lap}[name]


def parse_perception(spec: str) -> tuple[str, ...]:
    """Validate a comma-separated kernel list and return it in canonical order."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in ALL_KERNELS]
    if unknown or not names:
        raise ValueError(
            f"unknown perception kernel(s) {unknown or spec!r}; choose from {','.join(ALL_KERNELS)}"
        )
    return tuple(k for k in ALL_KERNELS if k in names)


@dataclass(frozen=True)
class NCAConfig:
    """Architecture of one model; stored in checkpoints so a resume can verify it."""

    #: State channels C (channel ``spec_channel`` is the spectrogram).
    channels: int = 16
    #: Mel bands, the grid height; fixed in the exported graph.
    n_mels: int = 80
    #: Width of the update MLP's hidden layer.
    hidden: int = 128
    #: Perception kernels, canonical comma-separated list (``grown.perception``).
    perception: str = DEFAULT_PERCEPTION

    def to_dict(self) -> dict:
        return asdict(self)


def circular_time_pad(x: torch.Tensor, p: int) -> torch.Tensor:
    """Wrap ``p`` frames around the time axis (last dim) so grown sounds loop seamlessly."""
    if p == 0:
        return x
    return torch.cat([x[..., -p:], x, x[..., :p]], dim=3)


def frequency_ramp(n_mels: int) -> torch.Tensor:
    """Fixed position channel ``[1, 1, n_mels, 1]`` from -1 (lowest band) to 1 (highest).

    Without it every cell sees the same rules at every pitch and a texture NCA
    cannot place energy in the right mel bins.
    """
    return torch.linspace(-1.0, 1.0, n_mels).reshape(1, 1, n_mels, 1)


class NCA(torch.nn.Module):
    """Parameters of the automaton; the maths is in ``perceive`` / ``update``."""

    def __init__(self, cfg: NCAConfig):
        super().__init__()
        self.cfg = cfg
        kernels = parse_perception(cfg.perception)
        self.kernels = kernels
        c = cfg.channels
        fixed = [k for k in kernels if k in FIXED_KERNELS]
        if fixed:
            w = torch.stack([fixed_kernel(k) for k in fixed])  # [K, 3, 3]
            self.register_buffer("fixed_w", w.repeat(c, 1, 1).unsqueeze(1))  # [C*K, 1, 3, 3]
        else:
            self.fixed_w = None
        g = torch.Generator().manual_seed(1234)
        # Learnable long kernels start as smooth random filters so they carry
        # signal from step one; the MLP's zero-init keeps the first rollout inert.
        self.time_w = (
            torch.nn.Parameter(torch.randn(c, 1, 1, LONG, generator=g) / LONG)
            if "time9" in kernels
            else None
        )
        self.freq_w = (
            torch.nn.Parameter(torch.randn(c, 1, LONG, 1, generator=g) / LONG)
            if "freq9" in kernels
            else None
        )
        # A cell sees only +-4 bands per step, so without it a texture of broadband events
        # (clicks, drum hits) must synchronise 80 bands through many steps and tends to grow
        # per-band speckles instead. ``band9`` gives every cell its channel's mean over all bands,
        # a few frames either side: the frame's broadband envelope, whatever its height.
        self.band_w = (
            torch.nn.Parameter(torch.randn(c, 1, 1, LONG, generator=g) / LONG)
            if "band9" in kernels
            else None
        )
        self.register_buffer("ramp", frequency_ramp(cfg.n_mels))
        n_feat = c * len(kernels) + 1
        self.w1 = torch.nn.Conv2d(n_feat, cfg.hidden, 1)
        self.w2 = torch.nn.Conv2d(cfg.hidden, c, 1, bias=False)
        torch.nn.init.zeros_(self.w2.weight)

    def forward(self, state: torch.Tensor, update_mask: torch.Tensor) -> torch.Tensor:
        return step(self, state, update_mask)


def perceive(nca: NCA, x: torch.Tensor) -> torch.Tensor:
    """Per-cell features: depthwise kernels of every channel plus the frequency ramp."""
    c = nca.cfg.channels
    feats = []
    if nca.fixed_w is not None:
        xp = circular_time_pad(x, 1)
        feats.append(F.conv2d(xp, nca.fixed_w, padding=(1, 0), groups=c))
    if nca.time_w is not None:
        xp = circular_time_pad(x, LONG // 2)
        feats.append(F.conv2d(xp, nca.time_w, groups=c))
    if nca.freq_w is not None:
        feats.append(F.conv2d(x, nca.freq_w, padding=(LONG // 2, 0), groups=c))
    if nca.band_w is not None:
        env = circular_time_pad(x.mean(dim=2, keepdim=True), BAND_STRIDE * (LONG // 2))
        band = F.conv2d(env, nca.band_w, groups=c, dilation=(1, BAND_STRIDE))
        feats.append(band.expand(-1, -1, x.shape[2], -1))
    ramp = nca.ramp.expand(x.shape[0], 1, x.shape[2], x.shape[3])
    feats.append(ramp)
    return torch.cat(feats, dim=1)


def update(nca: NCA, features: torch.Tensor) -> torch.Tensor:
    """The per-cell rule: a two-layer 1x1 MLP from features to a state increment."""
    return nca.w2(torch.relu(nca.w1(features)))


def step(nca: NCA, state: torch.Tensor, update_mask: torch.Tensor) -> torch.Tensor:
    """One NCA step; cells where ``update_mask`` is 0 keep their value."""
    return state + update(nca, perceive(nca, state)) * update_mask


def seed_states(
    seeds: list[int], channels: int, n_mels: int, frames: int, std: float
) -> torch.Tensor:
    """Initial states, one per seed, N(0, std^2) per cell and channel (``grown.seed_state``).

    Torch's generator is not the plugin's PCG, so training seeds and plugin seeds
    give different (equally distributed) states; only the distribution is contract.
    """
    out = torch.empty(len(seeds), channels, n_mels, frames)
    for i, s in enumerate(seeds):
        g = torch.Generator().manual_seed(int(s))
        out[i] = torch.randn(channels, n_mels, frames, generator=g) * std
    return out


def fire_mask(
    batch: int, n_mels: int, frames: int, fire_rate: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Stochastic update mask: each cell fires with probability ``fire_rate``."""
    return (torch.rand(batch, 1, n_mels, frames, generator=generator) < fire_rate).float()
