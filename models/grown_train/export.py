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

import torch

from grown_train import CONTRACT_VERSION
from grown_train.io import atomic_write
from grown_train.mel import DEFAULT_MEL, MelConfig
from grown_train.nca import NCA

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


def metadata(nca: NCA, info: ModelInfo) -> dict[str, str]:
    """The ``metadata_props`` dict (all values strings) for ``nca``."""
    return {
        "grown.contract": str(CONTRACT_VERSION),
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
            {"kind": "normal", "std": float(info.seed_std)}, separators=(",", ":")
        ),
        "grown.train_frames": str(int(info.train_frames)),
        "grown.perception": ",".join(nca.kernels),
        "grown.unroll": "1",
        "grown.target": info.target,
        "grown.license": info.license,
    }


def export_onnx(nca: NCA, path: Path, info: ModelInfo) -> Path:
    """Write ``nca`` as a one-step ONNX model with metadata, atomically."""
    import onnx

    nca = nca.eval()
    c, m = nca.cfg.channels, nca.cfg.n_mels
    state = torch.zeros(1, c, m, TRACE_FRAMES)
    mask = torch.ones(1, 1, m, TRACE_FRAMES)
    dyn = {3: "frames"}

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                nca,
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
        del model.metadata_props[:]
        for key, value in metadata(nca, info).items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        model.producer_name = "grown_train"
        model.doc_string = "Grown NCA: one step of a log-mel spectrogram cellular automaton"
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))

    return atomic_write(path, write)


def read_metadata(path: Path) -> dict[str, str]:
    """``metadata_props`` of an ONNX file as a dict."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}
