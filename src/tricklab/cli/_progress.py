"""Progress displays for a study: a rich live bar, or plain log lines (``--quiet``)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from tricklab.cli._inspect import counted
from tricklab.engines.contract import ResultStatus, RunResult
from tricklab.executors import EventKind, RunEvent

#: Width of the bar: the bar's line is about 60 columns with it, so it fits 80.
BAR_WIDTH = 24


def run_line(result: RunResult, metric: str | None) -> str:
    """One line per finished run: epochs, best epoch, test score of best and last weights."""
    best, last = result.test.get("best", {}), result.test.get("last", {})
    name = metric if metric and metric in best else "loss"
    score = f"test {name} {_fmt(best.get(name))} best / {_fmt(last.get(name))} last"
    status = "" if result.status is ResultStatus.OK else f"  [{result.status}]"
    return (
        f"{result.variant} seed {result.seed}: {counted(result.epochs_run, 'epoch')} "
        f"(best {result.best_epoch}), {score}, {result.seconds_total:.1f} s{status}"
    )


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4f}"


class _TwoLineProgress(Progress):
    """The bar on one line and what is training on the next, so both fit 80 columns: the
    detail line wraps rather than being cut."""

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        for task in self.tasks:
            detail = task.fields.get("detail", "")
            if detail:
                yield Text(f"  {detail}", overflow="fold")


class RichDisplay:
    """Runs done/total, elapsed and ETA over the current variant and seed, epoch, val loss."""

    def __init__(self, console: Console, metric: str | None, epochs: dict[str, int]) -> None:
        self.console = console
        self.metric = metric
        self.epochs = epochs  # variant -> max epochs, to advance the bar within a run
        self.progress = _TwoLineProgress(
            SpinnerColumn(),
            BarColumn(bar_width=BAR_WIDTH),
            MofNCompleteColumn(),
            TextColumn("runs"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task: Any = None
        self.reused = 0

    def __enter__(self) -> RichDisplay:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, event: RunEvent) -> None:
        if event.kind == EventKind.REUSED:
            self.reused += 1
            return
        if event.kind in NOTICES:
            self.console.print(notice_line(event), highlight=False, soft_wrap=True)
            return
        if self.task is None:
            self.task = self.progress.add_task("runs", total=event.total, detail="")
        plan = event.plan
        if event.kind == EventKind.POPULATION and event.population is not None:
            self.progress.update(self.task, detail=_detail(population_fields(event)))
        elif event.kind == EventKind.EPOCH and plan is not None and plan.engine == "solo":
            total = self.epochs.get(plan.variant, 1)
            val = event.logs.get("val_loss")
            fields = {
                "current": f"{plan.variant} / seed {plan.seed}",
                "epoch": f"epoch {event.epoch}/{total}",
                "val": f"val_loss {val:.4f}" if val is not None else "",
            }
            self.progress.update(self.task, detail=_detail(fields))
        elif event.kind in (EventKind.DONE, EventKind.FAILED) and plan is not None:
            self.progress.update(self.task, completed=event.index)
            if event.kind == EventKind.DONE and event.result is not None:
                # Wrapped at the console's width (never cut), under the live display.
                self.console.print("  " + run_line(event.result, self.metric), highlight=False)
            else:
                self.console.print(
                    f"  [red]{plan.variant} seed {plan.seed} failed:[/red] {event.error}",
                    highlight=False,
                )


#: Events said in one line each, between the runs' lines.
NOTICES = frozenset(
    {
        EventKind.FALLBACK,
        EventKind.DAMAGED,
        EventKind.REPAIRED,
        EventKind.LOST,
        EventKind.ELSEWHERE,
        EventKind.WAITING,
    }
)


def _detail(fields: dict[str, str]) -> str:
    """The progress display's second line: what trains, its epoch and its monitored value."""
    return ", ".join(v for v in (fields["current"], fields["epoch"], fields["val"]) if v)


def notice_line(event: RunEvent) -> str:
    """One line for what is neither progress nor a finished run."""
    plan = event.plan
    if event.kind == EventKind.WAITING or plan is None:
        return f"waiting for runs claimed by {event.error}"
    run = f"{plan.variant} seed {plan.seed}"
    if event.kind == EventKind.FALLBACK:  # why it trains solo rather than in a population
        return f"{run}: solo engine ({event.error})"
    if event.kind == EventKind.DAMAGED:
        return f"{run}: damaged, retraining it ({event.error})"
    if event.kind == EventKind.REPAIRED:
        return f"{run}: damaged split labels rewritten, nothing retrained ({event.error})"
    if event.kind == EventKind.LOST:  # this worker was stopped past its lease; another took the run
        return f"lost claim on {run} (held by {event.error}); result discarded"
    return f"{run}: committed by another worker"


def population_fields(event: RunEvent) -> dict[str, str]:
    """A population's progress: its epoch and how many of its members still train (the others
    stopped early, diverged or were pruned). Members may train different losses: no best."""
    pop = event.population
    assert pop is not None
    return {
        "current": f"population of {counted(pop.members, 'member')}",
        "epoch": f"epoch {pop.epoch}/{pop.epochs}",
        "val": f"{pop.training} still training",
    }


class PlainLog:
    """Plain lines, for logs and ``--quiet``: one per finished run and per population epoch."""

    def __init__(self, console: Console, metric: str | None) -> None:
        self.console = console
        self.metric = metric
        self.reused = 0
        self._start = time.perf_counter()

    def __enter__(self) -> PlainLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def __call__(self, event: RunEvent) -> None:
        elapsed = f"[{time.perf_counter() - self._start:7.1f} s]"
        if event.kind == EventKind.REUSED:
            self.reused += 1
        elif event.kind in NOTICES:
            self.console.print(f"{elapsed} {notice_line(event)}", highlight=False, soft_wrap=True)
        elif event.kind == EventKind.POPULATION and event.population is not None:
            self.console.print(f"{elapsed} {_detail(population_fields(event))}", highlight=False)
        elif event.kind == EventKind.DONE and event.result is not None:
            self.console.print(
                f"{elapsed} {event.index}/{event.total} {run_line(event.result, self.metric)}",
                highlight=False,
                soft_wrap=True,
            )
        elif event.kind == EventKind.FAILED:
            self.console.print(
                f"{elapsed}   failed: {event.error}", highlight=False, soft_wrap=True
            )
