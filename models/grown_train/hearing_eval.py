"""The hearing section of ``python -m grown_train eval``: every model as the plugin plays it.

For each model the Rust ``grown render`` plays its root note for 4 s with the built-in
inverter (default gain and velocity), at the model's ``grown.growth_steps`` and at
Growth :data:`LIVING_GROWTH` (a living voice must keep resembling its recording), and
:mod:`grown_train.hearing` compares the settled part with the recording's loudest
excerpt, beside the two scales measured in the same run.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grown_train import hearing as H

#: Growth of the second render: far past every model's training, as a long-held Drift reaches.
LIVING_GROWTH = 1024
#: Seed of every render (the issue's reference command).
SEED = 1
#: A short recording gets shorter excerpts, so that two disjoint ones fit (robin: 2.7 s).
EXCERPT_SHARE = 0.45
#: Recordings whose partials glide too fast to form stable lines (birdsong chirps): their fine
#: structure is not judged, whatever the ceiling happens to reach on one excerpt.
NO_LINES = ("robin.ogg",)
#: The models the bare default command trained (``models/default-command/NAME.onnx``, calibrated
#: afterwards) and their run record (``runs.json``): heard beside the shipped model of the same name.
DEFAULT_COMMAND_DIR = Path(__file__).resolve().parent.parent / "default-command"
DEFAULT_COMMAND_LABEL = "default command"


@dataclass
class Candidate:
    """One ONNX file to hear, under a row label (``shipped``, ``notebook (a)``...)."""

    label: str
    path: Path
    #: The model's own ``grown.growth_steps``.
    growth_steps: int


@dataclass
class Heard:
    """Everything measured for one model."""

    name: str
    target: str
    excerpt_s: float
    scales: H.Scales
    #: ``{label: {"growth_steps": descriptors, "living": descriptors}}``.
    rows: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    #: ``{label: {"growth_steps": (ok, misses), "living": (ok, misses)}}``.
    verdicts: dict[str, dict[str, tuple[bool, list[str]]]] = field(default_factory=dict)
    #: ``{label: growth steps}`` actually rendered.
    growth: dict[str, int] = field(default_factory=dict)
    png: Path | None = None
    seconds: float = 0.0
    #: The shipped file's loudness calibration (``grown.level_db``).
    level_db: float = 0.0


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def excerpt_seconds(target_samples: int) -> float:
    return min(H.EXCERPT_S, EXCERPT_SHARE * target_samples / H.SAMPLE_RATE)


def hear_model(name: str, target_path: Path, candidates: list[Candidate], binary: Path,
               png_dir: Path | None = None) -> Heard:
    """Render, measure and judge every candidate of one recording."""
    from grown_train.io import load_audio

    t0 = time.perf_counter()
    target = load_audio(target_path, H.SAMPLE_RATE)
    seconds = excerpt_seconds(len(target))
    n = int(round(seconds * H.SAMPLE_RATE))
    loud, other = H.reference_excerpts(target, seconds)
    vocoded = H.vocode_excerpt(binary, loud)
    scales = H.Scales(self=H.compare(other, loud), ceiling=H.compare(vocoded, loud), reference=H.describe(loud))
    heard = Heard(name, target_path.name, seconds, scales)
    audio: dict[str, np.ndarray] = {}
    for c in candidates:
        heard.rows[c.label], heard.verdicts[c.label] = {}, {}
        for when, growth in (("growth_steps", c.growth_steps), ("living", LIVING_GROWTH)):
            _log(f"{name}: {c.label} at growth {growth}")
            rendered = H.render_model(binary, c.path, seed=SEED, growth=growth)[:n]
            audio[f"{c.label}/{when}"] = rendered
            row = H.compare(rendered, loud)
            heard.rows[c.label][when] = row
            heard.verdicts[c.label][when] = H.verdict(row, scales, fine_required=target_path.name not in NO_LINES)
        heard.growth[c.label] = c.growth_steps
    if png_dir is not None and candidates:
        first = candidates[0].label
        heard.png = save_png(Path(png_dir) / f"{name}-hearing.png", name, [
            ("recording (loudest excerpt)", loud),
            ("ceiling: its mel, inverted", vocoded),
            (f"{first}, growth {candidates[0].growth_steps}", audio[f"{first}/growth_steps"]),
            (f"{first}, growth {LIVING_GROWTH}", audio[f"{first}/living"]),
        ])
    heard.seconds = time.perf_counter() - t0
    return heard


def hear_onnx(path: Path, targets_dir: Path, binary: Path, png_dir: Path | None = None,
              baseline: Path | None = None, default_command_dir: Path | None = DEFAULT_COMMAND_DIR) -> Heard:
    """Hear one model file against its recording, beside baseline (a) for the same recording when given
    and the default command's model of the same name when ``default_command_dir`` has one."""
    from grown_train.export import read_metadata, target_recording

    meta = read_metadata(path)
    target = target_recording(meta, targets_dir, path.name)
    candidates = [Candidate("shipped", path, int(meta["grown.growth_steps"]))]
    own = default_command_dir / path.name if default_command_dir is not None else None
    if own is not None and own.is_file():
        candidates.append(Candidate(DEFAULT_COMMAND_LABEL, own, int(read_metadata(own)["grown.growth_steps"])))
    if baseline is not None:
        candidates.append(Candidate("notebook (a)", baseline, int(read_metadata(baseline)["grown.growth_steps"])))
    heard = hear_model(path.stem, target, candidates, binary, png_dir)
    heard.level_db = float(meta.get("grown.level_db", "0"))
    return heard


def save_png(path: Path, name: str, panels: list[tuple[str, np.ndarray]]) -> Path:
    """Log-mel pictures of the audio side by side, on the recording's colour scale."""
    import torch

    from grown_train.mel import log_mel
    from grown_train.preview import save_panels

    mels = [(title, log_mel(torch.from_numpy(np.asarray(a, dtype=np.float32))).numpy()) for title, a in panels]
    return save_panels(path, mels, f"{name}: what the plugin plays at its root note")


COLUMNS = (
    ("level_db", "level dB", "{:+.1f}"),
    ("fine", "fine structure ↑", "{:.2f}"),
    ("modulation", "modulation ↑", "{:.2f}"),
    ("voiced", "voiced share", "{:.2f}"),
    ("flatness", "flatness", "{:.3f}"),
    ("onsets", "onsets/s", "{:.1f}"),
)


def _cells(row: dict[str, float]) -> str:
    return " | ".join(fmt.format(row[key]) for key, _, fmt in COLUMNS)


def report_section(heard: list[Heard], report_dir: Path | None = None) -> list[str]:
    """Markdown lines of the hearing section."""
    lines = [
        "## What a listener hears",
        "",
        f"Each model plays its root note for 4 s through `grown render --model M --seed {SEED} --notes "
        f"\"{H.NOTE}\"` (built-in inverter, default gain and velocity), at its `grown.growth_steps` and at "
        f"Growth {LIVING_GROWTH}; the settled part (from {H.NOTE_SETTLED_S} s) is compared with the recording's "
        f"loudest excerpt of the same length ({H.EXCERPT_S} s, or {EXCERPT_SHARE:.0%} of a short recording). "
        "Scales from the same run: **self** = a second, disjoint excerpt of the recording; **ceiling** = the "
        "loudest excerpt's own mel through the same inverter (`grown vocode`), the best any mel model can "
        "sound through it. None of these numbers enters a training loss.",
        "",
        "Floor (verdict): level within ±6 dB; fine structure ≥ 0.5× ceiling (not judged where the ceiling is below "
        f"{H.FINE_CEILING_MIN} or the recording has no stable lines: {', '.join(NO_LINES)}); modulation ≥ 0.8× self; "
        "voiced share ≥ ceiling − 0.25.",
        "",
        "| model | row | " + " | ".join(title for _, title, _ in COLUMNS) + " | verdict |",
        "|---|---|" + "---|" * len(COLUMNS) + "---|",
    ]
    for h in heard:
        lines.append(f"| {h.name} | self | {_cells(h.scales.self)} | scale |")
        lines.append(f"| {h.name} | ceiling | {_cells(h.scales.ceiling)} | scale |")
        for label, rows in h.rows.items():
            for when, row in rows.items():
                growth = h.growth[label] if when == "growth_steps" else LIVING_GROWTH
                ok, misses = h.verdicts[label][when]
                verdict = "**meets the floor**" if ok else "misses: " + "; ".join(misses)
                lines.append(f"| {h.name} | {label} @ {growth} | {_cells(row)} | {verdict} |")
    lines += ["", "Level is the candidate's RMS minus the loudest excerpt's (the self row: the second excerpt's)."]
    lines += default_command_lines(heard)
    pictures = [h for h in heard if h.png is not None]
    if pictures:
        lines += ["", "Pictures (recording / ceiling / grown at growth_steps / grown at "
                      f"{LIVING_GROWTH}, log-mel of the audio):", ""]
        for h in pictures:
            rel = h.png.relative_to(report_dir) if report_dir is not None and h.png.is_relative_to(report_dir) \
                else h.png
            lines.append(f"* {h.name}: [`{rel.as_posix()}`]({rel.as_posix()})")
    lines += [
        "",
        "Descriptors (`grown_train/hearing.py`): **level** RMS dB difference; **fine structure** correlation of the "
        "long-term log power spectra (Welch, 4096 points, 22.05 kHz, 60–8000 Hz) after subtracting each one's "
        "smooth envelope (a 330 Hz moving average): partials and their spacing, not timbre; **modulation** cosine of "
        "the mean-removed log modulation power of 16 mel-band envelopes (each divided by its mean) in 12 log-spaced "
        "bins from 0.5 to 32 Hz; **voiced share** pYIN (65–2093 Hz) voiced frames; **flatness** mean spectral "
        "flatness; **onsets/s** librosa's onset detector.",
        "",
    ]
    return lines


def default_command_lines(heard: list[Heard], record_dir: Path = DEFAULT_COMMAND_DIR) -> list[str]:
    """What the ``default command`` rows are: the command, and each run's iterations and wall time
    from ``runs.json`` (written by ``models/runs/default-command-train.sh``)."""
    names = [h.name for h in heard if DEFAULT_COMMAND_LABEL in h.rows]
    if not names:
        return []
    record_path = record_dir / "runs.json"
    record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.is_file() else {}
    lines = ["", f"**{DEFAULT_COMMAND_LABEL}** rows: `python -m grown_train train --target AUDIO --out MODEL.onnx` "
                 "with no other flag, nothing tuned, then `python -m grown_train calibrate` (level only). "
                 "Wall time on the shared 2-core CPU, other jobs running beside it:", ""]
    for name in names:
        run = record.get(name)
        if not run:
            lines.append(f"* {name}: no run record in `{record_path.name}`")
            continue
        parts = run.get("segments_s", [])
        split = f" in {len(parts)} resumed runs ({' + '.join(str(int(p)) for p in parts)} s)" if len(parts) > 1 else ""
        lines.append(f"* {name}: {run['iterations']} iterations, {run['wall_s'] / 60:.0f} min wall{split}"
                     f"{'; ' + run['note'] if run.get('note') else ''}")
    return lines


def to_json(heard: list[Heard]) -> list[dict]:
    return [{
        "name": h.name, "target": h.target, "excerpt_s": h.excerpt_s, "seconds": h.seconds,
        "self": h.scales.self, "ceiling": h.scales.ceiling, "reference": h.scales.reference,
        "rows": h.rows, "growth": h.growth, "level_db": h.level_db,
        "verdicts": {k: {w: {"ok": ok, "misses": m} for w, (ok, m) in v.items()} for k, v in h.verdicts.items()},
    } for h in heard]
