"""Training of stereo ``stft-ms`` models, and the ``python -m grown_train.stftms`` command line.

The representation and its loss terms are :mod:`grown_train.stftms`, the growing is
:mod:`grown_train.grow` and the EVAL.md section is :mod:`grown_train.stftms_eval`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from grown_train.stftms import (
    DEFAULT_STFT,
    OFFSET,
    REPRESENTATION,
    SCALE,
    STATE_LIMIT,
    VISIBLE,
    StereoLoss,
    StereoWeights,
    encode,
    load_stereo,
    picture,
    visible_to_complex,
)


@dataclass
class StereoTrainConfig:
    """Options of ``python -m grown_train.stftms train`` (one field per flag)."""

    #: Stereo audio file to imitate (mono files train a model with no side, which defeats the purpose).
    target: Path
    #: Output ONNX path.
    out: Path
    #: Optimizer steps.
    iters: int = 400
    #: Training grid width in frames (86 = 1 s); small because every frame has 513 rows.
    frames: int = 32
    #: State channels (4 visible + hidden).
    channels: int = 12
    #: Update-MLP width.
    hidden: int = 48
    #: Items per optimizer step.
    batch: int = 2
    #: Sample-pool size.
    pool_size: int = 24
    #: Random rollout length range; ``max_steps`` becomes ``grown.growth_steps``.
    min_steps: int = 24
    max_steps: int = 40
    #: Adam learning rate (exponential decay to lr * lr_final).
    lr: float = 3e-3
    lr_final: float = 0.1
    #: ``grown.fire_rate`` and the seed state's std.
    fire_rate: float = 0.5
    seed_std: float = 0.1
    #: ``excerpt`` (default): carry the recording's loudest seconds (all four visible channels)
    #: in the model and regrow a passage of them from seed noise and damage, as the mel models
    #: do; ``noise``: grow from N(0, std^2) to the texture statistics (a static, unvoiced wash on
    #: strings: harmonic fine structure -0.01 against a ceiling of 0.54).
    seed_kind: str = "excerpt"
    #: Chance per iteration that one pooled item gets a rectangle erased (excerpt seeds).
    damage_prob: float = 0.5
    #: Seeds model init and all training randomness.
    seed: int = 0
    #: Stop and export after this many minutes (0 = no limit).
    time_budget: float = 0.0
    #: Torch CPU threads (1 on a shared machine).
    threads: int = 1
    #: Only this many seconds of the target, from its start (0 = all): keeps the statistics to one passage.
    target_seconds: float = 0.0
    #: ``grown.target`` and ``grown.license``.
    credit: str = ""
    license: str = "unknown"
    #: Loss weights.
    weights: StereoWeights = StereoWeights()
    #: Progress lines (and a checkpoint) every N iterations (0 = quiet).
    log_every: int = 25
    #: Checkpoint folder (``NAME-stftms.pt``); re-running the same command resumes from it.
    checkpoint_dir: Path = Path("runs")


def stereo_metadata(nca, cfg: StereoTrainConfig, bank: torch.Tensor | None = None) -> dict[str, str]:
    """``metadata_props`` of an ``stft-ms`` model (the README's stft-ms table); ``bank`` for excerpt seeds."""
    from grown_train import CONTRACT_VERSION, EXCERPT_CONTRACT_VERSION
    from grown_train.excerpt import encode_bank

    kind = "normal" if bank is None else "excerpt"
    meta = {
        "grown.contract": str(CONTRACT_VERSION if bank is None else EXCERPT_CONTRACT_VERSION),
        "grown.kind": "nca",
        "grown.representation": REPRESENTATION,
        "grown.channels": str(nca.cfg.channels),
        "grown.spec_channel": "0",
        "grown.spec_scale": repr(SCALE),
        "grown.spec_offset": repr(OFFSET),
        "grown.stft": DEFAULT_STFT.to_json(),
        "grown.growth_steps": str(int(cfg.max_steps)),
        "grown.fire_rate": repr(float(cfg.fire_rate)),
        "grown.seed_state": json.dumps({"kind": kind, "std": float(cfg.seed_std)}, separators=(",", ":")),
        "grown.train_frames": str(int(cfg.frames)),
        "grown.perception": ",".join(nca.kernels),
        "grown.unroll": "1",
        "grown.target": cfg.credit or Path(cfg.target).name,
        "grown.license": cfg.license,
    }
    if bank is not None:
        meta["grown.seed_bank"] = encode_bank(bank)
    return meta


def target_visible(cfg: StereoTrainConfig) -> torch.Tensor:
    """The target's visible channels ``[4, bins, T]``."""
    audio = load_stereo(Path(cfg.target), DEFAULT_STFT.sample_rate)
    if cfg.target_seconds > 0:
        audio = audio[:, : int(cfg.target_seconds * DEFAULT_STFT.sample_rate)]
    return encode(torch.from_numpy(audio))


def choose_stereo_bank(target: torch.Tensor, seconds: float | None = None) -> torch.Tensor:
    """The loudest ``seconds`` (default the mel models' ``BANK_SECONDS``) of visible ``[4, bins, T]``.

    Returned as the bank ``[4 * bins, frames]`` (the visible channels' grids stacked), rounded to
    float16 as the file stores it. Quiet ends are left out as for mel banks (``QUIET_END``).
    """
    from grown_train.excerpt import BANK_SECONDS, loud_span, loudest_start

    fps = DEFAULT_STFT.sample_rate / DEFAULT_STFT.hop
    frames = round((BANK_SECONDS if seconds is None else seconds) * fps)
    lin = visible_to_complex(target)
    energy = (lin.real.square() + lin.imag.square()).sum(dim=(0, 1))
    keep = loud_span(energy)
    target, energy = target[..., keep], energy[keep]
    if target.shape[-1] > frames:
        start = loudest_start(energy, frames)
        target = target[..., start : start + frames]
    return target.reshape(-1, target.shape[-1]).half().float()


def train_stereo(cfg: StereoTrainConfig) -> dict:
    """Train an ``stft-ms`` NCA and export it (checkpoint beside the output: ``OUT.pt``, resumed on re-run)."""
    from grown_train.errors import BadOption
    from grown_train.excerpt import excerpt_states, restore_loss
    from grown_train.export import export_onnx
    from grown_train.grow import grow, rollout
    from grown_train.io import atomic_write, check_writable
    from grown_train.nca import NCA, NCAConfig, seed_states
    from grown_train.train import damage, descend, optimizer

    if cfg.seed_kind not in ("noise", "excerpt"):
        raise BadOption(f"--seed-kind must be noise or excerpt, not {cfg.seed_kind!r}")

    out = check_writable(Path(cfg.out))
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 17)
    target = target_visible(cfg)
    fps = DEFAULT_STFT.sample_rate / DEFAULT_STFT.hop
    loss_fn = StereoLoss(target, cfg.frames, fps, cfg.weights)
    bank = choose_stereo_bank(target) if cfg.seed_kind == "excerpt" else None
    nca = NCA(NCAConfig(cfg.channels, DEFAULT_STFT.bins, cfg.hidden))
    opt, sched = optimizer(nca, cfg.lr, cfg.lr_final, cfg.iters)

    def fresh(first: int, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Seed states ``first..first+n`` and, for excerpt seeds, the passages they must regrow."""
        seeds = list(range(first, first + n))
        if bank is None:
            return seed_states(seeds, cfg.channels, DEFAULT_STFT.bins, cfg.frames, cfg.seed_std), None
        return excerpt_states(bank, seeds, cfg.channels, cfg.frames, cfg.seed_std, visible=len(VISIBLE))

    def losses(x: torch.Tensor, clean: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Texture statistics, or for excerpt seeds the passage back (bounded like the texture's overflow)."""
        if clean is None:
            return loss_fn(x)
        return {"total": restore_loss(x, clean, limit=STATE_LIMIT, visible=len(VISIBLE))}

    next_seed = cfg.seed * 1_000_003 + 1
    pool, pool_clean = fresh(next_seed, cfg.pool_size)
    next_seed += cfg.pool_size
    history: list[dict[str, float]] = []
    start = 0
    Path(cfg.checkpoint_dir).mkdir(parents=True, exist_ok=True)
    ckpt = Path(cfg.checkpoint_dir) / f"{out.stem}-stftms.pt"
    arch = {"channels": cfg.channels, "hidden": cfg.hidden, "frames": cfg.frames, "pool": cfg.pool_size,
            "seed_kind": cfg.seed_kind}
    if ckpt.exists():
        ck = torch.load(ckpt, weights_only=False)
        if ck["arch"] == arch:
            nca.load_state_dict(ck["model"])
            opt.load_state_dict(ck["opt"])
            sched.load_state_dict(ck["sched"])
            pool, history, start, next_seed = ck["pool"], ck["history"], ck["iter"], ck["next_seed"]
            pool_clean = ck.get("pool_clean")
            gen.set_state(ck["gen"])

    def save(it: int) -> None:
        payload = {"arch": arch, "model": nca.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                   "pool": pool, "pool_clean": pool_clean, "history": history, "iter": it, "next_seed": next_seed, "gen": gen.get_state()}
        atomic_write(ckpt, lambda tmp: torch.save(payload, tmp))

    t0 = time.monotonic()
    done = start
    for it in range(start, cfg.iters):
        if cfg.time_budget and time.monotonic() - t0 > cfg.time_budget * 60:
            break
        idx = torch.randperm(cfg.pool_size, generator=gen)[: cfg.batch]
        x = pool[idx].clone()
        clean = None if pool_clean is None else pool_clean[idx].clone()
        with torch.no_grad():
            ranks = losses(x, clean)["total"].argsort(descending=True)
        worst = int(ranks[0])
        x[worst:worst + 1], fresh_clean = fresh(next_seed, 1)
        if clean is not None:
            clean[worst] = fresh_clean[0]
            # The damage slot is the last item: keep the fresh seed out of it.
            x, idx, clean = x[ranks], idx[ranks], clean[ranks]
            if cfg.batch > 1 and float(torch.rand(1, generator=gen)) < cfg.damage_prob:
                damage(x, cfg.seed_std, gen)
        next_seed += 1
        steps = int(torch.randint(cfg.min_steps, cfg.max_steps + 1, (1,), generator=gen))
        x = rollout(nca, x, steps, cfg.fire_rate, gen)
        terms = losses(x, clean)
        loss = terms["total"].mean()
        if not torch.isfinite(loss):
            from grown_train.errors import Diverged

            raise Diverged(f"training diverged at iteration {it}; no model written")
        descend(nca, loss, opt, sched)
        pool[idx] = x.detach()
        if clean is not None:
            pool_clean[idx] = clean
        history.append({"iter": it + 1, **{k: float(v.detach().mean()) for k, v in terms.items()}})
        done = it + 1
        if cfg.log_every and done % cfg.log_every == 0:
            row = " ".join(f"{k}={v:.4f}" for k, v in history[-1].items() if k != "iter")
            print(f"{out.stem} {done}/{cfg.iters} {time.monotonic() - t0:.0f}s {row}", file=sys.stderr, flush=True)
            save(done)
    save(done)
    nca.eval()
    final = grow(nca, [cfg.seed * 1000 + 1, cfg.seed * 1000 + 2], cfg.frames, cfg.max_steps, cfg.fire_rate, cfg.seed_std,
                 bank)
    if not torch.isfinite(final).all():
        from grown_train.errors import Diverged

        raise Diverged("growing from a fresh seed gives NaN/inf; no model written")
    final_terms = {k: float(v.mean()) for k, v in loss_fn(final).items()}
    export_onnx(nca, out, None, meta=stereo_metadata(nca, cfg, bank))
    energy = target.abs().mean(dim=(0, 1))
    start = int(torch.nn.functional.avg_pool1d(energy[None, None], cfg.frames, stride=1)[0, 0].argmax())
    save_preview(
        out.with_suffix(".png"),
        target[:, :, start : start + cfg.frames].numpy(),
        [g[:4].numpy() for g in final],
        f"{out.stem}: target vs grown ({cfg.max_steps} steps, {len(history)} iterations)",
    )
    return {"out": str(out), "iterations": len(history), "grown_loss": final_terms}


def save_preview(path: Path, target: np.ndarray, grown: list[np.ndarray], title: str, gain: float = 0.4) -> Path:
    """PNG of the research's picture: a target crop next to grown grids (all visible ``[4, bins, frames]``)."""
    from grown_train.io import atomic_write
    from grown_train.preview import _plt

    plt = _plt()
    panels = [("target", target)] + [(f"grown (seed {i + 1})", g) for i, g in enumerate(grown)]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
    for ax, (name, v) in zip(axes[0], panels):
        ax.imshow(picture(v, height=256, gain=gain), aspect="auto", interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("frame")
        ax.set_yticks([])
    axes[0][0].set_ylabel("frequency (log2)")
    fig.suptitle(title + " — |M re|,|M im|,|S re|,|S im| as C,M,Y,K, inverted", fontsize=9)
    try:
        return atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=80))
    finally:
        plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from grown_train.errors import GrownError

    d = StereoTrainConfig(target=Path(), out=Path())
    p = argparse.ArgumentParser(prog="python -m grown_train.stftms",
                                description="Train stereo stft-ms models, or rewrite their section of EVAL.md.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a stereo stft-ms NCA and export ONNX")
    t.add_argument("--target", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--seed-kind", choices=("excerpt", "noise"), default=d.seed_kind, help="(%(default)s)")
    for name in ("iters", "frames", "channels", "hidden", "batch", "pool_size", "min_steps", "max_steps", "seed", "threads"):
        t.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(d, name), help="(%(default)s)")
    for name in ("lr", "lr_final", "fire_rate", "seed_std", "damage_prob", "time_budget", "target_seconds"):
        t.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(d, name), help="(%(default)s)")
    for name, value in asdict(d.weights).items():
        t.add_argument(f"--w-{name}", type=float, default=value, help="loss weight (%(default)s)")
    t.add_argument("--credit", default="")
    t.add_argument("--license", default=d.license)
    t.add_argument("--log-every", type=int, default=d.log_every)
    t.add_argument("--checkpoint-dir", type=Path, default=d.checkpoint_dir)
    e = sub.add_parser("eval", help="rewrite only the stereo section of EVAL.md")
    models_dir = Path(__file__).resolve().parents[1]
    e.add_argument("--out", type=Path, default=models_dir / "EVAL.md")
    e.add_argument("--models", type=Path, nargs="*", default=None, help="default: every stft-ms file in models/nca")
    e.add_argument("--targets-dir", type=Path, default=models_dir / "targets")
    args = p.parse_args(argv)
    if args.command == "eval":
        from grown_train.stftms_eval import is_stereo_model, update_eval_report

        paths = args.models or [q for q in sorted((models_dir / "nca").glob("*.onnx")) if is_stereo_model(q)]
        print(update_eval_report(args.out, paths, args.targets_dir))
        return 0
    weights = StereoWeights(**{k: getattr(args, f"w_{k}") for k in asdict(d.weights)})
    fields = {k: getattr(args, k) for k in asdict(d) if k not in ("weights",)}
    cfg = StereoTrainConfig(**{**fields, "weights": weights})
    try:
        print(json.dumps(train_stereo(cfg)))
    except GrownError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
