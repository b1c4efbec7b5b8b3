"""``tricklab export`` and ``tricklab predict``: use one run's model outside the study (its weights
at the study's checkpoint, ``train.evaluate``: best or last)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from tricklab.cli._errors import check_directory
from tricklab.cli._fit import is_model_dir, predict_model_dir, predict_options
from tricklab.cli._options import Subparsers, backend_option


def add_parser(sub: Subparsers) -> None:
    export = sub.add_parser(
        "export",
        parents=[backend_option()],
        help="write a run's model as a .keras file",
        description="Write one run's weights at the study's checkpoint (train.evaluate: best "
        "or last) as a .keras model file that plain "
        "keras.saving.load_model loads; it takes raw feature values (the run's preprocessing "
        "is part of the model). A run whose table was fitted on its own training rows (the "
        "dataset's column keys) is refused: predict with `tricklab predict RUN_DIR new.csv`, or "
        "make a MODEL_DIR with `tricklab fit`.",
    )
    export.add_argument("run_dir", type=Path, help="runs/<study>/<variant>/seed-<n>")
    export.add_argument(
        "path", type=Path, nargs="?", help="output file (default: RUN_DIR/model.keras)"
    )
    export.set_defaults(handler=export_command)

    predict = sub.add_parser(
        "predict",
        parents=[backend_option()],
        help="predict the rows of a CSV, or images, with a run's model",
        description="Print the predictions of one run's model (its weights at the study's "
        "checkpoint, train.evaluate) for each row of a CSV of "
        "raw feature values, as CSV (row, prediction, and a probability per class). For a run "
        "on images (an image folder, Fashion-MNIST), PATH may be an image file or a folder of "
        "them (read as training read its images); a file column then names each image. From a "
        "MODEL_DIR (tricklab fit): raw rows of its training table's columns, read with that "
        "table's delimiter and header setting unless --delimiter/--header say otherwise; the "
        "same from a RUN_DIR whose table was fitted on its own training rows (the dataset's "
        "column keys), its columns fitted again on the run's training rows of the training CSV.",
    )
    predict.add_argument(
        "run_dir",
        type=Path,
        metavar="MODEL_DIR|RUN_DIR",
        help="a MODEL_DIR (tricklab fit) or a run, runs/<study>/<variant>/seed-<n>",
    )
    predict.add_argument(
        "csv",
        type=Path,
        metavar="path",
        help="a CSV of features (a header row names the columns), or an image file or folder",
    )
    predict_options(predict)  # --delimiter, --header/--no-header
    predict.set_defaults(handler=predict_command)


def export_command(args: argparse.Namespace, console: Console) -> int:
    from tricklab.tools.export import export_model

    if args.path is not None:
        check_directory("", args.path, args.path.parent)
    path = export_model(args.run_dir, args.path)
    console.print(f"wrote {path} (load it with keras.saving.load_model)")
    return 0


def predict_command(args: argparse.Namespace, console: Console) -> int:
    from tricklab.tools.export import predict_path, takes_raw_rows

    # tricklab fit's output, or a run fitted on its own training rows: raw rows of the table
    if is_model_dir(args.run_dir) or takes_raw_rows(args.run_dir):
        return predict_model_dir(args)
    frame = predict_path(
        args.run_dir, args.csv, header=args.header is not False, delimiter=args.delimiter or ","
    )
    sys.stdout.write(frame.to_csv(index=False, float_format="%.6g"))
    return 0
