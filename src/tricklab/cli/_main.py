"""The ``tricklab`` command line.

Bad input is reported as located one-line errors (no traceback) with exit status 2, and so are
errors of the operating system (a full disk, a denied permission: the file, what happened and its
errno name) and files that are not UTF-8; a study whose runs partly failed exits with 1 after
keeping every finished run.

Each subcommand's parser is built next to its handler (``add_parser`` of its module); handlers
import what they need when called, so ``tricklab --help`` starts neither Keras nor JAX.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, cast

from rich.console import Console

from tricklab.base import backend as _backend
from tricklab.base.errors import TricklabError, not_utf8
from tricklab.base.version import __version__
from tricklab.cli import (
    _datasets,
    _export,
    _figures,
    _fit,
    _init,
    _inspect,
    _mlflow,
    _report,
    _run,
    _search,
)
from tricklab.cli._errors import os_error, print_error

EXIT_BAD_INPUT = 2
PIPED_WIDTH = 180


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # named with the subcommand, whose --help lists what it accepts
        command = parser.commands.get(getattr(args, "command", None) or "", parser)
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    # Piped output (logs, CI) gets a wide page so tables keep their columns.
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPED_WIDTH
    console = Console(highlight=False, soft_wrap=True, width=width)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        if getattr(args, "backend", None):
            _backend.select(args.backend)
        handler: Callable[[argparse.Namespace, Console], int] = args.handler
        return handler(args, console)
    except TricklabError as exc:
        print_error(errors, str(exc))
        return EXIT_BAD_INPUT
    except OSError as exc:
        print_error(errors, os_error(exc, args.command))
        return EXIT_BAD_INPUT
    except UnicodeDecodeError as exc:
        print_error(errors, f"{not_utf8(exc)}. tricklab reads every file as UTF-8.")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        errors.print("interrupted: finished runs are kept; run the same command to resume.")
        return 130


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line: what was wrong, and where help is."""

    commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}. See '{self.prog} --help'.\n")


def _parser() -> _Parser:
    # Subparsers are built with the parent's class, so every subcommand gets the one-line errors.
    parser = _Parser(
        prog="tricklab",
        description="Train Keras training tricks as studies (variants x seeds) and report "
        "which ones help, with honest statistics.",
    )
    parser.add_argument("--version", action="version", version=f"tricklab {__version__}")
    sub = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", metavar="COMMAND"),
    )
    parser.commands = sub.choices
    # In the order `tricklab --help` lists the subcommands.
    _run.add_parser(sub)  # run, status
    _mlflow.add_parser(sub)  # mlflow
    _inspect.add_parser(sub)  # summary, lint
    _report.add_parser(sub)  # report
    _export.add_parser(sub)  # export, predict
    _fit.add_parser(sub)  # fit
    _figures.add_parser(sub)  # activations, lr-find
    _search.add_parser(sub)  # search
    _datasets.add_parser(sub)  # datasets
    _init.add_parser(sub)  # init
    return parser


if __name__ == "__main__":
    sys.exit(main())
