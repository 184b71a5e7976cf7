"""ONNX export of one NCA step, with the contract's metadata.

The legacy TorchScript exporter (``dynamo=False``) at opset 17 is used on purpose:
the dynamo exporter asked for 17 silently upgrades circular padding to opset 18.
Our graph spells circular padding as Slice+Concat so opset 17 suffices.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from grown_train import CONTRACT_VERSION, EXCERPT_CONTRACT_VERSION
from grown_train.io import atomic_write
from grown_train.mel import DEFAULT_MEL, MelConfig
from grown_train.nca import BAND_STRIDE, FIXED_KERNELS, LONG, NCA, NCAConfig, circular_time_pad, fixed_kernel

OPSET = 17
#: Frames used to trace the graph; ``frames`` stays a dynamic axis.
TRACE_FRAMES = 32
#: Every key the contract requires, in the README's order.
METADATA_KEYS = (
    "grown.contract",
    "grown.kind",
    "grown.representation",
    "grown.channels",
    "grown.spec_channel",
    "grown.spec_scale",
    "grown.spec_offset",
    "grown.mel",
    "grown.growth_steps",
    "grown.fire_rate",
    "grown.seed_state",
    "grown.train_frames",
    "grown.perception",
    "grown.unroll",
    "grown.target",
    "grown.license",
)


@dataclass(frozen=True)
class ModelInfo:
    """What the plugin needs to know to run a model (becomes ``metadata_props``)."""

    #: Maps the spectrogram channel to natural-log mel (``ln = scale*s + offset``).
    spec_scale: float
    #: See ``spec_scale``.
    spec_offset: float
    #: Steps the model was trained to grow from a seed state.
    growth_steps: int
    #: Fire probability the model was trained with.
    fire_rate: float
    #: Standard deviation of the N(0, std^2) seed state.
    seed_std: float
    #: Width of the training grid in frames.
    train_frames: int
    #: Human-readable training target and its author.
    target: str
    #: Licence of the training target.
    license: str
    #: Index of the visible spectrogram channel.
    spec_channel: int = 0
    #: Mel front end the spectrogram channel is expressed in.
    mel: MelConfig = DEFAULT_MEL
    #: ``grown.seed_bank`` (:func:`grown_train.excerpt.encode_bank`) of a model whose seed is
    #: a passage of its recording; None for a model grown from noise.
    seed_bank: str | None = None


def metadata(nca: NCA, info: ModelInfo) -> dict[str, str]:
    """The ``metadata_props`` dict (all values strings) for ``nca``."""
    excerpt = info.seed_bank is not None
    meta = {
        "grown.contract": str(EXCERPT_CONTRACT_VERSION if excerpt else CONTRACT_VERSION),
        "grown.kind": "nca",
        "grown.representation": "mel",
        "grown.channels": str(nca.cfg.channels),
        "grown.spec_channel": str(info.spec_channel),
        "grown.spec_scale": repr(float(info.spec_scale)),
        "grown.spec_offset": repr(float(info.spec_offset)),
        "grown.mel": info.mel.to_json(),
        "grown.growth_steps": str(int(info.growth_steps)),
        "grown.fire_rate": repr(float(info.fire_rate)),
        "grown.seed_state": json.dumps(
            {"kind": "excerpt" if excerpt else "normal", "std": float(info.seed_std)}, separators=(",", ":")
        ),
        "grown.train_frames": str(int(info.train_frames)),
        "grown.perception": ",".join(nca.kernels),
        "grown.unroll": "1",
        "grown.target": info.target,
        "grown.license": info.license,
    }
    if excerpt:
        meta["grown.seed_bank"] = info.seed_bank
    return meta


#: The update MLP's input channels are padded to a multiple of this: ONNX
#: Runtime's blocked (NCHWc) CPU convolution kernels only take channel counts
#: that are multiples of 8, and 16 channels x 6 kernels + 1 ramp = 97 is not.
FEATURE_CHANNEL_MULTIPLE = 8


def pad_feature_channels(model, multiple: int = FEATURE_CHANNEL_MULTIPLE) -> bool:
    """Pad the perception features to a multiple of ``multiple`` channels, in place.

    A pure graph rewrite that leaves the step's output bit for bit unchanged:
    the frequency-ramp constant (the last feature, broadcast by ``Expand``)
    gains zero channels, and the first 1x1 convolution's weight gains matching
    zero input columns. Nothing trained changes and the contract (inputs,
    outputs, metadata) is untouched; ONNX Runtime then runs the MLP with its
    blocked kernels (about a fifth less step time on a 2-core x86 CPU).
    Returns whether the graph was changed (False when it already fits or does
    not have the expected Concat -> Conv shape).
    """
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    for conv in graph.node:
        if conv.op_type != "Conv" or len(conv.input) < 2 or conv.input[1] not in inits:
            continue
        weight = inits[conv.input[1]]
        if list(weight.dims[2:]) != [1, 1]:
            continue
        cat = producer.get(conv.input[0])
        if cat is None or cat.op_type != "Concat":
            continue
        last = producer.get(cat.input[-1])
        if last is None or last.op_type != "Expand" or last.input[0] not in inits:
            continue
        w = numpy_helper.to_array(weight)
        ramp = numpy_helper.to_array(inits[last.input[0]])
        extra = (-w.shape[1]) % multiple
        if extra == 0 or ramp.ndim != 4 or ramp.shape[1] != 1:
            return False
        ramp = np.concatenate([ramp, np.zeros((1, extra, *ramp.shape[2:]), ramp.dtype)], axis=1)
        w = np.concatenate([w, np.zeros((w.shape[0], extra, *w.shape[2:]), w.dtype)], axis=1)
        inits[last.input[0]].CopyFrom(numpy_helper.from_array(ramp, last.input[0]))
        weight.CopyFrom(numpy_helper.from_array(w, conv.input[1]))
        return True
    return False


#: Channels ONNX Runtime's blocked (NCHWc) CPU kernels group together: 16 with
#: AVX-512, 8 with AVX2. When every feature block of the exported step is a
#: multiple of it, each perception kernel runs as a blocked depthwise
#: convolution writing straight into that layout, the features are concatenated
#: there, and the update MLP reads them without a layout change. A traced
#: step concatenates plain-layout features and reorders all ~100 channels
#: every step (about a quarter of its time on a 2-core x86 CPU).
BLOCK = 16


class BlockedStep(torch.nn.Module):
    """One step of ``nca`` with its features laid out in blocks of :data:`BLOCK` channels.

    The maths of :func:`grown_train.nca.step` in another order, so that ONNX Runtime runs
    the whole step in its blocked layout:

    * each fixed 3x3 kernel (``id`` included) is its own depthwise convolution over all
      channels, instead of one convolution with four outputs per channel;
    * ``time9`` is its own depthwise convolution, as in ``perceive``;
    * the tail block is one depthwise 9x1 convolution of ``[state, band, ramp, zeros]``:
      ``freq9`` on the state channels and a centre tap of 1 on the others, which copies them;
    * the update MLP's first layer takes its columns in that order (zero for padding).

    Features equal ``perceive``'s up to rounding (the first layer sums them in another
    order), so a step differs from the traced one by about one unit in the last place.
    """

    def __init__(self, nca: NCA):
        super().__init__()
        c, kernels = nca.cfg.channels, nca.kernels
        self.channels = c
        self.fixed = [k for k in kernels if k in FIXED_KERNELS]
        self.has_time = "time9" in kernels
        self.has_freq = "freq9" in kernels
        self.has_band = "band9" in kernels
        # Column of perceive()'s feature stack each blocked feature takes (-1: padding).
        n_fixed = len(self.fixed)
        cols: list[int] = []
        for k in range(n_fixed):
            cols += [ch * n_fixed + k for ch in range(c)]
        offset = c * n_fixed
        time_cols = list(range(offset, offset + c)) if self.has_time else []
        offset += c if self.has_time else 0
        freq_cols = list(range(offset, offset + c)) if self.has_freq else []
        offset += c if self.has_freq else 0
        band_cols = list(range(offset, offset + c)) if self.has_band else []
        offset += c if self.has_band else 0
        ramp_col = offset
        cols += time_cols
        tail = freq_cols + band_cols + [ramp_col]
        self.pad = -len(tail) % BLOCK
        cols += tail + [-1] * self.pad
        #: For each blocked feature, the column of ``perceive``'s stack it is (-1: padding).
        self.cols = cols
        for name in self.fixed:
            self.register_buffer(f"fixed_{name}", fixed_kernel(name).expand(c, 1, 3, 3).clone())
        if self.has_time:
            self.register_buffer("time_w", nca.time_w.detach().clone())
        if self.has_band:
            self.register_buffer("band_w", nca.band_w.detach().clone())
        # Tail: freq9 on the state, a centre tap that copies band and ramp channels.
        n_tail = len(tail) + self.pad
        tail_w = torch.zeros(n_tail, 1, LONG, 1)
        tail_w[len(freq_cols) : len(tail), 0, LONG // 2, 0] = 1.0
        if self.has_freq:
            tail_w[: len(freq_cols)] = nca.freq_w.detach()
        self.register_buffer("tail_w", tail_w)
        ramp = torch.zeros(1, 1 + self.pad, nca.cfg.n_mels, 1)
        ramp[:, :1] = nca.ramp
        self.register_buffer("ramp", ramp)
        w1 = nca.w1.weight.detach()
        cols_t = torch.tensor([max(j, 0) for j in cols])
        keep = torch.tensor([j >= 0 for j in cols], dtype=w1.dtype).reshape(1, -1, 1, 1)
        self.w1 = torch.nn.Conv2d(len(cols), w1.shape[0], 1)
        self.w1.weight.data = (w1[:, cols_t] * keep).contiguous()
        self.w1.bias.data = nca.w1.bias.detach().clone()
        self.w2 = torch.nn.Conv2d(w1.shape[0], c, 1, bias=False)
        self.w2.weight.data = nca.w2.weight.detach().clone()

    @staticmethod
    def fits(nca: NCA) -> bool:
        """Whether ``nca``'s channel count fills whole blocks (stereo models with 12 do not)."""
        return nca.cfg.channels % BLOCK == 0

    def forward(self, state: torch.Tensor, update_mask: torch.Tensor) -> torch.Tensor:
        c = self.channels
        feats = []
        if self.fixed:
            xp = circular_time_pad(state, 1)
            feats += [F.conv2d(xp, getattr(self, f"fixed_{k}"), padding=(1, 0), groups=c) for k in self.fixed]
        if self.has_time:
            feats.append(F.conv2d(circular_time_pad(state, LONG // 2), self.time_w, groups=c))
        shape = (state.shape[0], -1, state.shape[2], state.shape[3])
        tail = [state] if self.has_freq else []
        if self.has_band:
            env = circular_time_pad(state.mean(dim=2, keepdim=True), BAND_STRIDE * (LONG // 2))
            tail.append(F.conv2d(env, self.band_w, groups=c, dilation=(1, BAND_STRIDE)).expand(*shape))
        tail.append(self.ramp.expand(state.shape[0], self.ramp.shape[1], state.shape[2], state.shape[3]))
        tail = torch.cat(tail, dim=1)
        feats.append(F.conv2d(tail, self.tail_w, padding=(LONG // 2, 0), groups=tail.shape[1]))
        dx = self.w2(torch.relu(self.w1(torch.cat(feats, dim=1))))
        return state + dx * update_mask


def export_onnx(
    nca: NCA, path: Path, info: ModelInfo | None, meta: dict[str, str] | None = None, blocked: bool | None = None
) -> Path:
    """Write ``nca`` as a one-step ONNX model with metadata, atomically.

    ``meta`` replaces the mel metadata built from ``info`` (stereo ``stft-ms``
    models declare their own keys, see ``stftms_train.stereo_metadata``).
    ``blocked``: the :class:`BlockedStep` layout (default: whenever it fits) or
    the traced ``perceive`` order with padded features.
    """
    import onnx

    nca = nca.eval()
    c, m = nca.cfg.channels, nca.cfg.n_mels
    blocked = BlockedStep.fits(nca) if blocked is None else blocked and BlockedStep.fits(nca)
    step_module = BlockedStep(nca).eval() if blocked else nca
    state = torch.zeros(1, c, m, TRACE_FRAMES)
    mask = torch.ones(1, 1, m, TRACE_FRAMES)
    dyn = {3: "frames"}

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                step_module,
                (state, mask),
                str(tmp),
                input_names=["state", "update_mask"],
                output_names=["next_state"],
                opset_version=OPSET,
                dynamo=False,
                dynamic_axes={"state": dyn, "update_mask": dyn, "next_state": dyn},
                do_constant_folding=True,
            )
        model = onnx.load(str(tmp))
        if not blocked:
            pad_feature_channels(model)
        stamp(model, meta if meta is not None else metadata(nca, info),
              "Grown NCA: one step of a log-mel spectrogram cellular automaton")
        onnx.save(model, str(tmp))

    return atomic_write(path, write)


def stamp(model, meta: dict[str, str], doc: str) -> None:
    """Replace ``model``'s metadata with ``meta``, name the producer and check the graph, in place.

    Every file this package writes (NCA and vocoder) goes through here, so each carries
    exactly the contract's keys and nothing stale from the traced export.
    """
    import onnx

    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "grown_train"
    model.doc_string = doc
    onnx.checker.check_model(model)


def target_recording(meta: dict[str, str], targets_dir: Path, model_name: str) -> Path:
    """The recording a model was trained on: ``grown.target``'s file name (before " — ") in ``targets_dir``."""
    from grown_train.errors import MissingInput

    credit = meta.get("grown.target", "")
    fname = credit.split(" — ")[0].strip()
    target = Path(targets_dir) / fname
    if not fname or not target.is_file():
        raise MissingInput(f"target of {model_name} not found: {target} (from grown.target {credit!r})")
    return target


def read_metadata(source) -> dict[str, str]:
    """``metadata_props`` of an ONNX file (a path, or a model already loaded) as a dict."""
    import onnx

    model = source if isinstance(source, onnx.ModelProto) else onnx.load(str(source), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def nca_from_onnx(path: Path, traced_only: bool = False) -> NCA:
    """The NCA of a model file this exporter wrote, in either layout.

    Reads the learnt weights back by their parameter names (a blocked file's first
    layer is put back in ``perceive``'s column order), so a shipped model can be
    written again in another layout without its training checkpoint.
    ``traced_only`` refuses a file already in the blocked layout.
    """
    import onnx
    from onnx import numpy_helper

    from grown_train.errors import CheckpointMismatch

    model = onnx.load(str(path))
    meta = read_metadata(model)
    w = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
    if "tail_w" in w and traced_only:
        raise CheckpointMismatch(f"{path}: already re-laid out (blocked layout)")
    needed = ["w1.weight", "w1.bias", "w2.weight", "ramp"]
    if any(name not in w for name in needed):
        raise CheckpointMismatch(f"{path}: not a traced NCA step (needs initializers {', '.join(needed)})")
    cfg = NCAConfig(
        channels=int(meta["grown.channels"]),
        n_mels=int(w["ramp"].shape[2]),
        hidden=int(w["w1.weight"].shape[0]),
        perception=meta["grown.perception"],
    )
    nca = NCA(cfg)
    n_feat = nca.w1.weight.shape[1]
    w1 = w["w1.weight"][:, :n_feat]
    if "tail_w" in w:
        layout = BlockedStep(nca)
        w1 = torch.zeros_like(nca.w1.weight)
        for j, col in enumerate(layout.cols):
            if col >= 0:
                w1[:, col] = w["w1.weight"][:, j]
        if layout.has_freq:
            w["freq_w"] = w["tail_w"][:cfg.channels]
        w["ramp"] = w["ramp"][:, :1]
    state = {"w1.weight": w1, "w1.bias": w["w1.bias"], "w2.weight": w["w2.weight"]}
    for name in ("time_w", "freq_w", "band_w"):
        if getattr(nca, name) is not None:
            if name not in w:
                raise CheckpointMismatch(f"{path}: perception {cfg.perception} but no {name} initializer")
            state[name] = w[name]
    missing, _ = nca.load_state_dict(state, strict=False)
    if any(not k.endswith(("fixed_w", "ramp")) for k in missing):
        raise CheckpointMismatch(f"{path}: weights missing: {missing}")
    if not torch.equal(w["ramp"][:, :1], nca.ramp):
        raise CheckpointMismatch(f"{path}: its frequency ramp is not this package's")
    return nca.eval()


def relayout(path: Path) -> bool:
    """Rewrites a traced model file as a :class:`BlockedStep` graph, metadata unchanged.

    Returns False (file untouched) when the model does not fill whole blocks.
    """
    nca = nca_from_onnx(path, traced_only=True)
    if not BlockedStep.fits(nca):
        return False
    export_onnx(nca, path, None, meta=read_metadata(path))
    return True
