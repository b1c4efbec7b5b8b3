"""Choose the Keras backend before Keras is imported, and import it lazily.

Keras fixes its backend at import time from ``KERAS_BACKEND``. tricklab defaults to JAX (the
fastest backend for small models on a CPU, see README) unless the user chose another with
``--backend`` or the environment variable. Nothing else in tricklab imports Keras at module level,
so reading and checking a study file stays fast.
"""

from __future__ import annotations

import functools
import os
import sys
from types import ModuleType

from tricklab.base.errors import TricklabError

BACKENDS = ("jax", "tensorflow", "torch")
DEFAULT_BACKEND = "jax"

# Quiet TensorFlow's C++ start-up chatter; the user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def select(backend: str | None = None) -> str:
    """Record the backend to use; an error if Keras already runs on another one."""
    wanted = backend or os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND
    if wanted not in BACKENDS:
        raise TricklabError(f"unknown backend '{wanted}'. Expected one of: {', '.join(BACKENDS)}.")
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != wanted:
            raise TricklabError(
                f"Keras is already running on the '{current}' backend in this process; "
                f"it cannot switch to '{wanted}'. Start a new Python process with "
                f"KERAS_BACKEND={wanted}."
            )
    os.environ["KERAS_BACKEND"] = wanted
    if wanted != "tensorflow":
        # keras.utils.set_random_seed also seeds TensorFlow when it is installed; on the other
        # backends TF only serves that, so keep its oneDNN start-up notice off the terminal.
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    return wanted


def name() -> str:
    """The backend tricklab uses (or will use) in this process."""
    if "keras" in sys.modules:
        current: str = sys.modules["keras"].backend.backend()
        return current
    return os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND


def keras() -> ModuleType:
    """Import Keras on the selected backend."""
    if "keras" not in sys.modules:
        select(None)
    try:
        import keras
    except ImportError as exc:  # e.g. tensorflow selected but the extra not installed
        raise TricklabError(
            f"Keras could not start on the '{name()}' backend: {exc}. "
            f"Install it with: pip install 'tricklab[{name()}]'."
        ) from exc
    module: ModuleType = keras  # untyped import (Any): name what it is
    return module


def versions() -> dict[str, str]:
    """Versions of the libraries that determine a run's numbers."""
    return dict(_versions(name()))


@functools.cache
def _versions(backend: str) -> dict[str, str]:
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    packages = {
        "jax": ("keras", "jax", "jaxlib", "numpy"),
        "tensorflow": ("keras", "tensorflow", "tensorflow-cpu", "numpy"),
        "torch": ("keras", "torch", "numpy"),
    }[backend]
    for package in ("tricklab", *packages):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return out
