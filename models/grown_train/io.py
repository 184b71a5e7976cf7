"""Reading targets and writing outputs safely.

Every output goes through :func:`atomic_write` so that a crash, Ctrl-C or a
diverged run never leaves a half-written model where the plugin would load it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from grown_train.errors import MissingInput, NotAudio, SilentInput, Unwritable

#: Peak amplitude below which a target counts as silent (-80 dBFS).
SILENCE_PEAK = 1e-4


def load_audio(path: Path, sample_rate: int) -> np.ndarray:
    """Mono float32 audio at ``sample_rate``; raises a :class:`GrownError` on bad input."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise MissingInput(f"target file not found: {path}")
    if not path.is_file():
        raise MissingInput(f"target is not a file: {path}")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile reports unknown formats in several ways
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NotAudio(f"not a readable audio file (wav/flac/ogg/mp3): {path} ({detail})") from None
    if data.size == 0:
        raise SilentInput(f"target contains no samples: {path}")
    mono = data.mean(axis=1)
    if not np.all(np.isfinite(mono)):
        raise NotAudio(f"target contains NaN or infinite samples: {path}")
    if sr != sample_rate:
        import soxr

        mono = soxr.resample(mono, sr, sample_rate, quality="HQ").astype(np.float32)
    peak = float(np.max(np.abs(mono))) if mono.size else 0.0
    if peak < SILENCE_PEAK:
        raise SilentInput(f"target is silent (peak {peak:.2e} < {SILENCE_PEAK:.0e}): {path}")
    # BigVGAN's front end expects [-1, 1]; louder files are scaled down, never up,
    # so quiet targets keep their quietness.
    if peak > 1.0:
        mono = mono / peak
    return np.ascontiguousarray(mono, dtype=np.float32)


def check_writable(path: Path, what: str = "output") -> Path:
    """Fail early (before any training) if ``path`` cannot be created; creates nothing."""
    path = Path(path)
    if path.is_dir():
        raise Unwritable(f"{what} path is a directory: {path}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise Unwritable(f"{what} directory does not exist: {parent}")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise Unwritable(f"cannot write {what} {path}: {exc.strerror or exc}") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise Unwritable(f"cannot overwrite {what} {path}: permission denied")
    return path


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` for a temp file beside ``path`` then rename it into place."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        # mkstemp makes 0600 files; shipped models must be readable like any other file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
