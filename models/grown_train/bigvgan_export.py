"""``python -m grown_train export-bigvgan``: a local BigVGAN checkpoint to a contract vocoder ONNX file.

The architecture comes from NVIDIA's ``bigvgan`` package (PyPI); the weights from
a checkpoint directory the user downloaded by hand (``config.json`` +
``bigvgan_generator.pt``, as in NVIDIA's Hugging Face releases). Nothing is
fetched here: ``BigVGAN.from_pretrained`` is never called.

Export recipe: build with ``use_cuda_kernel=False`` (the pure-torch anti-aliased
activation, the CUDA one cannot be traced), load the weights, remove weight norm,
trace with the TorchScript exporter at opset 17 (``mel [1, n_mels, frames]`` ->
``audio [1, 1, frames * hop]``, ``frames`` dynamic), write the contract's
vocoder metadata, then check ONNX Runtime against torch on a random mel.

``python -m grown_train.bigvgan_export models/testdata`` rewrites the tiny
randomly initialised vocoder the Rust tests load.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
from pathlib import Path

from grown_train.errors import GrownError, MissingInput, Unwritable

OPSET = 17
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "bigvgan_generator.pt"
#: Frames used to trace the graph (``frames`` stays dynamic) and to verify it.
TRACE_FRAMES = 8
#: Largest ONNX Runtime vs torch difference accepted for a real checkpoint: -40 dBFS,
#: far above float32 reordering noise (~1e-6) yet far below any real export fault
#: (those give differences of order 1). The tiny test model is held to 1e-4.
VERIFY_TOLERANCE = 1e-2
#: Config keys the generator and the mel metadata need.
REQUIRED_KEYS = (
    "num_mels", "upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel", "resblock",
    "resblock_kernel_sizes", "resblock_dilation_sizes", "activation", "snake_logscale",
    "sampling_rate", "n_fft", "hop_size", "win_size", "fmin",
)
TINY_SEED = 20240611
TINY_ONNX = "tiny_vocoder.onnx"
TINY_REFERENCE = "tiny_vocoder_reference.json"
#: Frames of the reference input in ``tiny_vocoder_reference.json``.
TINY_REFERENCE_FRAMES = 4


class BadCheckpoint(GrownError):
    """The checkpoint directory exists but its config or weights are not a usable BigVGAN generator."""

    exit_code = 11


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the ``export-bigvgan`` subcommand."""
    p.add_argument("--checkpoint", type=Path, required=True,
                   help="directory with config.json and bigvgan_generator.pt (an official BigVGAN release)")
    p.add_argument("--out", type=Path, required=True, help="output .onnx, e.g. models/vocoder/bigvgan.onnx")


def _bigvgan():
    try:
        import bigvgan
        from bigvgan.env import AttrDict
    except ImportError as exc:
        raise GrownError(f"the 'bigvgan' package is not importable ({exc}); pip install bigvgan==2.4.1") from None
    return bigvgan.BigVGAN, AttrDict


def validate_config(h: dict, source: str = CONFIG_FILE) -> None:
    """Raise :class:`BadCheckpoint` unless ``h`` describes a generator this exporter can ship."""
    missing = [k for k in REQUIRED_KEYS if k not in h]
    if missing:
        raise BadCheckpoint(f"{source} lacks {', '.join(missing)}; is this a BigVGAN generator config?")

    def ints(key):
        v = h[key]
        if not isinstance(v, list) or not v or not all(isinstance(x, int) and x > 0 for x in v):
            raise BadCheckpoint(f"{source}: {key} must be a non-empty list of positive integers, got {v!r}")
        return v

    rates, kernels = ints("upsample_rates"), ints("upsample_kernel_sizes")
    if len(rates) != len(kernels):
        raise BadCheckpoint(f"{source}: upsample_rates and upsample_kernel_sizes differ in length")
    if math.prod(rates) != h["hop_size"]:
        raise BadCheckpoint(
            f"{source}: upsample_rates multiply to {math.prod(rates)} but hop_size is {h['hop_size']}"
        )
    for u, k in zip(rates, kernels):
        if k < u or (k - u) % 2:
            raise BadCheckpoint(f"{source}: upsample kernel {k} with rate {u} would not give frames * hop samples")
    ints("resblock_kernel_sizes")
    if len(h["resblock_dilation_sizes"]) != len(h["resblock_kernel_sizes"]):
        raise BadCheckpoint(f"{source}: resblock_dilation_sizes and resblock_kernel_sizes differ in length")
    if str(h["resblock"]) not in ("1", "2"):
        raise BadCheckpoint(f"{source}: resblock must be \"1\" or \"2\", got {h['resblock']!r}")
    if h["activation"] not in ("snake", "snakebeta"):
        raise BadCheckpoint(f"{source}: activation must be snake or snakebeta, got {h['activation']!r}")
    for key in ("num_mels", "upsample_initial_channel", "sampling_rate", "n_fft", "hop_size", "win_size"):
        if not isinstance(h[key], int) or h[key] <= 0:
            raise BadCheckpoint(f"{source}: {key} must be a positive integer, got {h[key]!r}")
    if h["upsample_initial_channel"] % (2 ** len(rates)):
        raise BadCheckpoint(f"{source}: upsample_initial_channel must halve {len(rates)} times")


def mel_config(h: dict):
    """The checkpoint's mel front end as Grown's :class:`MelConfig` (``fmax: null`` means sr/2, as in librosa)."""
    from grown_train.mel import MelConfig

    sr = int(h["sampling_rate"])
    fmax = h.get("fmax")
    return MelConfig(
        sample_rate=sr, n_fft=int(h["n_fft"]), hop=int(h["hop_size"]), win=int(h["win_size"]),
        n_mels=int(h["num_mels"]), fmin=float(h["fmin"] or 0.0), fmax=float(sr / 2 if fmax is None else fmax),
    )


def read_config(folder: Path) -> dict:
    """Validated ``config.json`` of a checkpoint directory (raises a one-line :class:`GrownError`)."""
    folder = Path(folder)
    if not folder.exists():
        raise MissingInput(f"checkpoint directory not found: {folder}")
    if not folder.is_dir():
        raise MissingInput(f"--checkpoint must be a directory holding {CONFIG_FILE} and {WEIGHTS_FILE}: {folder}")
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise MissingInput(
                f"{folder} has no {name}; download an official BigVGAN release (see models/README.md)"
            )
    try:
        h = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadCheckpoint(f"{folder / CONFIG_FILE} is not valid JSON ({exc})") from None
    if not isinstance(h, dict):
        raise BadCheckpoint(f"{folder / CONFIG_FILE} must hold a JSON object")
    validate_config(h, str(folder / CONFIG_FILE))
    return h


def build_generator(h: dict, state_dict: dict | None = None):
    """BigVGAN generator for inference: pure-torch activations, weights loaded, weight norm removed."""
    import warnings

    BigVGAN, AttrDict = _bigvgan()
    h = AttrDict(dict(h))
    try:
        with warnings.catch_warnings():
            # The package still uses the deprecated (but working) torch.nn.utils.weight_norm.
            warnings.simplefilter("ignore", FutureWarning)
            model = BigVGAN(h, use_cuda_kernel=False)
    except Exception as exc:  # the package raises assorted errors for inconsistent configs
        raise BadCheckpoint(f"config.json does not build a BigVGAN generator: {type(exc).__name__}: {exc}") from None
    quiet = contextlib.redirect_stdout(io.StringIO())
    if state_dict is not None:
        try:
            model.load_state_dict(state_dict)
        except RuntimeError:
            # Checkpoints saved after weight-norm removal have plain weights.
            with quiet:
                model.remove_weight_norm()
            try:
                model.load_state_dict(state_dict)
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()
                detail = " ".join(first[1:3]) if len(first) > 1 else first[0]
                raise BadCheckpoint(f"{WEIGHTS_FILE} does not match config.json: {detail[:300]}") from None
    with contextlib.redirect_stdout(io.StringIO()):
        model.remove_weight_norm()
    model.eval()
    return model


def exportable(model):
    """A copy of ``model`` whose anti-aliasing filters are constant per-channel kernels.

    The package's resamplers expand a ``[1, 1, K]`` filter to the input's channel
    count at run time; under tracing with a dynamic length the exporter loses that
    kernel's shape ("convolution for kernel of unknown shape"). Channel counts are
    fixed by the architecture, so the expanded kernels are stored as buffers; the
    arithmetic is unchanged (verified against the original model after export).
    """
    import copy

    import torch
    import torch.nn.functional as F
    from bigvgan.alias_free_activation.torch.act import Activation1d

    class FixedUpSample(torch.nn.Module):
        def __init__(self, up, channels: int):
            super().__init__()
            self.ratio, self.pad = up.ratio, up.pad
            self.pad_left, self.pad_right = up.pad_left, up.pad_right
            self.channels = channels
            self.register_buffer("weight", up.filter.expand(channels, -1, -1).clone())

        def forward(self, x):
            x = F.pad(x, (self.pad, self.pad), mode="replicate")
            x = self.ratio * F.conv_transpose1d(x, self.weight, stride=self.ratio, groups=self.channels)
            return x[..., self.pad_left : -self.pad_right]

    class FixedDownSample(torch.nn.Module):
        def __init__(self, down, channels: int):
            super().__init__()
            lp = down.lowpass
            self.pad_left, self.pad_right, self.stride = lp.pad_left, lp.pad_right, lp.stride
            self.padding, self.padding_mode = lp.padding, lp.padding_mode
            self.channels = channels
            self.register_buffer("weight", lp.filter.expand(channels, -1, -1).clone())

        def forward(self, x):
            if self.padding:
                x = F.pad(x, (self.pad_left, self.pad_right), mode=self.padding_mode)
            return F.conv1d(x, self.weight, stride=self.stride, groups=self.channels)

    out = copy.deepcopy(model)
    for module in out.modules():
        if isinstance(module, Activation1d):
            channels = int(module.act.alpha.shape[0])
            module.upsample = FixedUpSample(module.upsample, channels)
            module.downsample = FixedDownSample(module.downsample, channels)
    return out.eval()


def load_generator(folder: Path):
    """``(model, config)`` from a checkpoint directory."""
    import torch

    h = read_config(folder)
    path = Path(folder) / WEIGHTS_FILE
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors all mean "not a checkpoint"
        raise BadCheckpoint(f"cannot read {path}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    state = ck.get("generator", ck) if isinstance(ck, dict) else None
    if not isinstance(state, dict) or not state:
        raise BadCheckpoint(f"{path} holds no generator state dict")
    return build_generator(h, state), h


def metadata(h: dict, source: str) -> dict[str, str]:
    """The vocoder metadata of the contract (models/README.md, "Vocoder files"), all strings."""
    from grown_train import CONTRACT_VERSION

    return {
        "grown.contract": str(CONTRACT_VERSION),
        "grown.kind": "vocoder",
        "grown.mel": mel_config(h).to_json(),
        "grown.vocoder": "bigvgan",
        "grown.source": source,
        "grown.license": "MIT (NVIDIA BigVGAN)",
    }


def export_onnx(model, h: dict, out: Path, source: str) -> Path:
    """Trace ``model`` to ``out`` (atomically) with the contract's names, dynamic frames and metadata."""
    import warnings

    import onnx
    import torch

    from grown_train.export import stamp
    from grown_train.io import atomic_write

    mel = torch.randn(1, int(h["num_mels"]), TRACE_FRAMES, generator=torch.Generator().manual_seed(0)) - 5.0

    def write(tmp: Path) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                exportable(model), (mel,), str(tmp),
                input_names=["mel"], output_names=["audio"], opset_version=OPSET, dynamo=False,
                dynamic_axes={"mel": {2: "frames"}, "audio": {2: "samples"}}, do_constant_folding=True,
            )
        proto = onnx.load(str(tmp))
        stamp(proto, metadata(h, source),
              "Grown vocoder: BigVGAN, natural-log mel [1, n_mels, frames] -> audio [1, 1, frames*hop]")
        onnx.save(proto, str(tmp))

    return atomic_write(out, write)


def verify(model, path: Path, h: dict, frames: int = TRACE_FRAMES + 5, seed: int = 1) -> float:
    """Max |ORT - torch| on a random log-mel of a length the trace never saw; checks the output shape."""
    import numpy as np
    import onnxruntime as ort
    import torch

    mel = torch.randn(1, int(h["num_mels"]), frames, generator=torch.Generator().manual_seed(seed)) * 2.0 - 5.0
    with torch.no_grad():
        want = model(mel).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(["audio"], {"mel": mel.numpy()})[0]
    expect = (1, 1, frames * int(h["hop_size"]))
    if got.shape != expect or want.shape != expect:
        raise BadCheckpoint(f"exported vocoder gives {got.shape} (torch {want.shape}), contract needs {expect}")
    return float(np.max(np.abs(got - want)))


def prepare_out(out: Path) -> Path:
    """Create the output's folder if needed, then fail early if the file cannot be written."""
    from grown_train.io import check_writable

    out = Path(out)
    if out.suffix != ".onnx":
        raise Unwritable(f"--out must end in .onnx: {out}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Unwritable(f"cannot create output directory {out.parent}: {exc.strerror or exc}") from None
    return check_writable(out)


def export_checkpoint(folder: Path, out: Path) -> dict:
    """The whole command: returns a summary dict."""
    out = prepare_out(out)
    model, h = load_generator(folder)
    export_onnx(model, h, out, Path(folder).resolve().name)
    diff = verify(model, out, h)
    if not diff <= VERIFY_TOLERANCE:
        out.unlink(missing_ok=True)
        raise BadCheckpoint(f"ONNX Runtime differs from torch by {diff:.2e} (> {VERIFY_TOLERANCE}); nothing written")
    return {
        "out": str(out),
        "mel": json.loads(mel_config(h).to_json()),
        "parameters": sum(p.numel() for p in model.parameters()),
        "max_abs_diff": diff,
        "bytes": out.stat().st_size,
    }


def run(args) -> int:
    summary = export_checkpoint(args.checkpoint, args.out)
    print(json.dumps(summary))
    return 0


# --- the tiny test vocoder -------------------------------------------------------

#: The mel keys of a BigVGAN ``config.json`` that match the contract's default mel
#: front end (``grown_train.mel.DEFAULT_MEL``): what the 22 kHz 80-band official
#: configs, the bench's base model and the tiny test vocoder all carry.
DEFAULT_MEL_KEYS = {
    "num_mels": 80,
    "n_fft": 1024,
    "hop_size": 256,
    "win_size": 1024,
    "sampling_rate": 22050,
    "fmin": 0,
    "fmax": 8000,
}


def tiny_config() -> dict:
    """A few-thousand-parameter generator with the default mel front end (22.05 kHz, 80 bands, hop 256)."""
    return {
        "resblock": "1",
        "upsample_rates": [4, 4, 4, 4],
        "upsample_kernel_sizes": [8, 8, 8, 8],
        "upsample_initial_channel": 32,
        "resblock_kernel_sizes": [3],
        "resblock_dilation_sizes": [[1, 3]],
        "activation": "snakebeta",
        "snake_logscale": True,
        "use_tanh_at_final": True,
        "use_bias_at_final": True,
        **DEFAULT_MEL_KEYS,
    }


def tiny_state_dict(h: dict | None = None, seed: int = TINY_SEED) -> dict:
    """Deterministic random weights *with* weight norm, laid out like an official checkpoint.

    The package initialises convolutions with std 0.01, which makes the output
    almost silent; these weights are variance-preserving so the test compares a
    signal of ordinary amplitude.
    """
    import warnings

    import torch

    BigVGAN, AttrDict = _bigvgan()
    h = AttrDict(dict(h or tiny_config()))
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = BigVGAN(h, use_cuda_kernel=False)
    g = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    out = {}
    # Directions first: each magnitude (weight_g) is derived from its direction.
    for key, value in state.items():
        if key.endswith(".weight_v"):
            # Conv1d is [out, in, k]; ConvTranspose1d is [in, out, k]: fan-in is in * k either way.
            fan_in = (value.shape[0] if ".ups." in f".{key}" else value.shape[1]) * value.shape[2]
            out[key] = torch.randn(value.shape, generator=g) * (0.5 / fan_in) ** 0.5
    for key, value in state.items():
        if key.endswith(".weight_v"):
            continue
        if key.endswith(".weight_g"):
            # weight_norm(dim=0) keeps one magnitude per leading index: the norm over the other dims.
            v = out[key[: -len("_g")] + "_v"]
            gain = 1.0 + 0.2 * torch.rand(value.shape, generator=g)
            out[key] = v.norm(dim=(1, 2), keepdim=True).reshape(value.shape) * gain
        elif key.endswith(".alpha") or key.endswith(".beta"):
            out[key] = torch.randn(value.shape, generator=g) * 0.3
        elif key.endswith(".bias"):
            out[key] = torch.randn(value.shape, generator=g) * 0.05
        else:  # the fixed anti-aliasing filters
            out[key] = value.clone()
    return out


def write_checkpoint(folder: Path, h: dict, state: dict) -> Path:
    """A checkpoint directory in the official layout (``config.json`` + ``{"generator": ...}``)."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(json.dumps(h, indent=2) + "\n")
    torch.save({"generator": state}, folder / WEIGHTS_FILE)
    return folder


def tiny_reference_mel(frames: int = TINY_REFERENCE_FRAMES):
    """The fixed, log-mel-like input of the reference file (float32-exact values)."""
    import torch

    g = torch.Generator().manual_seed(7)
    return (torch.randn(1, 80, frames, generator=g) * 2.0 - 5.0).round(decimals=4)


def write_tiny_testdata(folder: Path) -> list[Path]:
    """Rewrite ``tiny_vocoder.onnx`` and its input/output reference for the Rust BigVGAN test."""
    import tempfile

    import torch

    from grown_train.io import atomic_write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    h = tiny_config()
    with tempfile.TemporaryDirectory() as tmp:
        ck = write_checkpoint(Path(tmp) / "tiny_bigvgan", h, tiny_state_dict(h))
        model, h = load_generator(ck)
        onnx_path = export_onnx(model, h, folder / TINY_ONNX, "tiny_bigvgan (random weights, seed "
                                f"{TINY_SEED}; grown_train.bigvgan_export.tiny_config)")
    mel = tiny_reference_mel()
    with torch.no_grad():
        audio = model(mel)[0, 0]
    ref = {
        "description": (
            "Input/output pair of tiny_vocoder.onnx (random BigVGAN weights, not a real vocoder): "
            "mel is [n_mels][frames] natural-log mel, audio is frames*hop samples from PyTorch float32. "
            "ONNX Runtime should match within tolerance."
        ),
        "tolerance": 1e-4,
        "n_mels": 80,
        "frames": TINY_REFERENCE_FRAMES,
        "hop": 256,
        "mel": [[float(f"{v:.9g}") for v in row] for row in mel[0].tolist()],
        "audio": [float(f"{v:.9g}") for v in audio.tolist()],
    }
    ref_path = atomic_write(folder / TINY_REFERENCE, lambda tmp: tmp.write_text(json.dumps(ref) + "\n"))
    return [onnx_path, ref_path]


if __name__ == "__main__":
    for written in write_tiny_testdata(Path(sys.argv[1] if len(sys.argv) > 1 else "testdata")):
        print(written)
