"""The ``tricklab`` command line.

Bad input is reported as located one-line errors (no traceback) with exit status 2, and so are
errors of the operating system (a full disk, a denied permission: the file, what happened and its
errno name) and files that are not UTF-8; a study whose runs partly failed exits with 1 after
keeping every finished run.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from tricklab import __version__, _backend
from tricklab._cli_errors import check_directory, check_study_dir, os_error, print_error
from tricklab.errors import TricklabError, not_utf8

EXIT_BAD_INPUT = 2
EXIT_RUNS_FAILED = 1
EXIT_LINT_WARNINGS = 1
PIPED_WIDTH = 180

Command = Callable[[argparse.Namespace, Console], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # Piped output (logs, CI) gets a wide page so tables keep their columns.
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPED_WIDTH
    console = Console(highlight=False, soft_wrap=True, width=width)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        if getattr(args, "backend", None):
            _backend.select(args.backend)
        return args.handler(args, console)
    except TricklabError as exc:
        print_error(errors, str(exc))
        return EXIT_BAD_INPUT
    except OSError as exc:
        print_error(errors, os_error(exc, args.command))
        return EXIT_BAD_INPUT
    except UnicodeDecodeError as exc:
        print_error(errors, f"{not_utf8(exc)}. tricklab reads every file as UTF-8.")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        errors.print("interrupted: finished runs are kept; run the same command to resume.")
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tricklab",
        description="Train Keras training tricks as studies (variants x seeds) and report "
        "which ones help, with honest statistics.",
    )
    parser.add_argument("--version", action="version", version=f"tricklab {__version__}")
    backend = argparse.ArgumentParser(add_help=False)
    backend.add_argument(
        "--backend",
        choices=_backend.BACKENDS,
        help="Keras backend (default: $KERAS_BACKEND, else jax).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        parents=[backend],
        help="train every variant x seed of a study and report",
        description="Train every variant x seed of a study that the store does not hold yet, "
        "then print the table and write the reports.",
    )
    run.add_argument("study", type=Path, help="study file (TOML)")
    run.add_argument(
        "--variant", action="append", metavar="NAME", help="only this variant (repeatable)"
    )
    run.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        help="the study's first N seeds; a study that counts its seeds (seeds = K) extends to "
        "seeds 0..N-1 when N > K",
    )
    run.add_argument("--epochs", type=int, metavar="N", help="train every variant for N epochs")
    run.add_argument(
        "--out", type=Path, default=Path("runs"), help="store directory (default: runs)"
    )
    run.add_argument(
        "--fresh",
        action="store_true",
        help="delete the selected variants' and seeds' stored runs first (the others stay)",
    )
    run.add_argument(
        "--no-wait",
        action="store_true",
        help="leave runs that other live workers have claimed to them instead of waiting",
    )
    run.add_argument(
        "--checkpoint-every",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="save a checkpoint of the run(s) in training at the first epoch boundary after "
        "this many seconds (default: 30); a rerun after a crash continues from it",
    )
    for flag, default, what in (
        ("--lease", 60.0, "a claim on a run expires this long after its worker last renewed it"),
        ("--renew", 10.0, "how often a worker renews its claims (less than --lease)"),
    ):
        run.add_argument(
            flag,
            type=float,
            default=default,
            metavar="SECONDS",
            help=f"{what} (default: {default:g})",
        )
    run.add_argument(
        "--engine",
        choices=("auto", "solo", "population"),
        default="auto",
        help="auto (default): runs that share layer shapes, batch size and epochs train as one "
        "compiled population on JAX, others solo; solo: one model.fit per run; population: "
        "populations even of one run",
    )
    run.add_argument(
        "--quiet", action="store_true", help="plain log lines instead of a live progress display"
    )
    run.set_defaults(handler=_run)

    status = sub.add_parser(
        "status",
        help="the state of every run of a stored study",
        description="Print each run of a stored study with its state: planned, running "
        "(claimed: host, pid, since), done, diverged, failed (with the error) or damaged "
        "(which file).",
    )
    status.add_argument("study_dir", type=Path, help="the study's store, e.g. runs/STUDY")
    status.set_defaults(handler=_status)

    summary = sub.add_parser(
        "summary",
        parents=[backend],
        help="print each variant's Keras model summary",
        description="Print the Keras model summary (layers, shapes, parameter counts) of "
        "each variant, as the lecture does after every change.",
    )
    summary.add_argument("study", type=Path)
    summary.add_argument("--variant", action="append", metavar="NAME")
    summary.set_defaults(handler=_summary)

    lint = sub.add_parser(
        "lint",
        help="check a study file without training",
        description="Validate a study file and report recipe mistakes; nothing is trained and "
        "Keras is not started.",
    )
    lint.add_argument("study", type=Path)
    lint.set_defaults(handler=_lint)

    report = sub.add_parser(
        "report",
        help="rebuild a study's reports from its stored runs",
        description="Rebuild the table, report.md and report.html of a study from the runs in "
        "its store, without training.",
    )
    report.add_argument("study_dir", type=Path, help="runs/<study>")
    report.set_defaults(handler=_report)

    export = sub.add_parser(
        "export",
        parents=[backend],
        help="write a run's best model as a .keras file",
        description="Write the best weights of one run as a .keras model file that plain "
        "keras.saving.load_model loads; it takes raw feature values (the run's preprocessing "
        "is part of the model).",
    )
    export.add_argument("run_dir", type=Path, help="runs/<study>/<variant>/seed-<n>")
    export.add_argument(
        "path", type=Path, nargs="?", help="output file (default: RUN_DIR/model.keras)"
    )
    export.set_defaults(handler=_export)

    predict = sub.add_parser(
        "predict",
        parents=[backend],
        help="predict the rows of a CSV with a run's best model",
        description="Print the predictions of one run's best model for each row of a CSV of "
        "raw feature values, as CSV (row, prediction, and a probability per class).",
    )
    predict.add_argument("run_dir", type=Path, help="runs/<study>/<variant>/seed-<n>")
    predict.add_argument("csv", type=Path, help="features; a header row names the columns")
    predict.add_argument(
        "--no-header",
        action="store_true",
        help="the CSV has no header: exactly the model's features, in order",
    )
    predict.set_defaults(handler=_predict)

    figure = sub.add_parser(
        "activations",
        parents=[backend],
        help="plot activation functions and derivatives",
        description="Draw sigmoid, tanh, relu, leaky_relu, elu, selu, gelu and swish with their "
        "derivatives (computed by keras.activations and automatic differentiation), and "
        "softmax on an example vector, into activations.png.",
    )
    figure.add_argument(
        "--out",
        type=Path,
        default=Path("."),
        help="folder for activations.png (default: current folder)",
    )
    figure.add_argument(
        "--negative-slope",
        type=float,
        default=0.2,
        help="leaky_relu slope for x < 0 (default: 0.2, Keras's default)",
    )
    figure.set_defaults(handler=_activations)

    finder = sub.add_parser(
        "lr-find",
        parents=[backend],
        help="learning-rate range test for one variant",
        description="Train one variant for a few hundred batches while the learning rate grows "
        "exponentially (Smith 2017, fastai's lr_find); plot loss against learning rate and "
        "suggest the rate at the steepest descent.",
    )
    finder.add_argument("study", type=Path)
    finder.add_argument("--variant", metavar="NAME", help="variant (default: the baseline)")
    finder.add_argument("--steps", type=int, default=200, help="batches (default: 200)")
    finder.add_argument("--min-lr", type=float, default=1e-7, help="first rate (default: 1e-7)")
    finder.add_argument("--max-lr", type=float, default=10.0, help="last rate (default: 10)")
    finder.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    finder.add_argument(
        "--stop-factor",
        type=float,
        default=4.0,
        help="stop when the smoothed loss exceeds this x its minimum (default: 4)",
    )
    finder.add_argument(
        "--out", type=Path, default=Path("runs"), help="folder for the plot (default: runs)"
    )
    finder.set_defaults(handler=_lr_find)

    data = sub.add_parser(
        "datasets",
        help="list the datasets",
        description="List built-in datasets: task, shapes, classes and where they are found.",
    )
    data.set_defaults(handler=_datasets)
    return parser


# -- commands -----------------------------------------------------------------------------------
def _run(args: argparse.Namespace, console: Console) -> int:
    from tricklab._interrupts import EXIT_INTERRUPTED, graceful
    from tricklab._progress import PlainLog, RichDisplay
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
    _print_findings(console, active(lint_study(spec, dataset)))
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
        _show_report(console, outcome.root)
    return EXIT_RUNS_FAILED if outcome.failed else 0


def _status(args: argparse.Namespace, console: Console) -> int:
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


def _show_report(console: Console, root: Path) -> None:
    from tricklab.report import build_report, diagnostics_terminal_table, terminal_table

    report = build_report(root)
    console.print(terminal_table(report))
    diagnostics = diagnostics_terminal_table(report)
    if diagnostics is not None:
        console.print(diagnostics)
    for comparison in report.comparisons:
        console.print(f"  {comparison.sentence()}", markup=False)
    console.print(f"report: {report.html}  (and {report.markdown.name})")


def _report(args: argparse.Namespace, console: Console) -> int:
    check_study_dir(args.study_dir)
    _show_report(console, args.study_dir)
    return 0


def _summary(args: argparse.Namespace, console: Console) -> int:
    from tricklab.build import summary
    from tricklab.spec import load_study
    from tricklab.study import load_data

    spec = load_study(args.study).select(args.variant)
    dataset = load_data(spec)
    for name, recipe in spec.variants.items():
        console.rule(f"variant {name}")
        console.print(summary(recipe, dataset.input_shape), markup=False)
    return 0


def _lint(args: argparse.Namespace, console: Console) -> int:
    from tricklab.spec import load_study
    from tricklab.study import check_study, lint_study, load_data
    from tricklab.tools.lint import active

    spec = load_study(args.study)
    check_study(spec, load_data(spec))
    findings = lint_study(spec)
    _print_findings(console, findings)
    warnings = [f for f in active(findings) if f.severity == "warning"]
    console.print(
        f"{args.study}: {len(spec.variants)} variants x {len(spec.seeds)} seeds; "
        f"{len(warnings)} warning(s), {len(active(findings)) - len(warnings)} hint(s), "
        f"{len(findings) - len(active(findings))} ignored"
    )
    return EXIT_LINT_WARNINGS if warnings else 0


def _print_findings(console: Console, findings: Sequence[Any]) -> None:
    styles = {"warning": "yellow", "hint": "cyan"}
    for finding in findings:
        if finding.ignored is not None:
            console.print(
                f"[dim]{finding.line()} (ignored: {finding.ignored})[/dim]", soft_wrap=True
            )
        else:
            style = styles.get(finding.severity, "")
            console.print(f"[{style}]{finding.line()}[/{style}]", soft_wrap=True)


def _export(args: argparse.Namespace, console: Console) -> int:
    from tricklab.export import export_model

    if args.path is not None:
        check_directory("", args.path, args.path.parent)
    path = export_model(args.run_dir, args.path)
    console.print(f"wrote {path} (load it with keras.saving.load_model)")
    return 0


def _predict(args: argparse.Namespace, console: Console) -> int:
    from tricklab.export import predict_csv

    frame = predict_csv(args.run_dir, args.csv, header=not args.no_header)
    sys.stdout.write(frame.to_csv(index=False, float_format="%.6g"))
    return 0


def _activations(args: argparse.Namespace, console: Console) -> int:
    from tricklab.activations import plot_activations

    check_directory("--out ", args.out)
    path = plot_activations(args.out, args.negative_slope)
    console.print(f"wrote {path}")
    return 0


def _lr_find(args: argparse.Namespace, console: Console) -> int:
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


def _datasets(args: argparse.Namespace, console: Console) -> int:
    from tricklab.datasets import describe_datasets

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


if __name__ == "__main__":
    sys.exit(main())
