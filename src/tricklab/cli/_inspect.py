"""``tricklab summary`` and ``tricklab lint``: look at a study file without training it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from tricklab.base.errors import SpecError
from tricklab.cli._options import Subparsers, backend_option

EXIT_LINT_WARNINGS = 1
EXIT_LINT_ERRORS = 2  # a run that cannot train, as bad input is


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
    from tricklab.data import resolve
    from tricklab.engines.build import summary
    from tricklab.spec import load_study
    from tricklab.tools.lint import lint, refuse

    spec = load_study(args.study).select(args.variant)
    resolved = resolve(spec)
    # A model too large for memory: one line, not XLA's traceback.
    refuse(resolved, lint(resolved), "No model was built")
    dataset = resolved.dataset
    for name, recipe in resolved.spec.variants.items():  # a builder is told its outputs there
        console.rule(f"variant {name}")
        try:
            text = summary(recipe, dataset.input_shape)
        except SpecError as exc:  # a builder that fails: one line naming the study and variant
            raise exc.located(file=spec.source, where=f"variants.{name}") from None
        console.print(text, markup=False)
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
    shown = active(findings)
    count = {s: sum(f.severity == s for f in shown) for s in ("error", "warning", "hint")}
    console.print(
        f"{args.study}: {counted(len(spec.variants), 'variant')} x {runs_of(spec)}; "
        + (f"{counted(count['error'], 'error')}, " if count["error"] else "")
        + f"{count['warning']} warning(s), {count['hint']} hint(s), "
        f"{len(findings) - len(shown)} ignored"
    )
    if count["error"]:
        return EXIT_LINT_ERRORS
    return EXIT_LINT_WARNINGS if count["warning"] else 0


def print_findings(console: Console, findings: Sequence[Any]) -> None:
    styles = {"error": "bold red", "warning": "yellow", "hint": "cyan"}
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
            f"{counted(len(spec.seeds), 'run')} "
            f"({counted(spec.cv.folds, 'fold')} x {counted(spec.cv.repeats, 'repeat')})"
        )
    return counted(len(spec.seeds), "seed")


def counted(n: int, noun: str) -> str:
    """``1 run``, ``2 runs``, ``0 runs``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")
