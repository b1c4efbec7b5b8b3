"""What each ``tricklab`` subcommand does (the parser in :mod:`tricklab.cli` dispatches here).

Each handler takes the parsed arguments and the console and returns the exit status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from tricklab import _backend
from tricklab._cli_errors import check_directory, check_study_dir
from tricklab.errors import TricklabError

EXIT_RUNS_FAILED = 1
EXIT_LINT_WARNINGS = 1


# -- commands -----------------------------------------------------------------------------------
def run(args: argparse.Namespace, console: Console) -> int:
    from tricklab._interrupts import EXIT_INTERRUPTED, graceful
    from tricklab._progress import PlainLog, RichDisplay
    from tricklab.data import describe_intake
    from tricklab.engines import Interrupted
    from tricklab.spec import load_study
    from tricklab.study import check_study, lint_study, load_data, run_study
    from tricklab.tools.lint import active

    if not args.checkpoint_every >= 0:  # also NaN
        raise TricklabError(
            "--checkpoint-every must be a number of seconds >= 0 (0: after every epoch). "
            f"Received: {args.checkpoint_every:g}."
        )
    if not 0 < args.renew < args.lease:  # also NaN
        raise TricklabError(
            "--renew must be > 0 and less than --lease, or claims expire while their worker "
            f"lives. Received: renew={args.renew:g}, lease={args.lease:g}."
        )
    definition = load_study(args.study)
    if args.epochs is not None:
        definition = definition.with_epochs(args.epochs)
    spec = definition.select(args.variant, args.seeds)
    check_directory(
        "--out ",
        args.out,
        args.out / spec.name,
        f"The runs of study '{spec.name}' go in {args.out / spec.name}/ (created if missing); "
        "give another --out or move the file away.",
    )
    dataset = load_data(spec)
    print_findings(console, active(lint_study(spec, dataset)))
    metric = check_study(spec, dataset)  # the primary metric, validated against the data
    epochs = {name: recipe.train.epochs for name, recipe in spec.variants.items()}
    interactive = console.is_terminal and not args.quiet
    display = RichDisplay(console, metric, epochs) if interactive else PlainLog(console, metric)
    protocol = (
        ", [bold red]validated on the test set[/bold red] (the lecture's protocol)"
        if spec.validation == "test"
        else ""
    )
    console.print(
        f"study [bold]{spec.name}[/bold]: {len(spec.variants)} variants x {len(spec.seeds)} "
        f"seeds on {_backend.name()}{protocol}"
    )
    for line in describe_intake(dataset):  # what intake did, and why the task is what it is
        console.print(f"  {line}", markup=False, soft_wrap=True)
    try:
        with graceful() as stop, display:
            outcome = run_study(
                definition,
                out=args.out,
                variants=args.variant,
                seeds=args.seeds,
                fresh=args.fresh,
                listener=display,
                engine=args.engine,
                wait=not args.no_wait,
                checkpoint_every=args.checkpoint_every,
                lease=args.lease,
                renew=args.renew,
                stop_requested=stop,
            )
    except Interrupted as exc:
        console.print(
            f"interrupted: finished runs are kept; {len(exc.keys)} run(s) in training were "
            f"checkpointed after epoch {exc.epoch}. Run the same command to resume them."
        )
        return EXIT_INTERRUPTED
    console.print(
        f"trained {outcome.trained} runs, reused {outcome.reused} from {outcome.root}"
        + (f", {len(outcome.failed)} failed" if outcome.failed else "")
        + (f", {len(outcome.skipped)} left to other workers" if outcome.skipped else "")
    )
    for plan, error in outcome.failed:
        console.print(f"[red]failed[/red] {plan.variant} seed {plan.seed}: {error}")
    for plan, why in outcome.skipped:
        console.print(f"not trained here: {plan.variant} seed {plan.seed} ({why})")
    if outcome.results:
        show_report(console, outcome.root)
    return EXIT_RUNS_FAILED if outcome.failed else 0


def status(args: argparse.Namespace, console: Console) -> int:
    from rich.table import Table

    from tricklab.store import RunStore

    check_study_dir(args.study_dir)
    store = RunStore(args.study_dir)
    statuses = store.indexed_runs()
    table = Table(title=f"{store.root}: {len(statuses)} runs")
    table.add_column("variant", overflow="fold")
    table.add_column("seed", justify="right", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for status in statuses:
        table.add_row(status.variant, str(status.seed), status.state.value, status.detail)
    console.print(table)
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status.state.value] = counts.get(status.state.value, 0) + 1
    console.print(", ".join(f"{n} {state}" for state, n in counts.items()))
    return 0


def show_report(console: Console, root: Path) -> None:
    from tricklab.report import build_report, diagnostics_terminal_table, terminal_table

    report = build_report(root)
    console.print(terminal_table(report))
    diagnostics = diagnostics_terminal_table(report)
    if diagnostics is not None:
        console.print(diagnostics)
    for comparison in report.comparisons:
        console.print(f"  {comparison.sentence()}", markup=False)
    console.print(f"report: {report.html}  (and {report.markdown.name})")


def report(args: argparse.Namespace, console: Console) -> int:
    check_study_dir(args.study_dir)
    show_report(console, args.study_dir)
    return 0


def summary(args: argparse.Namespace, console: Console) -> int:
    from tricklab.build import summary
    from tricklab.spec import load_study
    from tricklab.study import load_data

    spec = load_study(args.study).select(args.variant)
    dataset = load_data(spec)
    for name, recipe in spec.variants.items():
        console.rule(f"variant {name}")
        console.print(summary(recipe, dataset.input_shape), markup=False)
    return 0


def lint(args: argparse.Namespace, console: Console) -> int:
    from tricklab.spec import load_study
    from tricklab.study import check_study, lint_study, load_data
    from tricklab.tools.lint import active

    spec = load_study(args.study)
    check_study(spec, load_data(spec))
    findings = lint_study(spec)
    print_findings(console, findings)
    warnings = [f for f in active(findings) if f.severity == "warning"]
    console.print(
        f"{args.study}: {len(spec.variants)} variants x {len(spec.seeds)} seeds; "
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


def export(args: argparse.Namespace, console: Console) -> int:
    from tricklab.export import export_model

    if args.path is not None:
        check_directory("", args.path, args.path.parent)
    path = export_model(args.run_dir, args.path)
    console.print(f"wrote {path} (load it with keras.saving.load_model)")
    return 0


def predict(args: argparse.Namespace, console: Console) -> int:
    from tricklab.export import predict_csv

    frame = predict_csv(args.run_dir, args.csv, header=not args.no_header)
    sys.stdout.write(frame.to_csv(index=False, float_format="%.6g"))
    return 0


def activations(args: argparse.Namespace, console: Console) -> int:
    from tricklab.activations import plot_activations

    check_directory("--out ", args.out)
    path = plot_activations(args.out, args.negative_slope)
    console.print(f"wrote {path}")
    return 0


def lr_find(args: argparse.Namespace, console: Console) -> int:
    from tricklab.lrfind import lr_find_command

    check_directory("--out ", args.out)
    result, png = lr_find_command(
        args.study,
        args.variant,
        args.out,
        args.steps,
        args.min_lr,
        args.max_lr,
        seed=args.seed,
        stop_factor=args.stop_factor,
    )
    console.print(
        f"variant {result.variant}: suggested learning rate {result.suggestion:.3g} "
        "(steepest descent of the smoothed loss)"
    )
    if result.diverged_lr is None:
        console.print("the loss did not diverge; try a larger --max-lr to see the whole curve")
    else:
        console.print(f"the loss diverged at a learning rate of {result.diverged_lr:.3g}")
    console.print(f"wrote {png}")
    return 0


def datasets(args: argparse.Namespace, console: Console) -> int:
    from tricklab.data import describe_datasets, describe_intake

    if args.describe is not None:
        from tricklab.spec import load_study
        from tricklab.study import load_data

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
    return 0
