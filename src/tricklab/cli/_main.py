"""The ``tricklab`` command line.

Bad input is reported as located one-line errors (no traceback) with exit status 2, and so are
errors of the operating system (a full disk, a denied permission: the file, what happened and its
errno name) and files that are not UTF-8; a study whose runs partly failed exits with 1 after
keeping every finished run.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from tricklab.base import backend as _backend
from tricklab.base.errors import TricklabError, not_utf8
from tricklab.base.version import __version__
from tricklab.cli import _commands as commands
from tricklab.cli._errors import os_error, print_error

EXIT_BAD_INPUT = 2
PIPED_WIDTH = 180
WIDE_HELP = (
    "print every column of the results table, the diagnostics and one sentence per comparison "
    "(default: the headline and a compact table that fits 80 columns)"
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
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
        return args.handler(args, console)
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tricklab",
        description="Train Keras training tricks as studies (variants x seeds) and report "
        "which ones help, with honest statistics.",
    )
    parser.add_argument("--version", action="version", version=f"tricklab {__version__}")
    backend = argparse.ArgumentParser(add_help=False)
    backend.add_argument(
        "--backend",
        choices=_backend.BACKENDS,
        help="Keras backend (default: $KERAS_BACKEND, else jax).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        parents=[backend],
        help="train every variant x seed of a study and report",
        description="Train every variant x seed of a study that the store does not hold yet, "
        "then print the table and write the reports.",
    )
    run.add_argument("study", type=Path, help="study file (TOML)")
    run.add_argument(
        "--variant", action="append", metavar="NAME", help="only this variant (repeatable)"
    )
    run.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        help="the study's first N seeds; a study that counts its seeds (seeds = K) extends to "
        "seeds 0..N-1 when N > K; under cv, the first N repeats",
    )
    run.add_argument("--epochs", type=int, metavar="N", help="train every variant for N epochs")
    run.add_argument(
        "--out", type=Path, default=Path("runs"), help="store directory (default: runs)"
    )
    run.add_argument(
        "--fresh",
        action="store_true",
        help="delete the selected variants' and seeds' stored runs first (the others stay)",
    )
    run.add_argument(
        "--no-wait",
        action="store_true",
        help="leave runs that other live workers have claimed to them instead of waiting",
    )
    run.add_argument(
        "--checkpoint-every",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="save a checkpoint of the run(s) in training at the first epoch boundary after "
        "this many seconds (default: 30); a rerun after a crash continues from it",
    )
    for flag, default, what in (
        ("--lease", 60.0, "a claim on a run expires this long after its worker last renewed it"),
        ("--renew", 10.0, "how often a worker renews its claims (less than --lease)"),
    ):
        run.add_argument(
            flag,
            type=float,
            default=default,
            metavar="SECONDS",
            help=f"{what} (default: {default:g})",
        )
    run.add_argument(
        "--engine",
        choices=("auto", "solo", "population"),
        default="auto",
        help="auto (default): runs that share layer shapes, batch size and epochs train as one "
        "compiled population on JAX, others solo; solo: one model.fit per run; population: "
        "populations even of one run",
    )
    run.add_argument(
        "--executor",
        choices=("local", "process", "ray"),
        default="local",
        help="where runs train: local (default): in this process; process: --workers processes "
        "on this machine that claim runs through the store; ray: each population group or solo "
        "run is a Ray task, on a local Ray or the cluster at --address (needs tricklab[ray])",
    )
    run.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes (--executor process) or CPUs of the local Ray (--executor ray); "
        "default: the cores this process may use",
    )
    run.add_argument(
        "--address",
        metavar="ADDR",
        help="an existing Ray cluster for --executor ray (e.g. ray://head:10001 or auto); "
        "tricklab must be installed on its nodes. Default: start a local Ray",
    )
    run.add_argument(
        "--quiet", action="store_true", help="plain log lines instead of a live progress display"
    )
    run.add_argument("--wide", action="store_true", help=WIDE_HELP)
    run.add_argument(
        "--mlflow",
        action="store_true",
        help="then log the study to MLflow, as `tricklab mlflow` does (needs tricklab[mlflow])",
    )
    _tracking_options(run, " for --mlflow")
    run.set_defaults(handler=commands.run)

    status = sub.add_parser(
        "status",
        help="the state of every run of a stored study",
        description="Print each run of a stored study with its state: planned, running "
        "(claimed: host, pid, since), done, diverged, failed (with the error) or damaged "
        "(which file).",
    )
    status.add_argument("study_dir", type=Path, help="the study's store, e.g. runs/STUDY")
    status.set_defaults(handler=commands.status)

    tracking = sub.add_parser(
        "mlflow",
        help="log a stored study to MLflow",
        description="Log a stored study to MLflow: one parent run with the report, one child "
        "run per finished run (the recipe fields the study varies as params, the history and "
        "test scores as metrics, history and weights as artifacts). Logging again updates the "
        "same runs. Needs the mlflow extra: pip install 'tricklab[mlflow]'.",
    )
    tracking.add_argument("study_dir", type=Path, help="the study's store, e.g. runs/STUDY")
    _tracking_options(tracking)
    tracking.set_defaults(handler=commands.mlflow)

    summary = sub.add_parser(
        "summary",
        parents=[backend],
        help="print each variant's Keras model summary",
        description="Print the Keras model summary (layers, shapes, parameter counts) of "
        "each variant, as the lecture does after every change.",
    )
    summary.add_argument("study", type=Path)
    summary.add_argument("--variant", action="append", metavar="NAME")
    summary.set_defaults(handler=commands.summary)

    lint = sub.add_parser(
        "lint",
        help="check a study file without training",
        description="Validate a study file and report recipe mistakes; nothing is trained and "
        "Keras is not started.",
    )
    lint.add_argument("study", type=Path)
    lint.set_defaults(handler=commands.lint)

    report = sub.add_parser(
        "report",
        help="rebuild a study's reports from its stored runs",
        description="Rebuild the table, report.md and report.html of a study from the runs in "
        "its store, without training.",
    )
    report.add_argument("study_dir", type=Path, help="runs/<study>")
    report.add_argument("--wide", action="store_true", help=WIDE_HELP)
    report.set_defaults(handler=commands.report)

    export = sub.add_parser(
        "export",
        parents=[backend],
        help="write a run's best model as a .keras file",
        description="Write the best weights of one run as a .keras model file that plain "
        "keras.saving.load_model loads; it takes raw feature values (the run's preprocessing "
        "is part of the model).",
    )
    export.add_argument("run_dir", type=Path, help="runs/<study>/<variant>/seed-<n>")
    export.add_argument(
        "path", type=Path, nargs="?", help="output file (default: RUN_DIR/model.keras)"
    )
    export.set_defaults(handler=commands.export)

    predict = sub.add_parser(
        "predict",
        parents=[backend],
        help="predict the rows of a CSV with a run's best model",
        description="Print the predictions of one run's best model for each row of a CSV of "
        "raw feature values, as CSV (row, prediction, and a probability per class).",
    )
    predict.add_argument("run_dir", type=Path, help="runs/<study>/<variant>/seed-<n>")
    predict.add_argument("csv", type=Path, help="features; a header row names the columns")
    predict.add_argument(
        "--no-header",
        action="store_true",
        help="the CSV has no header: exactly the model's features, in order",
    )
    predict.set_defaults(handler=commands.predict)

    figure = sub.add_parser(
        "activations",
        parents=[backend],
        help="plot activation functions and derivatives",
        description="Draw sigmoid, tanh, relu, leaky_relu, elu, selu, gelu and swish with their "
        "derivatives (computed by keras.activations and automatic differentiation), and "
        "softmax on an example vector, into activations.png.",
    )
    figure.add_argument(
        "--out",
        type=Path,
        default=Path("."),
        help="folder for activations.png (default: current folder)",
    )
    figure.add_argument(
        "--negative-slope",
        type=float,
        default=0.2,
        help="leaky_relu slope for x < 0 (default: 0.2, Keras's default)",
    )
    figure.set_defaults(handler=commands.activations)

    finder = sub.add_parser(
        "lr-find",
        parents=[backend],
        help="learning-rate range test for one variant",
        description="Train one variant for a few hundred batches while the learning rate grows "
        "exponentially (Smith 2017, fastai's lr_find); plot loss against learning rate and "
        "suggest the rate at the steepest descent.",
    )
    finder.add_argument("study", type=Path)
    finder.add_argument("--variant", metavar="NAME", help="variant (default: the baseline)")
    finder.add_argument("--steps", type=int, default=200, help="batches (default: 200)")
    finder.add_argument("--min-lr", type=float, default=1e-7, help="first rate (default: 1e-7)")
    finder.add_argument("--max-lr", type=float, default=10.0, help="last rate (default: 10)")
    finder.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    finder.add_argument(
        "--stop-factor",
        type=float,
        default=4.0,
        help="stop when the smoothed loss exceeds this x its minimum (default: 4)",
    )
    finder.add_argument(
        "--out", type=Path, default=Path("runs"), help="folder for the plot (default: runs)"
    )
    finder.set_defaults(handler=commands.lr_find)

    search = sub.add_parser(
        "search",
        parents=[backend],
        help="Optuna search over the study's [search] table",
        description="Search the overrides of the study's [search] table with Optuna (TPE, "
        "median pruner) until N trials are complete or pruned; rerunning continues to N. "
        "Prints the best trial and writes the optimisation history and parameter importances.",
    )
    search.add_argument("study", type=Path, help="study file (TOML) with a [search] table")
    search.add_argument(
        "--trials", type=int, metavar="N", help="COMPLETE + PRUNED trials to reach (FAIL not)"
    )
    search.add_argument(
        "--storage",
        metavar="PATH_OR_URL",
        help="an Optuna journal file, or an RDB URL (sqlite:///x.db, postgresql://...) for "
        "workers on several machines (default: runs/STUDY/search/optuna.journal)",
    )
    search.add_argument(
        "--workers", type=int, default=1, metavar="N", help="local worker processes (default: 1)"
    )
    search.add_argument(
        "--batch",
        type=int,
        default=1,
        metavar="K",
        help="ask K trials at once and train them as populations (default: 1)",
    )
    search.add_argument(
        "--objective",
        default="val_loss",
        metavar="METRIC",
        help="history column whose best epoch is a trial's value (default: val_loss)",
    )
    search.add_argument(
        "--direction",
        choices=("minimize", "maximize"),
        help="default: minimize losses and errors, maximize other metrics",
    )
    search.add_argument(
        "--startup-trials",
        type=int,
        default=5,
        metavar="N",
        help="trials that finish before the median pruner prunes any (default: 5)",
    )
    search.add_argument(
        "--export-variants",
        type=int,
        metavar="K",
        help="write the K best trials as variants of a copy of the study (STUDY-best.toml)",
    )
    search.add_argument(
        "--out", type=Path, default=Path("runs"), help="store directory (default: runs)"
    )
    search.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    search.set_defaults(handler=commands.search)

    data = sub.add_parser(
        "datasets",
        help="list the datasets",
        description="List built-in datasets: task, shapes, classes and where they are found. "
        "With --describe STUDY: what loading that study's data did (rows, columns, one-hot "
        "expansions with their levels, the task and why).",
    )
    data.add_argument("--describe", type=Path, metavar="STUDY", help="a study file")
    data.set_defaults(handler=commands.datasets)
    return parser


def _tracking_options(parser: argparse.ArgumentParser, when: str = "") -> None:
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help=f"MLflow tracking URI{when} (default: $MLFLOW_TRACKING_URI, else "
        "sqlite:///<runs>/mlflow.db beside the studies)",
    )
    parser.add_argument(
        "--experiment", metavar="NAME", help=f"MLflow experiment{when} (default: the study's name)"
    )


if __name__ == "__main__":
    sys.exit(main())
