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

from tricklab.base.errors import TricklabError
from tricklab.cli._errors import check_directory, check_study_dir

EXIT_RUNS_FAILED = 1
EXIT_LINT_WARNINGS = 1


# -- commands -----------------------------------------------------------------------------------
def run(args: argparse.Namespace, console: Console) -> int:
    from tricklab.base.interrupts import EXIT_INTERRUPTED, graceful
    from tricklab.cli._progress import PlainLog, RichDisplay
    from tricklab.data import describe_intake
    from tricklab.engines import Interrupted
    from tricklab.executors import get as executor
    from tricklab.spec import load_study
    from tricklab.store import RunStore
    from tricklab.study import lint_study, resolve, run_study
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
    check_tracking_options(args)
    executor(args.executor, workers=args.workers, address=args.address)  # options, before data
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
    resolved = resolve(definition)
    print_findings(console, active(lint_study(resolved)))
    metric = resolved.check().primary_metric  # validated against the task and the variants
    epochs = {name: recipe.train.epochs for name, recipe in spec.variants.items()}
    interactive = console.is_terminal and not args.quiet
    display = RichDisplay(console, metric, epochs) if interactive else PlainLog(console, metric)
    protocol = (
        ", [bold red]validated on the test set[/bold red] (the lecture's protocol)"
        if spec.validation == "test"
        else ""
    )
    console.print(
        f"study [bold]{spec.name}[/bold]: {len(spec.variants)} variants x {_runs(spec)} "
        f"on {resolved.backend}{protocol}"
    )
    for line in describe_intake(resolved.dataset):  # what intake did, and why the task is so
        console.print(f"  {line}", markup=False, soft_wrap=True)
    console.print(f"  protocol: {resolved.protocol.describe()}", markup=False, soft_wrap=True)
    log = RunStore(args.out / spec.name)  # library warnings go to its study.log, not here
    _, log_mark = log.logged_warnings()
    try:
        stopping = (
            "cancelling the Ray tasks (remote runs keep no checkpoint: they start again)"
            if args.executor == "ray"
            else "stopping at the next epoch boundary (a checkpoint is saved)"
        )
        with graceful(stopping) as stop, display:
            outcome = run_study(
                resolved,
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
                executor=args.executor,
                workers=args.workers,
                address=args.address,
            )
    except Interrupted as exc:
        if not exc.keys:  # stopped while it waited for runs that other workers train
            console.print(
                "interrupted while waiting for runs claimed by other workers: finished runs are "
                "kept. Run the same command to go on."
            )
            return EXIT_INTERRUPTED
        if exc.epoch == 0:  # Ray tasks keep no checkpoints: they were cancelled
            console.print(
                f"interrupted: finished runs are kept; {len(exc.keys)} run(s) in training were "
                "cancelled and start again from their first epoch. Run the same command to "
                "resume."
            )
            return EXIT_INTERRUPTED
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
        show_report(console, outcome.root, wide=getattr(args, "wide", False))
        if args.mlflow:
            log_to_mlflow(console, outcome.root, args.tracking_uri, args.experiment)
    elif args.mlflow:
        console.print("MLflow: nothing logged, no run of the study has finished")
    warned, _ = log.logged_warnings(log_mark)
    if warned:
        plural = "s" if warned > 1 else ""
        console.print(f"{warned} warning{plural} in {log.log_path}", markup=False, soft_wrap=True)
    return EXIT_RUNS_FAILED if outcome.failed else 0


def status(args: argparse.Namespace, console: Console) -> int:
    from rich.table import Table

    from tricklab.store import RunState, RunStore

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
    # Damaged runs again, one whole line each, whatever the table folded: they need action.
    for status in statuses:
        if status.state == RunState.DAMAGED:
            line = f"{status.variant} seed {status.seed}: damaged: {status.detail}"
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status.state.value] = counts.get(status.state.value, 0) + 1
    console.print(", ".join(f"{n} {state}" for state, n in counts.items()))
    return 0


def mlflow(args: argparse.Namespace, console: Console) -> int:
    from tricklab.tools.tracking import require_mlflow

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


def show_report(console: Console, root: Path, *, wide: bool = False) -> None:
    """The headline, each variant's changes and the compact table (``wide``: every column,
    the diagnostics and the comparison sentences); writes report.md and report.html."""
    from tricklab.report import build_report, print_report

    report = build_report(root)
    print_report(console, report, wide=wide)
    console.print(f"report: {report.html}  (and {report.markdown.name})", soft_wrap=True)


def report(args: argparse.Namespace, console: Console) -> int:
    check_study_dir(args.study_dir)
    show_report(console, args.study_dir, wide=args.wide)
    return 0


def summary(args: argparse.Namespace, console: Console) -> int:
    from tricklab.engines.build import summary
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
    from tricklab.study import lint_study, resolve
    from tricklab.tools.lint import active

    spec = load_study(args.study)
    if spec.search:  # the [search] table of tricklab search, when Optuna is there to read it
        from tricklab.tools.search import check_search

        check_search(spec)
    findings = lint_study(resolve(spec).check())
    print_findings(console, findings)
    warnings = [f for f in active(findings) if f.severity == "warning"]
    console.print(
        f"{args.study}: {len(spec.variants)} variants x {_runs(spec)}; "
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
    from tricklab.tools.export import export_model

    if args.path is not None:
        check_directory("", args.path, args.path.parent)
    path = export_model(args.run_dir, args.path)
    console.print(f"wrote {path} (load it with keras.saving.load_model)")
    return 0


def predict(args: argparse.Namespace, console: Console) -> int:
    from tricklab.tools.export import predict_csv

    frame = predict_csv(args.run_dir, args.csv, header=not args.no_header)
    sys.stdout.write(frame.to_csv(index=False, float_format="%.6g"))
    return 0


def activations(args: argparse.Namespace, console: Console) -> int:
    from tricklab.tools.activations import plot_activations

    check_directory("--out ", args.out)
    path = plot_activations(args.out, args.negative_slope)
    console.print(f"wrote {path}")
    return 0


def lr_find(args: argparse.Namespace, console: Console) -> int:
    from tricklab.tools.lrfind import lr_find_command

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


def search(args: argparse.Namespace, console: Console) -> int:
    from tricklab.cli._search import search_command

    return search_command(args, console)


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


def _runs(spec: Any) -> str:
    """The runs of each variant: ``20 seeds``, or ``50 runs (5 folds x 10 repeats)`` under cv."""
    if spec.cv is not None:
        return f"{len(spec.seeds)} runs ({spec.cv.folds} folds x {spec.cv.repeats} repeats)"
    return f"{len(spec.seeds)} seeds"
