"""``tricklab run`` (train a study, then report) and ``tricklab status`` (its runs' states)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from tricklab.cli._errors import check_directory, check_study_dir
from tricklab.cli._inspect import counted, print_findings, runs_of
from tricklab.cli._mlflow import check_tracking_options, log_to_mlflow, tracking_options
from tricklab.cli._options import Subparsers, backend_option
from tricklab.cli._report import WIDE_HELP, show_report
from tricklab.spec import ENGINES, EXECUTORS, RunOptions

EXIT_RUNS_FAILED = 1
DEFAULTS = RunOptions()  # the flags' defaults: one home, the run options


def add_parser(sub: Subparsers) -> None:
    run = sub.add_parser(
        "run",
        parents=[backend_option()],
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
        "seeds 0..N-1 when N > K; under cv, the first N repeats",
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
        default=DEFAULTS.checkpoint_every,
        metavar="SECONDS",
        help="save a checkpoint of the run(s) in training at the first epoch boundary after "
        f"this many seconds (default: {DEFAULTS.checkpoint_every:g}); a rerun after a crash "
        "continues from it",
    )
    for flag, default, what in (
        ("--lease", DEFAULTS.lease, "a claim expires this long after its worker last renewed it"),
        ("--renew", DEFAULTS.renew, "how often a worker renews its claims (less than --lease)"),
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
        choices=ENGINES,
        default=DEFAULTS.engine,
        help="auto (default): runs that share layer shapes, batch size and epochs train as one "
        "compiled population on JAX, others solo; solo: one model.fit per run; population: "
        "populations even of one run",
    )
    run.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=DEFAULTS.executor,
        help="where runs train: local (default): in this process; process: --workers processes "
        "on this machine that claim runs through the store; ray: each population group or solo "
        "run is a Ray task, on a local Ray or the cluster at --address (needs tricklab[ray])",
    )
    run.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes (--executor process) or CPUs of the local Ray (--executor ray); "
        "default: the cores this process may use",
    )
    run.add_argument(
        "--address",
        metavar="ADDR",
        help="an existing Ray cluster for --executor ray (e.g. ray://head:10001 or auto); "
        "tricklab must be installed on its nodes. Default: start a local Ray",
    )
    run.add_argument(
        "--quiet", action="store_true", help="plain log lines instead of a live progress display"
    )
    run.add_argument("--wide", action="store_true", help=WIDE_HELP)
    run.add_argument(
        "--mlflow",
        action="store_true",
        help="then log the study to MLflow, as `tricklab mlflow` does (needs tricklab[mlflow])",
    )
    tracking_options(run, " for --mlflow")
    run.set_defaults(handler=run_command)

    status = sub.add_parser(
        "status",
        help="the state of every run of a stored study",
        description="Count the runs of a stored study by state (done, failed, diverged, "
        "damaged, planned, claimed), then list the runs that need a look: failed (with the "
        "error), diverged, damaged (which file) and claimed (host, pid, since); --all lists "
        "every run.",
    )
    status.add_argument("study_dir", type=Path, help="the study's store, e.g. runs/STUDY")
    status.add_argument(
        "--all",
        action="store_true",
        help="list done and planned runs too (by default: counts, then only the runs that "
        "failed, diverged, are damaged or are claimed by a worker)",
    )
    status.set_defaults(handler=status_command)


def run_command(args: argparse.Namespace, console: Console) -> int:
    from tricklab.api import run_study
    from tricklab.base.interrupts import EXIT_INTERRUPTED, graceful
    from tricklab.cli._progress import PlainLog, RichDisplay
    from tricklab.data import describe_intake, resolve
    from tricklab.engines import Interrupted
    from tricklab.spec import load_study
    from tricklab.store import RunStore
    from tricklab.tools.lint import active, lint, refuse

    options = RunOptions.make(  # checked before any data is read
        engine=args.engine,
        executor=args.executor,
        workers=args.workers,
        address=args.address,
        checkpoint_every=args.checkpoint_every,
        lease=args.lease,
        renew=args.renew,
        wait=not args.no_wait,
    )
    check_tracking_options(args)
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
    findings = lint(resolved)  # shown here, then kept in the study index by run_study
    refuse(resolved, findings)  # a run too large for memory: one line before Keras starts
    print_findings(console, active(findings))
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
        f"study [bold]{spec.name}[/bold]: {counted(len(spec.variants), 'variant')} x "
        f"{runs_of(spec)} on {resolved.backend}{protocol}"
    )
    left_out = [name for name in definition.variants if name not in spec.variants]
    if left_out:  # --variant: say what this run does not train, so no table misleads
        console.print(
            f"  left out by --variant: {counted(len(left_out), 'variant')} "
            f"({', '.join(left_out)}); run without --variant to train them too",
            markup=False,
            soft_wrap=True,
        )
    for line in describe_intake(resolved.dataset):  # what intake did, and why the task is so
        console.print(f"  {line}", markup=False, soft_wrap=True)
    console.print(f"  protocol: {resolved.protocol.describe()}", markup=False, soft_wrap=True)
    console.print(
        f"  checkpoint: the {resolved.evaluate} weights' test scores are compared (train.evaluate)",
        markup=False,
    )
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
                stop_requested=stop,
                options=options,
                findings=findings,
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
        f"trained {counted(outcome.trained, 'run')}, reused {outcome.reused} from {outcome.root}"
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


#: The order of ``status``'s counts; a running run is shown as claimed (a worker holds it).
STATUS_ORDER = ("done", "failed", "diverged", "damaged", "planned", "claimed")


def status_command(args: argparse.Namespace, console: Console) -> int:
    from rich.table import Table

    from tricklab.store import RunState, RunStore

    check_study_dir(args.study_dir)
    store = RunStore(args.study_dir)
    statuses = store.indexed_runs()

    def label(state: RunState) -> str:
        return "claimed" if state == RunState.RUNNING else state.value

    counts = dict.fromkeys(STATUS_ORDER, 0)
    for status in statuses:
        counts[label(status.state)] += 1
    # Counts first: on a study of hundreds of runs they are what a user looks for.
    console.print(
        f"{store.root}: {counted(len(statuses), 'run')}: "
        + ", ".join(f"{n} {state}" for state, n in counts.items()),
        markup=False,
        soft_wrap=True,
    )
    # Runs that need a look are always listed; done and planned ones only with --all.
    quiet = () if args.all else (RunState.DONE, RunState.PLANNED)
    shown = [status for status in statuses if status.state not in quiet]
    if shown:
        table = Table()
        table.add_column("variant", overflow="fold")
        table.add_column("seed", justify="right", no_wrap=True)
        table.add_column("state", no_wrap=True)
        table.add_column("detail", overflow="fold")
        for status in shown:
            table.add_row(status.variant, str(status.seed), label(status.state), status.detail)
        console.print(table)
    if len(shown) < len(statuses):
        console.print(f"{counted(len(statuses) - len(shown), 'done or planned run')} not listed; "
                      "--all lists every run")  # fmt: skip
    # Damaged runs again, one whole line each, whatever the table folded: they need action.
    for status in statuses:
        if status.state == RunState.DAMAGED:
            line = f"{status.variant} seed {status.seed}: damaged: {status.detail}"
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    return 0
