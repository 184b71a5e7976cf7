"""User-facing failures: one clear line on stderr and a specific exit code each.

The codes are documented in models/README.md ("Train your own") so scripts can
tell a bad recording from a diverged run.
"""

from __future__ import annotations


class GrownError(Exception):
    """Base class: ``str(err)`` is the one-line message, ``exit_code`` the process status."""

    exit_code = 1


class BadOption(GrownError):
    """Options that argparse accepts one by one but that contradict each other."""

    exit_code = 2


class MissingInput(GrownError):
    """The target file does not exist (or is not a file)."""

    exit_code = 3


class NotAudio(GrownError):
    """The target exists but no audio decoder could read it."""

    exit_code = 4


class SilentInput(GrownError):
    """The target decodes but carries no signal to learn from."""

    exit_code = 5


class TooShort(GrownError):
    """The target has fewer mel frames than the training grid."""

    exit_code = 6


class Unwritable(GrownError):
    """The output (or checkpoint) location cannot be written."""

    exit_code = 7


class Diverged(GrownError):
    """Training produced a non-finite loss; no model is written."""

    exit_code = 8


class CheckpointMismatch(GrownError):
    """A checkpoint for this output exists but was made with another configuration."""

    exit_code = 9


class NotReady(GrownError):
    """A subcommand whose implementation has not landed yet."""

    exit_code = 10
