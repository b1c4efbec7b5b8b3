"""``tricklab fit``: train one variant of a study on every row of its table, as a MODEL_DIR
(:mod:`tricklab.tools.fit`); ``tricklab predict MODEL_DIR new.csv`` predicts with it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from tricklab.cli._errors import check_directory
from tricklab.cli._mlflow import check_tracking_options, tracking_options
from tricklab.cli._options import Subparsers, backend_option


def add_parser(sub: Subparsers) -> None:
    fit = sub.add_parser(
        "fit",
        parents=[backend_option()],
        help="train one variant on every row of the table, for use (a MODEL_DIR)",
        description="Train one variant of a study on every row of its table (no validation or "
        "test split; imputation, one-hot levels, date origins and scaling fitted on every row) "
        "and write MODEL_DIR: model.keras and tricklab-model.json (how raw rows become inputs). "
        "When the study compares its best checkpoints, it trains for the median best epoch of "
        "the variant's stored runs (run the study first); else for the recipe's epochs. "
        "`tricklab predict MODEL_DIR new.csv` predicts raw rows with it.",
    )
    fit.add_argument("study", type=Path, help="study file (TOML)")
    fit.add_argument("--variant", required=True, metavar="NAME", help="the variant to train")
    fit.add_argument(
        "-o", "--output", required=True, type=Path, metavar="MODEL_DIR", help="folder to write"
    )
    fit.add_argument("--seed", type=int, default=0, help="seeded as this run (default: 0)")
    fit.add_argument(
        "--out", type=Path, default=Path("runs"), help="store directory (default: runs)"
    )
    fit.add_argument("--force", action="store_true", help="overwrite an existing MODEL_DIR")
    fit.add_argument(
        "--mlflow",
        action="store_true",
        help="also log the model to MLflow, with its input signature (the raw columns); needs "
        "the mlflow extra",
    )
    tracking_options(fit, " (for --mlflow)")
    fit.set_defaults(handler=fit_command)


def fit_command(args: argparse.Namespace, console: Console) -> int:
    from tricklab.tools.fit import fit_variant

    check_tracking_options(args)  # MLflow there before training, its options with --mlflow
    check_directory("", args.output)
    fitted = fit_variant(
        args.study, args.variant, args.output, seed=args.seed, out=args.out, force=args.force
    )
    record = fitted.record
    console.print(
        f"trained {record['study']}/{record['variant']} (seed {record['seed']}) on all "
        f"{record['rows']} rows for {fitted.epochs} epochs: {fitted.reason}",
        markup=False,
        soft_wrap=True,
    )
    console.print(
        f"wrote {fitted.path} (model.keras, tricklab-model.json); predict with "
        f"`tricklab predict {fitted.path} new.csv`",
        markup=False,
        soft_wrap=True,
    )
    if args.mlflow:
        from tricklab.tools.fit_mlflow import log_model_dir

        # as `tricklab mlflow MODEL_DIR` does later: the study and store are in the record
        uri = log_model_dir(fitted.path, tracking_uri=args.tracking_uri, experiment=args.experiment)
        console.print(f"logged to MLflow: {uri}", markup=False, soft_wrap=True)
    return 0


def predict_options(parser: argparse.ArgumentParser) -> None:
    """``--delimiter`` and ``--header/--no-header`` of ``tricklab predict``."""
    parser.add_argument(
        "--delimiter",
        metavar="X",
        help="the CSV's delimiter (default: the training CSV's for a MODEL_DIR or a run fitted "
        "on its own training rows; else ',')",
    )
    parser.add_argument(
        "--header",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="whether the CSV has a header row (default: the training CSV's setting for a "
        "MODEL_DIR or a run fitted on its own training rows; else a header). Without one, the "
        "columns are the training file's, in order (the target may be left out)",
    )


def predict_model_dir(args: argparse.Namespace) -> int:
    """``tricklab predict MODEL_DIR new.csv``, or a RUN_DIR whose table was fitted on its own
    training rows (read the same way): the predictions as CSV on stdout."""
    from tricklab.tools.export import predict_path
    from tricklab.tools.model_dir import predict_file

    if is_model_dir(args.run_dir):
        frame = predict_file(args.run_dir, args.csv, delimiter=args.delimiter, header=args.header)
    else:
        frame = predict_path(args.run_dir, args.csv, delimiter=args.delimiter, header=args.header)
    sys.stdout.write(frame.to_csv(index=False))
    return 0


def is_model_dir(path: Path) -> bool:
    """Whether ``path`` is a MODEL_DIR (it holds ``tricklab-model.json``), not a RUN_DIR."""
    return (path / "tricklab-model.json").is_file()
