"""Growing states from seeds: the one rollout that training, evaluation, the baselines and stft-ms share.

A grown state starts as seed noise (:func:`grown_train.nca.seed_states`, the
contract's ``grown.seed_state``) and takes ``steps`` NCA steps, each under a
fresh fire mask drawn from a generator keyed by the seed, so the same seed
always grows the same state. :func:`grow` runs a torch NCA; :func:`grow_onnx`
runs an exported file with ONNX Runtime exactly as the plugin does, every
setting taken from the file's metadata.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.utils.checkpoint

from grown_train.excerpt import decode_bank, excerpt_states
from grown_train.nca import NCA, fire_mask, seed_states, step

#: Added to a seed to key its fire-mask generator. The seed state and the masks are
#: drawn from two generators; keyed by the same number they would read the same
#: random stream, and the first mask would be a threshold of the seed noise itself.
#: Seeds come in short consecutive runs (1, 2, ...; 1001, 1002, ...), so an offset
#: this large never makes one seed's masks another's seed state. It is not part of the
#: contract (the plugin has its own generator), but every pinned grown value depends on it.
MASK_SEED_OFFSET = 99991


def mask_generator(seed: int) -> torch.Generator:
    """The generator of the fire masks that grow ``seed``."""
    return torch.Generator().manual_seed(int(seed) + MASK_SEED_OFFSET)


def rollout(
    nca: NCA, x: torch.Tensor, steps: int, fire_rate: float, generator: torch.Generator | None,
    grad_checkpoint: bool = False,
) -> torch.Tensor:
    """``steps`` NCA steps of states ``x`` ``[B, C, rows, frames]``, one fresh fire mask per step.

    Differentiable (training calls it under autograd); ``grad_checkpoint`` recomputes
    each step's activations in the backward pass instead of keeping them.
    """
    for _ in range(steps):
        # Masks are drawn on the CPU generator whatever the device, so a seed's masks
        # (and so its growth) do not depend on where training runs.
        mask = fire_mask(x.shape[0], x.shape[2], x.shape[3], fire_rate, generator).to(x.device)
        if grad_checkpoint:
            x = torch.utils.checkpoint.checkpoint(step, nca, x, mask, use_reentrant=False)
        else:
            x = step(nca, x, mask)
    return x


def seed_batch(
    seeds: list[int], channels: int, rows: int, frames: int, std: float, bank: torch.Tensor | None = None
) -> torch.Tensor:
    """Seed states ``[S, C, rows, frames]``: noise, or with ``bank`` a passage of it plus noise."""
    if bank is None:
        return seed_states(seeds, channels, rows, frames, std)
    return excerpt_states(bank, seeds, channels, frames, std, visible=bank.shape[0] // rows)[0]


def grow(
    nca: NCA, seeds: list[int], frames: int, steps: int, fire_rate: float, std: float,
    bank: torch.Tensor | None = None,
) -> torch.Tensor:
    """Grow all ``seeds`` as one batch for ``steps`` steps (no gradient); states ``[S, C, rows, frames]``.

    One mask stream, keyed by the first seed, serves the whole batch: one rollout for
    all seeds, which is what training's previews need. A single seed grows exactly as
    :func:`grow_each` (and the plugin) grows it.
    """
    with torch.no_grad():
        x = seed_batch(seeds, nca.cfg.channels, nca.cfg.n_mels, frames, std, bank)
        return rollout(nca, x, steps, fire_rate, mask_generator(seeds[0]))


def grow_each(
    nca: NCA, seeds: list[int], frames: int, steps: int, fire_rate: float, std: float,
    bank: torch.Tensor | None = None,
) -> torch.Tensor:
    """Grow every seed on its own, with its own masks, as the plugin does; states ``[S, C, rows, frames]``."""
    return torch.cat([grow(nca, [s], frames, steps, fire_rate, std, bank) for s in seeds])


def seed_bank(meta: dict[str, str]) -> torch.Tensor | None:
    """The bank of an excerpt-seeded model from its metadata (None for a noise seed)."""
    if "grown.seed_bank" not in meta:
        return None
    return decode_bank(meta["grown.seed_bank"], visible_channels(meta) * grid_rows(meta))


def visible_channels(meta: dict[str, str]) -> int:
    """Visible channels of a model from its metadata: four for ``stft-ms`` (mid/side re/im), else one."""
    from grown_train.stftms import REPRESENTATION, VISIBLE

    return len(VISIBLE) if meta.get("grown.representation") == REPRESENTATION else 1


def grid_rows(meta: dict[str, str]) -> int:
    """Grid height of a model from its metadata: mel bands, or STFT bins for ``stft-ms``."""
    if meta.get("grown.representation") == "stft-ms":
        return int(json.loads(meta["grown.stft"])["bins"])
    return int(json.loads(meta["grown.mel"])["n_mels"])


def grow_onnx(
    path: Path, seeds: list[int], frames: int, threads: int | None = 1, meta: dict[str, str] | None = None
) -> list[np.ndarray]:
    """Grow each seed with ONNX Runtime as the plugin does; full states ``[C, rows, frames]``, one per seed.

    ``threads``: ONNX Runtime's intra-op threads (None: its default). ``meta``: the
    file's metadata when the caller has it already.
    """
    import onnxruntime as ort

    from grown_train.export import read_metadata

    m = meta if meta is not None else read_metadata(path)
    channels, rows = int(m["grown.channels"]), grid_rows(m)
    steps, unroll = int(m["grown.growth_steps"]), int(m.get("grown.unroll", "1"))
    fire = float(m["grown.fire_rate"])
    std = float(json.loads(m["grown.seed_state"])["std"])
    bank = seed_bank(m)
    opts = None
    if threads is not None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    out = []
    for s in seeds:
        x = seed_batch([s], channels, rows, frames, std, bank).numpy()
        g = mask_generator(s)
        # An unrolled file applies ``unroll`` steps per call and takes one mask per step.
        for _ in range(math.ceil(steps / unroll)):
            mask = fire_mask(unroll, rows, frames, fire, g).numpy()
            x = sess.run(["next_state"], {"state": x, "update_mask": mask})[0]
        out.append(x[0])
    return out
