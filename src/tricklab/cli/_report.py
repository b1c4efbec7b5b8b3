"""``tricklab report``: rebuild a study's reports from its store (``run`` shows them too)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from tricklab.cli._errors import check_study_dir
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
    report.set_defaults(handler=report_command)


def report_command(args: argparse.Namespace, console: Console) -> int:
    check_study_dir(args.study_dir)
    show_report(console, args.study_dir, wide=args.wide)
    return 0


def show_report(console: Console, root: Path, *, wide: bool = False) -> None:
    """The headline, each variant's changes and the compact table (``wide``: every column,
    the diagnostics and the comparison sentences); writes report.md and report.html."""
    from tricklab.report import build_report, print_report

    report = build_report(root)
    print_report(console, report, wide=wide)
    console.print(f"report: {report.html}  (and {report.markdown.name})", soft_wrap=True)
