"""The scheduler: claims units in the store, has an executor train them, commits the outcomes.

Whatever executor trains the runs, this module alone claims and commits them and tells the
progress display about them. With the ``process`` executor the worker processes each run this
same scheduler on the study (claiming through the store as separate ``tricklab run`` commands
would) and this process relays their reports.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tricklab.executors._events import EventKind, RunEvent
from tricklab.executors._process import WorkerJob

if TYPE_CHECKING:
    from tricklab.data import Dataset
    from tricklab.engines import Assignment, Control, RunDone, RunTask
    from tricklab.engines.contract import RunPlan, RunResult
    from tricklab.executors._unit import Unit
    from tricklab.store import RunStore


@dataclass
class Scheduled:
    """What :func:`schedule` did: runs committed here, failed, and left to other workers."""

    trained: int = 0
    failed: list[tuple[RunPlan, str]] = field(default_factory=list)
    skipped: list[tuple[RunPlan, str]] = field(default_factory=list)


def schedule(
    executor: Any,
    todo: list[tuple[RunPlan, Assignment]],
    *,
    store: RunStore,
    dataset: Dataset,
    task: Callable[[RunPlan], RunTask],
    results: dict[tuple[str, int], RunResult],
    notify: Callable[[RunEvent], None],
    control: Control,
    wait: bool = True,
    poll: float = 2.0,
    job: WorkerJob | None = None,
) -> Scheduled:
    """Train the runs of ``todo`` with ``executor``; finished runs are added to ``results``.

    ``task`` makes a run's :class:`~tricklab.engines.RunTask` (its split); ``job`` is what the
    ``process`` executor's workers run (:data:`~tricklab.executors.WorkerJob`).
    """
    book = _Book(store, results, notify, {plan.key: plan for plan, _ in todo})
    try:
        if not todo:  # nothing to train: start no worker, no Ray
            pass
        elif executor.name == "process":
            if job is None:
                raise ValueError("the process executor needs the job its workers run")
            _relay(executor, job, book, control)
        else:
            _claim_and_train(executor, todo, book, dataset, task, control, wait, poll)
    finally:
        store.close()
    return book.out


class _Book:
    """The runs of this call: what finished, failed or went elsewhere, and the events said."""

    def __init__(
        self,
        store: RunStore,
        results: dict[tuple[str, int], RunResult],
        notify: Callable[[RunEvent], None],
        by_key: dict[str, RunPlan],
    ) -> None:

        self.store, self.results, self.notify, self.by_key = store, results, notify, by_key
        self.total = len(by_key)
        self.finished = 0  # runs of this call done, failed or committed by another worker
        self.failed_keys: set[str] = set()
        self.lost_keys: set[str] = set()  # claims lost while training (results discarded)
        self.left_keys: set[str] = set()  # runs left to their holders after a second loss
        self.out = Scheduled()

    def progress(self, event: Any) -> None:
        """An engine's progress event, as the display's :class:`RunEvent`."""
        from tricklab.engines import PopulationEpoch

        if isinstance(event, PopulationEpoch):
            self.notify(
                RunEvent(EventKind.POPULATION, None, self.finished, self.total, population=event)
            )
        else:
            plan = self.by_key[event.key]
            self.notify(
                RunEvent(
                    EventKind.EPOCH,
                    plan,
                    self.finished,
                    self.total,
                    epoch=event.epoch,
                    logs=event.logs,
                )
            )

    def done(self, plan: RunPlan, result: RunResult) -> None:
        if plan.key in self.failed_keys:  # another worker retried it and it trained
            self.failed_keys.discard(plan.key)
            self.out.failed = [(p, e) for p, e in self.out.failed if p.key != plan.key]
        else:
            self.finished += 1
        self.out.trained += 1
        self.results[(plan.variant, plan.seed)] = result
        self.notify(RunEvent(EventKind.DONE, plan, self.finished, self.total, result=result))

    def fail(self, plan: RunPlan, error: str) -> None:
        self.finished += 1
        self.out.failed.append((plan, error))
        self.failed_keys.add(plan.key)
        self.notify(RunEvent(EventKind.FAILED, plan, self.finished, self.total, error=error))

    def lost(self, plan: RunPlan, holder: str) -> None:
        """This worker lost its claim on ``plan`` (stopped past its lease): its result is
        discarded. The run stays open here once: its holder's commit is picked up
        ("elsewhere"), or, if nobody holds it any more, it is claimed and trained again; lost
        a second time, it is left to its holder."""
        self.notify(RunEvent(EventKind.LOST, plan, self.finished, self.total, error=holder))
        if plan.key in self.lost_keys:
            self.finished += 1
            self.left_keys.add(plan.key)  # answered here: not waited for again
            self.out.skipped.append((plan, f"claim lost twice, held by {holder}"))
        self.lost_keys.add(plan.key)

    def answered(self, plan: RunPlan) -> bool:
        if (plan.variant, plan.seed) in self.results:
            return True
        return plan.key in self.failed_keys or plan.key in self.left_keys

    def still_open(self, plan: RunPlan) -> bool:
        """Not finished here, not failed here, and not committed by another worker."""
        if self.answered(plan):
            return False
        stored = self.store.finished(plan)
        if stored is None:
            return True
        self.results[(plan.variant, plan.seed)] = stored
        self.finished += 1
        self.notify(RunEvent(EventKind.ELSEWHERE, plan, self.finished, self.total, result=stored))
        return False


def _claim_and_train(
    executor: Any,
    todo: list[tuple[RunPlan, Assignment]],
    book: _Book,
    dataset: Dataset,
    task: Callable[[RunPlan], RunTask],
    control: Control,
    wait: bool,
    poll: float,
) -> None:
    from tricklab import engines
    from tricklab.base.quiet import capture

    store = book.store
    # What one worker claims and trains at a time: a population group, or one solo run.
    groups: dict[tuple[str, str], list[RunPlan]] = {}
    for plan, a in todo:
        groups.setdefault((a.engine, a.group or plan.key), []).append(plan)
    waiting_for = ""
    while True:
        pending = [
            (name, [p for p in unit if book.still_open(p)]) for (name, _), unit in groups.items()
        ]
        pending = [(name, unit) for name, unit in pending if unit]
        if not pending:
            return
        claimed: list[Unit] = []
        units = _claims(store, pending, task, claimed)
        left: dict[Unit, int] = {}
        # A unit's finished runs are committed together once it is over (a population's members
        # finish at once): one lock and one round of fsyncs for all of them.
        finished: dict[Unit, list[engines.RunDone]] = {}
        # Library warnings go to study.log, tagged with the unit in training (tricklab.base.quiet).
        with capture() as caught:
            try:
                taken = caught.following(units)
                for unit, outcome in executor.train(taken, dataset, book.progress, control):
                    plan = book.by_key[outcome.key]
                    if isinstance(outcome, engines.RunFailed):
                        store.save_failure(plan, outcome.traceback)
                        book.fail(plan, outcome.error)
                    elif isinstance(outcome, engines.RunDone):
                        finished.setdefault(unit, []).append(outcome)
                    left[unit] = left.get(unit, len(unit.tasks)) - 1
                    if left[unit] == 0:
                        _commit(book, unit, finished.pop(unit, []))
                        store.drop_checkpoint(unit.keys)
                        store.release(unit.plans)
                        store.log_warnings(caught.take())
            finally:
                for unit, done in finished.items():  # cut short: keep what finished
                    _commit(book, unit, done)
                store.log_warnings(caught.take())
        if claimed:
            continue
        # Every run left is claimed by a live worker: wait for it, or leave it to it.
        rest = [p for _, unit in pending for p in unit]
        holders = ", ".join(store.holders(rest)) or "another worker"
        if not wait:
            book.out.skipped = [(p, f"claimed by {holders}") for p in rest]
            return
        if holders != waiting_for:  # say it once per change, not every poll
            book.notify(RunEvent(EventKind.WAITING, None, book.finished, book.total, error=holders))
            waiting_for = holders
        # Sleep in slices: Ctrl-C or SIGTERM must end the wait within a fraction of a second.
        # Nothing trains here, so nothing is checkpointed: no keys, epoch 0.
        until = time.monotonic() + poll
        while time.monotonic() < until:
            if control.stop_requested():
                raise engines.Interrupted([], 0)
            time.sleep(min(0.2, max(0.0, until - time.monotonic())))


def _claims(
    store: RunStore,
    pending: list[tuple[str, list[RunPlan]]],
    task: Callable[[RunPlan], RunTask],
    claimed: list[Unit],
) -> Iterator[Unit]:
    """Each unit as it is taken: what of it is still free is claimed at that moment."""
    from tricklab.executors._unit import Unit

    for engine, plans in pending:
        mine = store.claim(plans)
        if mine:
            claimed.append(Unit(engine, tuple(task(p) for p in mine)))
            yield claimed[-1]


def _commit(book: _Book, unit: Unit, outcomes: list[RunDone]) -> None:
    """Commit the finished runs of ``unit`` as one batch; say what became of each."""
    from tricklab.store import Finished

    splits = {t.plan.key: t.splits for t in unit.tasks}
    runs = [
        Finished(
            book.by_key[o.key],
            o.result,
            o.weights_file,
            o.predictions,
            splits[o.key].y_test,  # the store keeps them once per split
            o.last_weights_file,
            o.last_predictions,
        )
        for o in outcomes
    ]
    for run, commit in zip(runs, book.store.save_many(runs), strict=True):
        if commit.committed:
            book.done(run.plan, run.result)
        else:  # the claim was lost: whoever holds it now commits the run
            book.lost(run.plan, commit.holder)


def _relay(executor: Any, job: WorkerJob, book: _Book, control: Control) -> None:
    """The ``process`` executor: its workers claim, train and commit; say what they report."""
    for event in executor.run_workers(job, control.stop_requested):
        if event.kind == EventKind.POPULATION:
            book.notify(dataclasses.replace(event, index=book.finished, total=book.total))
            continue
        plan = book.by_key.get(event.plan.key) if event.plan is not None else None
        if plan is None:
            continue
        if event.kind == EventKind.EPOCH and not book.answered(plan):
            book.notify(dataclasses.replace(event, index=book.finished, total=book.total))
        elif event.kind == EventKind.DONE and (plan.variant, plan.seed) not in book.results:
            book.done(plan, event.result)
        elif event.kind == EventKind.FAILED and not book.answered(plan):
            book.fail(plan, event.error)
        elif event.kind == EventKind.LOST:  # a worker stopped past its lease discarded its result
            book.notify(dataclasses.replace(event, index=book.finished, total=book.total))
    # Runs no worker reported: committed by a foreign worker, held by one, or lost in a crash.
    for plan in book.by_key.values():
        if not book.still_open(plan):
            continue
        holders = book.store.holders([plan])
        if holders:
            book.out.skipped.append((plan, f"claimed by {', '.join(holders)}"))
        else:
            book.fail(plan, "; ".join(executor.crashed) or "no worker process trained it")
