"""What a listener hears: descriptors of rendered audio, their scales, and the verdict.

The loss-derived metrics in :mod:`grown_train.metrics` score a smooth haze well, so
every sound decision is judged here instead, on the audio the plugin plays (rendered
by the Rust ``grown render``). None of these descriptors may enter a training loss:
what is tuned against cannot also be the judge.

Each descriptor compares a candidate with a reference excerpt of the recording:

* ``level_db``   RMS level difference in dB (candidate − reference);
* ``fine``       harmonic fine structure: correlation of the long-term log power
  spectra (Welch, 4096 points, 60–8000 Hz) after removing each one's smooth envelope
  (a moving average about 330 Hz wide), so only partials and their spacing count;
* ``modulation`` how the sound moves: cosine of the mean-removed log modulation
  power of 16 mel-band envelopes in 12 log-spaced bins from 0.5 to 32 Hz;
* ``voiced``     pYIN voiced share (fraction of frames with a pitch);
* ``flatness``   mean spectral flatness (1 = white noise, 0 = pure tones);
* ``onsets``     onsets per second.

Two scales put each number in context: ``self`` (two disjoint excerpts of the
recording against each other) and ``ceiling`` (the recording's own mel through the
same vocoder: the best any mel model can sound through it).
"""

from __future__ import annotations

import math
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Every descriptor works at the models' sample rate.
SAMPLE_RATE = 22050
#: Seconds compared: the sustained part of a 4 s note (after attack and decay).
EXCERPT_S = 3.5
#: Where the analysed part of a rendered note starts: the offline voices' decay (0.3 s) is over.
NOTE_SETTLED_S = 0.4
#: The note every render plays (root note, 4 s, default velocity): the issue's reference command.
NOTE = "60@0+4"
#: Welch segment for the fine structure: 4096 points resolve partials 5.4 Hz apart.
WELCH_N = 4096
#: Band of the fine structure (below 60 Hz is rumble, above 8 kHz the mel front end stops).
FINE_BAND = (60.0, 8000.0)
#: Width of the smooth envelope removed from the log spectrum: wider than partial
#: spacing of most notes (so partials stay), narrower than formants (so timbre goes).
FINE_ENVELOPE_HZ = 330.0
#: Envelope bands and modulation bins of the modulation spectrum.
MOD_BANDS = 16
MOD_BINS = 12
MOD_RANGE = (0.5, 32.0)
#: Envelope frame rate: 22050 / 128 = 172 Hz, comfortably above 2 × 32 Hz.
MOD_HOP = 128
#: pYIN search range: the lowest cello string to a soprano's top.
PYIN_RANGE = (65.0, 2093.0)
#: Spectral-flux rise (dB of log-mel power) that counts as an onset.
ONSET_DELTA_DB = 2.0
#: A ceiling below this has no stable lines to match (chirps, clicks): fine structure is not judged.
FINE_CEILING_MIN = 0.1
#: Floors of the verdict (the issue's "meets the floor").
FLOOR_LEVEL_DB = 6.0
FLOOR_FINE_OF_CEILING = 0.5
FLOOR_MOD_OF_SELF = 0.8
FLOOR_VOICED_BELOW_CEILING = 0.25


def rms_db(x: np.ndarray) -> float:
    """RMS level in dBFS (−200 for digital silence)."""
    x = np.asarray(x, dtype=np.float64)
    return float(10 * np.log10(np.mean(x**2) + 1e-20))


def loudest_excerpt(audio: np.ndarray, seconds: float = EXCERPT_S, sr: int = SAMPLE_RATE,
                    avoid: tuple[int, int] | None = None, leave_room: bool = False) -> tuple[int, np.ndarray]:
    """Start sample and samples of the loudest ``seconds`` of ``audio`` (0.1 s steps).

    ``avoid`` is a ``(start, length)`` span the excerpt must not overlap (for a second,
    disjoint excerpt); ``leave_room`` keeps to starts that leave room for one before or
    after. Raises ``ValueError`` when the audio is too short for it.
    """
    n = int(round(seconds * sr))
    if audio.shape[-1] < n:
        raise ValueError(f"audio of {audio.shape[-1] / sr:.2f} s is shorter than {seconds} s")
    power = np.concatenate([[0.0], np.cumsum(np.asarray(audio, dtype=np.float64) ** 2)])
    step = max(1, sr // 10)
    best, best_start = -1.0, None
    last = audio.shape[-1] - n
    starts = set(range(0, last + 1, step)) | {last}
    if avoid is not None:  # right beside the avoided span, so a short recording still fits two
        starts |= {x for x in (avoid[0] + avoid[1], avoid[0] - n) if 0 <= x <= last}
    for start in sorted(starts):
        if avoid is not None and start < avoid[0] + avoid[1] and avoid[0] < start + n:
            continue
        if leave_room and start < n and start + 2 * n > audio.shape[-1]:
            continue
        energy = power[start + n] - power[start]
        if energy > best:
            best, best_start = energy, start
    if best_start is None:
        raise ValueError(f"audio of {audio.shape[-1] / sr:.2f} s has no two disjoint {seconds} s excerpts")
    return best_start, audio[best_start : best_start + n]


def _log_psd(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.signal import welch

    n = min(WELCH_N, len(x))
    f, p = welch(np.asarray(x, dtype=np.float64), fs=sr, nperseg=n, noverlap=n // 2, window="hann")
    return f, 10 * np.log10(p + 1e-20)


def fine_structure_residual(x: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Log power spectrum in the fine band minus its ~330 Hz moving average (dB)."""
    f, logp = _log_psd(x, sr)
    width = max(3, int(round(FINE_ENVELOPE_HZ / (f[1] - f[0]))) | 1)
    pad = width // 2
    smooth = np.convolve(np.pad(logp, pad, mode="edge"), np.ones(width) / width, mode="valid")
    band = (f >= FINE_BAND[0]) & (f <= FINE_BAND[1])
    return (logp - smooth)[band]


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b / den) if den > 0 else 0.0


def fine_structure(a: np.ndarray, b: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Correlation of two sounds' harmonic fine structure (1 = same partials, ~0 = unrelated or noise)."""
    return _corr(fine_structure_residual(a, sr), fine_structure_residual(b, sr))


def modulation_spectrum(x: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Log modulation power ``[MOD_BANDS, MOD_BINS]`` (dB) of the mel-band amplitude envelopes.

    Each band's envelope is normalised by its mean, so the spectrum describes how
    deeply and how fast the band moves, independent of its level.
    """
    import librosa

    mel = librosa.feature.melspectrogram(y=np.asarray(x, dtype=np.float32), sr=sr, n_fft=1024, hop_length=MOD_HOP,
                                         n_mels=MOD_BANDS, fmin=60.0, fmax=8000.0, power=1.0, center=False)
    env = mel / (mel.mean(axis=1, keepdims=True) + 1e-9)
    env = env - env.mean(axis=1, keepdims=True)
    frame_rate = sr / MOD_HOP
    window = np.hanning(env.shape[1])
    power = np.abs(np.fft.rfft(env * window, axis=1)) ** 2 / max(1.0, float(window @ window))
    freqs = np.fft.rfftfreq(env.shape[1], 1.0 / frame_rate)
    edges = np.geomspace(MOD_RANGE[0], MOD_RANGE[1], MOD_BINS + 1)
    out = np.empty((MOD_BANDS, MOD_BINS))
    for k in range(MOD_BINS):
        sel = (freqs >= edges[k]) & (freqs < edges[k + 1])
        if not sel.any():  # a short excerpt's bin narrower than its resolution: nearest line
            sel = np.abs(freqs - math.sqrt(edges[k] * edges[k + 1])) == np.abs(
                freqs - math.sqrt(edges[k] * edges[k + 1])).min()
        out[:, k] = power[:, sel].mean(axis=1)
    return 10 * np.log10(out + 1e-12)


def modulation(a: np.ndarray, b: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Cosine of two sounds' mean-removed log modulation spectra (1 = they move alike)."""
    ma, mb = modulation_spectrum(a, sr).ravel(), modulation_spectrum(b, sr).ravel()
    ma, mb = ma - ma.mean(), mb - mb.mean()
    den = float(np.linalg.norm(ma) * np.linalg.norm(mb))
    return float(ma @ mb / den) if den > 0 else 0.0


def voiced_share(x: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Fraction of frames pYIN finds voiced (a pitch a listener can hum)."""
    import librosa

    _, voiced, _ = librosa.pyin(np.asarray(x, dtype=np.float32), fmin=PYIN_RANGE[0], fmax=PYIN_RANGE[1], sr=sr,
                                frame_length=2048, hop_length=512)
    return float(np.mean(voiced)) if voiced.size else 0.0


def flatness(x: np.ndarray) -> float:
    """Mean spectral flatness (geometric over arithmetic mean of the power spectrum)."""
    import librosa

    return float(np.mean(librosa.feature.spectral_flatness(y=np.asarray(x, dtype=np.float32), n_fft=2048,
                                                           hop_length=512)))


def onset_rate(x: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Onsets per second (librosa's spectral-flux onset detector, absolute threshold)."""
    import librosa

    env = librosa.onset.onset_strength(y=np.asarray(x, dtype=np.float32), sr=sr, hop_length=512)
    # Unnormalised flux with an absolute threshold: normalised, the flicker of a steady
    # tone's flux would count as onsets (a held sine scored 5.7 onsets/s).
    onsets = librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=512, normalize=False,
                                        delta=ONSET_DELTA_DB, units="time")
    return float(len(onsets) / (len(x) / sr))


def describe(x: np.ndarray, sr: int = SAMPLE_RATE) -> dict[str, float]:
    """The descriptors of one sound on its own (level in dBFS)."""
    return {"rms_db": rms_db(x), "voiced": voiced_share(x, sr), "flatness": flatness(x), "onsets": onset_rate(x, sr)}


def compare(candidate: np.ndarray, reference: np.ndarray, sr: int = SAMPLE_RATE) -> dict[str, float]:
    """Every descriptor of ``candidate`` against the recording's excerpt ``reference``."""
    own = describe(candidate, sr)
    return {
        "level_db": own["rms_db"] - rms_db(reference),
        "fine": fine_structure(candidate, reference, sr),
        "modulation": modulation(candidate, reference, sr),
        **own,
    }


@dataclass
class Scales:
    """What the recording itself reaches: the context every candidate's numbers are read in."""

    #: A second, disjoint excerpt of the recording against the loudest one.
    self: dict[str, float]
    #: The loudest excerpt's own mel through the vocoder, against the excerpt.
    ceiling: dict[str, float]
    #: Descriptors of the loudest excerpt itself.
    reference: dict[str, float]


def verdict(row: dict[str, float], scales: Scales, fine_required: bool = True) -> tuple[bool, list[str]]:
    """Whether a candidate meets the floor, and one reason per descriptor it misses."""
    misses = []
    if not abs(row["level_db"]) <= FLOOR_LEVEL_DB:
        misses.append(f"level {row['level_db']:+.1f} dB (floor ±{FLOOR_LEVEL_DB:.0f})")
    ceiling_fine = scales.ceiling["fine"]
    if fine_required and ceiling_fine >= FINE_CEILING_MIN and not row["fine"] >= FLOOR_FINE_OF_CEILING * ceiling_fine:
        misses.append(f"fine {row['fine']:.2f} < {FLOOR_FINE_OF_CEILING}× ceiling {ceiling_fine:.2f}")
    if not row["modulation"] >= FLOOR_MOD_OF_SELF * scales.self["modulation"]:
        misses.append(f"modulation {row['modulation']:.2f} < {FLOOR_MOD_OF_SELF}× self {scales.self['modulation']:.2f}")
    if not row["voiced"] >= scales.ceiling["voiced"] - FLOOR_VOICED_BELOW_CEILING:
        misses.append(f"voiced {row['voiced']:.2f} < ceiling {scales.ceiling['voiced']:.2f} − "
                      f"{FLOOR_VOICED_BELOW_CEILING}")
    return not misses, misses


# --- Rendering through the Rust command line -----------------------------------------------


def grown_binary(explicit: Path | None = None) -> Path:
    """The ``grown`` command line: ``explicit``, else ``$GROWN_BIN``, else the release build of this checkout."""
    import os

    from grown_train.errors import MissingInput

    repo = Path(__file__).resolve().parents[2]
    path = Path(explicit or os.environ.get("GROWN_BIN") or repo / "target" / "release" / "grown")
    if not path.is_file():
        raise MissingInput(f"the grown command line is not built: {path} (cargo build --release --bin grown)")
    return path


def _run(binary: Path, args: list[str]) -> None:
    from grown_train.errors import GrownError

    done = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise GrownError(f"grown {args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")


def _read_mono(path: Path) -> np.ndarray:
    import soundfile as sf

    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise ValueError(f"{path} is at {sr} Hz, expected {SAMPLE_RATE}")
    return data.mean(axis=1)


def render_model(binary: Path, model: Path, seed: int = 1, growth: int | None = None,
                 png: Path | None = None) -> np.ndarray:
    """What the plugin plays for ``model`` at its root note: the settled ``EXCERPT_S`` of a 4 s note, mono."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "render.wav"
        args = ["render", "--model", str(model), "--seed", str(seed), "--notes", NOTE,
                "--sample-rate", str(SAMPLE_RATE), "--out", str(out)]
        if growth is not None:
            args += ["--growth", str(growth)]
        if png is not None:
            args += ["--png", str(png)]
        _run(binary, args)
        audio = _read_mono(out)
    start = int(NOTE_SETTLED_S * SAMPLE_RATE)
    return audio[start : start + int(round(EXCERPT_S * SAMPLE_RATE))]


def vocode_excerpt(binary: Path, excerpt: np.ndarray) -> np.ndarray:
    """``excerpt`` through the plugin's mel front end and built-in inverter (``grown vocode``)."""
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        sf.write(str(src), np.asarray(excerpt, dtype=np.float32), SAMPLE_RATE, subtype="FLOAT")
        _run(binary, ["vocode", "--audio", str(src), "--out", str(out)])
        audio = _read_mono(out)
    return audio[: len(excerpt)]


def reference_excerpts(target: np.ndarray, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """The recording's loudest excerpt (what every candidate is compared with) and a second, disjoint one."""
    n = int(round(seconds * SAMPLE_RATE))
    start, loud = loudest_excerpt(target, seconds, leave_room=True)
    _, other = loudest_excerpt(target, seconds, avoid=(start, n))
    return loud, other


def level_calibration_db(rendered: np.ndarray, reference: np.ndarray) -> float:
    """dB to add to a model so its render reaches the recording's loudest excerpt."""
    return rms_db(reference) - rms_db(rendered)

