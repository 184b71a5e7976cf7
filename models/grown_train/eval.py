"""``python -m grown_train eval``: score shipped models against their targets and two baselines.

For every model in ``models/nca/`` (or ``--models``) the target recording is found
from ``grown.target`` in ``--targets-dir``, and four rows are measured at one
evaluation width with the same seeds, metrics and Griffin-Lim re-synthesis:

* ``shipped``   the ONNX file itself, grown with ONNX Runtime as the plugin grows it;
* ``notebook``  baseline (a), see :mod:`grown_train.baselines` (trained once, cached);
* ``L-BFGS``    baseline (b), direct optimisation of the texture loss, no NCA;
* ``recording`` crops of the target itself: the level a genuine excerpt reaches.

The report (``--out``, default ``models/EVAL.md``) defines every metric.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

#: ``models/``: default locations are relative to it, not to the working directory.
MODELS_DIR = Path(__file__).resolve().parents[1]
#: Widest evaluation grid: 344 frames = 4.0 s (rhythm lags reach a third of it, 1.3 s).
EVAL_FRAMES = 344
#: Seeds grown per row (diversity needs at least two).
SEEDS = 4
#: First seed; every row uses SEED0, SEED0+1, ...
SEED0 = 1001
#: Baseline (a)'s budget when the shipped model's own is unknown (no checkpoint, no earlier report).
BASELINE_ITERS = 40
#: ``--baseline-iters equal``: baseline (a) gets the shipped model's training budget.
EQUAL = "equal"
#: Items per step of baseline (a): the shipped models' batch (train_all.sh), fixed here so
#: the cached baseline never depends on whether a training checkpoint is lying around.
BASELINE_BATCH = 3
#: Default L-BFGS iterations of baseline (b).
LBFGS_ITERS = 150
#: Griffin-Lim iterations for the audio metrics.
GL_ITERS = 32
#: Metrics in report order: (key, column title, True if higher is better).
METRICS = (
    ("l1", "log-mel L1 ↓", False),
    ("gram", "Gram ↓", False),
    ("acf", "ACF err ↓", False),
    ("div_err", "diversity err ↓", False),
    ("cos_stft", "STFT cos (mid) ↑", True),
    ("cos_avg", "avg-spectrum cos ↑", True),
)


def _iters_or_equal(text: str) -> int | str:
    if text == EQUAL:
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of iterations or '{EQUAL}', got {text!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the ``eval`` subcommand (cli.py calls this so they live beside their meaning)."""
    p.add_argument("--models", nargs="*", default=None,
                   help="model names in models/nca (e.g. trumpet) or .onnx paths; default: every models/nca/*.onnx")
    p.add_argument("--out", type=Path, default=MODELS_DIR / "EVAL.md", help="report path (%(default)s)")
    p.add_argument("--quick", action="store_true", help="tiny budgets and grids (tests, smoke runs)")
    p.add_argument("--targets-dir", type=Path, default=MODELS_DIR / "targets", help="(%(default)s)")
    p.add_argument("--baseline-dir", type=Path, default=MODELS_DIR / "runs" / "baselines",
                   help="cache of trained baseline (a) models (%(default)s)")
    p.add_argument("--png-dir", type=Path, default=None,
                   help="comparison PNGs (default: models/eval beside the default report, none for --quick)")
    p.add_argument("--seeds", type=int, default=None, help=f"seeds per row ({SEEDS})")
    p.add_argument("--frames", type=int, default=None, help=f"widest evaluation grid in frames ({EVAL_FRAMES})")
    p.add_argument("--baseline-iters", type=_iters_or_equal, default=None,
                   help="baseline (a) iterations, or 'equal' (the default of a full run): as many cell updates as "
                        "the shipped model's training (iterations × batch × rollout steps × grid frames)")
    p.add_argument("--lbfgs-iters", type=int, default=None, help=f"baseline (b) L-BFGS iterations ({LBFGS_ITERS})")
    p.add_argument("--gl-iters", type=int, default=None, help=f"Griffin-Lim iterations ({GL_ITERS})")
    p.add_argument("--extra-baseline", action="append", default=[], metavar="NAME:ITERS",
                   help="also train baseline (a) for model NAME with ITERS iterations and show it as an extra "
                        "row (a budget check; not part of the win/loss summary)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch / ONNX Runtime threads (%(default)s: on a shared machine more threads spin-wait)")
    hearing = p.add_mutually_exclusive_group()
    hearing.add_argument("--hearing-only", action="store_true",
                         help="only the hearing section (renders of the shipped models; minutes, no training)")
    hearing.add_argument("--no-hearing", action="store_true",
                         help="skip the hearing section (it needs the grown command line built)")
    p.add_argument("--grown-bin", type=Path, default=None,
                   help="the grown command line that renders (default: $GROWN_BIN, else target/release/grown)")


@dataclass
class Budget:
    """Sizes of one eval run; ``--quick`` shrinks all of them."""

    #: Seeds per row.
    seeds: int
    #: Widest evaluation grid (a short target lowers it, see :func:`eval_frames`).
    frames: int
    #: Baseline (a) optimizer steps, or :data:`EQUAL` to match the shipped model's budget.
    baseline_iters: int | str
    #: Baseline (a) rollout length (the notebook's 96).
    baseline_steps: int
    #: Baseline (a) items per step.
    baseline_batch: int
    #: Baseline (b) L-BFGS iterations.
    lbfgs_iters: int
    #: Griffin-Lim iterations.
    gl_iters: int
    #: Crop pairs for the recording's own diversity.
    crop_pairs: int

    @classmethod
    def from_args(cls, args) -> Budget:
        if args.quick:
            b = cls(seeds=2, frames=40, baseline_iters=2, baseline_steps=8, baseline_batch=2,
                    lbfgs_iters=5, gl_iters=2, crop_pairs=4)
        else:
            b = cls(seeds=SEEDS, frames=EVAL_FRAMES, baseline_iters=EQUAL, baseline_steps=96,
                    baseline_batch=BASELINE_BATCH, lbfgs_iters=LBFGS_ITERS, gl_iters=GL_ITERS, crop_pairs=16)
        for name in ("seeds", "frames", "baseline_iters", "lbfgs_iters", "gl_iters"):
            value = getattr(args, name, None)
            if value == EQUAL:
                b.baseline_iters = EQUAL
            elif value is not None:
                if value < (2 if name == "seeds" else 1):
                    from grown_train.errors import BadOption

                    raise BadOption(f"--{name.replace('_', '-')} must be at least {2 if name == 'seeds' else 1}")
                setattr(b, name, value)
        return b


@dataclass
class ModelSpec:
    """What eval needs from one shipped ONNX file (its metadata and architecture)."""

    #: Short name (file stem), the report's section title.
    name: str
    #: The ONNX file.
    path: Path
    #: ``grown.*`` metadata.
    meta: dict[str, str]
    #: State channels.
    channels: int
    #: Update-MLP width, read from the ``w1.weight`` initializer (not in the metadata).
    hidden: int
    #: Target recording resolved from ``grown.target``.
    target: Path


@dataclass
class Row:
    """One method's grown spectrograms and scores for one target."""

    #: Method label in the table.
    label: str
    #: Natural-log mel items ``[n_mels, F]``, one per seed (or crop).
    items: list = field(default_factory=list)
    #: Metric name -> value (means over items).
    scores: dict[str, float] = field(default_factory=dict)
    #: Free-form notes for the report (budgets, timings).
    info: dict = field(default_factory=dict)


def eval_frames(target_frames: int, widest: int) -> int:
    """Evaluation width: ``widest``, but at most 2/3 of a short target so its crops can differ."""
    return max(8, min(widest, (2 * target_frames) // 3))


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def resolve_models(names: list[str] | None, nca_dir: Path) -> list[Path]:
    from grown_train.errors import MissingInput

    if not names:
        found = sorted(nca_dir.glob("*.onnx"))
        if not found:
            raise MissingInput(f"no models to evaluate: {nca_dir} has no .onnx files")
        return found
    out = []
    for n in names:
        p = Path(n)
        cand = p if p.suffix == ".onnx" else nca_dir / f"{n}.onnx"
        if not cand.is_file():
            raise MissingInput(f"model not found: {cand}")
        out.append(cand)
    return out


def load_spec(path: Path, targets_dir: Path) -> ModelSpec:
    import onnx

    from grown_train.errors import GrownError
    from grown_train.export import read_metadata, target_recording

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and friends
        raise GrownError(f"not an ONNX model: {path} ({type(exc).__name__})") from None
    meta = read_metadata(model)
    if meta.get("grown.kind") != "nca":
        raise GrownError(f"{path} is not a Grown NCA model (grown.kind={meta.get('grown.kind')!r})")
    channels = int(meta["grown.channels"])
    hidden = None
    for init in model.graph.initializer:
        if init.name.endswith("w1.weight") and len(init.dims) == 4:
            hidden = int(init.dims[0])
    if hidden is None:
        raise GrownError(f"{path}: cannot find the update MLP (w1.weight) to size baseline (a)")
    return ModelSpec(path.stem, path, meta, channels, hidden, target_recording(meta, targets_dir, path.name))


def grow_onnx(spec: ModelSpec, seeds: list[int], frames: int, threads: int = 1) -> list:
    """Grow each seed with ONNX Runtime exactly as the contract describes; returns ln-mel items."""
    import numpy as np

    from grown_train.grow import grow_onnx as grow_states

    m = spec.meta
    scale, offset = float(m["grown.spec_scale"]), float(m["grown.spec_offset"])
    ch = int(m.get("grown.spec_channel", "0"))
    states = grow_states(spec.path, seeds, frames, threads, meta=m)
    return [(x[ch] * scale + offset).astype(np.float32) for x in states]


def _loudest_start(target, frames: int) -> int:
    import numpy as np

    energy = np.convolve(target.mean(axis=0), np.ones(frames), mode="valid")
    return int(np.argmax(energy))


def score_rows(rows: list[Row], loss_fn, target, ref_audio, ref_div: float, scale: float, offset: float,
               gl_iters: int) -> None:
    """Fill every row's scores (means over its items)."""
    import numpy as np

    from grown_train import metrics as M

    for row in rows:
        t0 = time.perf_counter()
        tex = M.texture_terms(loss_fn, row.items, scale, offset)
        audio = [M.griffin_lim(x, gl_iters) for x in row.items]
        div = M.diversity(row.items)
        row.scores = {
            "l1": float(np.mean([M.spectrum_l1(x, target) for x in row.items])),
            "gram": float(np.mean(tex["gram"])),
            "acf": float(np.mean(tex["acf"])),
            "diversity": div,
            "div_ratio": div / ref_div if ref_div > 0 else float("inf"),
            "div_err": M.diversity_error(div, ref_div),
            "cos_stft": float(np.mean([M.stft_cosine(a, ref_audio)["mid"] for a in audio])),
            "cos_avg": float(np.mean([M.avg_spectrum_cosine(a, ref_audio)["mid"] for a in audio])),
        }
        row.info["score_s"] = time.perf_counter() - t0


def shipped_training(name: str, onnx_path: Path | None = None) -> dict:
    """How the shipped model was trained, from its checkpoint in models/runs or models/checkpoints (empty if none).

    Checkpoints of continued training runs live in sub-folders (``runs/s3/``); with
    ``onnx_path`` the checkpoint whose update-MLP output weights are the file's own is
    the one reported, so an older run of the same name cannot claim a retrained model.
    Without a match, the first ``runs/NAME-*.pt`` is used.
    """
    import numpy as np
    import torch

    runs = MODELS_DIR / "runs"
    # The committed weights of shipped models (models/checkpoints) count like a
    # top-level run: a fresh checkout has no models/runs.
    committed = sorted((MODELS_DIR / "checkpoints").glob(f"{name}-*.pt"))
    top = [ck for ck in [*sorted(runs.glob(f"{name}-*.pt")), *committed] if ck.stem.count("-") == 1]
    deeper = [ck for ck in sorted(runs.glob(f"*/{name}-*.pt")) if ck.stem.count("-") == 1]
    shipped_w2 = _onnx_w2(onnx_path) if onnx_path is not None else None
    fallback: dict = {}
    for ck in top + deeper:
        try:
            data = torch.load(ck, map_location="cpu", weights_only=False)
            cfg = data.get("config", {})
            info = {
                "iterations": int(data.get("iter", len(data.get("history", [])))),
                "planned": int(cfg["iters"]) if "iters" in cfg else None,
                "batch": int(cfg["batch"]) if "batch" in cfg else None,
                # Earlier stages (train --init-from): [{"frames", "iters"}, ...].
                "lineage": list(data.get("lineage", [])),
            }
            w2 = data["model"].get("w2.weight")
        except Exception:  # a checkpoint being rewritten or from another layout: just unknown
            continue
        if shipped_w2 is None:
            return info
        if w2 is not None and np.array_equal(w2.numpy(), shipped_w2):
            return info
        if not fallback and ck in top:
            fallback = info
    return fallback


def weights_digest(path: Path) -> str:
    """SHA-256 of an NCA file's learnt weights, read back in ``perceive``'s order
    (``export.nca_from_onnx``), so a model keeps its identity when only its metadata
    (a level calibration) or its graph layout (``relayout``) changes. Files that do
    not read back as an NCA are hashed by their initializers as stored."""
    import hashlib

    import numpy as np
    import onnx
    from onnx import numpy_helper

    from grown_train.errors import GrownError
    from grown_train.export import nca_from_onnx

    h = hashlib.sha256()
    try:
        arrays = sorted((k, v.numpy()) for k, v in nca_from_onnx(path).state_dict().items())
    except (GrownError, KeyError, RuntimeError, ValueError):
        inits = onnx.load(str(path)).graph.initializer
        arrays = sorted((i.name, numpy_helper.to_array(i)) for i in inits)
    for name, a in arrays:
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def training_record(name: str, onnx_path: Path, folder: Path | None = None) -> dict:
    """How a shipped model was trained, from its committed run record
    ``models/checkpoints/NAME-run.json`` (for models whose checkpoint is not
    committed), only if the record names this file's weights. Empty otherwise."""
    path = (folder or MODELS_DIR / "checkpoints") / f"{name}-run.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict) or record.get("weights_sha256") != weights_digest(onnx_path):
        return {}
    kept = {k: record[k] for k in ("iterations", "planned", "batch", "lineage") if k in record}
    return {**kept, "from_record": True} if kept else {}


def file_digest(path: Path) -> str:
    """SHA-256 of a file, so a report can recognise a model it has described before."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def previous_training(name: str, digest: str, sidecar: Path | None = None) -> dict:
    """How the model was trained, from the last report's ``results.json``, if it described this very file.

    Checkpoints live in the uncommitted ``models/runs``, so a fresh checkout has none; the
    committed sidecar keeps what the report said while they existed. Only a row whose
    ``onnx_sha256`` is this file's is trusted (a retrained model must not inherit the budget
    of the one it replaced). Empty if there is no such row.
    """
    path = sidecar or MODELS_DIR / "eval" / "results.json"
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("name") != name:
            continue
        info = entry.get("rows", {}).get("shipped", {}).get("info", {})
        if info.get("onnx_sha256") == digest:
            kept = {k: info[k] for k in ("iterations", "planned", "batch", "lineage") if k in info}
            return {**kept, "from_report": True} if kept else {}
    return {}


def _onnx_w2(path: Path):
    """The ``w2.weight`` initializer of an NCA file (None if it has none)."""
    import onnx
    from onnx import numpy_helper

    for init in onnx.load(str(path)).graph.initializer:
        if init.name.endswith("w2.weight"):
            return numpy_helper.to_array(init)
    return None


def cell_updates(info: dict, growth_steps: int, final_frames: int) -> float | None:
    """Cell updates of a training: Σ over its stages of iterations × batch × mean rollout × grid frames.

    The mean rollout is ¾ of ``growth_steps`` (training draws rollouts uniformly between half
    and all of the steps it exports); None when the budget is unknown.
    """
    if not info.get("iterations") or not info.get("batch"):
        return None
    stages = [(s.get("iters") or 0, s.get("frames") or final_frames) for s in info.get("lineage", [])]
    stages.append((info["iterations"], final_frames))
    return sum(it * info["batch"] * 0.75 * growth_steps * frames for it, frames in stages)


def baseline_iterations(budget: Budget, shipped_info: dict, spec: ModelSpec, frames: int) -> tuple[int, str]:
    """Baseline (a)'s iterations and how they were chosen (for the report)."""
    if budget.baseline_iters != EQUAL:
        return int(budget.baseline_iters), "fixed by --baseline-iters"
    shipped = cell_updates(shipped_info, int(spec.meta["grown.growth_steps"]), int(spec.meta["grown.train_frames"]))
    if shipped is None:
        return BASELINE_ITERS, "the shipped model's budget is unknown, so the fixed default"
    per_iter = budget.baseline_batch * budget.baseline_steps * frames
    return max(1, math.ceil(shipped / per_iter)), f"equal to the shipped model's {shipped:.3g} cell updates"


def notebook_config(spec: ModelSpec, budget: Budget, target_frames: int, iters: int | None = None):
    """Baseline (a) sized like the shipped model (channels, MLP width, grid, seeds) so only the method differs."""
    from grown_train.baselines import NotebookConfig

    m = spec.meta
    return NotebookConfig(
        channels=spec.channels, hidden=spec.hidden, frames=min(int(m["grown.train_frames"]), target_frames),
        iters=iters if iters is not None else int(budget.baseline_iters), steps=budget.baseline_steps, batch=budget.baseline_batch,
        fire_rate=float(m["grown.fire_rate"]), seed_std=float(json.loads(m["grown.seed_state"])["std"]),
        spec_scale=float(m["grown.spec_scale"]), spec_offset=float(m["grown.spec_offset"]),
    )


def evaluate_model(
    spec: ModelSpec, budget: Budget, baseline_dir: Path, png_dir: Path | None, extra_iters: tuple[int, ...] = ()
) -> dict:
    import torch

    from grown_train.baselines import cache_path, grow_torch, lbfgs_texture, train_notebook
    from grown_train.io import load_audio
    from grown_train.losses import LossWeights, TextureLoss
    from grown_train.mel import DEFAULT_MEL, log_mel
    from grown_train.metrics import crop_starts, griffin_lim, target_diversity

    m = spec.meta
    scale, offset = float(m["grown.spec_scale"]), float(m["grown.spec_offset"])
    std = float(json.loads(m["grown.seed_state"])["std"])
    train_frames = int(m["grown.train_frames"])
    target_ln = log_mel(torch.from_numpy(load_audio(spec.target, DEFAULT_MEL.sample_rate))).numpy()
    t_frames = target_ln.shape[-1]
    frames = eval_frames(t_frames, budget.frames)
    target_s = torch.from_numpy((target_ln - offset) / scale).float()
    seeds = list(range(SEED0, SEED0 + budget.seeds))
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    shipped = Row("shipped", grow_onnx(spec, seeds, frames, torch.get_num_threads()))
    timings["grow shipped"] = time.perf_counter() - t0
    digest = file_digest(spec.path)
    shipped.info.update(shipped_training(spec.name, spec.path) or training_record(spec.name, spec.path)
                        or previous_training(spec.name, digest))
    shipped.info["onnx_sha256"] = digest

    frames_a = min(int(m["grown.train_frames"]), t_frames)
    iters_a, budget_note = baseline_iterations(budget, shipped.info, spec, frames_a)
    ncfg = notebook_config(spec, budget, t_frames, iters_a)
    cache = cache_path(baseline_dir, spec.name, ncfg, spec.target.read_bytes())
    t0 = time.perf_counter()
    _log(f"{spec.name}: baseline (a) {'cached' if cache.exists() else 'training'} -> {cache}")
    nca, ninfo = train_notebook(target_s, ncfg, cache, log=_log)
    timings["baseline (a) train"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    grown = grow_torch(nca, seeds, frames, ncfg.steps, ncfg.fire_rate, std).numpy()
    notebook = Row("notebook (a)", [g * scale + offset for g in grown],
                   info={**ninfo, "steps": ncfg.steps, "budget": budget_note})
    timings["grow baseline (a)"] = time.perf_counter() - t0
    baseline_onnx = export_notebook(nca, ncfg, spec, cache.with_suffix(".onnx"))

    extra_rows = []
    for iters in extra_iters:
        xcfg = dataclasses.replace(ncfg, iters=iters)
        xcache = cache_path(baseline_dir, spec.name, xcfg, spec.target.read_bytes())
        _log(f"{spec.name}: extra baseline (a), {iters} iterations -> {xcache}")
        xnca, xinfo = train_notebook(target_s, xcfg, xcache, log=_log)
        xgrown = grow_torch(xnca, seeds, frames, xcfg.steps, xcfg.fire_rate, std).numpy()
        extra_rows.append(Row(f"notebook (a), {iters} it.", [g * scale + offset for g in xgrown],
                              info={**xinfo, "steps": xcfg.steps}))

    t0 = time.perf_counter()
    direct, linfo = lbfgs_texture(target_s, frames, seeds, std, budget.lbfgs_iters, LossWeights())
    lbfgs = Row("L-BFGS (b)", [d.numpy() * scale + offset for d in direct], info=linfo)
    timings["baseline (b) L-BFGS"] = time.perf_counter() - t0

    loud = _loudest_start(target_ln, frames)
    # Seeded random positions (not the loudest crop the audio metrics compare with).
    starts = [a for pair in crop_starts(t_frames, frames, 4 * budget.seeds, seed=11) for a in pair]
    starts = [s for s in dict.fromkeys(starts) if s != loud][: budget.seeds]
    recording = Row("recording", [target_ln[:, s : s + frames] for s in starts], info={"starts": starts})

    t0 = time.perf_counter()
    loss_fn = TextureLoss(target_s, frames, DEFAULT_MEL.frames_per_second, LossWeights())
    ref_audio = griffin_lim(target_ln[:, loud : loud + frames], budget.gl_iters)
    ref_div = target_diversity(target_ln, frames, budget.crop_pairs)
    rows = [shipped, notebook, lbfgs, recording, *extra_rows]
    score_rows(rows, loss_fn, target_ln, ref_audio, ref_div, scale, offset, budget.gl_iters)
    timings["metrics + Griffin-Lim"] = time.perf_counter() - t0

    png = None
    if png_dir is not None:
        png = _save_png(png_dir / f"{spec.name}.png", spec.name, target_ln[:, loud : loud + frames], rows[:3])
    return {
        "name": spec.name,
        "target": spec.target.name,
        "credit": m.get("grown.target", ""),
        "target_frames": t_frames,
        "frames": frames,
        "ref_diversity": ref_div,
        "loudest_start": loud,
        "rows": rows,
        "notebook_cfg": ncfg,
        "growth_steps": int(m["grown.growth_steps"]),
        "train_frames": train_frames,
        "timings": timings,
        "png": png,
        "baseline_onnx": baseline_onnx,
    }


def export_notebook(nca, ncfg, spec: ModelSpec, path: Path) -> Path:
    """Baseline (a) as a model file, so the hearing section plays it through the plugin's own path."""
    from grown_train.export import ModelInfo, export_onnx

    m = spec.meta
    info = ModelInfo(spec_scale=ncfg.spec_scale, spec_offset=ncfg.spec_offset, growth_steps=ncfg.steps,
                     fire_rate=ncfg.fire_rate, seed_std=ncfg.seed_std, train_frames=ncfg.frames,
                     target=m.get("grown.target", ""), license=m.get("grown.license", "unknown"))
    return export_onnx(nca, path, info)


def _save_png(path: Path, name: str, target, rows: list[Row]) -> Path:
    from grown_train.preview import save_panels

    panels = [("recording (loudest crop)", target)] + [(f"{r.label}, seed {SEED0}", r.items[0]) for r in rows]
    return save_panels(path, panels, f"{name}: recording vs grown ({target.shape[1]} frames)")


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"


def _better(a: float, b: float, higher: bool) -> bool:
    return a > b if higher else a < b


#: Relative difference below which two scores count as a tie (not a win for either side).
TIE = 0.01


def _verdict(mine: float, theirs: float, higher: bool) -> str:
    """"win", "tie" or "loss" of ``mine`` against ``theirs``."""
    if abs(mine - theirs) <= TIE * max(abs(mine), abs(theirs), 1e-12):
        return "tie"
    return "win" if _better(mine, theirs, higher) else "loss"


def comparisons(result: dict) -> dict[str, list[str]]:
    """Metric titles where the shipped model loses to / ties with (a), and where (b) beats it."""
    rows = {r.label: r for r in result["rows"]}
    s, a, b = rows["shipped"], rows["notebook (a)"], rows["L-BFGS (b)"]
    rec = rows.get("recording")
    out = {"a_wins": [], "a_ties": [], "b_better": [], "a_beats_recording": []}
    for key, title, higher in METRICS:
        name = title.rstrip(" ↑↓")
        v = _verdict(s.scores[key], a.scores[key], higher)
        if v == "loss":
            out["a_wins"].append(name)
            # A metric on which excerpts of the target itself lose to (a) does not measure
            # likeness to the target there; say so beside the loss instead of hiding either.
            if rec is not None and _verdict(rec.scores[key], a.scores[key], higher) == "loss":
                out["a_beats_recording"].append(name)
        elif v == "tie":
            out["a_ties"].append(name)
        if _verdict(b.scores[key], s.scores[key], higher) == "win":
            out["b_better"].append(name)
    # Budget-check rows: where a longer-trained (a) overtakes the shipped model.
    out["extra"] = {
        r.label: [t.rstrip(" ↑↓") for k, t, h in METRICS if _verdict(s.scores[k], r.scores[k], h) == "loss"]
        for r in result["rows"][4:]
    }
    return out


def _versus_a(cmp: dict) -> str:
    if not cmp["a_wins"] and not cmp["a_ties"]:
        return "beats it on every metric."
    parts = []
    if cmp["a_wins"]:
        parts.append("**(a) is better on: " + ", ".join(cmp["a_wins"]) + "**")
    if cmp.get("a_beats_recording"):
        parts[-1] += (" (where (a) also beats the recording's own excerpts: "
                      + ", ".join(cmp["a_beats_recording"]) + ")")
    if cmp["a_ties"]:
        parts.append(f"tie (within {TIE:.0%}) on: " + ", ".join(cmp["a_ties"]))
    return "; ".join(parts) + "."


def report_head(command: str, total_s: float) -> list[str]:
    return [
        "# Grown model evaluation",
        "",
        f"Written by `{command}` ({total_s / 60:.1f} min for this run, on a shared 2-core CPU). Re-run it after "
        "retraining; baseline (a) models are cached in `models/runs/baselines/`, so only the first run trains them.",
        "",
    ]


def render_report(results: list[dict], budget: Budget) -> str:
    """The texture-statistics section: what the training loss measures, on the grown spectrograms."""
    lines = [
        "## Texture statistics (what the loss measures)",
        "",
        "These are the training loss's own statistics; a smooth haze can score well on them, so they rank "
        "candidates only beside the hearing section above, never instead of it.",
        "",
        "Each shipped model is compared with two baselines measured in the same run, with the same seeds "
        f"({budget.seeds} per row, {SEED0}…), the same evaluation grid and the same Griffin-Lim re-synthesis:",
        "",
        "* **shipped** — the ONNX file in `models/nca/`, grown with ONNX Runtime exactly as the plugin grows it "
        "(seed state, fire-rate masks, `grown.growth_steps` steps).",
        "* **notebook (a)** — the original research notebook's setup as reconstructed in "
        "`grown_train/baselines.py` (the notebook is not in the repo): fixed 3×3 perception only "
        "(identity, Sobel x/y, Laplacian; no learnable long kernels, no frequency-position channel), fixed "
        f"{budget.baseline_steps}-step rollout from fresh seeds, loss = the same random-filter Gram term + an L1 "
        "between the time-averaged spectra, weighted 2→1 from the lowest to the highest mel band and masked to "
        "bands whose average target level is more than 1 nat above the log floor. No pool, damage, rhythm or "
        "diversity terms. Same channels, MLP width, training width, fire rate and seed distribution as the "
        "shipped model; **budget: "
        + (f"{budget.baseline_iters} iterations" if budget.baseline_iters != EQUAL else
           "as many cell updates (iterations × batch × rollout steps × grid frames) as the shipped model's training")
        + f" × batch {budget.baseline_batch}** (see the per-target notes for both budgets).",
        "* **L-BFGS (b)** — no NCA: `torch.optim.LBFGS` (strong Wolfe, history 20, "
        f"{budget.lbfgs_iters} iterations) on free scaled log-mel tensors, one per seed, optimised jointly on the "
        "shipped training loss (`TextureLoss` with its default weights: Gram, rhythm ACF, average-spectrum L1, "
        "diversity hinge, overflow) directly at the evaluation width.",
        "* **recording** — F-frame crops of the target itself at seeded random positions (not the loudest crop): "
        "the level a genuine excerpt of the same texture reaches. Not a competitor; a scale for the numbers.",
        "* **notebook (a), N it.** (only where `--extra-baseline NAME:N` asks for it) — baseline (a) with another "
        "iteration budget, to show how much the budget matters; not part of the verdicts below.",
        "",
        "### Results",
        "",
    ]
    summary_a, summary_b, summary_x = [], [], []
    for res in results:
        rows = res["rows"]
        lines += [
            f"#### {res['name']} — {res['credit'] or res['target']}",
            "",
            f"Evaluation grid {res['frames']} frames ({res['frames'] * 256 / 22050:.2f} s; the target has "
            f"{res['target_frames']}). Recording diversity (reference): {res['ref_diversity']:.4f} nats².",
            "",
            "| row | " + " | ".join(t for _, t, _ in METRICS) + " | diversity (nats², ×rec.) |",
            "|---|" + "---|" * (len(METRICS) + 1),
        ]
        for r in rows:
            cells = [_fmt(r.scores[k]) for k, _, _ in METRICS]
            div = f"{_fmt(r.scores['diversity'])} (×{_fmt(r.scores['div_ratio'])})"
            lines.append(f"| {r.label} | " + " | ".join(cells) + f" | {div} |")
        cmp = comparisons(res)
        shipped = rows[0]
        nb = rows[1]
        its = shipped.info.get("iterations")
        planned = shipped.info.get("planned")
        lines += [
            "",
            f"* shipped: {res['growth_steps']} growth steps, trained at {res['train_frames']} frames"
            + (f", {its} iterations × batch {shipped.info.get('batch')}"
               + (f" (of {planned} planned; stopped by its time budget)" if planned and planned > its else "")
               + "".join(f", after {st['iters']} iterations at {st['frames']} frames"
                         for st in reversed(shipped.info.get("lineage", [])))
               + (" (from the previous report: its checkpoint is not in this checkout)."
                  if shipped.info.get("from_report")
                  else " (from its run record `checkpoints/" + res["name"] + "-run.json`)."
                  if shipped.info.get("from_record") else " (from its checkpoint).")
               if its else " (checkpoint not found; budget: see train_all.sh)."),
            f"* notebook (a): {nb.info['iterations']} iterations × batch {res['notebook_cfg'].batch}"
            + (" (cached)" if nb.info.get("cached") else "")
            + (f" ({nb.info['budget']})" if nb.info.get("budget") else "")
            + f", {nb.info['seconds']:.0f} s of training, final loss {nb.info['final_loss']:.4f}.",
            f"* L-BFGS (b): {rows[2].info['evaluations']} loss evaluations, {rows[2].info['seconds']:.1f} s, "
            f"final loss {rows[2].info['final_loss']:.4f}.",
            "* timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in res["timings"].items()) + ".",
            "* shipped vs (a): "
            + _versus_a(cmp),
            "* (b) vs shipped: "
            + ("(b) is better on: " + ", ".join(cmp["b_better"]) + "." if cmp["b_better"] else
               "the shipped model is at least as good on every metric."),
        ]
        for label, better in cmp["extra"].items():
            lines.append(f"* budget check, {label} vs shipped: "
                         + ("better on: " + ", ".join(better) + "." if better else "the shipped model is still better "
                            "or tied on every metric."))
            if better:
                summary_x.append(f"{res['name']}: {label} is better than the shipped model on " + ", ".join(better))
        if res.get("png"):
            lines.append(f"* spectrograms: [`eval/{Path(res['png']).name}`](eval/{Path(res['png']).name})")
        lines.append("")
        if cmp["a_wins"] or cmp["a_ties"]:
            summary_a.append(f"{res['name']}: {_versus_a(cmp).rstrip('.')}")
        if cmp["b_better"]:
            summary_b.append(f"{res['name']}: " + ", ".join(cmp["b_better"]))
    lines += ["### Summary", ""]
    if summary_a:
        lines.append("* Shipped NCA vs notebook baseline (a) — not beaten everywhere:")
        lines += [f"  * {item}" for item in summary_a]
    else:
        lines.append("* Shipped NCA vs notebook baseline (a): the shipped model beats (a) on every metric for every target.")
    if summary_x:
        lines.append("* Budget check (these verdicts use (a) at the default budget; with more iterations):")
        lines += [f"  * {item}" for item in summary_x]
    if summary_b:
        lines.append("* Where direct optimisation (b) is still better than the shipped model:")
        lines += [f"  * {item}" for item in summary_b]
    else:
        lines.append("* Direct optimisation (b) is better than the shipped model nowhere.")
    lines += [
        "* (b) optimises the training loss itself at the evaluation width with a free tensor per seed, so it is "
        "expected to win the loss-derived metrics (L1, Gram, ACF); it cannot grow, loop at other lengths, regrow "
        "damage or run in real time, and its log-domain optimum need not sound right (see the audio cosines).",
        "",
        "### Metric definitions",
        "",
        "All spectrogram metrics use natural-log mel spectrograms from the contract's front end "
        "(`grown_train.mel`); all rows of a target use the same evaluation width F = min("
        f"{budget.frames}, ⌊2T/3⌋) frames (T = target frames), so a short target still has distinct crops. "
        "Each value is the mean over the row's items (seeds, or crops for the recording row).",
        "",
        "* **log-mel L1** (nats, ↓): mean over mel bands of |time-averaged grown − time-averaged target| "
        "log-mel. A texture has no frame-to-frame correspondence with its target, so only the averages are "
        "compared.",
        "* **Gram** (↓): the training loss's features — the same fixed random 1-D temporal conv ensemble "
        "(`grown_train.losses.TextureLoss`: seed 20240611, widths 2…64 frames, 32 ReLU filters each, plus the raw "
        "spectrum) on the scaled spectrogram s = (ln − offset)/scale; time-averaged Gram matrices G; distance = "
        "mean over feature sets of ‖G − G_target‖_F / ‖G_target‖_F (0 = identical statistics, 1 = an error as "
        "large as the target Gram itself). Grown items use circular convolution (they loop), the target linear.",
        "* **ACF err** (↓): the training loss's rhythm features — 4 band envelopes (mean of 20 mel bands each), "
        "normalised circular autocorrelation at every lag from 0.2 s to min(2 s, F/3); mean squared difference "
        "from the target's, which is the mean circular autocorrelation of 64 evenly spaced F-frame excerpts of the "
        "recording (what an F-frame loop can have). Excerpts, not the whole recording: the linear autocorrelation of "
        "the whole recording also holds its slow dynamics (passages, notes and rests), and on that target "
        "excerpts of the recording itself scored 0.42 (strings) and 0.41 (trumpet), worse than every NCA row.",
        "* **diversity** (nats²): mean over all pairs of items of min over circular time shifts τ of "
        "mean((x_i − roll(x_j, τ))²). Shifted copies of one texture score 0. The reference is the same distance "
        f"between {budget.crop_pairs} seeded random pairs of F-frame crops of the recording. "
        f"**diversity err** (↓) = |ln((D + ε)/(D_rec + ε))|, ε = 0.01 nats²: 0 when seeds differ as much as "
        "excerpts of the recording do; a collapsed model (all seeds alike) and a model that ignores the target's "
        "consistency both score high.",
        "* **STFT cos (mid)** (↑): every item is re-synthesised with the same Griffin-Lim (librosa NNLS mel "
        f"inversion, then `griffinlim` with {budget.gl_iters} iterations, momentum 0.99, random_state 0, "
        "length F·hop) and compared with the same re-synthesis of the recording's loudest F-frame crop. Mid/side "
        "cosine similarity as in the StyleGAN3-audio research: mid = (L+R)/2, side = (L−R)/2; everything here is "
        "mono, so only mid is reported (side is identically zero). Definition: both signals zero-padded to equal "
        "length, STFT magnitudes |X|, |Y| (n_fft 1024, hop 256, Hann, centred), cos = Σ|X||Y| / (‖X‖‖Y‖) over "
        "all time-frequency bins. It is frame-aligned, and a texture is not phase- or time-aligned with its "
        "target, so even a perfect texture scores well below 1; use it to compare rows, not as an absolute. "
        "For a sparse target it can rank noise above the texture itself: a click train at another phase than "
        "the reference crop shares almost no bins with it, while noise spread over every frame shares some "
        "with all of them. A verdict names every metric on which (a) beats the recording's own excerpts too.",
        "* **avg-spectrum cos** (↑): the same re-synthesised signals, cosine similarity of their time-averaged "
        "STFT magnitude spectra (shift-invariant).",
        "",
        "The recording row's audio cosines compare other crops with the loudest crop; for short targets these "
        "crops overlap it, which inflates them.",
        "",
    ]
    return "\n".join(lines)


def _json_results(results: list[dict]) -> list[dict]:
    out = []
    for res in results:
        out.append({
            "name": res["name"], "target": res["target"], "frames": res["frames"],
            "ref_diversity": res["ref_diversity"], "timings": res["timings"],
            "rows": {r.label: {"scores": r.scores, "info": {k: v for k, v in r.info.items() if k != "history"}}
                     for r in res["rows"]},
        })
    return out


def _command(args) -> str:
    """The eval command line that reproduces this report (paths shortened to names)."""
    parts = ["python -m grown_train eval"]
    if args.models:
        parts.append("--models " + " ".join(Path(m).stem for m in args.models))
    if args.quick:
        parts.append("--quick")
    for name in ("seeds", "frames", "baseline_iters", "lbfgs_iters", "gl_iters"):
        value = getattr(args, name)
        if value is not None:
            parts.append(f"--{name.replace('_', '-')} {value}")
    parts += [f"--extra-baseline {e}" for e in args.extra_baseline]
    if args.hearing_only:
        parts.append("--hearing-only")
    if args.no_hearing:
        parts.append("--no-hearing")
    if args.threads != 1:
        parts.append(f"--threads {args.threads}")
    return " ".join(parts)


def run(args) -> int:
    import torch

    from grown_train.errors import BadOption, Unwritable
    from grown_train.io import atomic_write, check_writable

    t_start = time.perf_counter()
    budget = Budget.from_args(args)
    extra: dict[str, list[int]] = {}
    for item in args.extra_baseline:
        name, _, iters = item.partition(":")
        if not iters.isdigit() or int(iters) < 1:
            raise BadOption(f"--extra-baseline wants NAME:ITERS, got {item!r}")
        extra.setdefault(name, []).append(int(iters))
    try:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Unwritable(f"cannot create report directory {Path(args.out).parent}: {exc.strerror or exc}") from None
    out = check_writable(Path(args.out), "report")
    png_dir = args.png_dir
    if png_dir is None and not args.quick and Path(args.out).resolve() == (MODELS_DIR / "EVAL.md").resolve():
        png_dir = MODELS_DIR / "eval"
    paths = resolve_models(args.models, MODELS_DIR / "nca")
    # Stereo stft-ms models have no mel channel: they get their own section (stftms_eval.py).
    from grown_train.stftms_eval import evaluate_stereo, is_stereo_model

    stereo_paths = [p for p in paths if is_stereo_model(p)]
    paths = [p for p in paths if p not in stereo_paths]
    specs = [load_spec(p, Path(args.targets_dir)) for p in paths]
    try:
        Path(args.baseline_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Unwritable(f"cannot create baseline cache {args.baseline_dir}: {exc.strerror}") from None
    torch.set_num_threads(max(1, args.threads))
    unknown = set(extra) - {s.name for s in specs}
    if unknown:
        raise BadOption(f"--extra-baseline names a model that is not evaluated: {', '.join(sorted(unknown))}")
    results = []
    for spec in [] if args.hearing_only else specs:
        _log(f"{spec.name}: evaluating {spec.path} against {spec.target}")
        results.append(evaluate_model(spec, budget, Path(args.baseline_dir), png_dir, tuple(extra.get(spec.name, ()))))
    heard = []
    if not args.no_hearing:
        from grown_train import hearing_eval
        from grown_train.hearing import grown_binary

        binary = grown_binary(args.grown_bin)
        baselines = {res["name"]: res["baseline_onnx"] for res in results if res.get("baseline_onnx")}
        for path in [*paths, *stereo_paths]:
            heard.append(hearing_eval.hear_onnx(path, Path(args.targets_dir), binary, png_dir,
                                                baselines.get(path.stem)))
    total = time.perf_counter() - t_start
    lines = report_head(_command(args), total)
    if heard:
        lines += hearing_eval.report_section(heard, Path(args.out).resolve().parent)
    text = "\n".join(lines)
    if args.hearing_only:
        text += ("\nTexture statistics and baseline (a) were not re-measured in this run (`--hearing-only`); the "
                 "last full run's numbers are in `eval/results.json`.\n")
    else:
        text += "\n" + render_report(results, budget)
        if stereo_paths:
            text += evaluate_stereo(stereo_paths, Path(args.targets_dir))
    atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    if png_dir is not None:
        side = Path(png_dir) / "results.json"
        if args.hearing_only and side.exists():  # keep the texture results of the last full run
            kept = [e for e in json.loads(side.read_text(encoding="utf-8")) if isinstance(e, dict) and "rows" in e]
        else:
            kept = _json_results(results)
        atomic_write(side, lambda tmp: tmp.write_text(json.dumps(kept, indent=1) + "\n"))
        if heard:
            hside = Path(png_dir) / "hearing.json"
            atomic_write(hside, lambda tmp: tmp.write_text(json.dumps(hearing_eval.to_json(heard), indent=1) + "\n"))
    print(f"wrote {out} ({total:.0f} s)")
    return 0
