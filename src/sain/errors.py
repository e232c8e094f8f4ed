"""Exceptions shared across the package (each a ``ValueError`` with a one-line message)."""

from __future__ import annotations

__all__ = ["CheckpointError"]


class CheckpointError(ValueError):
    """A file that is not a checkpoint, or does not match any known model."""
