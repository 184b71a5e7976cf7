"""Grown as a VST3 host sees it: the bundle loaded by pedalboard (JUCE's host).

Needs ``target/bundled/Grown.vst3`` from ``cargo xtask bundle grown --release``
(``.ci/test`` builds it first); a missing bundle fails, it is never skipped.
``GROWN_VST3_BUNDLE`` points the tests at another bundle.

The engine loads ONNX Runtime and grows its first sound on a background thread,
so each instance first plays notes until sound appears, and outputs are compared
only after growth has settled (the same render for 3 s).
"""

import os
import pathlib
import time

import numpy as np
import pedalboard
import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
BUNDLE = pathlib.Path(
    os.environ.get("GROWN_VST3_BUNDLE", REPO / "target" / "bundled" / "Grown.vst3")
)
SAMPLE_RATE = 48_000
ROOT = 60
AUDIBLE = 1e-3
FIRST_SOUND_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 30.0
# How long the output must stay the same to count as settled (see settled_probe).
SETTLE_QUIET_S = 3.0
# Largest sample difference that still counts as the same sound (-120 dBFS): a
# note's release leaves rounding-level differences, no growth change is that small.
SAME_SOUND = 1e-6
# Spectra use 0.1 s Hann frames (10 Hz bins) and ignore DC/leakage below 40 Hz.
FRAME = SAMPLE_RATE // 10
LOW_HZ = 40.0


@pytest.fixture(scope="module")
def bundle() -> pathlib.Path:
    if not (BUNDLE / "Contents").is_dir():
        pytest.fail(
            f"{BUNDLE} is missing: build it with "
            "`cargo xtask bundle grown --release` before running this suite"
        )
    return BUNDLE


def render(plugin, notes, duration_s: float, reset: bool = False) -> np.ndarray:
    """Renders MIDI ``notes`` = [(key, on_s, off_s)] to a (2, n) float32 array.

    ``reset=False`` continues one stream (each probe ends in silence anyway);
    JUCE's reset re-prepares the plugin, which costs seconds per call here.
    """
    messages = []
    for key, on_s, off_s in notes:
        messages.append((bytes([0x90, key, 100]), on_s))
        messages.append((bytes([0x80, key, 0]), off_s))
    audio = plugin(
        messages,
        duration=duration_s,
        sample_rate=SAMPLE_RATE,
        num_channels=2,
        buffer_size=512,
        reset=reset,
    )
    assert audio.shape == (2, round(duration_s * SAMPLE_RATE)), audio.shape
    assert np.isfinite(audio).all(), "non-finite samples"
    return audio


def wait_for_sound(plugin) -> float:
    """Plays a note now and then until the plugin sounds; returns the wait in s."""
    start = time.monotonic()
    while True:
        audio = render(plugin, [(ROOT, 0.0, 0.2)], 0.3)
        if np.abs(audio).max() > AUDIBLE:
            render(plugin, [], 1.0)  # let the release finish: renders continue a stream
            return time.monotonic() - start
        waited = time.monotonic() - start
        assert waited < FIRST_SOUND_TIMEOUT_S, (
            f"no sound {waited:.0f} s after note-on: the engine never delivered a "
            "generation (is libonnxruntime.so.1.31.1 in the bundle?)"
        )
        time.sleep(0.1)


def probe(plugin, key: int = ROOT, hold_s: float = 0.5) -> np.ndarray:
    return render(plugin, [(key, 0.0, hold_s)], hold_s + 0.6)


def same_sound(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two renders are the same sound (equal shapes, within SAME_SOUND)."""
    return a.shape == b.shape and float(np.max(np.abs(a - b), initial=0.0)) <= SAME_SOUND


def settled_probe(plugin, key: int = ROOT, hold_s: float = 0.5) -> np.ndarray:
    """Repeats a probe until it stays the same sound and audible for SETTLE_QUIET_S.

    The engine publishes an early generation a few steps into a growth and the
    finished one after it, and renders run faster than real time, so two equal
    probes in a row can both be the early one."""
    start = time.monotonic()
    previous = probe(plugin, key, hold_s)
    unchanged_since = time.monotonic()
    while True:
        time.sleep(0.15)
        current = probe(plugin, key, hold_s)
        if not same_sound(current, previous):
            unchanged_since = time.monotonic()
        elif (
            np.abs(current).max() > AUDIBLE
            and time.monotonic() - unchanged_since >= SETTLE_QUIET_S
        ):
            return current
        assert time.monotonic() - start < SETTLE_TIMEOUT_S, (
            f"note {key} still changes after {SETTLE_TIMEOUT_S} s"
        )
        previous = current


def param(plugin, name: str):
    """The parameter with this display name (pedalboard's keys add the unit)."""
    for candidate in plugin.parameters.values():
        if candidate.name == name:
            return candidate
    raise AssertionError(f"no parameter {name!r}")


def changed_probe(plugin, before: np.ndarray, what: str) -> np.ndarray:
    """After a parameter change: waits until the probe differs from ``before`` (the
    old sound plays until the new one has grown and been vocoded), then settles."""
    start = time.monotonic()
    while same_sound(probe(plugin), before):
        assert time.monotonic() - start < SETTLE_TIMEOUT_S, (
            f"{what} left the samples unchanged for {SETTLE_TIMEOUT_S} s"
        )
        time.sleep(0.1)
    return settled_probe(plugin)


def set_plain(plugin, name: str, value: float) -> None:
    """Sets a stepped parameter (Growth, Seed) to an integer value."""
    p = param(plugin, name)
    low, high = p.range[0], p.range[1]
    assert low <= value <= high, f"{name}={value} outside {low}..{high}"
    p.raw_value = (value - low) / (high - low)
    assert abs(plain(plugin, name) - value) < 0.5


def plain(plugin, name: str) -> float:
    p = param(plugin, name)
    low, high = p.range[0], p.range[1]
    return low + p.raw_value * (high - low)


def spectrum(audio: np.ndarray) -> np.ndarray:
    """Welch-averaged magnitude spectrum of the mid signal (Hann, 50 % overlap)."""
    mono = audio.mean(axis=0).astype(np.float64)
    assert mono.size >= FRAME
    window = np.hanning(FRAME)
    starts = range(0, mono.size - FRAME + 1, FRAME // 2)
    return np.mean(
        [np.abs(np.fft.rfft(mono[s : s + FRAME] * window)) for s in starts], 0
    )


def centroid_hz(magnitudes: np.ndarray) -> float:
    freqs = np.fft.rfftfreq(FRAME, 1.0 / SAMPLE_RATE)
    power = np.where(freqs >= LOW_HZ, magnitudes**2, 0.0)
    return float((freqs * power).sum() / power.sum())


def spectral_distance(a: np.ndarray, b: np.ndarray, max_hz: float = 8000.0) -> float:
    """1 - correlation of log magnitudes over LOW_HZ..max_hz; 0 for equal shapes."""
    freqs = np.fft.rfftfreq(FRAME, 1.0 / SAMPLE_RATE)
    band = (freqs >= LOW_HZ) & (freqs <= max_hz)
    la, lb = np.log(a[band] + 1e-9), np.log(b[band] + 1e-9)
    return float(1.0 - np.corrcoef(la, lb)[0, 1])


@pytest.fixture(scope="module")
def grown(bundle):
    """One sounding instance for the whole module: pedalboard's load_plugin probes
    every parameter's text for every step (over 2000 MIDI CC parameters), which
    takes minutes on a small machine. Tests that change a parameter restore it."""
    plugin = pedalboard.load_plugin(str(bundle))
    # The first render prepares the plugin (reset=True), at the rate of the suite.
    assert np.abs(render(plugin, [], 0.1, reset=True)).max() == 0.0, (
        "sound without notes"
    )
    wait_for_sound(plugin)
    return plugin


def test_loads_as_an_instrument(grown):
    assert grown.is_instrument
    assert grown.name == "Grown"
    names = {p.name for p in grown.parameters.values()}
    for name in ("Growth", "Seed", "Release", "Gain"):
        assert name in names, sorted(names)


def test_a_note_sounds_from_its_timestamp(grown):
    audio = render(grown, [(ROOT, 0.1, 0.5)], 1.2)
    onset = int(0.1 * SAMPLE_RATE)
    block_slack = 512  # pedalboard may quantise MIDI to its buffer
    assert np.abs(audio[:, : onset - block_slack]).max() == 0.0, "sound before the note"
    held = audio[:, onset + block_slack : int(0.5 * SAMPLE_RATE)]
    assert np.sqrt(np.mean(held**2)) > AUDIBLE / 4
    assert np.abs(audio[:, -int(0.1 * SAMPLE_RATE) :]).max() < 1e-5, (
        "no release to silence"
    )


def test_an_octave_up_doubles_the_pitch(grown):
    # Full sustain keeps the level constant while the spectrum is averaged.
    sustain = param(grown, "Sustain")
    previous = sustain.raw_value
    sustain.raw_value = 1.0
    try:
        # Note 72 plays the sound twice as fast: compare the same stretch of it.
        low = settled_probe(grown, ROOT, 1.0)[:, int(0.05 * SAMPLE_RATE) : SAMPLE_RATE]
        high = probe(grown, ROOT + 12, 0.5)
        high = high[:, int(0.025 * SAMPLE_RATE) : SAMPLE_RATE // 2]
    finally:
        sustain.raw_value = previous
    ratio = centroid_hz(spectrum(high)) / centroid_hz(spectrum(low))
    assert 1.7 < ratio < 2.3, f"centroid ratio {ratio:.3f} for an octave"


def test_seeds_differ_and_the_same_seed_repeats(grown):
    seed = round(plain(grown, "Seed"))
    first = settled_probe(grown)
    try:
        set_plain(grown, "Seed", seed + 1)
        other = changed_probe(grown, first, f"Seed {seed} -> {seed + 1}")
    finally:
        set_plain(grown, "Seed", seed)
    # Regrowing the first seed must give back exactly the first sound.
    again = changed_probe(grown, other, f"Seed {seed + 1} -> {seed}")
    assert np.array_equal(first, again), (
        f"seed {seed} regrown differs, max diff {np.abs(first - again).max()}"
    )
    distance = spectral_distance(spectrum(first), spectrum(other))
    assert distance > 1e-3, f"different seeds, same spectrum ({distance:.2e})"


def test_changing_growth_changes_the_sound(grown):
    before = settled_probe(grown)
    growth = round(plain(grown, "Growth"))
    target = max(1, round(growth / 4))
    assert target != growth
    what = f"Growth {growth} -> {target}"
    try:
        set_plain(grown, "Growth", target)
        after = changed_probe(grown, before, what)
    finally:
        set_plain(grown, "Growth", growth)
    distance = spectral_distance(spectrum(before), spectrum(after))
    assert distance > 1e-3, f"{what}: same spectrum ({distance:.2e})"
    changed_probe(grown, after, f"Growth {target} -> {growth}")
