"""The hearing descriptors on signals whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from grown_train import hearing as H

SR = H.SAMPLE_RATE


def tone(f0: float, seconds: float = 3.5, partials: int = 12, seed: int = 0, amp: float = 0.1) -> np.ndarray:
    """A harmonic tone (random phases, 1/k amplitudes)."""
    t = np.arange(int(seconds * SR)) / SR
    phases = np.random.default_rng(seed).uniform(0, 2 * np.pi, partials)
    x = sum(np.sin(2 * np.pi * f0 * k * t + phases[k - 1]) / k for k in range(1, partials + 1) if f0 * k < 8000)
    return (amp * x / np.max(np.abs(x))).astype(np.float32)


def noise(seconds: float = 3.5, seed: int = 1, amp: float = 0.05) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def test_level_difference_is_the_gain_in_db():
    x = tone(220.0)
    assert H.rms_db(x * 10 ** (-12 / 20)) - H.rms_db(x) == pytest.approx(-12.0, abs=1e-6)
    assert H.compare(x * 2.0, x)["level_db"] == pytest.approx(20 * np.log10(2.0), abs=1e-4)


def test_loudest_excerpt_finds_the_loud_part_and_a_disjoint_second_one():
    quiet, loud = noise(4.0, amp=0.01), noise(4.0, seed=2, amp=0.2)
    audio = np.concatenate([quiet, loud, quiet])
    start, ex = H.loudest_excerpt(audio, 3.5)
    assert 4.0 * SR <= start <= 4.5 * SR
    assert H.rms_db(ex) == pytest.approx(H.rms_db(loud), abs=0.5)
    second, _ = H.loudest_excerpt(audio, 3.5, avoid=(start, int(3.5 * SR)))
    assert second + int(3.5 * SR) <= start or second >= start + int(3.5 * SR)
    with pytest.raises(ValueError):
        H.loudest_excerpt(audio[: SR], 3.5)


def test_fine_structure_hears_partials_not_noise():
    a, b = tone(220.0, seed=0), tone(220.0, seed=5)  # same note, other phases
    assert H.fine_structure(a, b) > 0.8
    assert abs(H.fine_structure(noise(seed=3), a)) < 0.15
    assert abs(H.fine_structure(noise(seed=3), noise(seed=4))) < 0.15
    # Another pitch puts its partials elsewhere: far below the same note.
    assert H.fine_structure(tone(311.0), a) < 0.5 * H.fine_structure(a, b)
    # A level change does not change it.
    assert H.fine_structure(a * 0.01, b) == pytest.approx(H.fine_structure(a, b), abs=1e-2)


def test_modulation_tells_a_4_hz_tremolo_from_a_steady_tone_and_from_a_16_hz_one():
    t = np.arange(int(3.5 * SR)) / SR
    carrier = noise(seed=7, amp=0.1)

    def am(rate: float, seed: int) -> np.ndarray:
        return (carrier * (1 + 0.9 * np.sin(2 * np.pi * rate * t + seed))).astype(np.float32)

    slow_a, slow_b, fast = am(4.0, 0), am(4.0, 1), am(16.0, 0)
    same = H.modulation(slow_a, slow_b)
    assert same > 0.8
    assert H.modulation(slow_a, fast) < same - 0.3
    assert H.modulation(slow_a, noise(seed=9)) < same - 0.3
    spec = H.modulation_spectrum(slow_a)
    assert spec.shape == (H.MOD_BANDS, H.MOD_BINS)
    edges = np.geomspace(*H.MOD_RANGE, H.MOD_BINS + 1)
    four = int(np.searchsorted(edges, 4.0) - 1)
    assert np.argmax(spec.mean(axis=0)) == four


def test_voicing_flatness_and_onsets_of_a_tone_noise_and_a_click_train():
    x, n = tone(220.0), noise()
    assert H.voiced_share(x) > 0.9
    assert H.voiced_share(n) < 0.5  # pYIN finds chance pitches in white noise
    assert H.flatness(n) > 10 * H.flatness(x)
    clicks = np.zeros(int(3.5 * SR), dtype=np.float32)
    clicks[:: SR // 4] = 0.9  # 4 clicks a second
    assert H.onset_rate(clicks) == pytest.approx(4.0, abs=1.0)
    assert H.onset_rate(x) < 1.0


def test_verdict_names_each_missed_floor():
    scales = H.Scales(self={"modulation": 0.9}, ceiling={"fine": 0.5, "voiced": 0.9}, reference={})
    good = {"level_db": 2.0, "fine": 0.3, "modulation": 0.8, "voiced": 0.8}
    assert H.verdict(good, scales) == (True, [])
    bad = {"level_db": -20.0, "fine": 0.02, "modulation": 0.3, "voiced": 0.1}
    ok, misses = H.verdict(bad, scales)
    assert not ok and [m.split()[0] for m in misses] == ["level", "fine", "modulation", "voiced"]
    # Chirps: no stable lines, so fine structure is not judged where the ceiling is near 0 or not required.
    assert H.verdict({**good, "fine": 0.0}, H.Scales(scales.self, {"fine": 0.05, "voiced": 0.9}, {}))[0]
    assert H.verdict({**good, "fine": 0.0}, scales, fine_required=False)[0]
    assert not H.verdict({**good, "level_db": float("nan")}, scales)[0]


def test_level_calibration_brings_a_render_to_the_reference():
    ref, quiet = tone(220.0, amp=0.3), tone(220.0, amp=0.003)
    db = H.level_calibration_db(quiet, ref)
    assert db == pytest.approx(40.0, abs=0.5)
    assert H.compare(quiet * 10 ** (db / 20), ref)["level_db"] == pytest.approx(0.0, abs=1e-6)
