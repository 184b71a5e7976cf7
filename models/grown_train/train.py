"""Training loop: sample pool, random rollouts, damage, fire-rate masks, checkpoints."""

from __future__ import annotations

import hashlib
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from grown_train.errors import BadOption, CheckpointMismatch, Diverged, TooShort, Unwritable
from grown_train.excerpt import choose_bank, encode_bank, excerpt_states, restore_loss
from grown_train.export import ModelInfo, export_onnx
from grown_train.grow import grow, rollout
from grown_train.io import atomic_write, check_writable, load_audio
from grown_train.losses import ACF_MIN_S, LossWeights, TextureLoss
from grown_train.mel import DEFAULT_MEL, log_mel
from grown_train.nca import NCA, NCAConfig, parse_perception, seed_states
from grown_train.preview import save_loss_curve, save_spectrograms

#: Checkpoint layout version; bump when the saved dict changes shape.
CKPT_VERSION = 1
#: Narrowest training grid; also the fewest frames a caller may step (the plugin's MIN_FRAMES):
#: a graph wraps the time axis by slicing, up to 12 frames (band9), so it needs more than that.
MIN_FRAMES = 16


@dataclass
class TrainConfig:
    """Everything ``train`` needs; mirrors the CLI options one to one."""

    #: Audio file to learn the texture of.
    target: Path
    #: Output ONNX path (written atomically at the end).
    out: Path
    #: Training iterations (optimizer steps).
    iters: int = 400
    #: Width of the training grid in frames (86 frames = 1 s).
    frames: int = 128
    #: NCA state channels.
    channels: int = 16
    #: Hidden width of the update MLP.
    hidden: int = 64
    #: Items per optimizer step, each from the pool.
    batch: int = 3
    #: Perception kernels (comma-separated).
    perception: str = "id,sobel_x,sobel_y,lap,time9,freq9"
    #: Seeds the model init, the pool and all training randomness.
    seed: int = 0
    #: Where checkpoints, previews and loss curves go.
    checkpoint_dir: Path = Path("runs")
    #: Write the preview/loss PNGs every this many iterations (0 = never).
    preview_every: int = 50
    #: Save a checkpoint every this many iterations.
    checkpoint_every: int = 25
    #: Adam learning rate at the start (decays exponentially to lr * lr_final).
    lr: float = 2e-3
    #: Final learning rate as a fraction of ``lr``.
    lr_final: float = 0.1
    #: Shortest rollout in NCA steps (random lengths teach the rule to hold a texture, not hit a step count).
    min_steps: int = 24
    #: Longest rollout; also the recommended ``grown.growth_steps``.
    max_steps: int = 48
    #: Probability a cell updates in a step.
    fire_rate: float = 0.5
    #: Standard deviation of the N(0, std^2) seed state (``grown.seed_state``).
    seed_std: float = 0.1
    #: ``excerpt`` (default): carry the recording's loudest seconds in the model, seed from a
    #: passage of them plus that noise, and learn to regrow the passage (see
    #: :mod:`grown_train.excerpt`): on strings, trumpet and robin it is what sounds like the
    #: recording. ``noise``: grow from N(0, std^2) to the recording's texture statistics
    #: (right for synthetic textures; on real recordings it grows a haze).
    seed_kind: str = "excerpt"
    #: States kept in the sample pool.
    pool_size: int = 96
    #: Fresh seed states injected per batch (replacing the worst items).
    fresh_per_batch: int = 1
    #: Probability per batch that one item gets a region erased to regrow.
    damage_prob: float = 0.5
    #: ``ln_mel = spec_scale * s + spec_offset``: maps log-mel (~-11.5..4) to roughly [-1.6, 2.2].
    spec_scale: float = 4.0
    #: See ``spec_scale``.
    spec_offset: float = -5.0
    #: Loss weights.
    weights: LossWeights = field(default_factory=LossWeights)
    #: Shortest lag of the rhythm term in seconds (default: the evaluation's 0.2 s; see TextureLoss).
    acf_min_s: float = ACF_MIN_S
    #: ``grown.target``: the target and its author (default: the file name).
    credit: str = ""
    #: ``grown.license``: licence of the target, so a shipped model carries its obligations.
    license: str = "unknown"
    #: Ignore an existing checkpoint and start over.
    fresh: bool = False
    #: When starting (not resuming), take the NCA weights from this checkpoint. The rule is
    #: convolutional, so a model trained on a narrow grid can continue on a wider one (where
    #: the rhythm term switches on) without paying again for learning the spectrum.
    init_from: Path | None = None
    #: Recompute activations in the backward pass (less memory, ~30% slower).
    grad_checkpoint: bool = False
    #: Where the final target-vs-grown PNG goes (default: ``out`` with ``.png``).
    preview: Path | None = None
    #: Stop (checkpoint + export) after this many minutes; re-running continues (0 = no limit).
    time_budget: float = 0.0
    #: Torch CPU threads (0 = torch's default). 1 wins on a busy machine: with more,
    #: threads spin-wait on each other whenever one of them is descheduled.
    threads: int = 0
    #: Suppress the progress bar.
    quiet: bool = False
    #: ``auto`` (CUDA when PyTorch sees a GPU, else CPU), ``cpu`` or ``cuda``. Seeds, fire
    #: masks and the exported graph do not depend on it: only the arithmetic runs elsewhere.
    device: str = "auto"

    def arch(self) -> dict:
        """Fields that must match for a checkpoint to be resumable."""
        return {
            "channels": self.channels,
            "hidden": self.hidden,
            "perception": ",".join(parse_perception(self.perception)),
            "frames": self.frames,
            "batch": self.batch,
            "pool_size": self.pool_size,
            "seed_std": self.seed_std,
            "seed_kind": self.seed_kind,
            "spec_scale": self.spec_scale,
            "spec_offset": self.spec_offset,
            "target": str(Path(self.target).resolve()),
        }


def checkpoint_path(cfg: TrainConfig) -> Path:
    """One checkpoint per output path, so re-running the same command resumes."""
    key = hashlib.sha1(str(Path(cfg.out).resolve()).encode()).hexdigest()[:8]
    return Path(cfg.checkpoint_dir) / f"{Path(cfg.out).stem}-{key}.pt"


def target_spectrogram(cfg: TrainConfig) -> torch.Tensor:
    """Scaled target spectrogram ``[n_mels, T]``; enforces the length requirement."""
    audio = load_audio(Path(cfg.target), DEFAULT_MEL.sample_rate)
    if len(audio) <= (DEFAULT_MEL.n_fft - DEFAULT_MEL.hop) // 2:
        frames = 0
    else:
        ln = log_mel(torch.from_numpy(audio))
        frames = ln.shape[-1]
    if frames < cfg.frames:
        need = (cfg.frames - 1) * DEFAULT_MEL.hop + DEFAULT_MEL.hop
        raise TooShort(
            f"target is {len(audio) / DEFAULT_MEL.sample_rate:.2f} s ({frames} frames); "
            f"--frames {cfg.frames} needs at least {need / DEFAULT_MEL.sample_rate:.2f} s"
        )
    return (ln - cfg.spec_offset) / cfg.spec_scale


def optimizer(nca: NCA, lr: float, lr_final: float, iters: int):
    """Adam and its schedule: the learning rate decays exponentially from ``lr`` to ``lr * lr_final`` over ``iters``."""
    opt = torch.optim.Adam(nca.parameters(), lr=lr)
    decay = math.log(lr_final)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: math.exp(decay * min(i, iters) / max(iters, 1)))
    return opt, sched


def descend(nca: NCA, loss: torch.Tensor, opt, sched) -> None:
    """One optimizer and schedule step on ``loss``, every parameter's gradient scaled to unit norm first.

    Gradients through a rollout of dozens of steps explode or vanish; normalising each
    parameter's gradient lets the learning rate alone set the step size.
    """
    opt.zero_grad(set_to_none=True)
    loss.backward()
    with torch.no_grad():
        for p in nca.parameters():
            if p.grad is not None:
                p.grad /= p.grad.norm() + 1e-8
    opt.step()
    sched.step()


def damage(x: torch.Tensor, std: float, gen: torch.Generator) -> None:
    """Erase a random rectangle of one state back to seed noise so it must regrow."""
    _, c, m, t = x.shape
    h = int(torch.randint(m // 4, m // 2 + 1, (1,), generator=gen))
    w = int(torch.randint(t // 4, t // 2 + 1, (1,), generator=gen))
    f0 = int(torch.randint(0, m - h + 1, (1,), generator=gen))
    t0 = int(torch.randint(0, t - w + 1, (1,), generator=gen))
    x[-1, :, f0 : f0 + h, t0 : t0 + w] = (torch.randn(c, h, w, generator=gen) * std).to(x.device)


def _init_weights(nca: NCA, path: Path) -> list[dict]:
    """Load only the NCA weights of another run's checkpoint (any grid, pool or optimizer).

    Returns the training stages those weights went through, so reports can state the
    model's whole budget.
    """
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise CheckpointMismatch(f"--init-from {path}: no such checkpoint") from None
    arch = ck.get("arch", {}) if isinstance(ck, dict) else {}
    mine = {"channels": nca.cfg.channels, "hidden": nca.cfg.hidden, "perception": ",".join(parse_perception(nca.cfg.perception))}
    theirs = {k: arch.get(k) for k in mine}
    if ck.get("version") != CKPT_VERSION or theirs != mine:
        raise CheckpointMismatch(f"--init-from {path}: made with {theirs}, this run needs {mine}")
    nca.load_state_dict(ck["model"])
    return [*ck.get("lineage", []), {"frames": arch.get("frames"), "iters": ck.get("iter")}]


def _save_checkpoint(path: Path, payload: dict) -> None:
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def _previews(cfg, nca, target, run_stem, history, it, steps, bank):
    grown = grow(nca, [cfg.seed * 1000 + 1, cfg.seed * 1000 + 2], cfg.frames, steps, cfg.fire_rate, cfg.seed_std, bank)
    to_ln = lambda s: (s * cfg.spec_scale + cfg.spec_offset).numpy()  # noqa: E731
    crop = _loudest_crop(target, cfg.frames)
    save_spectrograms(
        run_stem.with_name(run_stem.name + "-preview.png"),
        to_ln(crop),
        [to_ln(g[0]) for g in grown],
        f"{Path(cfg.target).name} — iteration {it}",
    )
    save_loss_curve(run_stem.with_name(run_stem.name + "-loss.png"), history)


def _loudest_crop(target: torch.Tensor, frames: int) -> torch.Tensor:
    """Crop of the target with the most energy, for a fair visual comparison."""
    energy = target.mean(dim=0)
    win = torch.nn.functional.avg_pool1d(energy[None, None], frames, stride=1)[0, 0]
    start = int(win.argmax())
    return target[:, start : start + frames]


def resolve_device(name: str) -> torch.device:
    """The torch device ``--device`` names; a clear error when CUDA is asked for and absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BadOption("--device cuda: PyTorch sees no CUDA GPU here (use --device cpu or auto)")
    if name not in ("cpu", "cuda"):
        raise BadOption(f"--device must be auto, cpu or cuda, not {name!r}")
    return torch.device(name)


def train(cfg: TrainConfig) -> dict:
    """Train (or resume) and export; returns a summary dict. Raises GrownError on bad input."""
    out = check_writable(Path(cfg.out))
    preview_path = Path(cfg.preview) if cfg.preview else out.with_suffix(".png")
    check_writable(preview_path, "preview")
    if cfg.frames < MIN_FRAMES:
        # The circular time pads wrap up to 12 frames from each side (band9), by slicing.
        raise BadOption(f"--frames must be at least {MIN_FRAMES}, got {cfg.frames}")
    if cfg.min_steps < 1 or cfg.max_steps < cfg.min_steps:
        raise BadOption(f"need --min-steps ({cfg.min_steps}) <= --max-steps ({cfg.max_steps})")
    if cfg.seed_kind not in ("noise", "excerpt"):
        raise BadOption(f"--seed-kind must be noise or excerpt, not {cfg.seed_kind!r}")
    # Validate the target before creating anything, so bad input leaves no trace.
    target = target_spectrogram(cfg)
    ckpt_dir = Path(cfg.checkpoint_dir)
    try:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Unwritable(f"cannot create checkpoint directory {ckpt_dir}: {exc.strerror}") from None
    ckpt_path = checkpoint_path(cfg)
    check_writable(ckpt_path, "checkpoint")
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 17)
    nca = NCA(NCAConfig(cfg.channels, DEFAULT_MEL.n_mels, cfg.hidden, cfg.perception))
    # The bank goes into the file as float16; training sees exactly what the plugin will.
    bank = choose_bank(target, spec_scale=cfg.spec_scale).half().float() if cfg.seed_kind == "excerpt" else None
    loss_fn = TextureLoss(target, cfg.frames, DEFAULT_MEL.frames_per_second, cfg.weights, cfg.acf_min_s)
    nca.to(device)
    loss_fn.to(device)
    opt, sched = optimizer(nca, cfg.lr, cfg.lr_final, cfg.iters)

    def fresh_states(first: int, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Seed states ``first..first+n`` and, for excerpt seeds, the passages they must regrow."""
        seeds = list(range(first, first + n))
        if bank is None:
            return seed_states(seeds, cfg.channels, DEFAULT_MEL.n_mels, cfg.frames, cfg.seed_std).to(device), None
        states, clean = excerpt_states(bank, seeds, cfg.channels, cfg.frames, cfg.seed_std)
        return states.to(device), clean.to(device)

    def losses(x: torch.Tensor, clean: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Per-item loss terms: texture statistics, or for excerpt seeds the passage back."""
        if clean is None:
            return loss_fn(x[:, 0], x)
        return {"total": restore_loss(x, clean)}

    next_seed = cfg.seed * 1_000_003 + 1
    pool, pool_clean = fresh_states(next_seed, cfg.pool_size)
    next_seed += cfg.pool_size
    history: list[dict[str, float]] = []
    start = 0
    #: Earlier stages this run's weights come from (``--init-from``): ``[{"frames", "iters"}, ...]``.
    lineage: list[dict] = []

    if ckpt_path.exists() and not cfg.fresh:
        # On the CPU first: the RNG states must stay CPU tensors whatever the device.
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ck.get("version") != CKPT_VERSION or ck.get("arch") != cfg.arch():
            raise CheckpointMismatch(
                f"checkpoint {ckpt_path} was made with different settings; pass --fresh to start over"
            )
        nca.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        pool, history, start, next_seed = ck["pool"].to(device), ck["history"], ck["iter"], ck["next_seed"]
        if bank is not None:
            pool_clean = ck["pool_clean"].to(device)
        lineage = ck.get("lineage", [])
        torch.set_rng_state(ck["torch_rng"])
        gen.set_state(ck["gen_rng"])
        if not cfg.quiet:
            print(f"resuming from {ckpt_path} at iteration {start}", file=sys.stderr)
    elif cfg.init_from is not None:
        lineage = _init_weights(nca, Path(cfg.init_from))
        if not cfg.quiet:
            print(f"starting from the weights in {cfg.init_from}", file=sys.stderr)

    def payload(it: int) -> dict:
        return {
            "version": CKPT_VERSION,
            "arch": cfg.arch(),
            "config": {k: str(v) for k, v in asdict(cfg).items()},
            # CPU copies, so a checkpoint made on a GPU resumes anywhere.
            "model": {k: v.cpu() for k, v in nca.state_dict().items()},
            "opt": opt.state_dict(),
            "sched": sched.state_dict(),
            "pool": pool.cpu(),
            "pool_clean": None if pool_clean is None else pool_clean.cpu(),
            "history": history,
            "iter": it,
            "next_seed": next_seed,
            "lineage": lineage,
            "torch_rng": torch.get_rng_state(),
            "gen_rng": gen.get_state(),
        }

    run_stem = ckpt_path.with_suffix("")
    from tqdm import tqdm

    bar = tqdm(
        range(start, cfg.iters),
        initial=start,
        total=cfg.iters,
        desc=out.stem,
        disable=cfg.quiet,
        mininterval=2.0 if sys.stderr.isatty() else 30.0,
        dynamic_ncols=True,
    )
    nca.train()
    t0 = time.monotonic()
    done = start
    for it in bar:
        if cfg.time_budget and time.monotonic() - t0 > cfg.time_budget * 60:
            print(f"time budget of {cfg.time_budget:g} min reached at iteration {it}; "
                  "re-run the same command to continue", file=sys.stderr)
            break
        idx = torch.randperm(cfg.pool_size, generator=gen)[: cfg.batch].to(device)
        x = pool[idx].clone()
        clean = None if pool_clean is None else pool_clean[idx].clone()
        with torch.no_grad():
            ranks = losses(x, clean)["total"].argsort(descending=True)
        n_fresh = min(cfg.fresh_per_batch, cfg.batch)
        if n_fresh:
            worst = ranks[:n_fresh]
            x[worst], fresh_clean = fresh_states(next_seed, n_fresh)
            if clean is not None:
                clean[worst] = fresh_clean
            next_seed += n_fresh
            # Keep fresh seeds out of the damage slot (the last one) by sorting them first.
            order = torch.cat([worst, ranks[n_fresh:]])
            x, idx = x[order], idx[order]
            clean = None if clean is None else clean[order]
        if cfg.batch > n_fresh and float(torch.rand(1, generator=gen)) < cfg.damage_prob:
            damage(x, cfg.seed_std, gen)
        steps = int(torch.randint(cfg.min_steps, cfg.max_steps + 1, (1,), generator=gen))
        x = rollout(nca, x, steps, cfg.fire_rate, gen, cfg.grad_checkpoint)
        terms = losses(x, clean)
        loss = terms["total"].mean()
        if not torch.isfinite(loss):
            bar.close()
            raise Diverged(
                f"training diverged: loss is {loss.item()} at iteration {it}; "
                f"no model written (try a lower --lr than {cfg.lr})"
            )
        descend(nca, loss, opt, sched)
        pool[idx] = x.detach()
        if clean is not None:
            pool_clean[idx] = clean
        row = {"iter": it + 1, **{k: float(v.detach().mean()) for k, v in terms.items()}}
        history.append(row)
        bar.set_postfix(loss=f"{row['total']:.4f}", steps=steps, refresh=False)
        done = it + 1
        if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < cfg.iters:
            _save_checkpoint(ckpt_path, payload(done))
        if cfg.preview_every and done % cfg.preview_every == 0:
            _previews(cfg, nca, target, run_stem, history, done, cfg.max_steps, bank)
    bar.close()

    nca.eval()
    # Export and the final check run on the CPU, exactly as the plugin grows the model.
    nca.cpu()
    loss_fn.cpu()
    # Final state: grown from fresh seeds, exactly as the plugin will grow it.
    final = grow(nca, [cfg.seed * 1000 + 1, cfg.seed * 1000 + 2], cfg.frames, cfg.max_steps, cfg.fire_rate, cfg.seed_std, bank)
    if not torch.isfinite(final).all():
        raise Diverged("training diverged: growing from a fresh seed gives NaN/inf; no model written")
    final_terms = {k: float(v.mean()) for k, v in loss_fn(final[:, 0], final).items()}
    credit = cfg.credit or Path(cfg.target).name
    info = ModelInfo(
        spec_scale=cfg.spec_scale,
        spec_offset=cfg.spec_offset,
        growth_steps=cfg.max_steps,
        fire_rate=cfg.fire_rate,
        seed_std=cfg.seed_std,
        train_frames=cfg.frames,
        target=credit,
        license=cfg.license,
        seed_bank=None if bank is None else encode_bank(bank),
    )
    _save_checkpoint(ckpt_path, payload(done))
    export_onnx(nca, out, info)
    to_ln = lambda s: (s * cfg.spec_scale + cfg.spec_offset).numpy()  # noqa: E731
    save_spectrograms(
        preview_path,
        to_ln(_loudest_crop(target, cfg.frames)),
        [to_ln(g[0]) for g in final],
        f"{out.stem}: target vs grown ({cfg.max_steps} steps, {len(history)} iterations)",
    )
    if history:
        save_loss_curve(run_stem.with_name(run_stem.name + "-loss.png"), history)
    summary = {
        "out": str(out),
        "preview": str(preview_path),
        "checkpoint": str(ckpt_path),
        "iterations": len(history),
        "train_loss": history[-1]["total"] if history else float("nan"),
        "first_loss": history[0]["total"] if history else float("nan"),
        "grown_loss": final_terms,
    }
    return summary

