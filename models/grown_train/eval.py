"""``python -m grown_train eval``: scoring a model against its target (not implemented yet)."""

from __future__ import annotations

from grown_train.errors import NotReady

#: Tells the test suite this module is still a placeholder; delete with the stub.
STUB = True


def run(args) -> int:
    raise NotReady("'eval' is not implemented yet (grown_train/eval.py)")
