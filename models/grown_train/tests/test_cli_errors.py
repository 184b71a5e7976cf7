"""Bad input gives one clear line on stderr, a specific exit code and no leftover files."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from grown_train import cli
from grown_train.tests.conftest import MODELS_DIR, TINY, files_under


def run_cli(tmp_path, target, out, capsys, extra=()):
    rc = cli.main(["train", "--target", str(target), "--out", str(out), "--iters", "2",
                   "--checkpoint-dir", str(tmp_path / "runs"), *TINY, *extra])
    err = capsys.readouterr().err.strip()
    return rc, err


def assert_one_line(err, start):
    assert err.startswith(f"error: {start}"), err
    assert "\n" not in err and "Traceback" not in err


def test_missing_file_via_real_process(tmp_path):
    out = tmp_path / "m.onnx"
    env = dict(os.environ, PYTHONPATH=str(MODELS_DIR))
    proc = subprocess.run(
        [sys.executable, "-m", "grown_train", "train", "--target", str(tmp_path / "nope.wav"), "--out", str(out),
         "--checkpoint-dir", str(tmp_path / "runs"), "--quiet"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 3
    assert_one_line(proc.stderr.strip(), "target file not found")
    assert list(tmp_path.iterdir()) == []


def test_not_audio(tmp_path, capsys):
    bogus = tmp_path / "song.wav"
    bogus.write_text("this is not audio\n")
    rc, err = run_cli(tmp_path, bogus, tmp_path / "m.onnx", capsys)
    assert rc == 4
    assert_one_line(err, "not a readable audio file")
    assert files_under(tmp_path) == [bogus]
    assert not (tmp_path / "runs").exists()


def test_silence(tmp_path, capsys):
    quiet = tmp_path / "quiet.wav"
    sf.write(str(quiet), np.zeros(44100, np.float32), 22050)
    rc, err = run_cli(tmp_path, quiet, tmp_path / "m.onnx", capsys)
    assert rc == 5
    assert_one_line(err, "target is silent")
    assert files_under(tmp_path) == [quiet]


@pytest.mark.parametrize("seconds", [0.2, 0.001])
def test_shorter_than_the_grid(tmp_path, capsys, seconds):
    short = tmp_path / "short.wav"
    n = int(22050 * seconds)
    sf.write(str(short), 0.5 * np.sin(np.arange(n) * 0.1).astype(np.float32), 22050)
    rc, err = run_cli(tmp_path, short, tmp_path / "m.onnx", capsys)  # --frames 32 needs 0.37 s
    assert rc == 6
    assert_one_line(err, "target is")
    assert "--frames 32 needs at least" in err
    assert files_under(tmp_path) == [short]


@pytest.mark.parametrize("where", ["missing_dir", "is_dir", "under_file"])
def test_unwritable_output(tmp_path, capsys, chord_wav, where):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    out = {
        "missing_dir": tmp_path / "no" / "such" / "m.onnx",
        "is_dir": tmp_path,
        "under_file": blocker / "m.onnx",
    }[where]
    rc, err = run_cli(tmp_path, chord_wav, out, capsys)
    assert rc == 7
    assert_one_line(err, "")
    assert files_under(tmp_path) == sorted([blocker, chord_wav])


def test_all_subcommands_exist(capsys):
    parser = cli.build_parser()
    for command in ("train", "eval", "export-bigvgan"):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([command, "--help"])
        assert exit_info.value.code == 0
        assert f"python -m grown_train {command}" in capsys.readouterr().out


def test_contradictory_steps(tmp_path, capsys, chord_wav):
    rc, err = run_cli(tmp_path, chord_wav, tmp_path / "m.onnx", capsys, extra=["--min-steps", "20", "--max-steps", "10"])
    assert rc == 2
    assert_one_line(err, "need --min-steps (20) <= --max-steps (10)")
    assert files_under(tmp_path) == [chord_wav]
