"""``tricklab datasets``: the built-in datasets, or what loading one study's data did."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from tricklab.cli._options import Subparsers


def add_parser(sub: Subparsers) -> None:
    data = sub.add_parser(
        "datasets",
        help="list the datasets",
        description="List built-in datasets: task, shapes, classes and where they are found. "
        "With --describe STUDY: what loading that study's data did (rows, columns, one-hot "
        "expansions with their levels, the task and why).",
    )
    data.add_argument("--describe", type=Path, metavar="STUDY", help="a study file")
    data.set_defaults(handler=datasets_command)


def datasets_command(args: argparse.Namespace, console: Console) -> int:
    from tricklab.data import describe_datasets, describe_intake

    if args.describe is not None:
        from tricklab.data import load_data
        from tricklab.spec import load_study

        for line in describe_intake(load_data(load_study(args.describe))):
            console.print(line, markup=False, soft_wrap=True)
        return 0

    for row in describe_datasets():
        classes = ", ".join(row["classes"])
        console.print(
            f"[bold]{row['name']}[/bold]: {row['task']}, input {tuple(row['input_shape'])}, "
            f"{row['n_train']} train / {row['n_test']} test ({row['test_split']}), "
            f"{row['n_classes']} classes: {classes}",
            soft_wrap=True,
        )
        console.print(f"  found: {row['source']}", soft_wrap=True, markup=False)
        console.print(f"  cite: {row['citation']}", soft_wrap=True, markup=False)
    console.print(
        'a CSV of your own: dataset = {csv = "file.csv", target = "column"}', markup=False
    )
    console.print(
        'a folder of images: dataset = {images = "folder/", image_size = [64, 64], '
        'color_mode = "rgb"}',
        markup=False,
    )
    return 0
