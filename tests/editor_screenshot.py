"""Headless screenshot of the Grown editor, and a check that it shows a spectrogram.

Runs the stand-alone build (`cargo build --features standalone --bin grown-standalone`)
under Xvfb (Mesa's software GL draws egui), waits while the default model grows, reads
Xvfb's frame buffer (`-fbdir` keeps it in an XWD file, so no screenshot tool is needed),
crops the editor window and writes a PNG.

Audio: with `jackd` and `jack_midiseq` installed (Debian `jackd2`), a private JACK server
with the dummy driver runs, and `jack_midiseq` holds a note on the app's MIDI input, so
the real audio thread plays a voice and the editor draws its playhead (checked too).
Without them nice-plug's silent dummy backend is used and there is no playhead.
With `xdotool` installed the damage brush is dragged across the spectrogram and the band
must lose its texture (erased through the engine's brush queue) before the picture is taken.

    python tests/editor_screenshot.py BINARY OUT.png [--settle SECONDS]

Exits non-zero (with the reason) when the window never appears or its spectrogram area
is blank. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

SCREEN = (1280, 900)
# Fraction of the editor's height and width holding the spectrogram image (below the
# title and status lines, right of the Hz labels); see src/editor/mod.rs.
SPECTROGRAM_ROWS = (0.16, 0.38)
SPECTROGRAM_COLS = (0.10, 0.95)
# Colour of a voice's playhead line (src/editor/spectrogram.rs); magma has no cyan.
PLAYHEAD = (120, 230, 255)


def read_xwd(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of a 32-bit TrueColor XWD file (Xvfb's frame buffer)."""
    data = path.read_bytes()
    header = struct.unpack(">25I", data[:100])
    header_size, width, height = header[0], header[4], header[5]
    byte_order, bits_per_pixel, bytes_per_line, ncolors = header[7], header[11], header[12], header[19]
    if bits_per_pixel != 32:
        raise ValueError(f"expected a 32-bit frame buffer, got {bits_per_pixel} bits per pixel")
    offset = header_size + ncolors * 12
    rows = []
    for y in range(height):
        row = data[offset + y * bytes_per_line : offset + y * bytes_per_line + width * 4]
        rgb = bytearray(width * 3)
        if byte_order == 0:  # LSBFirst: B G R X
            rgb[0::3], rgb[1::3], rgb[2::3] = row[2::4], row[1::4], row[0::4]
        else:  # MSBFirst: X R G B
            rgb[0::3], rgb[1::3], rgb[2::3] = row[1::4], row[2::4], row[3::4]
        rows.append(bytes(rgb))
    return width, height, rows


def window_box(width: int, height: int, rows: list[bytes]) -> tuple[int, int] | None:
    """Size of the editor window: with no window manager it sits at the top-left corner
    on the black root window, so it extends right and down until the first black pixel."""

    def black(x: int, y: int) -> bool:
        return rows[y][3 * x : 3 * x + 3] == b"\0\0\0"

    if black(2, 2):
        return None
    w = next((x for x in range(width) if black(x, 2)), width)
    h = next((y for y in range(height) if black(2, y)), height)
    return w, h


def write_png(path: Path, rows: list[bytes], width: int) -> None:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\0" + r[: 3 * width] for r in rows)
    ihdr = struct.pack(">IIBBBBB", width, len(rows), 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    )


def spectrogram_stats(rows: list[bytes], w: int, h: int) -> tuple[float, float]:
    """(fraction of coloured pixels, luminance standard deviation) in the spectrogram area.
    The magma colours are saturated; egui's grey widgets and text are not."""
    y0, y1 = (int(f * h) for f in SPECTROGRAM_ROWS)
    x0, x1 = (int(f * w) for f in SPECTROGRAM_COLS)
    coloured, lum = 0, []
    for y in range(y0, y1, 2):
        row = rows[y]
        for x in range(x0, x1, 2):
            r, g, b = row[3 * x], row[3 * x + 1], row[3 * x + 2]
            if max(r, g, b) - min(r, g, b) > 40:
                coloured += 1
            lum.append(0.299 * r + 0.587 * g + 0.114 * b)
    mean = sum(lum) / len(lum)
    std = (sum((v - mean) ** 2 for v in lum) / len(lum)) ** 0.5
    return coloured / len(lum), std


def playhead_pixels(rows: list[bytes], w: int, h: int) -> int:
    """Pixels of the playhead colour in the spectrogram area."""
    y0, y1 = (int(f * h) for f in SPECTROGRAM_ROWS)
    x0, x1 = (int(f * w) for f in SPECTROGRAM_COLS)
    n = 0
    for y in range(y0, y1):
        row = rows[y]
        for x in range(x0, x1):
            if all(abs(row[3 * x + k] - PLAYHEAD[k]) < 24 for k in range(3)):
                n += 1
    return n


def start_jack(tmp: Path) -> tuple[list[subprocess.Popen], dict[str, str]] | None:
    """A private JACK server (dummy driver) and a looping held note; None if JACK is missing."""
    if shutil.which("jackd") is None or shutil.which("jack_midiseq") is None:
        return None
    # A private server name, and no client may start a server of its own.
    env = dict(os.environ, JACK_DEFAULT_SERVER=f"grown-shot-{os.getpid()}", JACK_NO_AUDIO_RESERVATION="1", JACK_NO_START_SERVER="1")
    log = (tmp / "jack.log").open("w")
    jackd = subprocess.Popen(
        ["jackd", "--no-realtime", "-n", env["JACK_DEFAULT_SERVER"], "-d", "dummy", "-r", "48000", "-p", "512"],
        env=env,
        stdout=log,
        stderr=log,
    )
    procs = [jackd]

    def ports() -> str:
        r = subprocess.run(["jack_lsp"], check=False, env=env, capture_output=True, text=True, timeout=10)
        return r.stdout if r.returncode == 0 else ""

    def wait_for(port: str) -> bool:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and jackd.poll() is None:
            if port in ports():
                return True
            time.sleep(0.5)
        return False

    ok = wait_for("system:playback_1")
    if ok:
        # A 2 s loop holding middle C for 1.9 s of it.
        procs.insert(0, subprocess.Popen(["jack_midiseq", "grownseq", "96000", "0", "60", "91200"], env=env, stdout=log, stderr=log))
        ok = wait_for("grownseq:out")
    if not ok:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        print("JACK did not start; using the dummy backend", file=sys.stderr)
        return None
    return procs, env


def band_std(rows: list[bytes], w: int, h: int, y: int) -> float:
    """Luminance standard deviation in a thin band around row `y` of the brush stroke."""
    x0, x1 = int(0.30 * w), int(0.60 * w)
    lum = [
        0.299 * rows[yy][3 * x] + 0.587 * rows[yy][3 * x + 1] + 0.114 * rows[yy][3 * x + 2]
        for yy in range(y - 4, y + 5)
        for x in range(x0, x1)
    ]
    mean = sum(lum) / len(lum)
    return (sum((v - mean) ** 2 for v in lum) / len(lum)) ** 0.5


def brush_stroke(env: dict[str, str], w: int, y: int) -> None:
    """Drags the mouse across the spectrogram at height `y` with xdotool."""

    def xdo(*a: str) -> None:
        subprocess.run(["xdotool", *a], env=env, check=True, timeout=10)

    # One xdotool process for the whole drag: spawning one per move made the
    # drag last about a second, long enough for a fast engine to regrow the
    # wound before the first frame could show it.
    drag = ["mousemove", str(int(0.25 * w)), str(y), "mousedown", "1"]
    for i in range(1, 21):
        drag += ["sleep", "0.01", "mousemove", str(int((0.25 + 0.4 * i / 20) * w)), str(y)]
    xdo(*drag, "mouseup", "1")
    # Move away so the brush outline is not in the picture.
    xdo("mousemove", str(w - 5), str(int(0.95 * SCREEN[1])))


def free_display() -> int:
    for n in range(90, 140):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    raise RuntimeError("no free X display number between :90 and :139")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary", type=Path, help="grown-standalone executable")
    ap.add_argument("out", type=Path, help="PNG to write")
    ap.add_argument(
        "--settle", type=float, default=30.0, help="seconds to let the sound grow (and a debug build vocode it) after it appears"
    )
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for a spectrogram")
    ap.add_argument("--no-jack", action="store_true", help="use the silent dummy backend even if JACK is installed")
    args = ap.parse_args()
    if shutil.which("Xvfb") is None:
        print("Xvfb is not installed (apt-get install xvfb)", file=sys.stderr)
        return 2
    rc = shoot(args, use_jack=not args.no_jack)
    if rc == RETRY:
        print("the JACK run showed no editor; retrying with the dummy backend", file=sys.stderr)
        rc = shoot(args, use_jack=False)
    return rc


# Returned by shoot() when the JACK set-up (not the editor) may be at fault.
RETRY = 3


def shoot(args: argparse.Namespace, use_jack: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="grown-xvfb-") as tmp:
        fbdir = Path(tmp)
        display = free_display()
        xvfb = subprocess.Popen(
            ["Xvfb", f":{display}", "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-fbdir", str(fbdir), "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        app = None
        jack = start_jack(fbdir) if use_jack else None
        try:
            fb = fbdir / "Xvfb_screen0"
            deadline = time.monotonic() + 20
            while not fb.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            env = dict(jack[1] if jack else os.environ, DISPLAY=f":{display}", LIBGL_ALWAYS_SOFTWARE="1")
            backend = ["--backend", "jack", "--connect-jack-midi-input", "grownseq:out"] if jack else ["--backend", "dummy"]
            print(f"backend: {' '.join(backend)}", flush=True)
            log = (fbdir / "app.log").open("w")
            app = subprocess.Popen([str(args.binary), *backend], env=env, stdout=log, stderr=log)
            start = time.monotonic()
            seen = None
            while time.monotonic() - start < args.timeout:
                time.sleep(1.0)
                if app.poll() is not None:
                    break
                width, height, rows = read_xwd(fb)
                box = window_box(width, height, rows)
                if box is None:
                    continue
                coloured, std = spectrogram_stats(rows, *box)
                if coloured > 0.5 and std > 8.0:
                    seen = time.monotonic()
                    break
            if seen is None:
                log.close()
                tail = (fbdir / "app.log").read_text(errors="replace")[-3000:]
                code = app.poll()
                why = f"exited with {code}" if code is not None else f"no spectrogram within {args.timeout:.0f} s"
                print(f"editor screenshot failed: {why}\n--- app log ---\n{tail}", file=sys.stderr)
                if jack:
                    print((fbdir / "jack.log").read_text(errors="replace")[-2000:], file=sys.stderr)
                    return RETRY
                return 1
            print(f"spectrogram visible {seen - start:.1f} s after start; letting it grow {args.settle:.0f} s")
            time.sleep(args.settle)
            if shutil.which("xdotool"):
                # The damage brush end to end: a drag erases a band through the
                # engine's queue (the erased cells are flat, so the band's texture goes).
                width, height, rows = read_xwd(fb)
                w, h = window_box(width, height, rows) or (0, 0)
                y = int(0.22 * h)
                before = band_std(rows, w, h, y)
                brush_stroke(env, w, y)
                # The engine drains dabs between steps; it may be busy vocoding a
                # generation first (seconds in a debug build on a loaded machine),
                # and a passing playhead adds texture to single frames: watch a while
                # and keep the flattest frame. An unbrushed band stays at its full
                # texture (≈35 here); brushed ones showed 10–19 within a few frames.
                after = float("inf")
                deadline = time.monotonic() + 8.0
                while time.monotonic() < deadline and not after < 0.75 * before:
                    time.sleep(0.02)
                    after = min(after, band_std(read_xwd(fb)[2], w, h, y))
                print(f"brush stroke: texture in the band {before:.1f} -> {after:.1f} (luminance std)")
                if not after < 0.75 * before:
                    print("dragging on the spectrogram did not erase it", file=sys.stderr)
                    return 1
                # Let the wound start to regrow for the picture.
                time.sleep(1.5)
            # The held note rests 5 % of each loop: take the best of a few frames.
            best = None
            for _ in range(6 if jack else 1):
                width, height, rows = read_xwd(fb)
                box = window_box(width, height, rows)
                if box is None or app.poll() is not None:
                    print("the editor window disappeared", file=sys.stderr)
                    return 1
                heads = playhead_pixels(rows, *box) if jack else 0
                if best is None or heads > best[0]:
                    best = (heads, rows, box)
                time.sleep(0.4)
            heads, rows, (w, h) = best
            coloured, std = spectrogram_stats(rows, w, h)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            write_png(args.out, rows[:h], w)
            print(f"wrote {args.out} ({w}x{h}); spectrogram area: {coloured:.0%} coloured, luminance std {std:.1f}")
            if coloured < 0.5 or std < 8.0:
                print("the spectrogram area is blank", file=sys.stderr)
                return 1
            if jack:
                print(f"playhead pixels: {heads}")
                if heads < 50:
                    print("a note is held through JACK but no playhead is drawn", file=sys.stderr)
                    return 1
            return 0
        finally:
            for proc in (app, xvfb, *(jack[0] if jack else [])):
                if proc is not None and proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()


if __name__ == "__main__":
    sys.exit(main())
