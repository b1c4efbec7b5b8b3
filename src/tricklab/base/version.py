"""The installed version of tricklab (``0.0.0`` when run from a source tree)."""

from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("tricklab")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"
