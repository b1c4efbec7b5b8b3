"""``tricklab mlflow``: log a stored study, or a MODEL_DIR, to MLflow; ``run --mlflow`` logs
through here too."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from tricklab.base.errors import TricklabError
from tricklab.cli._errors import check_study_dir
from tricklab.cli._options import Subparsers


def add_parser(sub: Subparsers) -> None:
    tracking = sub.add_parser(
        "mlflow",
        help="log a stored study (runs/STUDY) or a fitted model (MODEL_DIR) to MLflow",
        description="Log a stored study (runs/STUDY) to MLflow: one parent run with the report, "
        "one child run per finished run (the recipe fields the study varies as params, the "
        "history and test scores as metrics, history and weights as artifacts); logging again "
        "updates the same runs. Or log a MODEL_DIR written by `tricklab fit` as `fit --mlflow` "
        "does: one run holding the model with its input signature (the raw columns, read "
        "through the study file fit was given). Needs the mlflow extra: "
        "pip install 'tricklab[mlflow]'.",
    )
    tracking.add_argument(
        "study_dir",
        type=Path,
        metavar="PATH",
        help="the study's store, e.g. runs/STUDY, or a MODEL_DIR (it holds tricklab-model.json)",
    )
    tracking_options(tracking)
    tracking.set_defaults(handler=mlflow_command)


def tracking_options(parser: argparse.ArgumentParser, when: str = "") -> None:
    """``--tracking-uri`` and ``--experiment``; ``when`` ends their help (``run``: for --mlflow)."""
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help=f"MLflow tracking URI{when} (default: $MLFLOW_TRACKING_URI, else "
        "sqlite:///<runs>/mlflow.db beside the studies)",
    )
    parser.add_argument(
        "--experiment", metavar="NAME", help=f"MLflow experiment{when} (default: the study's name)"
    )


def mlflow_command(args: argparse.Namespace, console: Console) -> int:
    from tricklab.tools.model_dir import is_model_dir
    from tricklab.tools.tracking import require_mlflow

    if is_model_dir(args.study_dir):
        require_mlflow("tricklab mlflow")
        from tricklab.tools.fit_mlflow import log_model_dir

        with console.status("logging the model to MLflow"):
            uri = log_model_dir(
                args.study_dir, tracking_uri=args.tracking_uri, experiment=args.experiment
            )
        console.print(f"logged to MLflow: {uri}", markup=False, soft_wrap=True)
        return 0
    check_study_dir(args.study_dir)
    require_mlflow("tricklab mlflow")
    log_to_mlflow(console, args.study_dir, args.tracking_uri, args.experiment)
    return 0


def check_tracking_options(args: argparse.Namespace) -> None:
    """``run``: MLflow must be there before training, and its options need ``--mlflow``."""
    from tricklab.tools.tracking import require_mlflow

    if args.mlflow:
        require_mlflow("--mlflow")
        return
    options = {"--tracking-uri": args.tracking_uri, "--experiment": args.experiment}
    given = [f"{flag}={value}" for flag, value in options.items() if value is not None]
    if given:
        raise TricklabError(
            "--tracking-uri and --experiment say where --mlflow logs the study; add --mlflow "
            f"or leave them out. Received: {', '.join(given)} without --mlflow."
        )


def log_to_mlflow(
    console: Console, root: Path, tracking_uri: str | None, experiment: str | None
) -> None:
    from tricklab.tools.tracking import log_study

    with console.status("logging to MLflow") as shown:
        logged = log_study(
            root,
            tracking_uri=tracking_uri,
            experiment=experiment,
            progress=lambda done, total: shown.update(f"logging run {done}/{total} to MLflow"),
        )
    changes = (
        f"{logged.created} new, {logged.replaced} replaced (retrained), {logged.updated} "
        f"updated, {logged.unchanged} unchanged"
        + (f"; {logged.removed} no longer in the store deleted" if logged.removed else "")
        + (f"; {logged.not_finished} unfinished not logged" if logged.not_finished else "")
    )
    console.print(
        f"MLflow: study {logged.study}: {logged.runs} runs logged to experiment "
        f"'{logged.experiment}' ({changes}) at {logged.tracking_uri}",
        markup=False,
        soft_wrap=True,
    )
    for line in logged.damaged:  # refused: their files are not whole
        console.print(f"not logged: {line}", markup=False, soft_wrap=True)
    console.print(f"look at them: {logged.ui_command()}", markup=False, soft_wrap=True)
