"""The ``tricklab`` command line: argparse on top of every other layer."""

from tricklab.cli._main import main

__all__ = ["main"]
