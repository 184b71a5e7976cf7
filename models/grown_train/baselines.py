"""The two baselines ``eval`` measures the shipped models against.

(a) *Notebook NCA*: our reconstruction of the original research notebook's setup
    (the notebook itself is not in this repository): fixed 3x3 perception only
    (identity, Sobel x/y, Laplacian; no learnable long kernels, no
    frequency-position channel), a fixed 96-step rollout from fresh seeds, and a
    loss of random-filter Gram matrices plus a masked, frequency-weighted L1 on
    the average spectrum. No sample pool, no damage, no rhythm or diversity
    terms. Trained per target and cached under ``models/runs/baselines/``.
(b) *Direct optimisation*: no NCA at all; L-BFGS on free scaled log-mel tensors
    (one per seed, jointly, so the diversity term applies) minimising the very
    texture loss the shipped models were trained with, at the evaluation width.
    It shows how good the loss's optimum is, i.e. what the NCA gives up for
    being a small local rule that grows any length.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from grown_train.grow import grow_each, rollout
from grown_train.io import atomic_write
from grown_train.losses import LossWeights, TextureLoss
from grown_train.mel import DEFAULT_MEL, LOG_FLOOR
from grown_train.nca import NCA, NCAConfig, seed_states
from grown_train.train import descend, optimizer

#: The notebook's perception: fixed 3x3 kernels only.
NOTEBOOK_PERCEPTION = "id,sobel_x,sobel_y,lap"
#: Bins whose average target level is within this many nats of the log floor are
#: masked out of the L1 term (chasing silence only teaches the model to be quiet).
MASK_NATS = 1.0
#: Frequency weighting of the L1 term: linear from this weight at the lowest mel
#: band down to 1 at the highest, because low bands carry pitch.
LOW_BAND_WEIGHT = 2.0
#: Bump when the baseline's training code changes, so stale caches are retrained.
BASELINE_VERSION = 1


@dataclass(frozen=True)
class NotebookConfig:
    """Everything that determines a trained notebook baseline (hashed into its cache key)."""

    #: State channels; the shipped model's, so the two differ only in method.
    channels: int
    #: MLP hidden width; the shipped model's.
    hidden: int
    #: Training grid width in frames; the shipped model's ``grown.train_frames``.
    frames: int
    #: Optimizer steps (the iteration budget).
    iters: int
    #: Fixed rollout length, also the growth steps at evaluation.
    steps: int = 96
    #: Fresh seeds per optimizer step.
    batch: int = 4
    #: Cell fire probability.
    fire_rate: float = 0.5
    #: Seed state std (same seed distribution as the shipped models).
    seed_std: float = 0.1
    #: Adam learning rate, decayed exponentially to ``lr * lr_final``.
    lr: float = 2e-3
    lr_final: float = 0.1
    #: ``ln_mel = spec_scale * s + spec_offset`` (the shipped model's mapping).
    spec_scale: float = 4.0
    spec_offset: float = -5.0
    #: Seeds the model initialisation and every random draw.
    seed: int = 0


def notebook_nca(cfg: NotebookConfig) -> NCA:
    """NCA with 3x3 perception and the frequency-position channel disabled.

    The shared NCA always appends the position ramp; zeroing that buffer makes the
    channel a constant 0 that carries no information (its weights see only zeros).
    """
    nca = NCA(NCAConfig(cfg.channels, DEFAULT_MEL.n_mels, cfg.hidden, NOTEBOOK_PERCEPTION))
    nca.ramp.zero_()
    return nca


class NotebookLoss(torch.nn.Module):
    """Random-filter Gram term plus masked, frequency-weighted L1 on the average spectrum."""

    def __init__(self, target: torch.Tensor, frames: int, scale: float, offset: float):
        """``target``: scaled spectrogram ``[n_mels, T]``; ``scale``/``offset`` map it to nats for the mask."""
        super().__init__()
        only_gram = LossWeights(gram=1.0, acf=0.0, diversity=0.0, l1=0.0, sot=0.0, overflow=0.0)
        self.texture = TextureLoss(target, frames, DEFAULT_MEL.frames_per_second, only_gram)
        self.t_mean = target.mean(dim=-1)
        mask = (self.t_mean * scale + offset > math.log(LOG_FLOOR) + MASK_NATS).float()
        if mask.sum() == 0:
            mask = torch.ones_like(mask)
        self.weight = torch.linspace(LOW_BAND_WEIGHT, 1.0, target.shape[0]) * mask

    def forward(self, s: torch.Tensor) -> dict[str, torch.Tensor]:
        gram = self.texture(s)["gram"]
        w = self.weight
        l1 = ((s.mean(dim=-1) - self.t_mean).abs() * w).sum(dim=-1) / w.sum()
        return {"gram": gram, "l1": l1, "total": gram + l1}


def cache_path(folder: Path, name: str, cfg: NotebookConfig, target_bytes: bytes) -> Path:
    """One cache file per (target content, configuration, code version)."""
    key = json.dumps({"cfg": asdict(cfg), "v": BASELINE_VERSION}, sort_keys=True).encode()
    digest = hashlib.sha1(key + hashlib.sha1(target_bytes).digest()).hexdigest()[:10]
    return Path(folder) / f"{name}-notebook-{digest}.pt"


def train_notebook(
    target: torch.Tensor,
    cfg: NotebookConfig,
    cache: Path | None,
    checkpoint_every: int = 25,
    log=None,
) -> tuple[NCA, dict]:
    """Train (or load / resume from ``cache``) baseline (a) on scaled target ``[n_mels, T]``.

    Returns the model and ``{"iterations", "seconds", "cached", "final_loss"}``.
    """
    import time

    torch.manual_seed(cfg.seed)
    nca = notebook_nca(cfg)
    loss_fn = NotebookLoss(target, cfg.frames, cfg.spec_scale, cfg.spec_offset)
    opt, sched = optimizer(nca, cfg.lr, cfg.lr_final, cfg.iters)
    gen = torch.Generator().manual_seed(cfg.seed + 31)
    start, seconds, history = 0, 0.0, []
    next_seed = 5_000_000 + cfg.seed * 100_003
    if cache is not None and cache.exists():
        ck = torch.load(cache, weights_only=False)
        nca.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        gen.set_state(ck["gen"])
        start, seconds, history, next_seed = ck["iter"], ck["seconds"], ck["history"], ck["next_seed"]
    was_cached = start >= cfg.iters

    def save(it: int) -> None:
        if cache is None:
            return
        payload = {
            "cfg": asdict(cfg),
            "model": nca.state_dict(),
            "opt": opt.state_dict(),
            "sched": sched.state_dict(),
            "gen": gen.get_state(),
            "iter": it,
            "seconds": seconds,
            "history": history,
            "next_seed": next_seed,
        }
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cache, lambda tmp: torch.save(payload, tmp))

    nca.train()
    for it in range(start, cfg.iters):
        t0 = time.perf_counter()
        seeds = list(range(next_seed, next_seed + cfg.batch))
        next_seed += cfg.batch
        x = seed_states(seeds, cfg.channels, DEFAULT_MEL.n_mels, cfg.frames, cfg.seed_std)
        x = rollout(nca, x, cfg.steps, cfg.fire_rate, gen)
        loss = loss_fn(x[:, 0])["total"].mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"notebook baseline diverged at iteration {it}")
        descend(nca, loss, opt, sched)
        history.append(float(loss.detach()))
        seconds += time.perf_counter() - t0
        done = it + 1
        if log is not None and (done % 10 == 0 or done == cfg.iters):
            log(f"  notebook baseline: iteration {done}/{cfg.iters}, loss {history[-1]:.4f}, {seconds:.0f} s")
        if done % checkpoint_every == 0 or done == cfg.iters:
            save(done)
    nca.eval()
    return nca, {
        "iterations": len(history),
        "seconds": seconds,
        "cached": was_cached,
        "final_loss": history[-1] if history else float("nan"),
    }


def grow_torch(nca: NCA, seeds: list[int], frames: int, steps: int, fire_rate: float, std: float) -> torch.Tensor:
    """Grow each seed as the shipped models are grown (:func:`grown_train.grow.grow_each`); scaled ``[S, n_mels, F]``."""
    return grow_each(nca, seeds, frames, steps, fire_rate, std)[:, 0]


def lbfgs_texture(
    target: torch.Tensor, frames: int, seeds: list[int], std: float, iters: int, weights: LossWeights = LossWeights()
) -> tuple[torch.Tensor, dict]:
    """Baseline (b): L-BFGS directly on scaled log-mel tensors ``[S, n_mels, frames]``.

    Starts from the same N(0, std^2) noise an NCA's spectrogram channel starts
    from and minimises the shipped training loss (all its terms, the diversity
    hinge across the seeds included) at the evaluation width.
    """
    import time

    t0 = time.perf_counter()
    loss_fn = TextureLoss(target, frames, DEFAULT_MEL.frames_per_second, weights)
    x = seed_states(seeds, 1, target.shape[0], frames, std)[:, 0].clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [x], lr=1.0, max_iter=iters, history_size=20, line_search_fn="strong_wolfe",
        tolerance_grad=1e-10, tolerance_change=1e-12,
    )
    evals = 0

    def closure():
        nonlocal evals
        evals += 1
        opt.zero_grad()
        loss = loss_fn(x, x[:, None])["total"].sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        final = float(loss_fn(x, x[:, None])["total"].mean())
    return x.detach(), {"evaluations": evals, "seconds": time.perf_counter() - t0, "final_loss": final}
