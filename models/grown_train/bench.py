"""The Python half of ``cargo xtask bench``: references the Rust figures are compared with.

``prepare`` makes the inputs both sides share (a 5 s clip of a real recording at
22.05 kHz, and a randomly initialised BigVGAN base exported to ONNX with the
package's own exporter). ``measure`` runs, on the same machine and in the same
run as the Rust side:

* the research notebook's NCA (3x3 identity/Sobel/Laplacian perception, 16
  channels, 128 hidden) in eager PyTorch on the same grid, and the shipped
  architecture in eager PyTorch for a like-for-like ratio;
* the shipped model's conv/matmul FLOPs per step, counted from its ONNX graph;
* the machine's single-precision matmul peak (numpy and torch, 1024-2048 squared);
* ``librosa.feature.inverse.mel_to_audio`` (Griffin-Lim, 32 iterations) on the
  mel the Rust inverter got, and spectral convergence of both outputs;
* BigVGAN in ONNX Runtime (Python) across graph optimisation levels and threads.

Everything is printed as one JSON object on stdout; progress goes to stderr.
Run from ``models/``: ``python -m grown_train.bench prepare|measure ...``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from grown_train.bigvgan_export import DEFAULT_MEL_KEYS

#: Where in strings.ogg the benchmark clip starts (s) and how long it is: the
#: full orchestra, not the quiet opening.
CLIP_START_S = 10.0
CLIP_SECONDS = 5.0
#: BigVGAN v2 22 kHz 80-band base (the ~14 M-parameter generator).
BIGVGAN_BASE = {
    "resblock": "1",
    "upsample_rates": [8, 8, 2, 2],
    "upsample_kernel_sizes": [16, 16, 4, 4],
    "upsample_initial_channel": 512,
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "activation": "snakebeta",
    "snake_logscale": True,
    "use_tanh_at_final": False,
    "use_bias_at_final": False,
    **DEFAULT_MEL_KEYS,
}
#: Frames of the mel used for the optimisation-level sweep (0.74 s): long
#: enough that per-call overhead is noise, short enough that eight runs of a
#: model several times slower than real time stay within the bench's budget.
SWEEP_FRAMES = 64


def log(msg: str) -> None:
    print(f"[bench.py] {msg}", file=sys.stderr, flush=True)


def median(xs: list[float]) -> float:
    return float(np.median(np.asarray(xs, dtype=np.float64)))


# --- prepare -------------------------------------------------------------------


def make_clip(src: Path, out: Path, sr: int) -> dict:
    """5 s mono excerpt of ``src`` at ``sr`` Hz, float32 WAV."""
    import librosa
    import soundfile as sf

    audio, file_sr = sf.read(str(src), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    a, b = int(CLIP_START_S * file_sr), int((CLIP_START_S + CLIP_SECONDS) * file_sr)
    excerpt = mono[a:b]
    if len(excerpt) < b - a:
        raise SystemExit(f"error: {src} is shorter than {CLIP_START_S + CLIP_SECONDS} s")
    clip = librosa.resample(excerpt, orig_sr=file_sr, target_sr=sr, res_type="soxr_hq").astype(np.float32)
    sf.write(str(out), clip, sr, subtype="FLOAT")
    return {"clip": str(out), "source": str(src), "start_s": CLIP_START_S, "seconds": len(clip) / sr, "sample_rate": sr}


def make_bigvgan(out_dir: Path) -> dict:
    """Random-weight BigVGAN base exported with ``python -m grown_train export-bigvgan`` (cached by config)."""
    import torch

    from grown_train import bigvgan_export

    key = hashlib.sha256(json.dumps(BIGVGAN_BASE, sort_keys=True).encode()).hexdigest()[:12]
    onnx_path = out_dir / f"bigvgan_base_{key}.onnx"
    summary_path = onnx_path.with_suffix(".json")
    if onnx_path.is_file() and summary_path.is_file():
        log(f"BigVGAN base already exported: {onnx_path}")
        return {**json.loads(summary_path.read_text()), "out": str(onnx_path)}
    ck = out_dir / f"bigvgan_base_{key}"
    ck.mkdir(parents=True, exist_ok=True)
    (ck / bigvgan_export.CONFIG_FILE).write_text(json.dumps(BIGVGAN_BASE, indent=1))
    # Variance-preserving random weights when the exporter offers them (the
    # package's own init is near-silent, which could drive activations into
    # denormals and time an unrepresentative model); else the package's init.
    make_state = getattr(bigvgan_export, "tiny_state_dict", None)
    if make_state is not None:
        state = make_state(BIGVGAN_BASE, seed=0)
    else:
        BigVGAN, AttrDict = bigvgan_export._bigvgan()
        torch.manual_seed(0)
        state = BigVGAN(AttrDict(BIGVGAN_BASE), use_cuda_kernel=False).state_dict()
    torch.save({"generator": state}, ck / bigvgan_export.WEIGHTS_FILE)
    log("exporting BigVGAN base with `python -m grown_train export-bigvgan` (about a minute)")
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "grown_train", "export-bigvgan", "--checkpoint", str(ck), "--out", str(onnx_path)],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
    )
    if done.returncode != 0:
        raise SystemExit(f"error: export-bigvgan failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    summary = {**json.loads(done.stdout.strip().splitlines()[-1]), "out": str(onnx_path)}
    summary["export_s"] = time.perf_counter() - t0
    summary["config"] = "BigVGAN v2 22 kHz 80-band base, random weights"
    summary["exporter"] = "python -m grown_train export-bigvgan (TorchScript exporter, opset 17)"
    summary_path.write_text(json.dumps(summary))
    return summary


def prepare(args) -> dict:
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    result = {"clip": make_clip(Path(args.clip), out / "clip.wav", 22050)}
    try:
        result["bigvgan"] = make_bigvgan(out)
    except SystemExit as exc:
        result["bigvgan"] = {"error": str(exc)}
    return result


# --- measure: NCA -------------------------------------------------------------------


def notebook_nca(channels: int = 16, hidden: int = 128):
    """The research notebook's NCA: fixed 3x3 perception, a two-layer 1x1 MLP, circular padding."""
    import torch
    import torch.nn.functional as F

    class NotebookNCA(torch.nn.Module):
        def __init__(self):
            super().__init__()
            ident = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
            sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
            lap = torch.tensor([[1.0, 2.0, 1.0], [2.0, -12.0, 2.0], [1.0, 2.0, 1.0]]) / 16.0
            k = torch.stack([ident, sobel, sobel.T, lap])
            self.register_buffer("filters", k.repeat(channels, 1, 1).unsqueeze(1))
            self.w1 = torch.nn.Conv2d(channels * 4, hidden, 1)
            self.w2 = torch.nn.Conv2d(hidden, channels, 1, bias=False)

        def forward(self, x, mask):
            y = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="circular"), self.filters, groups=channels)
            return x + self.w2(torch.relu(self.w1(y))) * mask

    return NotebookNCA().eval()


def notebook_flops(channels: int, hidden: int, cells: int) -> float:
    """Conv FLOPs of one notebook step (multiply-add = 2)."""
    return 2.0 * cells * (channels * 4 * 9 + channels * 4 * hidden + hidden * channels)


def time_steps(step, seconds: float, windows: int = 5) -> dict:
    """Median steps/s over ``windows`` timed windows after a warm-up (the Rust side does the same)."""
    for _ in range(8):
        step()
    rates = []
    for _ in range(windows):
        t0, n = time.perf_counter(), 0
        while n < 4 or time.perf_counter() - t0 < seconds / windows:
            step()
            n += 1
        rates.append(n / (time.perf_counter() - t0))
    return {"steps_per_s": median(rates), "steps_per_s_windows": rates}


def onnx_config(path: Path) -> dict:
    """Architecture of a shipped model from its metadata and weights."""
    import onnx
    from onnx import numpy_helper

    from grown_train.export import read_metadata

    m = onnx.load(str(path))
    meta = read_metadata(m)
    channels = int(meta["grown.channels"])
    perception = meta["grown.perception"]
    n_mels = json.loads(meta["grown.mel"])["n_mels"]
    # The update MLP's output layer is [channels, hidden, 1, 1] in every layout.
    hidden = None
    for init in m.graph.initializer:
        shape = list(numpy_helper.to_array(init).shape)
        if len(shape) == 4 and shape[0] == channels and shape[2:] == [1, 1]:
            hidden = shape[1]
    return {"channels": channels, "n_mels": n_mels, "perception": perception, "hidden": hidden, "unroll": int(meta["grown.unroll"])}


def onnx_flops(path: Path, frames: int, feeds: dict | None = None) -> dict:
    """Conv/MatMul/Gemm FLOPs of one run of a graph whose dynamic axes are ``frames`` long.

    Shapes come from ONNX Runtime itself: every Conv/MatMul/Gemm output (and any
    weight that is not an initializer) is exposed as a graph output and the
    graph is run once, so dynamic shapes and shape arithmetic need no emulation.
    """
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(path))
    inits = {i.name: list(i.dims) for i in m.graph.initializer}
    # A multiply-add by a weight that is exactly zero does no useful work and is
    # not counted: the exporter's padding channels, the zero taps of the fixed
    # 3x3 kernels (the identity kernel counts as one tap: a copy).
    nonzero = {i.name: int(np.count_nonzero(numpy_helper.to_array(i))) for i in m.graph.initializer if len(i.dims) >= 3}
    nodes = [n for n in m.graph.node if n.op_type in ("Conv", "MatMul", "Gemm", "ConvTranspose")]
    existing = {o.name for o in m.graph.output}
    wanted = set()
    for n in nodes:
        wanted.add(n.output[0])
        for name in n.input[:2]:
            if name not in inits:
                wanted.add(name)
    for name in sorted(wanted - existing):
        m.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feeds = dict(feeds or {})
    for i in sess.get_inputs():
        if i.name in feeds:
            continue
        shape = [d if isinstance(d, int) else frames for d in i.shape]
        feeds[i.name] = np.zeros(shape, dtype=np.float32) if i.name != "update_mask" else np.ones(shape, dtype=np.float32)
    names = [o.name for o in sess.get_outputs()]
    shapes = {k: list(v.shape) for k, v in zip(names, sess.run(names, feeds))}
    shapes.update(inits)
    total, per_op = 0.0, {}
    for n in nodes:
        y = shapes[n.output[0]]
        if n.op_type == "Conv":
            w = shapes[n.input[1]]
            per_position = nonzero.get(n.input[1], float(np.prod(w)))
            f = 2.0 * float(np.prod(y)) / y[1] * per_position
        elif n.op_type == "ConvTranspose":
            x, w = shapes[n.input[0]], shapes[n.input[1]]
            f = 2.0 * float(np.prod(x)) * float(np.prod(w[1:]))
        else:
            a = shapes[n.input[0]]
            trans_a = any(at.name == "transA" and at.i for at in n.attribute)
            k = a[-2] if trans_a else a[-1]
            f = 2.0 * float(np.prod(y)) * k
        per_op[n.op_type] = per_op.get(n.op_type, 0.0) + f
        total += f
    return {"flops_per_step": total, "by_op": per_op, "nodes": len(nodes)}


def matmul_peak(threads: int, sizes=(1024, 1536, 2048), reps: int = 5) -> dict:
    """Best single-precision GEMM rate of numpy's BLAS and torch at ``threads`` threads, FLOP/s."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    best = {"numpy": 0.0, "torch": 0.0}
    rng = np.random.default_rng(0)
    with threadpool_limits(limits=threads):
        for n in sizes:
            a = rng.standard_normal((n, n), dtype=np.float32)
            b = rng.standard_normal((n, n), dtype=np.float32)
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            calls = (("numpy", lambda a=a, b=b: a @ b), ("torch", lambda ta=ta, tb=tb: torch.mm(ta, tb)))
            for lib, fn in calls:
                fn()
                for _ in range(reps):
                    t0 = time.perf_counter()
                    fn()
                    dt = time.perf_counter() - t0
                    best[lib] = max(best[lib], 2.0 * n**3 / dt)
    return {"peak_flops": max(best.values()), "by_library": best}


def measure_nca(onnx_path: Path, threads: list[int], frames: int, seconds: float) -> dict:
    """FLOPs of the shipped step, the notebook's, the sgemm peak and the layout comparison
    (step rates of eager PyTorch: :func:`measure_torch_nca`)."""
    arch = onnx_config(onnx_path)
    n_mels = arch["n_mels"]
    cells = n_mels * frames
    flops = onnx_flops(onnx_path, frames)
    out = {"grid": [n_mels, frames], "shipped": {**arch, **flops}, "notebook": {}, "peak": {}}
    out["notebook"]["flops_per_step"] = notebook_flops(16, 128, cells)
    for t in threads:
        log(f"matmul peak, {t} thread(s)")
        out["peak"][str(t)] = matmul_peak(t)
    out["layout"] = measure_layout(onnx_path, frames, seconds)
    return out


def measure_torch_nca(onnx_path: Path, threads: list[int], frames: int, seconds: float) -> dict:
    """Eager-PyTorch step rates of the notebook NCA and of the shipped architecture.

    Its own command, so ``cargo xtask bench`` can alternate it with the plugin's
    NCA timing (a slow phase of a shared machine then hits both sides).
    """
    import torch

    from grown_train.nca import NCA, NCAConfig, step

    arch = onnx_config(onnx_path)
    c, n_mels = arch["channels"], arch["n_mels"]
    out = {"notebook": {}, "same_arch": {}}
    torch.manual_seed(0)
    nb = notebook_nca(16, 128)
    same = NCA(NCAConfig(channels=c, n_mels=n_mels, hidden=arch["hidden"] or 128, perception=arch["perception"])).eval()
    for t in threads:
        torch.set_num_threads(t)
        log(f"PyTorch eager NCA, {t} thread(s)")
        with torch.inference_mode():
            x = torch.randn(1, 16, n_mels, frames) * 0.1

            def nb_step():
                nonlocal x
                mask = (torch.rand(1, 1, n_mels, frames) < 0.5).float()
                x = nb(x, mask)

            out["notebook"][str(t)] = time_steps(nb_step, seconds)
            y = torch.randn(1, c, n_mels, frames) * 0.1

            def same_step():
                nonlocal y
                mask = (torch.rand(1, 1, n_mels, frames) < 0.5).float()
                y = step(same, y, mask)

            out["same_arch"][str(t)] = time_steps(same_step, seconds)
    return out


def measure_layout(onnx_path: Path, frames: int, seconds: float) -> dict:
    """The shipped graph beside the same weights exported in the traced layout
    (``perceive``'s feature order, padded to a multiple of 8 channels), in ONNX
    Runtime at 1 thread, windows interleaved so load affects both alike."""
    import tempfile

    import onnxruntime as ort

    from grown_train.export import BlockedStep, export_onnx, nca_from_onnx, read_metadata

    nca = nca_from_onnx(onnx_path)
    if not BlockedStep.fits(nca):
        return {"blocked": False}
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    with tempfile.TemporaryDirectory() as tmp:
        traced_path = export_onnx(nca, Path(tmp) / "traced.onnx", None, meta=read_metadata(onnx_path), blocked=False)
        traced = ort.InferenceSession(str(traced_path), so, providers=["CPUExecutionProvider"])
    shipped = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    n_mels, channels = nca.cfg.n_mels, nca.cfg.channels
    x0 = (rng.standard_normal((1, channels, n_mels, frames)) * 0.1).astype(np.float32)
    mask = (rng.random((1, 1, n_mels, frames)) < 0.5).astype(np.float32)
    outs, rates = {}, {"traced": [], "shipped": []}
    sessions = (("traced", traced), ("shipped", shipped))
    for name, sess in sessions:
        x = x0
        for _ in range(8):
            x = sess.run(None, {"state": x, "update_mask": mask})[0]
        outs[name] = x
    for _ in range(5):
        for name, sess in sessions:
            t0, n = time.perf_counter(), 0
            while n < 4 or time.perf_counter() - t0 < seconds / 10:
                sess.run(None, {"state": x0, "update_mask": mask})
                n += 1
            rates[name].append(n / (time.perf_counter() - t0))
    log("blocked vs traced NCA graph layout, 1 thread")
    return {
        "blocked": True,
        "traced_steps_per_s": median(rates["traced"]),
        "shipped_steps_per_s": median(rates["shipped"]),
        "max_abs_diff_8_steps": float(np.abs(outs["traced"] - outs["shipped"]).max()),
    }


# --- measure: vocoders --------------------------------------------------------------


def load_mel(folder: Path, n_mels: int = 80) -> np.ndarray:
    raw = np.fromfile(folder / "mel.f32", dtype="<f4")
    return raw.reshape(n_mels, -1)


def stft_mag(x: np.ndarray) -> np.ndarray:
    import librosa

    return np.abs(librosa.stft(x, n_fft=1024, hop_length=256, win_length=1024, window="hann", center=True))


def spectral_convergence_db(ref: np.ndarray, out: np.ndarray, max_shift: int = 256) -> dict:
    """SC = 20 log10(||S_ref - S_out||_F / ||S_ref||_F) on linear STFT magnitude.

    Mel inversion fixes the output's alignment only to within a frame (each
    method centres frames differently), so the output is shifted by the lag in
    +-``max_shift`` samples that scores best (coarse then fine search); both
    methods get the same search.
    """
    n = len(ref)
    out = np.pad(out[:n], (0, max(0, n - len(out))))
    s_ref = stft_mag(ref)
    norm = np.linalg.norm(s_ref)

    def score(lag: int) -> float:
        shifted = np.roll(out, lag)
        if lag > 0:
            shifted[:lag] = 0.0
        elif lag < 0:
            shifted[lag:] = 0.0
        return float(np.linalg.norm(s_ref - stft_mag(shifted)) / norm)

    coarse = min(range(-max_shift, max_shift + 1, 8), key=score)
    best = min(range(coarse - 7, coarse + 8), key=score)
    return {"sc_db": 20.0 * np.log10(score(best)), "lag": best}


def measure_librosa(folder: Path, threads: list[int]) -> dict:
    """librosa mel_to_audio (NNLS mel inversion + 32 Griffin-Lim iterations), best thread count, median of 3."""
    import librosa
    import soundfile as sf
    from threadpoolctl import threadpool_limits

    ref, sr = sf.read(str(folder / "clip.wav"), dtype="float32")
    mel = np.exp(load_mel(folder)).astype(np.float32)
    frames = mel.shape[1]

    def invert():
        # Griffin-Lim starts from random phase; seeded so every run does the same work.
        np.random.seed(0)
        y = librosa.feature.inverse.mel_to_audio(
            mel, sr=sr, n_fft=1024, hop_length=256, win_length=1024, window="hann", center=True,
            power=1.0, n_iter=32, fmin=0.0, fmax=8000.0, htk=False, norm="slaney",
        )
        return np.pad(y, (0, max(0, frames * 256 - len(y))))[: frames * 256]

    times = {}
    audio = None
    for t in threads:
        with threadpool_limits(limits=t):
            log(f"librosa mel_to_audio, {t} thread(s)")
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                audio = invert()
                runs.append(time.perf_counter() - t0)
            times[str(t)] = median(runs)
    best_t = min(times, key=times.get)
    seconds = frames * 256 / sr
    inv, _ = sf.read(str(folder / "inverter.wav"), dtype="float32")
    sf.write(str(folder / "librosa.wav"), audio, sr, subtype="FLOAT")
    return {
        "librosa_s": times[best_t],
        "librosa_s_by_threads": times,
        "librosa_threads": int(best_t),
        "librosa_rtf": times[best_t] / seconds,
        "librosa_sc": spectral_convergence_db(ref, audio),
        "inverter_sc": spectral_convergence_db(ref, inv),
        "seconds_audio": seconds,
        "librosa_version": librosa.__version__,
    }


def measure_bigvgan_ort(onnx_path: Path, folder: Path, threads: list[int]) -> dict:
    """ONNX Runtime (Python, same 1.31 build as the plugin loads) over optimisation levels x threads."""
    import onnxruntime as ort

    mel = load_mel(folder)[None].astype(np.float32)
    sweep = np.ascontiguousarray(mel[:, :, :SWEEP_FRAMES])
    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }

    def session(level, t):
        so = ort.SessionOptions()
        so.graph_optimization_level = levels[level]
        so.intra_op_num_threads = t
        so.inter_op_num_threads = 1
        so.use_deterministic_compute = True
        return ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])

    rows = []
    for t in threads:
        for level in levels:
            log(f"BigVGAN ORT python: level {level}, {t} thread(s)")
            t0 = time.perf_counter()
            s = session(level, t)
            load = time.perf_counter() - t0
            s.run(["audio"], {"mel": sweep[:, :, :16]})
            t0 = time.perf_counter()
            s.run(["audio"], {"mel": sweep})
            took = time.perf_counter() - t0
            rows.append({"level": level, "threads": t, "rtf": took / (SWEEP_FRAMES * 256 / 22050), "session_s": load})
    best = min(rows, key=lambda r: r["rtf"])
    # FLOPs per second of audio from a 32-frame run, so the ratio of achieved to
    # peak rate can be stated for the vocoder too.
    flop_frames = 32
    flops = onnx_flops(onnx_path, flop_frames, feeds={"mel": np.ascontiguousarray(mel[:, :, :flop_frames])})
    per_second = flops["flops_per_step"] / (flop_frames * 256 / 22050)
    return {"sweep": rows, "sweep_seconds_audio": SWEEP_FRAMES * 256 / 22050, "best": best,
            "flops_per_audio_second": per_second, "flops_by_op": flops["by_op"]}


def measure(args) -> dict:
    folder = Path(args.dir)
    threads = [int(t) for t in args.threads.split(",")]
    out = {"versions": {}}
    import librosa
    import onnxruntime
    import torch

    out["versions"] = {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "librosa": librosa.__version__,
                       "numpy": np.__version__, "python": sys.version.split()[0]}
    out["nca"] = measure_nca(Path(args.onnx), threads, args.frames, args.seconds)
    out["vocoder"] = measure_librosa(folder, threads)
    if args.bigvgan and Path(args.bigvgan).is_file():
        out["bigvgan"] = measure_bigvgan_ort(Path(args.bigvgan), folder, threads)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grown_train.bench", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("prepare", help="clip + BigVGAN base ONNX into --out")
    a.add_argument("--out", required=True)
    a.add_argument("--clip", default=str(Path(__file__).resolve().parents[1] / "targets" / "strings.ogg"))
    b = sub.add_parser("measure", help="PyTorch/librosa/ORT reference figures")
    b.add_argument("--dir", required=True, help="folder holding clip.wav, mel.f32, inverter.wav")
    b.add_argument("--onnx", required=True, help="the shipped NCA model (FLOPs and architecture)")
    b.add_argument("--bigvgan", default=None, help="BigVGAN ONNX file for the ORT sweep")
    b.add_argument("--threads", default="1,2")
    b.add_argument("--frames", type=int, default=256)
    b.add_argument("--seconds", type=float, default=4.0, help="timing per NCA configuration")
    n = sub.add_parser("torch-nca", help="eager-PyTorch NCA step rates (notebook and shipped architecture)")
    n.add_argument("--onnx", required=True, help="the shipped NCA model (its architecture)")
    n.add_argument("--threads", default="1,2")
    n.add_argument("--frames", type=int, default=256)
    n.add_argument("--seconds", type=float, default=4.0, help="timing per configuration")
    args = p.parse_args(argv)
    if args.cmd == "prepare":
        result = prepare(args)
    elif args.cmd == "torch-nca":
        threads = [int(t) for t in args.threads.split(",")]
        result = measure_torch_nca(Path(args.onnx), threads, args.frames, args.seconds)
    else:
        result = measure(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
