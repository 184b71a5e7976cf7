"""Host abuse through the VST3 wrapper (docs/RELIABILITY.md), driven by pedalboard.

``tests/host_abuse.rs`` attacks the CLAP wrapper; this suite sends the same kind
of abuse through nice-plug's VST3 wrapper, which has its own event, parameter and
state code: random buffer sizes, sample-rate changes (each one re-prepares the
plugin), thousands of random MIDI messages, several instances in one process,
load/reset/delete cycles and corrupt state. Checks: no crash, finite output,
peak <= 1.0, sound where notes play, silence after every note is released.

Needs ``target/bundled/Grown.vst3`` (``cargo xtask bundle grown --release``);
``GROWN_VST3_BUNDLE`` points it at another bundle.
"""

import contextlib
import os
import pathlib
import random
import time

import numpy as np
import pedalboard
import pytest
from pedalboard import _pedalboard

REPO = pathlib.Path(__file__).resolve().parent.parent
BUNDLE = pathlib.Path(
    os.environ.get("GROWN_VST3_BUNDLE", REPO / "target" / "bundled" / "Grown.vst3")
)
AUDIBLE = 1e-3
SILENT = 1e-5
FIRST_SOUND_TIMEOUT_S = 30.0
# Longer than the longest release a storm can leave behind (Release is not
# automated here: the default 0.3 s) plus the voices' fade.
RELEASE_TAIL_S = 2.0


@contextlib.contextmanager
def no_parameter_probe():
    """pedalboard's ``load_plugin`` probes the text of 1001 values of every
    parameter (over 2000 MIDI CC parameters here): minutes per instance on a
    small machine. These tests only use the native parameter list, so the probe
    is skipped while loading."""
    mixin = _pedalboard._PythonExternalPluginMixin
    original = mixin.__set_initial_parameter_values__
    mixin.__set_initial_parameter_values__ = lambda self, values: None
    try:
        yield
    finally:
        mixin.__set_initial_parameter_values__ = original


def load():
    if not (BUNDLE / "Contents").is_dir():
        pytest.fail(
            f"{BUNDLE} is missing: build it with "
            "`cargo xtask bundle grown --release` before running this suite"
        )
    with no_parameter_probe():
        return pedalboard.load_plugin(str(BUNDLE))


def set_raw(plugin, name: str, raw: float) -> None:
    """Sets a parameter by display name through the native parameter list."""
    for p in plugin._parameters:
        if p.name == name:
            p.raw_value = raw
            return
    raise AssertionError(f"no parameter {name!r}")


def render(plugin, messages, duration_s, rate=48_000, block=512, reset=False):
    """Renders raw MIDI ``messages`` [(bytes, seconds)]; checks finite and <= 1."""
    audio = plugin(
        messages,
        duration=duration_s,
        sample_rate=rate,
        num_channels=2,
        buffer_size=block,
        reset=reset,
    )
    assert audio.shape == (2, int(duration_s * rate)), audio.shape
    assert np.isfinite(audio).all(), f"non-finite samples at {rate} Hz, block {block}"
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    assert peak <= 1.0, f"peak {peak} above full scale at {rate} Hz, block {block}"
    return audio


def note(key, on_s, off_s, channel=0):
    return [
        (bytes([0x90 | channel, key, 100]), on_s),
        (bytes([0x80 | channel, key, 0]), off_s),
    ]


def wait_for_sound(plugin, rate=48_000) -> None:
    """Plays a note now and then until the engine's first generation sounds."""
    start = time.monotonic()
    while np.abs(render(plugin, note(60, 0.0, 0.2), 0.3, rate)).max() <= AUDIBLE:
        waited = time.monotonic() - start
        assert waited < FIRST_SOUND_TIMEOUT_S, f"no sound {waited:.0f} s after note-on"
        time.sleep(0.1)


def all_notes_off(plugin, rate=48_000, block=512) -> None:
    """Releases every key on every channel; the tail must fall silent."""
    offs = [(bytes([0x80 | ch, key, 0]), 0.0) for ch in range(16) for key in range(128)]
    tail = render(plugin, offs, RELEASE_TAIL_S + 0.5, rate, block)
    rest = np.abs(tail[:, int(RELEASE_TAIL_S * rate) :]).max()
    assert rest < SILENT, (
        f"still sounding ({rest:.2e}) {RELEASE_TAIL_S} s after all notes off"
    )


def storm(rng: random.Random, count: int, duration_s: float):
    """Random MIDI in time order: note-ons (some velocity 0), duplicate note-ons,
    note-offs for keys never started, CCs, pitch bend, channel pressure, on any
    channel."""
    messages = []
    held = []
    for _ in range(count):
        t = rng.uniform(0.0, duration_s * 0.999)
        ch = rng.randrange(16)
        kind = rng.random()
        if kind < 0.35:
            key = rng.randrange(128)
            held.append(key)
            messages.append((bytes([0x90 | ch, key, rng.randrange(128)]), t))
        elif kind < 0.45 and held:
            messages.append((bytes([0x90 | ch, rng.choice(held), 127]), t))  # duplicate
        elif kind < 0.75:
            messages.append(
                (bytes([0x80 | ch, rng.randrange(128), rng.randrange(128)]), t)
            )
        elif kind < 0.85:
            messages.append(
                (bytes([0xB0 | ch, rng.randrange(120), rng.randrange(128)]), t)
            )
        elif kind < 0.95:
            messages.append(
                (bytes([0xE0 | ch, rng.randrange(128), rng.randrange(128)]), t)
            )
        else:
            messages.append((bytes([0xD0 | ch, rng.randrange(128)]), t))
    messages.sort(key=lambda m: m[1])
    return messages


@pytest.fixture(scope="module")
def grown():
    plugin = load()
    # Short sounds grow and vocode quickly, so the tests spend little time waiting.
    set_raw(plugin, "Length", 0.0)
    assert np.abs(render(plugin, [], 0.1, reset=True)).max() == 0.0, (
        "sound without notes"
    )
    wait_for_sound(plugin)
    all_notes_off(plugin)
    return plugin


def test_random_buffer_sizes_and_sample_rate_changes(grown):
    rng = random.Random(6)
    for rate in (44_100, 96_000, 22_050, 192_000, 48_000):
        loudest = 0.0
        for block in rng.sample([1, 3, 17, 64, 333, 1000, 2048, 4096, 8192], 4):
            messages = storm(rng, 40, 0.3) + note(60, 0.0, 0.25)
            audio = render(grown, messages, 0.3, rate, block)
            loudest = max(loudest, float(np.abs(audio).max()))
        assert loudest > AUDIBLE, f"silent at {rate} Hz while notes played"
        all_notes_off(grown, rate, rng.choice([32, 512, 4096]))


def test_thousands_of_random_midi_messages_leave_no_stuck_voice(grown):
    rng = random.Random(7)
    audio = render(grown, storm(rng, 5000, 8.0), 8.0)
    assert np.abs(audio).max() > AUDIBLE, "a storm of note-ons made no sound"
    all_notes_off(grown)


def save_state(plugin) -> bytes:
    """The state a DAW stores in a project (pedalboard's native ``raw_state``)."""
    return pedalboard.VST3Plugin.raw_state.__get__(plugin)


def load_state(plugin, blob: bytes) -> float:
    """Hands ``blob`` to the plugin the way a DAW reopening a project does (JUCE's
    ``setStateInformation``: the VST3 component state, then the controller's), and
    returns the seconds it took.

    It calls pedalboard's native ``raw_state`` property directly. ``plugin.raw_state =
    blob`` would first go through pedalboard's Python ``__setattr__``, which on its
    first use for an instance builds a wrapper for every parameter by reading its text
    at 1001-2002 values: 2-4 min here, because pedalboard skips parameters named
    "MIDI CC ..." (JUCE's naming) but not nice-plug's "MIDI Ch. N CC M" (the 2080
    hidden, read-only MIDI-mapping parameters through which VST3 delivers pitch bend,
    pressure and CCs). No DAW does that probe; the state load itself is what a
    project reopen costs."""
    start = time.perf_counter()
    pedalboard.VST3Plugin.raw_state.__set__(plugin, blob)
    return time.perf_counter() - start


def test_a_saved_project_reopens_in_well_under_a_second(grown):
    seed = 4242 / 65_535
    set_raw(grown, "Seed", seed)
    # A parameter set by the host reaches the plugin with the next audio block.
    render(grown, [], 0.05)
    saved = save_state(grown)
    fresh = load()
    seconds = load_state(fresh, saved)
    assert seconds < 0.5, f"loading a {len(saved)}-byte state took {seconds:.2f} s"
    render(fresh, [], 0.05)
    loaded = next(p for p in fresh._parameters if p.name == "Seed").raw_value
    assert abs(loaded - seed) < 1e-6, f"Seed {loaded} after loading, saved {seed}"
    assert save_state(fresh) == saved, "the reopened project saves differently"
    wait_for_sound(fresh)
    all_notes_off(fresh)
    set_raw(grown, "Seed", 1 / 65_535)


def test_corrupt_state_is_refused_and_the_instance_keeps_playing(grown):
    saved = save_state(grown)
    rng = random.Random(8)
    garbage = [
        saved[: len(saved) // 2],
        bytes(rng.randrange(256) for _ in range(4096)),
    ]
    for blob in garbage:
        # JUCE may reject a blob itself (an exception here is a refusal, not a crash).
        with contextlib.suppress(Exception):
            load_state(grown, blob)
        audio = render(grown, note(60, 0.0, 0.3), 0.5)
        assert np.abs(audio).max() > AUDIBLE, (
            f"silent after a corrupt state of {len(blob)} bytes"
        )
        all_notes_off(grown)
    load_state(grown, saved)
    wait_for_sound(grown)


def test_several_instances_load_play_reset_and_go_away(grown):
    others = [load() for _ in range(3)]
    for i, plugin in enumerate(others):
        set_raw(plugin, "Length", 0.0)
        set_raw(plugin, "Seed", (i + 2) / 65_535)
        render(plugin, [], 0.05, reset=True)
    for plugin in others:
        wait_for_sound(plugin)
    # reset=True re-prepares (or re-creates) the plugin under a playing note.
    render(others[0], note(60, 0.0, 1.0), 0.2)
    render(others[0], [], 0.1, reset=True)
    wait_for_sound(others[0])
    all_notes_off(others[0])
    del plugin
    others.clear()
    # The first instance is unaffected by the others' teardown.
    wait_for_sound(grown)
    all_notes_off(grown)
