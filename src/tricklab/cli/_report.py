"""``tricklab report``: rebuild a study's reports from its store (``run`` shows them too)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from tricklab.base.errors import TricklabError
from tricklab.cli._errors import check_directory, check_study_dir
from tricklab.cli._options import Subparsers

WIDE_HELP = (
    "print every column of the results table, the diagnostics and one sentence per comparison "
    "(default: the headline and a compact table that fits 80 columns)"
)


def add_parser(sub: Subparsers) -> None:
    report = sub.add_parser(
        "report",
        help="rebuild a study's reports from its stored runs",
        description="Rebuild the table, report.md and report.html of a study from the runs in "
        "its store, without training.",
    )
    report.add_argument("study_dir", type=Path, help="runs/<study>")
    report.add_argument("--wide", action="store_true", help=WIDE_HELP)
    report.add_argument(
        "--csv",
        type=Path,
        metavar="PATH",
        help="also write one row per run to PATH and one row per variant (intervals, "
        "comparison, failure; reference models included, kind 'reference') to PATH with "
        "'-variants' before its suffix",
    )
    report.set_defaults(handler=report_command)


def report_command(args: argparse.Namespace, console: Console) -> int:
    check_study_dir(args.study_dir)
    if args.csv is not None:
        check_csv_path(args.csv)
    show_report(console, args.study_dir, wide=args.wide, csv=args.csv)
    return 0


def check_csv_path(path: Path) -> None:
    """``--csv PATH`` names a file (the runs table) in a folder that is or can be made."""
    if path.is_dir():
        raise TricklabError(
            f"--csv: {path} is a folder; give a file path such as {path / 'results.csv'}. "
            f"Received: --csv={path}."
        )
    check_directory(
        "--csv ", path, path.parent, "Give a file path in a folder that exists or can be made."
    )


def show_report(
    console: Console, root: Path, *, wide: bool = False, csv: Path | None = None
) -> None:
    """The headline, each variant's changes and the compact table (``wide``: every column,
    the diagnostics and the comparison sentences); writes report.md and report.html (and
    ``csv``: the runs and variants tables)."""
    from tricklab.report import build_report, print_report, write_tables

    report = build_report(root)
    print_report(console, report, wide=wide)
    console.print(f"report: {report.html}  (and {report.markdown.name})", soft_wrap=True)
    if csv is not None:
        runs, variants = write_tables(report, csv)
        console.print(f"tables: {runs} (runs), {variants} (variants)", soft_wrap=True)
