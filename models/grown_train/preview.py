"""PNG previews: target vs grown spectrograms, and the loss curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grown_train.io import atomic_write


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_panels(path: Path, panels: list[tuple[str, np.ndarray]], title: str, height: float = 3.4,
                dpi: int = 72) -> Path:
    """Natural-log mel pictures ``[n_mels, frames]`` side by side, all on the first panel's colour scale.

    The first panel is the recording: judged against its range, a quiet grown sound looks
    quiet instead of being stretched to full contrast.
    """
    plt = _plt()
    path.parent.mkdir(parents=True, exist_ok=True)
    lo, hi = float(np.percentile(panels[0][1], 1)), float(np.max(panels[0][1]))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), height), squeeze=False,
                             layout="constrained")
    for ax, (name, spec) in zip(axes[0], panels):
        im = ax.imshow(spec, origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("frame")
    axes[0][0].set_ylabel("mel bin")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="ln mel")
    fig.suptitle(title, fontsize=10)
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    finally:
        plt.close(fig)


def save_spectrograms(
    path: Path, target: np.ndarray, grown: list[np.ndarray], title: str
) -> Path:
    """Target crop next to grown spectrograms (all natural-log mel ``[n_mels, frames]``)."""
    panels = [("target", target)] + [(f"grown (seed {i})", g) for i, g in enumerate(grown)]
    return save_panels(path, panels, title, height=3.0, dpi=80)


def save_loss_curve(path: Path, history: list[dict[str, float]]) -> Path:
    """Log-scale curves of the total loss and each weighted term."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if history:
        keys = [k for k in history[0] if k != "iter"]
        its = np.array([h["iter"] for h in history])
        for k in keys:
            vals = np.array([h.get(k, np.nan) for h in history], dtype=float)
            vals = np.clip(vals, 1e-8, None)
            ax.plot(its, vals, label=k, lw=1.5 if k == "total" else 0.8)
        ax.set_yscale("log")
        ax.legend(fontsize=7, ncol=2)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")

    def write(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=80)

    try:
        return atomic_write(path, write)
    finally:
        plt.close(fig)
