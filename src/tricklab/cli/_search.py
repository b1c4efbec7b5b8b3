"""The ``tricklab search`` command: arguments in, trial lines, summary and images out."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from rich.console import Console

from tricklab.base.errors import TricklabError
from tricklab.cli._options import Subparsers, backend_option


def add_parser(sub: Subparsers) -> None:
    search = sub.add_parser(
        "search",
        parents=[backend_option()],
        help="Optuna search over the study's [search] table",
        description="Search the overrides of the study's [search] table with Optuna (TPE, "
        "median pruner) until N trials are complete or pruned; rerunning continues to N. "
        "Prints the best trial and writes the optimisation history and parameter importances.",
    )
    search.add_argument("study", type=Path, help="study file (TOML) with a [search] table")
    search.add_argument(
        "--trials", type=int, metavar="N", help="COMPLETE + PRUNED trials to reach (FAIL not)"
    )
    search.add_argument(
        "--storage",
        metavar="PATH_OR_URL",
        help="an Optuna journal file, or an RDB URL (sqlite:///x.db, postgresql://...) for "
        "workers on several machines (default: runs/STUDY/search/optuna.journal)",
    )
    search.add_argument(
        "--workers", type=int, default=1, metavar="N", help="local worker processes (default: 1)"
    )
    search.add_argument(
        "--batch",
        type=int,
        default=1,
        metavar="K",
        help="ask K trials at once and train them as populations (default: 1)",
    )
    search.add_argument(
        "--objective",
        default="val_loss",
        metavar="METRIC",
        help="history column whose best epoch is a trial's value (default: val_loss)",
    )
    search.add_argument(
        "--direction",
        choices=("minimize", "maximize"),
        help="default: minimize losses and errors, maximize other metrics",
    )
    search.add_argument(
        "--startup-trials",
        type=int,
        default=5,
        metavar="N",
        help="trials that finish before the median pruner prunes any (default: 5)",
    )
    search.add_argument(
        "--export-variants",
        type=int,
        metavar="K",
        help="write the K best trials as variants of a copy of the study (STUDY-best.toml)",
    )
    search.add_argument(
        "--out", type=Path, default=Path("runs"), help="store directory (default: runs)"
    )
    search.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    search.set_defaults(handler=search_command)


def search_command(args: argparse.Namespace, console: Console) -> int:
    from tricklab.base.interrupts import EXIT_INTERRUPTED, graceful
    from tricklab.cli._errors import check_directory
    from tricklab.engines import Interrupted
    from tricklab.spec import load_study
    from tricklab.tools.search import (
        export_variants,
        prepare,
        require_optuna,
        run_search,
        run_worker,
        shown,
        summary,
        tie_note,
    )

    require_optuna()
    if args.trials is None and args.export_variants is None:
        raise TricklabError(
            "tricklab search needs --trials N (the COMPLETE + PRUNED trials to reach), "
            "--export-variants K, or both."
        )
    if args.export_variants is not None and args.export_variants < 1:
        raise TricklabError(
            f"--export-variants must be an int >= 1. Received: {args.export_variants}."
        )
    spec = load_study(args.study)
    options = {
        "out": args.out,
        "storage": args.storage,
        "objective": args.objective,
        "direction": args.direction,
        "startup_trials": args.startup_trials,
    }
    check_directory("--out ", args.out, args.out / spec.name)
    listener = _printer(console, args.worker)
    if args.worker:  # one of the processes of --workers N: trials only
        ctx = prepare(spec, **options)
        parent = os.getppid()
        with graceful() as stop:
            try:
                run_worker(
                    ctx, trials=args.trials, batch=args.batch, listener=listener,
                    # Orphaned (its search was killed), it stops rather than train unseen.
                    stop_requested=lambda: stop() or os.getppid() != parent,
                )  # fmt: skip
            except Interrupted:
                return EXIT_INTERRUPTED
        return 0
    if args.trials is not None:
        console.print(
            f"search [bold]{spec.name}[/bold]: up to {args.trials} complete + pruned trials, "
            f"objective {args.objective}, {args.workers} worker(s), batch {args.batch}"
        )
        try:
            with graceful() as stop:
                outcome = run_search(
                    spec, trials=args.trials, workers=args.workers, batch=args.batch,
                    listener=listener, stop_requested=stop, backend=args.backend, **options,
                )  # fmt: skip
        except Interrupted:
            console.print(
                "interrupted: finished trials are kept and the interrupted ones are queued "
                "again; run the same command to continue."
            )
            return EXIT_INTERRUPTED
        study = outcome.study
        console.print(f"storage: {shown(outcome.storage)}", markup=False, soft_wrap=True)
        for line in summary(study, outcome.objective):
            console.print(line, markup=False, soft_wrap=True)
        for image in outcome.images:
            console.print(f"wrote {image}", markup=False, soft_wrap=True)
        for why in outcome.skipped_images:
            console.print(f"no {why}", markup=False, soft_wrap=True)
    else:
        study = prepare(spec, **options).study
    if args.export_variants is not None:
        path = export_variants(spec, study, args.export_variants)
        note = tie_note(study, args.objective) if args.trials is None else None
        if note:  # (with --trials the summary above has said it)
            console.print(note, markup=False, soft_wrap=True)
        console.print(
            f"wrote {path}: the {args.export_variants} best trials as variants; compare them "
            f"over seeds with: tricklab run {path}",
            markup=False,
            soft_wrap=True,
        )
    return 0


def _printer(console: Console, worker: bool) -> Any:
    prefix = f"[worker {os.getpid()}] " if worker else ""

    def show(event: Any) -> None:
        if event.state == "complete":
            text = f"trial {event.number} complete: {event.value:.6g} at epoch {event.epoch}"
        elif event.state == "pruned":
            text = f"trial {event.number} pruned after epoch {event.epoch}"
        elif event.state == "requeued":
            text = f"trial {event.number} failed ({event.error}); its parameters are queued again"
        else:
            text = f"trial {event.number} failed: {event.error}"
        console.print(prefix + text, markup=False, soft_wrap=True)

    return show
