"""``tricklab summary`` and ``tricklab lint``: look at a study file without training it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from tricklab.cli._options import Subparsers, backend_option

EXIT_LINT_WARNINGS = 1


def add_parser(sub: Subparsers) -> None:
    summary = sub.add_parser(
        "summary",
        parents=[backend_option()],
        help="print each variant's Keras model summary",
        description="Print the Keras model summary (layers, shapes, parameter counts) of "
        "each variant, as the lecture does after every change.",
    )
    summary.add_argument("study", type=Path)
    summary.add_argument("--variant", action="append", metavar="NAME")
    summary.set_defaults(handler=summary_command)

    lint = sub.add_parser(
        "lint",
        help="check a study file without training",
        description="Validate a study file and report recipe mistakes; nothing is trained and "
        "Keras is not started.",
    )
    lint.add_argument("study", type=Path)
    lint.set_defaults(handler=lint_command)


def summary_command(args: argparse.Namespace, console: Console) -> int:
    from tricklab.data import load_data
    from tricklab.engines.build import summary
    from tricklab.spec import load_study

    spec = load_study(args.study).select(args.variant)
    dataset = load_data(spec)
    for name, recipe in spec.variants.items():
        console.rule(f"variant {name}")
        console.print(summary(recipe, dataset.input_shape), markup=False)
    return 0


def lint_command(args: argparse.Namespace, console: Console) -> int:
    from tricklab.data import resolve
    from tricklab.spec import load_study
    from tricklab.tools.lint import active
    from tricklab.tools.lint import lint as find

    spec = load_study(args.study)
    if spec.search:  # the [search] table of tricklab search, when Optuna is there to read it
        from tricklab.tools.search import check_search

        check_search(spec)
    findings = find(resolve(spec).check())
    print_findings(console, findings)
    warnings = [f for f in active(findings) if f.severity == "warning"]
    console.print(
        f"{args.study}: {counted(len(spec.variants), 'variant')} x {runs_of(spec)}; "
        f"{len(warnings)} warning(s), {len(active(findings)) - len(warnings)} hint(s), "
        f"{len(findings) - len(active(findings))} ignored"
    )
    return EXIT_LINT_WARNINGS if warnings else 0


def print_findings(console: Console, findings: Sequence[Any]) -> None:
    styles = {"warning": "yellow", "hint": "cyan"}
    for finding in findings:
        if finding.ignored is not None:
            console.print(
                f"[dim]{finding.line()} (ignored: {finding.ignored})[/dim]", soft_wrap=True
            )
        else:
            style = styles.get(finding.severity, "")
            console.print(f"[{style}]{finding.line()}[/{style}]", soft_wrap=True)


def runs_of(spec: Any) -> str:
    """The runs of each variant: ``20 seeds``, or ``50 runs (5 folds x 10 repeats)`` under cv."""
    if spec.cv is not None:
        return (
            f"{counted(len(spec.seeds), 'run')} ({spec.cv.folds} folds x {spec.cv.repeats} repeats)"
        )
    return counted(len(spec.seeds), "seed")


def counted(n: int, noun: str) -> str:
    """``1 run``, ``2 runs``, ``0 runs``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")
