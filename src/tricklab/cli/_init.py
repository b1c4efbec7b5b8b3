"""``tricklab init DATA.csv --target COL``: write a starter study for a user's own table."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from tricklab.cli._options import Subparsers


def add_parser(sub: Subparsers) -> None:
    init = sub.add_parser(
        "init",
        help="write a starter study for your own CSV",
        description="Read DATA.csv, work out its delimiter, header, task and the columns the "
        "intake would refuse (ids and free text: drop; dates; missing cells: impute), and write "
        "a study that lints clean and trains as written: a model sized to the data, a protocol "
        "for its size, and the lecture's tricks as variants.",
    )
    init.add_argument("csv", type=Path, help="the table (CSV)")
    init.add_argument(
        "--target",
        required=True,
        metavar="COL",
        help="the column to predict: its name in the header, or its 0-based number",
    )
    init.add_argument(
        "-o",
        dest="out",
        type=Path,
        help="the study file to write (default: <csv stem>.toml beside the CSV)",
    )
    init.add_argument("--force", action="store_true", help="replace an existing study file")
    init.set_defaults(handler=init_command)


def init_command(args: argparse.Namespace, console: Console) -> int:
    from tricklab.tools.init import starter_study

    made = starter_study(csv_path=args.csv, target=args.target, out=args.out, force=args.force)
    delimiter = {"\t": "tab"}.get(made.delimiter, repr(made.delimiter))
    console.print(f"wrote {made.path}", soft_wrap=True, markup=False)
    lines = [
        f"task: {made.task} ({made.task_reason})",
        f"read: delimiter {delimiter}, {'a header row' if made.header else 'no header row'}, "
        f"{made.rows:,} rows",
        *made.notes,
        f"protocol: {made.protocol}",
    ]
    for line in lines:
        console.print(f"  {line}", soft_wrap=True, markup=False)
    console.print(f"next: tricklab run {made.path}", soft_wrap=True, markup=False)
    return 0
