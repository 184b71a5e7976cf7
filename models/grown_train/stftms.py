"""The lossless stereo representation ``stft-ms``: training, export and evaluation.

A stereo signal ``L, R`` becomes its mid ``M = (L + R) / 2`` and side
``S = (L - R) / 2`` channels; each is analysed with a *circular* STFT (Hann,
n_fft 1024, hop 256, every one of the 513 bins kept, DC included) and the real
and imaginary parts of both become four image channels, compressed by an
invertible signed logarithm. Nothing is thrown away, so the inverse needs no
vocoder: inverse FFT, window, overlap-add, divide by the window's constant
overlap sum, ``L = M + S``, ``R = M - S``.

Why circular: the NCA's time axis wraps around, so a grown spectrogram is a
loop; analysing the training audio as a loop too makes ``frames = samples / hop``
exactly, the transform a tight frame (exactly invertible for any length that is
a multiple of ``hop``) and the played loop seamless. The exact mapping is the
contract's ``stft-ms`` section in ``models/README.md``; ``src/stft_ms.rs`` is
the Rust side of the same definition.

Run ``python -m grown_train.stftms train --help`` to train a stereo model.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

#: Value of ``grown.representation`` for this representation.
REPRESENTATION = "stft-ms"
#: Visible channels, in state order starting at ``grown.spec_channel``.
VISIBLE = ("mid_re", "mid_im", "side_re", "side_im")
#: Signed-log gain: a state value ``v`` maps to ``sign(v)*(exp(SCALE*|v| + OFFSET) - exp(OFFSET))``.
#: 4 keeps a full-scale sine (|X| ~ 256) near 2.5, inside the training overflow bound of 3.
SCALE = 4.0
#: ``ln(eps)``: eps = 0.01 is the linear amplitude where compression turns from linear to
#: logarithmic (-88 dB below a full-scale sine's peak bin), so seed noise stays near-silent.
OFFSET = math.log(0.01)
#: State values are clamped to +-STATE_LIMIT before expansion (the training overflow bound):
#: |x| <= exp(12 - 4.6) ~ 1600, above any full-scale signal's bin (<= 512), so audio
#: round trips are unaffected while a runaway cell cannot become an exponential blast.
STATE_LIMIT = 3.0


@dataclass(frozen=True)
class StftConfig:
    """The analysis the model's grid is expressed in (``grown.stft``)."""

    #: Audio sample rate in Hz (targets are resampled to it).
    sample_rate: int = 22050
    #: FFT size; bins = n_fft / 2 + 1 = 513 rows of the grid.
    n_fft: int = 1024
    #: Hop between frames in samples; one grid column per hop, samples = frames * hop.
    hop: int = 256
    #: Window length (periodic Hann, equal to n_fft).
    win: int = 1024
    #: Grid height: every rFFT bin, the DC bin included (dropping it caused low-end distortion).
    bins: int = 513
    #: Window name, declared so another implementation cannot silently differ.
    window: str = "hann_periodic"
    #: Time padding of the analysis: frame t covers samples ``t*hop - n_fft/2 ..`` modulo the loop length.
    padding: str = "circular"

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


DEFAULT_STFT = StftConfig()


def _window(cfg: StftConfig, dtype=torch.float32) -> torch.Tensor:
    return torch.hann_window(cfg.win, periodic=True, dtype=dtype)


def _frame_index(n_samples: int, cfg: StftConfig) -> torch.Tensor:
    """``[frames, n_fft]`` sample index of every frame position (wraps around the loop)."""
    frames = n_samples // cfg.hop
    t = torch.arange(frames)[:, None] * cfg.hop - cfg.n_fft // 2
    return (t + torch.arange(cfg.n_fft)[None, :]) % n_samples


def ola_norm(cfg: StftConfig = DEFAULT_STFT) -> float:
    """Sum of the squared window over the frames covering one sample (1.5 for Hann, hop n/4)."""
    w = _window(cfg, torch.float64)
    return float((w * w).sum() / cfg.hop)


def stft(x: torch.Tensor, cfg: StftConfig = DEFAULT_STFT) -> torch.Tensor:
    """Circular STFT: ``[..., samples]`` (a multiple of hop) → complex ``[..., bins, samples/hop]``."""
    n = x.shape[-1]
    if n % cfg.hop or n == 0:
        raise ValueError(f"length {n} is not a positive multiple of hop {cfg.hop}")
    frames = x[..., _frame_index(n, cfg)] * _window(cfg, x.dtype)
    return torch.fft.rfft(frames, n=cfg.n_fft, dim=-1).transpose(-1, -2)


def istft(spec: torch.Tensor, cfg: StftConfig = DEFAULT_STFT) -> torch.Tensor:
    """Inverse of :func:`stft` (least squares for spectrograms that are not a signal's STFT)."""
    frames = spec.shape[-1]
    n = frames * cfg.hop
    real_dtype = spec.real.dtype
    seg = torch.fft.irfft(spec.transpose(-1, -2), n=cfg.n_fft, dim=-1) * _window(cfg, real_dtype)
    idx = _frame_index(n, cfg).reshape(-1)
    out = torch.zeros(*seg.shape[:-2], n, dtype=real_dtype)
    out = out.index_add(-1, idx, seg.reshape(*seg.shape[:-2], -1))
    return out / ola_norm(cfg)


def compress(x: torch.Tensor) -> torch.Tensor:
    """Linear STFT part → state value: ``sign(x) * (ln(|x| + eps) - ln(eps)) / SCALE``."""
    return torch.sign(x) * (torch.log(x.abs() + math.exp(OFFSET)) - OFFSET) / SCALE


def expand(v: torch.Tensor) -> torch.Tensor:
    """State value → linear STFT part, the exact inverse of :func:`compress` within ``STATE_LIMIT``."""
    return torch.sign(v) * (torch.exp(SCALE * v.abs().clamp(max=STATE_LIMIT) + OFFSET) - math.exp(OFFSET))


def to_mid_side(stereo: torch.Tensor) -> torch.Tensor:
    """``[..., 2, samples]`` (L, R) → ``[..., 2, samples]`` (M, S)."""
    left, right = stereo[..., 0, :], stereo[..., 1, :]
    return torch.stack([(left + right) * 0.5, (left - right) * 0.5], dim=-2)


def from_mid_side(ms: torch.Tensor) -> torch.Tensor:
    """``[..., 2, samples]`` (M, S) → (L, R)."""
    return torch.stack([ms[..., 0, :] + ms[..., 1, :], ms[..., 0, :] - ms[..., 1, :]], dim=-2)


def visible_to_complex(v: torch.Tensor) -> torch.Tensor:
    """Four visible channels ``[..., 4, bins, T]`` → complex mid/side spectra ``[..., 2, bins, T]``."""
    x = expand(v)
    return torch.complex(x[..., 0::2, :, :], x[..., 1::2, :, :])


def complex_to_visible(spec: torch.Tensor) -> torch.Tensor:
    """Complex ``[..., 2, bins, T]`` → four channels (M re, M im, S re, S im)."""
    parts = torch.stack([spec.real, spec.imag], dim=-3)  # [..., 2(ms), 2(re/im), bins, T]
    return compress(parts.flatten(-4, -3))


def encode(stereo: torch.Tensor, cfg: StftConfig = DEFAULT_STFT) -> torch.Tensor:
    """Stereo audio ``[2, samples]`` → visible channels ``[4, bins, frames]`` (samples padded to a hop multiple)."""
    n = stereo.shape[-1]
    pad = (-n) % cfg.hop
    if pad:
        stereo = torch.nn.functional.pad(stereo, (0, pad))
    return complex_to_visible(stft(to_mid_side(stereo), cfg))


def decode(visible: torch.Tensor, cfg: StftConfig = DEFAULT_STFT) -> torch.Tensor:
    """Visible channels ``[..., 4, bins, frames]`` → stereo audio ``[..., 2, frames * hop]``."""
    return from_mid_side(istft(visible_to_complex(visible), cfg))


def load_stereo(path: Path, sample_rate: int) -> np.ndarray:
    """Stereo float32 ``[2, samples]`` at ``sample_rate`` (mono files are duplicated; peaks above 1 scaled down)."""
    import soundfile as sf

    from grown_train.errors import MissingInput, NotAudio, SilentInput

    path = Path(path)
    if not path.is_file():
        raise MissingInput(f"target file not found: {path}")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile reports unknown formats in several ways
        raise NotAudio(f"not a readable audio file: {path} ({type(exc).__name__})") from None
    if data.shape[1] == 1:
        data = np.repeat(data, 2, axis=1)
    data = data[:, :2]
    if sr != sample_rate:
        import soxr

        data = soxr.resample(data, sr, sample_rate, quality="HQ")
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if peak < 1e-4:
        raise SilentInput(f"target is silent: {path}")
    if peak > 1.0:
        data = data / peak
    return np.ascontiguousarray(data.T, dtype=np.float32)


# --------------------------------------------------------------------------- losses

#: Bands the magnitude is pooled into for the texture (Gram) statistics: 512 bins above DC / 8.
TEXTURE_BANDS = 64
#: Floor (linear amplitude) inside the log-magnitude: the compression's own eps.
LOGMAG_EPS = math.exp(OFFSET)


def log_magnitude(spec: torch.Tensor) -> torch.Tensor:
    """``ln(sqrt(|X|^2 + eps^2))`` of complex ``[..., bins, T]``."""
    return 0.5 * torch.log(spec.real.square() + spec.imag.square() + LOGMAG_EPS**2)


def texture_view(logmag: torch.Tensor) -> torch.Tensor:
    """``[B, 2, bins, T]`` log-magnitudes → ``[B, 2*TEXTURE_BANDS, T]`` pooled, scaled features.

    The Gram statistics of :class:`grown_train.losses.TextureLoss` do not need
    every bin (the full-resolution spectrum has its own L1 term); pooling keeps
    the random-filter ensemble cheap. Scaled by 1/4 like the mel models' domain.
    """
    b, c, _, t = logmag.shape
    bands = logmag[:, :, 1:, :].reshape(b, c, TEXTURE_BANDS, -1, t).mean(dim=3)
    return (bands.reshape(b, c * TEXTURE_BANDS, t) + 2.0) / 4.0


@dataclass(frozen=True)
class StereoWeights:
    """Weights of the stereo loss terms (``--w-NAME``)."""

    #: Random-filter Gram statistics of the pooled mid+side log-magnitude (texture).
    #: This and ``spectrum`` are measured on STFT(ISTFT(X)), the spectrogram of what is heard.
    gram: float = 1.0
    #: L1 of the time-averaged full-resolution log-magnitude (per bin, mid and side): timbre and stereo width.
    spectrum: float = 1.0
    #: ||encode(STFT(ISTFT(X))) - v||^2: the grown spectrogram must be a real signal's STFT.
    consistency: float = 1.0
    #: Diversity hinge between batch items (from TextureLoss).
    diversity: float = 0.2
    #: State values outside +-3 (long growth stability).
    overflow: float = 1.0


class StereoLoss(torch.nn.Module):
    """Target statistics of a stereo recording and the loss against them."""

    def __init__(self, target_visible: torch.Tensor, frames: int, fps: float, weights: StereoWeights = StereoWeights()):
        from grown_train.losses import LossWeights, TextureLoss

        super().__init__()
        self.weights = weights
        logmag = log_magnitude(visible_to_complex(target_visible))  # [2, bins, T]
        self.register_buffer("t_mean", logmag.mean(dim=-1))
        tex = texture_view(logmag.unsqueeze(0))[0]
        self.texture = TextureLoss(
            tex, frames, fps, LossWeights(gram=1.0, acf=0.0, diversity=1.0, l1=0.0, sot=0.0, overflow=0.0)
        )

    def forward(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-item terms for states ``[B, C, bins, T]`` (visible channels 0..3) including ``total``."""
        w = self.weights
        v = state[:, :4]
        # What is heard is the grid projected onto real signals (ISTFT then STFT):
        # an inconsistent grid's overlap-add cancels itself, so the statistics are
        # taken on the projection, and `consistency` keeps the grid close to it.
        heard = stft(istft(visible_to_complex(v)))
        logmag = log_magnitude(heard)
        tex = self.texture(texture_view(logmag))
        terms = {
            "gram": tex["gram"],
            "spectrum": (logmag.mean(dim=-1) - self.t_mean).abs().mean(dim=(1, 2)) / 4.0,
            "diversity": tex["diversity"],
        }
        terms["consistency"] = (complex_to_visible(heard) - v).square().mean(dim=(1, 2, 3))
        from grown_train.losses import OVERFLOW_BOUND

        terms["overflow"] = (state - state.clamp(-OVERFLOW_BOUND, OVERFLOW_BOUND)).abs().mean(dim=(1, 2, 3))
        total = torch.zeros(state.shape[0])
        for name, value in terms.items():
            total = total + getattr(w, name) * value
        terms["total"] = total
        return terms


# --------------------------------------------------------------------------- training


@dataclass
class StereoTrainConfig:
    """Options of ``python -m grown_train.stftms train`` (one field per flag)."""

    #: Stereo audio file to imitate (mono files train a model with no side, which defeats the purpose).
    target: Path
    #: Output ONNX path.
    out: Path
    #: Optimizer steps.
    iters: int = 400
    #: Training grid width in frames (86 = 1 s); small because every frame has 513 rows.
    frames: int = 32
    #: State channels (4 visible + hidden).
    channels: int = 12
    #: Update-MLP width.
    hidden: int = 48
    #: Items per optimizer step.
    batch: int = 2
    #: Sample-pool size.
    pool_size: int = 24
    #: Random rollout length range; ``max_steps`` becomes ``grown.growth_steps``.
    min_steps: int = 24
    max_steps: int = 40
    #: Adam learning rate (exponential decay to lr * lr_final).
    lr: float = 3e-3
    lr_final: float = 0.1
    #: ``grown.fire_rate`` and the seed state's std.
    fire_rate: float = 0.5
    seed_std: float = 0.1
    #: Seeds model init and all training randomness.
    seed: int = 0
    #: Stop and export after this many minutes (0 = no limit).
    time_budget: float = 0.0
    #: Torch CPU threads (1 on a shared machine).
    threads: int = 1
    #: Only this many seconds of the target, from its start (0 = all): keeps the statistics to one passage.
    target_seconds: float = 0.0
    #: ``grown.target`` and ``grown.license``.
    credit: str = ""
    license: str = "unknown"
    #: Loss weights.
    weights: StereoWeights = StereoWeights()
    #: Progress lines (and a checkpoint) every N iterations (0 = quiet).
    log_every: int = 25
    #: Checkpoint folder (``NAME-stftms.pt``); re-running the same command resumes from it.
    checkpoint_dir: Path = Path("runs")


def stereo_metadata(nca, cfg: StereoTrainConfig) -> dict[str, str]:
    """``metadata_props`` of an ``stft-ms`` model (the README's stft-ms table)."""
    from grown_train import CONTRACT_VERSION

    return {
        "grown.contract": str(CONTRACT_VERSION),
        "grown.kind": "nca",
        "grown.representation": REPRESENTATION,
        "grown.channels": str(nca.cfg.channels),
        "grown.spec_channel": "0",
        "grown.spec_scale": repr(SCALE),
        "grown.spec_offset": repr(OFFSET),
        "grown.stft": DEFAULT_STFT.to_json(),
        "grown.growth_steps": str(int(cfg.max_steps)),
        "grown.fire_rate": repr(float(cfg.fire_rate)),
        "grown.seed_state": json.dumps({"kind": "normal", "std": float(cfg.seed_std)}, separators=(",", ":")),
        "grown.train_frames": str(int(cfg.frames)),
        "grown.perception": ",".join(nca.kernels),
        "grown.unroll": "1",
        "grown.target": cfg.credit or Path(cfg.target).name,
        "grown.license": cfg.license,
    }


def _grow(nca, seeds: list[int], frames: int, steps: int, fire_rate: float, std: float) -> torch.Tensor:
    from grown_train.nca import fire_mask, seed_states, step

    with torch.no_grad():
        x = seed_states(seeds, nca.cfg.channels, DEFAULT_STFT.bins, frames, std)
        g = torch.Generator().manual_seed(int(seeds[0]) + 99991)
        for _ in range(steps):
            x = step(nca, x, fire_mask(x.shape[0], x.shape[2], frames, fire_rate, g))
    return x


def target_visible(cfg: StereoTrainConfig) -> torch.Tensor:
    """The target's visible channels ``[4, bins, T]``."""
    audio = load_stereo(Path(cfg.target), DEFAULT_STFT.sample_rate)
    if cfg.target_seconds > 0:
        audio = audio[:, : int(cfg.target_seconds * DEFAULT_STFT.sample_rate)]
    return encode(torch.from_numpy(audio))


def train_stereo(cfg: StereoTrainConfig) -> dict:
    """Train an ``stft-ms`` NCA and export it (checkpoint beside the output: ``OUT.pt``, resumed on re-run)."""
    from grown_train.export import export_onnx
    from grown_train.io import atomic_write, check_writable
    from grown_train.nca import NCA, NCAConfig, fire_mask, seed_states, step

    out = check_writable(Path(cfg.out))
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 17)
    target = target_visible(cfg)
    fps = DEFAULT_STFT.sample_rate / DEFAULT_STFT.hop
    loss_fn = StereoLoss(target, cfg.frames, fps, cfg.weights)
    nca = NCA(NCAConfig(cfg.channels, DEFAULT_STFT.bins, cfg.hidden))
    opt = torch.optim.Adam(nca.parameters(), lr=cfg.lr)
    decay = math.log(cfg.lr_final)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: math.exp(decay * min(i, cfg.iters) / max(cfg.iters, 1)))
    next_seed = cfg.seed * 1_000_003 + 1
    pool = seed_states(list(range(next_seed, next_seed + cfg.pool_size)), cfg.channels, DEFAULT_STFT.bins, cfg.frames, cfg.seed_std)
    next_seed += cfg.pool_size
    history: list[dict[str, float]] = []
    start = 0
    Path(cfg.checkpoint_dir).mkdir(parents=True, exist_ok=True)
    ckpt = Path(cfg.checkpoint_dir) / f"{out.stem}-stftms.pt"
    arch = {"channels": cfg.channels, "hidden": cfg.hidden, "frames": cfg.frames, "pool": cfg.pool_size}
    if ckpt.exists():
        ck = torch.load(ckpt, weights_only=False)
        if ck["arch"] == arch:
            nca.load_state_dict(ck["model"])
            opt.load_state_dict(ck["opt"])
            sched.load_state_dict(ck["sched"])
            pool, history, start, next_seed = ck["pool"], ck["history"], ck["iter"], ck["next_seed"]
            gen.set_state(ck["gen"])

    def save(it: int) -> None:
        payload = {"arch": arch, "model": nca.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                   "pool": pool, "history": history, "iter": it, "next_seed": next_seed, "gen": gen.get_state()}
        atomic_write(ckpt, lambda tmp: torch.save(payload, tmp))

    t0 = time.monotonic()
    done = start
    for it in range(start, cfg.iters):
        if cfg.time_budget and time.monotonic() - t0 > cfg.time_budget * 60:
            break
        idx = torch.randperm(cfg.pool_size, generator=gen)[: cfg.batch]
        x = pool[idx].clone()
        with torch.no_grad():
            worst = int(loss_fn(x)["total"].argmax())
        x[worst] = seed_states([next_seed], cfg.channels, DEFAULT_STFT.bins, cfg.frames, cfg.seed_std)[0]
        next_seed += 1
        steps = int(torch.randint(cfg.min_steps, cfg.max_steps + 1, (1,), generator=gen))
        for _ in range(steps):
            x = step(nca, x, fire_mask(x.shape[0], x.shape[2], x.shape[3], cfg.fire_rate, gen))
        terms = loss_fn(x)
        loss = terms["total"].mean()
        if not torch.isfinite(loss):
            from grown_train.errors import Diverged

            raise Diverged(f"training diverged at iteration {it}; no model written")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for p in nca.parameters():
                if p.grad is not None:
                    p.grad /= p.grad.norm() + 1e-8
        opt.step()
        sched.step()
        pool[idx] = x.detach()
        history.append({"iter": it + 1, **{k: float(v.detach().mean()) for k, v in terms.items()}})
        done = it + 1
        if cfg.log_every and done % cfg.log_every == 0:
            row = " ".join(f"{k}={v:.4f}" for k, v in history[-1].items() if k != "iter")
            print(f"{out.stem} {done}/{cfg.iters} {time.monotonic() - t0:.0f}s {row}", file=sys.stderr, flush=True)
            save(done)
    save(done)
    nca.eval()
    final = _grow(nca, [cfg.seed * 1000 + 1, cfg.seed * 1000 + 2], cfg.frames, cfg.max_steps, cfg.fire_rate, cfg.seed_std)
    if not torch.isfinite(final).all():
        from grown_train.errors import Diverged

        raise Diverged("growing from a fresh seed gives NaN/inf; no model written")
    final_terms = {k: float(v.mean()) for k, v in loss_fn(final).items()}
    export_onnx(nca, out, None, meta=stereo_metadata(nca, cfg))
    energy = target.abs().mean(dim=(0, 1))
    start = int(torch.nn.functional.avg_pool1d(energy[None, None], cfg.frames, stride=1)[0, 0].argmax())
    save_preview(
        out.with_suffix(".png"),
        target[:, :, start : start + cfg.frames].numpy(),
        [g[:4].numpy() for g in final],
        f"{out.stem}: target vs grown ({cfg.max_steps} steps, {len(history)} iterations)",
    )
    return {"out": str(out), "iterations": len(history), "grown_loss": final_terms}


# --------------------------------------------------------------------------- picture


def picture(visible: np.ndarray, height: int = 256, gain: float = 1.0) -> np.ndarray:
    """The research's picture: RGB ``[height, frames, 3]`` uint8 (row 0 = top = highest frequency).

    The absolute values of the four visible channels are the ink amounts of
    C, M, Y, K (M re → cyan, M im → magenta, S re → yellow, S im → black),
    clipped to [0, 1] after ``gain``; CMYK → RGB is ``(1-c)(1-k)`` etc., and the
    colours are then inverted, so silence is black and loud cells are bright.
    Frequency is on a log2 axis from bin 1 (the DC row is drawn at the bottom
    row) up to the top bin; ``src/stft_ms.rs::stft_ms_picture`` is the same function.
    """
    v = np.abs(np.asarray(visible, dtype=np.float64)[:4]) * gain
    v = np.clip(v, 0.0, 1.0)
    bins = v.shape[1]
    rows = picture_rows(bins, height)
    ink = v[:, rows, :]  # [4, height, frames], row 0 = lowest frequency
    c, m, y, k = ink
    rgb = np.stack([(1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)], axis=-1)
    rgb = 1.0 - rgb
    return (np.round(rgb[::-1] * 255.0)).astype(np.uint8)


def save_preview(path: Path, target: np.ndarray, grown: list[np.ndarray], title: str, gain: float = 0.4) -> Path:
    """PNG of the research's picture: a target crop next to grown grids (all visible ``[4, bins, frames]``)."""
    from grown_train.io import atomic_write
    from grown_train.preview import _plt

    plt = _plt()
    panels = [("target", target)] + [(f"grown (seed {i + 1})", g) for i, g in enumerate(grown)]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
    for ax, (name, v) in zip(axes[0], panels):
        ax.imshow(picture(v, height=256, gain=gain), aspect="auto", interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("frame")
        ax.set_yticks([])
    axes[0][0].set_ylabel("frequency (log2)")
    fig.suptitle(title + " — |M re|,|M im|,|S re|,|S im| as C,M,Y,K, inverted", fontsize=9)
    try:
        return atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png", dpi=80))
    finally:
        plt.close(fig)


def picture_rows(bins: int, height: int) -> np.ndarray:
    """Bin drawn in each output row (row 0 = bottom): row 0 is DC, the rest log2-spaced from bin 1 to bins-1."""
    if height < 2:
        return np.zeros(max(height, 0), dtype=np.int64)
    pos = np.arange(height - 1) / max(height - 2, 1)
    b = np.exp2(pos * math.log2(bins - 1))
    return np.concatenate([[0], np.clip(np.floor(b), 1, bins - 1)]).astype(np.int64)


# --------------------------------------------------------------------------- evaluation


def grow_stereo_onnx(path: Path, seeds: list[int], frames: int) -> list[np.ndarray]:
    """Grow each seed with ONNX Runtime as the plugin does; returns the visible channels ``[4, bins, frames]``."""
    import onnxruntime as ort

    from grown_train.nca import fire_mask, seed_states

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    channels, steps = int(meta["grown.channels"]), int(meta["grown.growth_steps"])
    fire = float(meta["grown.fire_rate"])
    std = float(json.loads(meta["grown.seed_state"])["std"])
    out = []
    for s in seeds:
        x = seed_states([s], channels, DEFAULT_STFT.bins, frames, std).numpy()
        g = torch.Generator().manual_seed(int(s) + 99991)
        for _ in range(steps):
            mask = fire_mask(1, DEFAULT_STFT.bins, frames, fire, g).numpy()
            x = sess.run(["next_state"], {"state": x, "update_mask": mask})[0]
        out.append(x[0, :4])
    return out


def evaluate_stereo(paths: list[Path], targets_dir: Path, seeds: int = 3, frames: int = 86) -> str:
    """Markdown section for EVAL.md: stereo models grown from fresh seeds vs their targets."""
    from grown_train.metrics import avg_spectrum_cosine, stereo_similarity

    lines = [
        "",
        SECTION_HEADING,
        "",
        "Grown with ONNX Runtime as the plugin grows them and played through the exact inverse STFT "
        f"(no vocoder), {seeds} seeds from 1, {frames} frames. `side/mid` is the RMS ratio of side to mid "
        "(0 = mono); `avg-spectrum cos` is per mid/side as above; `round trip` is the stereo similarity "
        "(mid and side waveform cosines, see `metrics.stereo_similarity`) of the target's first 10 s after "
        "audio → stft-ms → audio.",
        "",
        "| model | target | row | side/mid RMS | avg-spectrum cos mid | avg-spectrum cos side | round trip |",
        "|---|---|---|---|---|---|---|",
    ]
    for path in paths:
        import onnx

        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        fname = meta.get("grown.target", "").split(" — ")[0].strip()
        audio = load_stereo(Path(targets_dir) / fname, DEFAULT_STFT.sample_rate)
        ref = audio[:, : 10 * DEFAULT_STFT.sample_rate]
        ref = ref[:, : ref.shape[1] - ref.shape[1] % DEFAULT_STFT.hop]
        back = decode(encode(torch.from_numpy(ref))).numpy()
        rt = stereo_similarity(ref, back)
        ms = to_mid_side(torch.from_numpy(ref)).numpy()
        lines.append(
            f"| {path.stem} | {fname} | recording (10 s) | {_ratio(ms):.3f} | 1.000 | 1.000 | {rt:.6f} |"
        )
        grown = [decode(torch.from_numpy(v)).numpy() for v in grow_stereo_onnx(path, list(range(1, seeds + 1)), frames)]
        for i, g in enumerate(grown):
            gms = to_mid_side(torch.from_numpy(g)).numpy()
            cos = avg_spectrum_cosine(g, ref)
            lines.append(
                f"| {path.stem} | {fname} | grown seed {i + 1} | {_ratio(gms):.3f} | {cos['mid']:.3f} | "
                f"{cos['side']:.3f} | – |"
            )
    return "\n".join(lines) + "\n"


#: First line of the stereo section in EVAL.md (``update_eval_report`` replaces from here to the end).
SECTION_HEADING = "## Stereo models (`stft-ms`)"


def update_eval_report(report: Path, models: list[Path], targets_dir: Path) -> Path:
    """Rewrites only the stereo section of an existing EVAL.md (the mel sections are kept as they are)."""
    from grown_train.io import atomic_write

    text = Path(report).read_text(encoding="utf-8") if Path(report).exists() else "# Grown model evaluation\n"
    cut = text.find("\n" + SECTION_HEADING)
    if cut >= 0:
        text = text[:cut]
    text = text.rstrip("\n") + "\n" + evaluate_stereo(models, targets_dir)
    return atomic_write(Path(report), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _ratio(ms: np.ndarray) -> float:
    mid = float(np.sqrt(np.mean(ms[0].astype(np.float64) ** 2)))
    side = float(np.sqrt(np.mean(ms[1].astype(np.float64) ** 2)))
    return side / mid if mid > 0 else float("inf") if side > 0 else 0.0


def is_stereo_model(path: Path) -> bool:
    """True for an ``stft-ms`` ONNX file (the mel evaluation skips those)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not ONNX: let the mel path report it
        return False
    return any(p.key == "grown.representation" and p.value == REPRESENTATION for p in model.metadata_props)


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    from grown_train.errors import GrownError

    d = StereoTrainConfig(target=Path(), out=Path())
    p = argparse.ArgumentParser(prog="python -m grown_train.stftms", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a stereo stft-ms NCA and export ONNX")
    t.add_argument("--target", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    for name in ("iters", "frames", "channels", "hidden", "batch", "pool_size", "min_steps", "max_steps", "seed", "threads"):
        t.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(d, name), help="(%(default)s)")
    for name in ("lr", "lr_final", "fire_rate", "seed_std", "time_budget", "target_seconds"):
        t.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(d, name), help="(%(default)s)")
    for name, value in asdict(d.weights).items():
        t.add_argument(f"--w-{name}", type=float, default=value, help="loss weight (%(default)s)")
    t.add_argument("--credit", default="")
    t.add_argument("--license", default=d.license)
    t.add_argument("--log-every", type=int, default=d.log_every)
    t.add_argument("--checkpoint-dir", type=Path, default=d.checkpoint_dir)
    e = sub.add_parser("eval", help="rewrite only the stereo section of EVAL.md")
    models_dir = Path(__file__).resolve().parents[1]
    e.add_argument("--out", type=Path, default=models_dir / "EVAL.md")
    e.add_argument("--models", type=Path, nargs="*", default=None, help="default: every stft-ms file in models/nca")
    e.add_argument("--targets-dir", type=Path, default=models_dir / "targets")
    args = p.parse_args(argv)
    if args.command == "eval":
        paths = args.models or [q for q in sorted((models_dir / "nca").glob("*.onnx")) if is_stereo_model(q)]
        print(update_eval_report(args.out, paths, args.targets_dir))
        return 0
    weights = StereoWeights(**{k: getattr(args, f"w_{k}") for k in asdict(d.weights)})
    fields = {k: getattr(args, k) for k in asdict(d) if k not in ("weights",)}
    cfg = StereoTrainConfig(**{**fields, "weights": weights})
    try:
        print(json.dumps(train_stereo(cfg)))
    except GrownError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
