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
    StereoLoss,
    StereoWeights,
    encode,
    load_stereo,
    picture,
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


def stereo_metadata(nca, cfg: StereoTrainConfig) -> dict[str, str]:
    """``metadata_props`` of an ``stft-ms`` model (the README's stft-ms table)."""
    from grown_train import CONTRACT_VERSION

    return {
        "grown.contract": str(CONTRACT_VERSION),
        "grown.kind": "nca",
        "grown.representation": REPRESENTATION,
        "grown.channels": str(nca.cfg.channels),
        "grown.spec_channel": "0",
        "grown.spec_scale": repr(SCALE),
        "grown.spec_offset": repr(OFFSET),
        "grown.stft": DEFAULT_STFT.to_json(),
        "grown.growth_steps": str(int(cfg.max_steps)),
        "grown.fire_rate": repr(float(cfg.fire_rate)),
        "grown.seed_state": json.dumps({"kind": "normal", "std": float(cfg.seed_std)}, separators=(",", ":")),
        "grown.train_frames": str(int(cfg.frames)),
        "grown.perception": ",".join(nca.kernels),
        "grown.unroll": "1",
        "grown.target": cfg.credit or Path(cfg.target).name,
        "grown.license": cfg.license,
    }


def target_visible(cfg: StereoTrainConfig) -> torch.Tensor:
    """The target's visible channels ``[4, bins, T]``."""
    audio = load_stereo(Path(cfg.target), DEFAULT_STFT.sample_rate)
    if cfg.target_seconds > 0:
        audio = audio[:, : int(cfg.target_seconds * DEFAULT_STFT.sample_rate)]
    return encode(torch.from_numpy(audio))


def train_stereo(cfg: StereoTrainConfig) -> dict:
    """Train an ``stft-ms`` NCA and export it (checkpoint beside the output: ``OUT.pt``, resumed on re-run)."""
    from grown_train.export import export_onnx
    from grown_train.grow import grow, rollout
    from grown_train.io import atomic_write, check_writable
    from grown_train.nca import NCA, NCAConfig, seed_states
    from grown_train.train import descend, optimizer

    out = check_writable(Path(cfg.out))
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 17)
    target = target_visible(cfg)
    fps = DEFAULT_STFT.sample_rate / DEFAULT_STFT.hop
    loss_fn = StereoLoss(target, cfg.frames, fps, cfg.weights)
    nca = NCA(NCAConfig(cfg.channels, DEFAULT_STFT.bins, cfg.hidden))
    opt, sched = optimizer(nca, cfg.lr, cfg.lr_final, cfg.iters)
    next_seed = cfg.seed * 1_000_003 + 1
    pool = seed_states(list(range(next_seed, next_seed + cfg.pool_size)), cfg.channels, DEFAULT_STFT.bins, cfg.frames, cfg.seed_std)
    next_seed += cfg.pool_size
    history: list[dict[str, float]] = []
    start = 0
    Path(cfg.checkpoint_dir).mkdir(parents=True, exist_ok=True)
    ckpt = Path(cfg.checkpoint_dir) / f"{out.stem}-stftms.pt"
    arch = {"channels": cfg.channels, "hidden": cfg.hidden, "frames": cfg.frames, "pool": cfg.pool_size}
    if ckpt.exists():
        ck = torch.load(ckpt, weights_only=False)
        if ck["arch"] == arch:
            nca.load_state_dict(ck["model"])
            opt.load_state_dict(ck["opt"])
            sched.load_state_dict(ck["sched"])
            pool, history, start, next_seed = ck["pool"], ck["history"], ck["iter"], ck["next_seed"]
            gen.set_state(ck["gen"])

    def save(it: int) -> None:
        payload = {"arch": arch, "model": nca.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                   "pool": pool, "history": history, "iter": it, "next_seed": next_seed, "gen": gen.get_state()}
        atomic_write(ckpt, lambda tmp: torch.save(payload, tmp))

    t0 = time.monotonic()
    done = start
    for it in range(start, cfg.iters):
        if cfg.time_budget and time.monotonic() - t0 > cfg.time_budget * 60:
            break
        idx = torch.randperm(cfg.pool_size, generator=gen)[: cfg.batch]
        x = pool[idx].clone()
        with torch.no_grad():
            worst = int(loss_fn(x)["total"].argmax())
        x[worst] = seed_states([next_seed], cfg.channels, DEFAULT_STFT.bins, cfg.frames, cfg.seed_std)[0]
        next_seed += 1
        steps = int(torch.randint(cfg.min_steps, cfg.max_steps + 1, (1,), generator=gen))
        x = rollout(nca, x, steps, cfg.fire_rate, gen)
        terms = loss_fn(x)
        loss = terms["total"].mean()
        if not torch.isfinite(loss):
            from grown_train.errors import Diverged

            raise Diverged(f"training diverged at iteration {it}; no model written")
        descend(nca, loss, opt, sched)
        pool[idx] = x.detach()
        history.append({"iter": it + 1, **{k: float(v.detach().mean()) for k, v in terms.items()}})
        done = it + 1
        if cfg.log_every and done % cfg.log_every == 0:
            row = " ".join(f"{k}={v:.4f}" for k, v in history[-1].items() if k != "iter")
            print(f"{out.stem} {done}/{cfg.iters} {time.monotonic() - t0:.0f}s {row}", file=sys.stderr, flush=True)
            save(done)
    save(done)
    nca.eval()
    final = grow(nca, [cfg.seed * 1000 + 1, cfg.seed * 1000 + 2], cfg.frames, cfg.max_steps, cfg.fire_rate, cfg.seed_std)
    if not torch.isfinite(final).all():
        from grown_train.errors import Diverged

        raise Diverged("growing from a fresh seed gives NaN/inf; no model written")
    final_terms = {k: float(v.mean()) for k, v in loss_fn(final).items()}
    export_onnx(nca, out, None, meta=stereo_metadata(nca, cfg))
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
    for name in ("iters", "frames", "channels", "hidden", "batch", "pool_size", "min_steps", "max_steps", "seed", "threads"):
        t.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(d, name), help="(%(default)s)")
    for name in ("lr", "lr_final", "fire_rate", "seed_std", "time_budget", "target_seconds"):
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
