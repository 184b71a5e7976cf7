"""The stereo ``stft-ms`` section of EVAL.md: stereo models grown from fresh seeds against their targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from grown_train.export import read_metadata, target_recording
from grown_train.grow import grow_onnx
from grown_train.stftms import DEFAULT_STFT, REPRESENTATION, decode, encode, load_stereo, to_mid_side


def grow_stereo_onnx(path: Path, seeds: list[int], frames: int) -> list[np.ndarray]:
    """Grow each seed with ONNX Runtime as the plugin does; returns the visible channels ``[4, bins, frames]``."""
    return [x[:4] for x in grow_onnx(path, seeds, frames, threads=None)]


def evaluate_stereo(paths: list[Path], targets_dir: Path, seeds: int = 3, frames: int = 86) -> str:
    """Markdown section for EVAL.md: stereo models grown from fresh seeds vs their targets."""
    from grown_train.metrics import avg_spectrum_cosine, stereo_similarity

    lines = [
        "",
        SECTION_HEADING,
        "",
        "Grown with ONNX Runtime as the plugin grows them and played through the exact inverse STFT "
        f"(no vocoder), {seeds} seeds from 1, {frames} frames. `side/mid` is the RMS ratio of side to mid "
        "(0 = mono); `avg-spectrum cos` is per mid/side as above; `round trip` is the stereo similarity "
        "(mid and side waveform cosines, see `metrics.stereo_similarity`) of the target's first 10 s after "
        "audio → stft-ms → audio.",
        "",
        "| model | target | row | side/mid RMS | avg-spectrum cos mid | avg-spectrum cos side | round trip |",
        "|---|---|---|---|---|---|---|",
    ]
    for path in paths:
        meta = read_metadata(path)
        target = target_recording(meta, Path(targets_dir), path.name)
        fname = target.name
        audio = load_stereo(target, DEFAULT_STFT.sample_rate)
        ref = audio[:, : 10 * DEFAULT_STFT.sample_rate]
        ref = ref[:, : ref.shape[1] - ref.shape[1] % DEFAULT_STFT.hop]
        back = decode(encode(torch.from_numpy(ref))).numpy()
        rt = stereo_similarity(ref, back)
        ms = to_mid_side(torch.from_numpy(ref)).numpy()
        lines.append(
            f"| {path.stem} | {fname} | recording (10 s) | {_ratio(ms):.3f} | 1.000 | 1.000 | {rt:.6f} |"
        )
        grown = [decode(torch.from_numpy(v)).numpy() for v in grow_stereo_onnx(path, list(range(1, seeds + 1)), frames)]
        for i, g in enumerate(grown):
            gms = to_mid_side(torch.from_numpy(g)).numpy()
            cos = avg_spectrum_cosine(g, ref)
            lines.append(
                f"| {path.stem} | {fname} | grown seed {i + 1} | {_ratio(gms):.3f} | {cos['mid']:.3f} | "
                f"{cos['side']:.3f} | – |"
            )
    return "\n".join(lines) + "\n"


#: First line of the stereo section in EVAL.md (``update_eval_report`` replaces from here to the end).
SECTION_HEADING = "## Stereo models (`stft-ms`)"


def update_eval_report(report: Path, models: list[Path], targets_dir: Path) -> Path:
    """Rewrites only the stereo section of an existing EVAL.md (the mel sections are kept as they are)."""
    from grown_train.io import atomic_write

    text = Path(report).read_text(encoding="utf-8") if Path(report).exists() else "# Grown model evaluation\n"
    cut = text.find("\n" + SECTION_HEADING)
    if cut >= 0:
        text = text[:cut]
    text = text.rstrip("\n") + "\n" + evaluate_stereo(models, targets_dir)
    return atomic_write(Path(report), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _ratio(ms: np.ndarray) -> float:
    mid = float(np.sqrt(np.mean(ms[0].astype(np.float64) ** 2)))
    side = float(np.sqrt(np.mean(ms[1].astype(np.float64) ** 2)))
    return side / mid if mid > 0 else float("inf") if side > 0 else 0.0


def is_stereo_model(path: Path) -> bool:
    """True for an ``stft-ms`` ONNX file (the mel evaluation skips those)."""
    try:
        meta = read_metadata(path)
    except Exception:  # not ONNX: let the mel path report it
        return False
    return meta.get("grown.representation") == REPRESENTATION
