"""What the subcommands' parser builders share: the subparsers they add to and ``--backend``."""

from __future__ import annotations

import argparse
from typing import TypeAlias

from tricklab.base import backend as _backend

#: What each module's ``add_parser`` adds its subcommands to: ``parser.add_subparsers()``.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def backend_option() -> argparse.ArgumentParser:
    """A parent parser with ``--backend``, for the subcommands that start Keras."""
    backend = argparse.ArgumentParser(add_help=False)
    backend.add_argument(
        "--backend",
        choices=_backend.BACKENDS,
        help="Keras backend (default: $KERAS_BACKEND, else jax).",
    )
    return backend
