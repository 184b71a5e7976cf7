"""Command line: ``python -m grown_train {train,eval,export-bigvgan}``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grown_train.errors import GrownError

#: Status for Ctrl-C, the shell convention (128 + SIGINT).
EXIT_INTERRUPTED = 130


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def _perception(text: str) -> str:
    from grown_train.nca import parse_perception

    try:
        return ",".join(parse_perception(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    from grown_train.losses import LossWeights
    from grown_train.train import TrainConfig

    d = TrainConfig(target=Path(), out=Path())
    w = LossWeights()
    p = argparse.ArgumentParser(prog="python -m grown_train", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="grow an NCA that imitates an audio texture and export ONNX")
    t.add_argument("--target", type=Path, required=True, help="audio file (wav/flac/ogg) to imitate")
    t.add_argument("--out", type=Path, required=True, help="output .onnx path (written atomically)")
    t.add_argument("--iters", type=_positive(int), default=d.iters, help="optimizer steps (%(default)s)")
    t.add_argument("--frames", type=_positive(int), default=d.frames, help="training grid width in frames, 86 = 1 s (%(default)s)")
    t.add_argument("--channels", type=_positive(int), default=d.channels, help="state channels (%(default)s)")
    t.add_argument("--hidden", type=_positive(int), default=d.hidden, help="update MLP width (%(default)s)")
    t.add_argument("--batch", type=_positive(int), default=d.batch, help="items per step (%(default)s)")
    t.add_argument("--perception", type=_perception, default=d.perception, help="kernels (%(default)s)")
    t.add_argument("--seed", type=int, default=d.seed, help="training seed (%(default)s)")
    t.add_argument("--checkpoint-dir", type=Path, default=d.checkpoint_dir, help="checkpoints, previews, loss curves (%(default)s)")
    t.add_argument("--preview-every", type=int, default=d.preview_every, help="PNG previews every N iterations, 0 = off (%(default)s)")
    t.add_argument("--checkpoint-every", type=_positive(int), default=d.checkpoint_every, help="(%(default)s)")
    t.add_argument("--preview", type=Path, default=None, help="final target-vs-grown PNG (default: OUT with .png)")
    t.add_argument("--lr", type=_positive(float), default=d.lr, help="initial learning rate (%(default)s)")
    t.add_argument("--lr-final", type=_positive(float), default=d.lr_final, help="final lr as a fraction of --lr (%(default)s)")
    t.add_argument("--min-steps", type=_positive(int), default=d.min_steps, help="shortest rollout (%(default)s)")
    t.add_argument("--max-steps", type=_positive(int), default=d.max_steps, help="longest rollout; also grown.growth_steps (%(default)s)")
    t.add_argument("--fire-rate", type=_positive(float), default=d.fire_rate, help="(%(default)s)")
    t.add_argument("--seed-std", type=_positive(float), default=d.seed_std, help="seed state std (%(default)s)")
    t.add_argument(
        "--seed-kind", choices=("noise", "excerpt"), default=d.seed_kind,
        help="grow from noise, or from a passage of the recording carried in the model (%(default)s)",
    )
    t.add_argument("--pool-size", type=_positive(int), default=d.pool_size, help="(%(default)s)")
    t.add_argument("--damage-prob", type=float, default=d.damage_prob, help="(%(default)s)")
    for name in ("gram", "acf", "diversity", "l1", "sot", "marginal", "overflow"):
        t.add_argument(f"--w-{name}", type=float, default=getattr(w, name), help=f"{name} loss weight (%(default)s)")
    t.add_argument("--diversity-low", type=_positive(float), default=w.diversity_low,
                   help="push seeds apart when closer than this many median target-crop distances (%(default)s)")
    t.add_argument("--diversity-high", type=_positive(float), default=w.diversity_high,
                   help="pull seeds together when farther than this many median target-crop distances (%(default)s)")
    t.add_argument("--acf-min-s", type=_positive(float), default=d.acf_min_s,
                   help="shortest rhythm lag in seconds; down to one frame (0.0116) the term also sees event "
                        "width and spacing (%(default)s)")
    t.add_argument("--credit", default="", help="grown.target text, e.g. 'trumpet.ogg — Mihai Sorohan'")
    t.add_argument("--license", default=d.license, help="grown.license text (%(default)s)")
    t.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint for OUT")
    t.add_argument("--init-from", type=Path, default=None, metavar="CKPT",
                   help="when starting (not resuming), take the NCA weights from another run's checkpoint")
    t.add_argument("--grad-checkpoint", action="store_true", help="trade ~30%% speed for much less memory")
    t.add_argument("--time-budget", type=float, default=0.0, metavar="MIN", help="stop + export after MIN minutes; re-run continues")
    t.add_argument("--threads", type=int, default=0, help="torch CPU threads, 0 = torch default; use 1 on a busy machine")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default=d.device,
                   help="where training runs: auto = CUDA when PyTorch sees a GPU (%(default)s)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    from grown_train import bigvgan_export
    from grown_train import eval as evaluation

    e = sub.add_parser("eval", help="score the shipped models against their targets and two baselines (eval.py)")
    b = sub.add_parser("export-bigvgan", help="export a local BigVGAN checkpoint to ONNX (bigvgan_export.py)")
    c = sub.add_parser("calibrate", help="set each model's grown.level_db so it plays as loud as its recording")
    c.add_argument("--models", nargs="*", default=None,
                   help="model names in models/nca or .onnx paths; default: every models/nca/*.onnx")
    c.add_argument("--targets-dir", type=Path, default=evaluation.MODELS_DIR / "targets", help="(%(default)s)")
    c.add_argument("--grown-bin", type=Path, default=None,
                   help="the grown command line that renders (default: $GROWN_BIN, else target/release/grown)")
    r = sub.add_parser("relayout", help="rewrite traced model files in the blocked layout (export.BlockedStep)")
    r.add_argument("models", nargs="+", type=Path, help=".onnx files, rewritten in place")
    # Each subcommand module declares its own options; a module that has not grown
    # them yet must not break `train` (long training runs re-import this file).
    for parser, module in ((e, evaluation), (b, bigvgan_export)):
        add = getattr(module, "add_arguments", None)
        if add is not None:
            add(parser)
        else:
            parser.add_argument("--out", type=Path, default=None)
    return p


def _train(args) -> int:
    from grown_train.losses import LossWeights
    from grown_train.train import TrainConfig, train

    weights = LossWeights(
        gram=args.w_gram, acf=args.w_acf, diversity=args.w_diversity,
        l1=args.w_l1, sot=args.w_sot, marginal=args.w_marginal, overflow=args.w_overflow,
        diversity_low=args.diversity_low, diversity_high=args.diversity_high,
    )
    cfg = TrainConfig(
        target=args.target, out=args.out, iters=args.iters, frames=args.frames,
        channels=args.channels, hidden=args.hidden, batch=args.batch,
        perception=args.perception, seed=args.seed, checkpoint_dir=args.checkpoint_dir,
        preview_every=args.preview_every, checkpoint_every=args.checkpoint_every,
        lr=args.lr, lr_final=args.lr_final, min_steps=args.min_steps, max_steps=args.max_steps,
        fire_rate=args.fire_rate, seed_std=args.seed_std, seed_kind=args.seed_kind, pool_size=args.pool_size,
        damage_prob=args.damage_prob, weights=weights, acf_min_s=args.acf_min_s, credit=args.credit, license=args.license,
        fresh=args.fresh, init_from=args.init_from, grad_checkpoint=args.grad_checkpoint, preview=args.preview, quiet=args.quiet,
        time_budget=args.time_budget, threads=args.threads, device=args.device,
    )
    summary = train(cfg)
    print(json.dumps(summary, indent=None if args.quiet else 1))
    return 0


def _calibrate(args) -> int:
    from grown_train.calibrate import calibrate
    from grown_train.eval import MODELS_DIR, resolve_models
    from grown_train.export import read_metadata, target_recording
    from grown_train.hearing import grown_binary

    binary = grown_binary(args.grown_bin)
    for path in resolve_models(args.models, MODELS_DIR / "nca"):
        result = calibrate(path, target_recording(read_metadata(path), Path(args.targets_dir), path.name), binary)
        print(f"{path.name}: grown.level_db = {result['level_db']:+.2f} "
              f"({result['rounds'][-1]['error_db']:+.2f} dB from {result['target']} when last rendered)")
    return 0


def _relayout(args) -> int:
    from grown_train.export import relayout

    for path in args.models:
        done = relayout(path)
        print(f"{path}: {'rewritten in the blocked layout' if done else 'left as it is (channels do not fill whole blocks)'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "calibrate":
            return _calibrate(args)
        if args.command == "relayout":
            return _relayout(args)
        if args.command == "eval":
            from grown_train.eval import run as run_eval

            return run_eval(args)
        from grown_train.bigvgan_export import run as run_export

        return run_export(args)
    except GrownError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("error: interrupted; re-run the same command to resume from the last checkpoint", file=sys.stderr)
        return EXIT_INTERRUPTED
