"""Excerpt seeds: a model that grows from a passage of its own recording.

Grown from noise, an NCA of this size grows a haze on real recordings: the
harmonic stacks of a trumpet or a string section are not something a 3x3 rule
can invent from nothing in a few dozen steps. A model with an excerpt seed
carries a bank of its recording's spectrogram (``grown.seed_bank``), and its
seed state is a passage of that bank, perturbed by seed noise. Growth then
regrows the sample: it heals the perturbation and any damage from the
passage's own structure, so what plays sounds like the recording while Seed
chooses the passage and the perturbation (contract version 2, see
models/README.md).

The pieces, in the order a seed state is built:

* :func:`choose_bank`: the loudest few seconds of the recording, so every seed plays "the sound";
* :func:`loopable_crop`: a passage whose end flows into its start, because a
  generation loops;
* :func:`excerpt_states`: crop plus N(0, std^2) per cell and channel;
* :func:`restore_loss`: what training asks of growth: the passage back.

The plugin computes the same seed state with its own generator; only the
distribution (uniform start, the crossfade, the noise) is contract.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import torch

from grown_train.mel import DEFAULT_MEL

#: Frames over which a passage's end is crossfaded into its start (93 ms at the
#: default hop): long enough that the loop point is not heard as a cut, short enough
#: to keep the passage's own attacks.
LOOP_XFADE = 8
#: Seconds of its recording a model carries: the loudest span this long. Hundreds of
#: distinct passages for Seed, all from the part of the recording a listener would call
#: "the sound". A longer span of a piece whose harmony moves (strings: 24 s) gave seeds
#: that play other chords, rests and quiet passages: at seed 1, harmonic fine structure
#: 0.05 against the loudest excerpt where 6 s gave 0.35 (strings, the same weights).
BANK_SECONDS = 6.0


def choose_bank(target: torch.Tensor, max_frames: int | None = None, spec_scale: float = 4.0) -> torch.Tensor:
    """The loudest contiguous ``max_frames`` (default :data:`BANK_SECONDS`) of ``target`` ``[n_mels, T]``.

    All of it when the recording is shorter. ``spec_scale`` maps ``target`` to log-mel (trimming).
    """
    if max_frames is None:
        max_frames = round(BANK_SECONDS * DEFAULT_MEL.frames_per_second)
    target = trim_quiet_ends(target, spec_scale)
    t = target.shape[1]
    if t <= max_frames:
        return target.clone()
    start = loudest_start(target.exp().mean(dim=0), max_frames)
    return target[:, start : start + max_frames].clone()


def loudest_start(energy: torch.Tensor, frames: int) -> int:
    """Start of the ``frames``-long window with the most ``energy`` (per frame, ``[T]``)."""
    return int(torch.nn.functional.avg_pool1d(energy[None, None], frames, stride=1)[0, 0].argmax())


def loud_span(energy: torch.Tensor) -> slice:
    """The frames from the first to the last whose ``energy`` (``[T]``) is within :data:`QUIET_END` of the loudest."""
    loud = torch.nonzero(energy >= QUIET_END * energy.max()).flatten()
    return slice(int(loud[0]), int(loud[-1]) + 1)


#: Frames at either end of a recording quieter than this fraction of its loudest frame's
#: energy (-20 dB) are not part of the bank: a trumpet recording's trailing second of room
#: tone gave seeds that played near-silence.
QUIET_END = 0.01


def trim_quiet_ends(target: torch.Tensor, spec_scale: float) -> torch.Tensor:
    """``target`` ``[n_mels, T]`` without its quiet lead-in and tail (see :data:`QUIET_END`).

    ``target`` is in state units, ``ln_mel = spec_scale * s + offset``; the offset cancels in the ratio.
    """
    return target[:, loud_span((2 * spec_scale * target).exp().mean(dim=0))]


def crossfade_len(frames: int) -> int:
    """Frames of the loop crossfade for a grid ``frames`` wide."""
    return min(LOOP_XFADE, frames // 2)


def start_span(bank_frames: int, frames: int) -> int:
    """How many start positions a passage ``frames`` wide (plus its crossfade tail) has in the bank."""
    return max(1, bank_frames - frames - crossfade_len(frames) + 1)


def loopable_crop(bank: torch.Tensor, start: int, frames: int) -> torch.Tensor:
    """Passage ``[n_mels, frames]`` from ``start``; its first frames crossfade from the frames after its end.

    Frame ``f < L`` is ``w * bank[start + f] + (1 - w) * bank[start + frames + f]`` with
    ``w = (f + 0.5) / L``, so the last frame flows into the first as it does in the
    recording. Indices wrap around the bank (a grid longer than the bank repeats it).
    """
    n = bank.shape[1]
    idx = (start + torch.arange(frames)) % n
    crop = bank[:, idx].clone()
    xf = crossfade_len(frames)
    if xf:
        w = (torch.arange(xf, dtype=bank.dtype) + 0.5) / xf
        tail = bank[:, (start + frames + torch.arange(xf)) % n]
        crop[:, :xf] = w * crop[:, :xf] + (1 - w) * tail
    return crop


def excerpt_states(
    bank: torch.Tensor, seeds: list[int], channels: int, frames: int, std: float, spec_channel: int = 0,
    visible: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seed states ``[S, C, rows, frames]`` and their clean passages ``[S, visible * rows, frames]``.

    Each seed draws a start uniformly from :func:`start_span` and N(0, std^2) noise
    for every cell and channel; the passage is added to the ``visible`` channels from
    ``spec_channel`` on (one for a mel model, four for ``stft-ms``, whose bank rows are
    its visible channels' grids stacked).
    """
    rows = bank.shape[0] // visible
    states = torch.empty(len(seeds), channels, rows, frames)
    clean = torch.empty(len(seeds), visible * rows, frames)
    span = start_span(bank.shape[1], frames)
    for i, s in enumerate(seeds):
        g = torch.Generator().manual_seed(int(s))
        start = int(torch.randint(0, span, (1,), generator=g))
        clean[i] = loopable_crop(bank, start, frames)
        states[i] = torch.randn(channels, rows, frames, generator=g) * std
        states[i, spec_channel : spec_channel + visible] += clean[i].view(visible, rows, frames)
    return states, clean


def restore_loss(
    x: torch.Tensor, clean: torch.Tensor, spec_channel: int = 0, limit: float = 4.0, visible: int = 1
) -> torch.Tensor:
    """Per item: L1 of the visible channels against their passage, plus any state beyond ``+-limit``.

    The overflow term keeps hidden channels bounded so growth far past training
    (Drift) stays where the rule was trained.
    """
    seen = x[:, spec_channel : spec_channel + visible].flatten(1, 2)
    l1 = (seen - clean).abs().mean(dim=(1, 2))
    overflow = (x.abs() - limit).clamp(min=0).mean(dim=(1, 2, 3))
    return l1 + overflow


def encode_bank(bank: torch.Tensor) -> str:
    """``grown.seed_bank``: ``{"frames":T,"f16":base64}`` of the bank ``[rows, T]``, row-major little-endian float16."""
    raw = np.ascontiguousarray(bank.detach().cpu().numpy().astype("<f2")).tobytes()
    return json.dumps(
        {"frames": int(bank.shape[1]), "f16": base64.b64encode(raw).decode("ascii")}, separators=(",", ":")
    )


def decode_bank(value: str, n_mels: int) -> torch.Tensor:
    """Inverse of :func:`encode_bank`; ``[n_mels, T]`` float32."""
    d = json.loads(value)
    raw = np.frombuffer(base64.b64decode(d["f16"]), dtype="<f2").astype(np.float32)
    return torch.from_numpy(raw.reshape(n_mels, int(d["frames"])).copy())
