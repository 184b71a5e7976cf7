"""``python -m grown_train export-bigvgan``: BigVGAN vocoder to ONNX (not implemented yet)."""

from __future__ import annotations

from grown_train.errors import NotReady

#: Tells the test suite this module is still a placeholder; delete with the stub.
STUB = True


def run(args) -> int:
    raise NotReady("'export-bigvgan' is not implemented yet (grown_train/bigvgan_export.py)")
