"""Run a study: every variant x seed, reusing what the store already holds.

    >>> import tricklab
    >>> result = tricklab.run_study("studies/thoracic-losses.toml")
    >>> result.table()          # pandas DataFrame, one row per variant

Before anything trains, every variant is checked against the data, so a mistake in the last
variant cannot waste the time spent on the first ones.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tricklab import _backend, engines
from tricklab.build import check_compatible, primary_metric
from tricklab.data import Dataset, Splits, describe_intake, load_dataset, make_splits
from tricklab.engines import Assignment, PopulationEpoch
from tricklab.errors import DataError, SpecError
from tricklab.result import RunPlan, RunResult
from tricklab.spec import StudySpec, load_study
from tricklab.store import RunState, RunStore


@dataclass
class RunEvent:
    """What a progress display is told about.

    ``kind``: "reused" (a stored run), "damaged" (a stored run's files are damaged: ``error``
    says which; it is retrained), "fallback" (a run trains solo: ``error`` says why), "epoch"
    (a run finished an epoch), "population" (a population finished an epoch: ``population``),
    "done", "failed", "elsewhere" (another worker committed it) or "waiting" (every run left
    is claimed by live workers: ``error`` names them).
    """

    kind: str
    plan: RunPlan | None
    index: int  # runs finished so far in this call (done or failed)
    total: int  # runs to train
    epoch: int = 0
    logs: dict[str, float] = field(default_factory=dict)
    result: RunResult | None = None
    error: str = ""
    population: PopulationEpoch | None = None


Listener = Callable[[RunEvent], None]


def load_data(spec: StudySpec) -> Dataset:
    """The study's dataset; a data problem is reported with the study file that asked for it."""
    try:
        return load_dataset(spec.dataset, base_dir=spec.base_dir)
    except DataError as exc:
        prefix = f"{spec.source}: dataset: " if spec.source else "dataset: "
        raise DataError(prefix + str(exc)) from None


def lint_study(spec: StudySpec, dataset: Dataset | None = None) -> list[Any]:
    """The linter's findings for this study (its data loaded if not given)."""
    from tricklab.tools.lint import lint

    return lint(spec, dataset if dataset is not None else load_data(spec))


def check_study(spec: StudySpec, dataset: Dataset) -> str:
    """Check the study against its data: one :class:`SpecError` listing every variant that
    cannot train on it, or a primary metric its runs do not record. Returns the primary metric.
    """
    problems = []
    for name, recipe in spec.variants.items():
        problems += [f"variants.{name}: {p}" for p in check_compatible(recipe, dataset)]
    if problems:
        raise SpecError(problems, file=spec.source)
    return primary_metric(spec, dataset)


def plan_study(
    spec: StudySpec, dataset: Dataset, backend: str | None = None, engine: str = "solo"
) -> list[tuple[RunPlan, Assignment]]:
    """Every variant x seed of the study with the engine that trains it, checked against the data.

    Engines are assigned over the whole study (not the runs left to train), so a run keeps its
    engine, and its key, whichever subset of the study a command trains.
    """
    check_study(spec, dataset)
    backend = backend or _backend.name()
    pairs = [(variant, seed) for variant in spec.variants for seed in spec.seeds]
    assignments = engines.assign(
        [spec.variants[variant] for variant, _ in pairs],
        choice=engine,
        backend=backend,
        diagnostics=spec.diagnostics is not None,
    )
    return [
        (make_plan(spec, variant, seed, dataset, backend, a.engine), a)
        for (variant, seed), a in zip(pairs, assignments, strict=True)
    ]


def make_plan(
    spec: StudySpec,
    variant: str,
    seed: int,
    dataset: Dataset,
    backend: str | None = None,
    engine: str = "solo",
) -> RunPlan:
    """One run of the study, fully resolved."""
    return RunPlan(
        study=spec.name,
        variant=variant,
        seed=seed,
        recipe=spec.variants[variant],
        dataset=spec.dataset.model_dump(mode="json"),
        data_fingerprint=dataset.fingerprint,
        validation=spec.validation,
        split_seed=seed if spec.resplit else spec.split_seed,
        backend=backend or _backend.name(),
        diagnostics=spec.diagnostics.model_dump() if spec.diagnostics else None,
        engine=engine,
    )


@dataclass
class StudyRun:
    """The outcome of :func:`run_study`: where it is stored and what each run gave."""

    spec: StudySpec
    store: RunStore
    results: list[RunResult]
    trained: int
    reused: int
    failed: list[tuple[RunPlan, str]]
    dataset: Dataset
    #: Runs left to live workers (``wait=False``), with who holds them.
    skipped: list[tuple[RunPlan, str]] = field(default_factory=list)
    _report: Any = field(default=None, repr=False)

    @property
    def root(self) -> Path:
        return self.store.root

    def report(self) -> Any:
        """Build (or rebuild) report.md and report.html; the :class:`~tricklab.report.Report`."""
        from tricklab.report import build_report

        if self._report is None:
            self._report = build_report(self.root)
        return self._report

    def table(self) -> Any:
        """One row per variant: test metrics, epochs, gap, seconds (a pandas DataFrame)."""
        return self.report().table

    def comparisons(self) -> Any:
        """Each variant against the baseline on the primary metric (a pandas DataFrame)."""
        from tricklab.stats import comparison_frame

        return comparison_frame(self.report().comparisons)

    def figures(self) -> dict[str, Any]:
        """The report's matplotlib figures by name (learning_curves, ...)."""
        return self.report().figures


def run_study(
    study: StudySpec | str | Path,
    *,
    out: str | Path = "runs",
    variants: list[str] | None = None,
    seeds: int | None = None,
    fresh: bool = False,
    listener: Listener | None = None,
    engine: str = "auto",
    wait: bool = True,
    checkpoint_every: float = 30.0,
    lease: float = 60.0,
    renew: float = 10.0,
    stop_requested: Callable[[], bool] | None = None,
    poll: float = 2.0,
) -> StudyRun:
    """Train every run of ``study`` not already in ``out/<study>/``; return all results.

    ``variants``/``seeds`` select the runs to train (``--variant``, ``--seeds``); the index
    keeps the whole study. ``engine``: "auto" (populations on JAX where a group has 2+ runs,
    else solo), "solo" or "population" (README, "Engines"). Any number of processes may run
    the same study: each claims what it trains (a population, or one solo run); runs claimed
    by live workers are waited for, or skipped with ``wait=False``. Training saves checkpoints
    every ``checkpoint_every`` seconds; ``stop_requested`` (Ctrl-C) stops at the next epoch
    boundary with a checkpoint and raises :class:`~tricklab.engines.Interrupted`.
    """
    definition = study if isinstance(study, StudySpec) else load_study(study)
    selected = definition.select(variants, seeds)
    dataset = load_data(definition)
    planned = plan_study(definition, dataset, engine=engine)
    assigned = {(plan.variant, plan.seed): a for plan, a in planned}
    first = {plan.variant: a for plan, a in reversed(planned)}

    def plan_for(variant: str, seed: int) -> tuple[RunPlan, Assignment]:
        # A seed beyond the study's list trains with its variant's engine.
        a = assigned.get((variant, seed), first[variant])
        return make_plan(definition, variant, seed, dataset, engine=a.engine), a

    chosen = [plan_for(v, seed) for v in selected.variants for seed in selected.seeds]
    plans = [plan for plan, _ in chosen]
    store = RunStore(Path(out) / definition.name, lease=lease, renew=renew)
    notify = listener or (lambda event: None)
    if fresh:
        store.reset(plans)
    splits = _SplitCache(dataset, definition)
    extra = [
        plan_for(variant, seed)[0]
        for variant in definition.variants
        for seed in store.stored_seeds(variant)
        if seed not in definition.seeds
    ]
    indexed = [p for p, _ in planned] + [
        p for p in extra if p in plans or store.finished(p) is not None
    ]
    findings = lint_study(definition, dataset)
    _write_index(store, definition, dataset, indexed, findings, splits(definition.split_seed))

    results: dict[tuple[str, int], RunResult] = {}
    todo: list[tuple[RunPlan, Assignment]] = []
    for plan, assignment in chosen:
        status = store.status(plan.variant, plan.seed, plan.key)
        if status.result is not None:
            results[(plan.variant, plan.seed)] = status.result
            notify(RunEvent("reused", plan, 0, 0, result=status.result))
            continue
        if status.state == RunState.DAMAGED:
            notify(RunEvent("damaged", plan, 0, 0, error=status.detail))
        todo.append((plan, assignment))
    total = len(todo)
    for plan, assignment in todo:
        if assignment.reason:
            notify(RunEvent("fallback", plan, 0, total, error=assignment.reason))

    by_key = {plan.key: plan for plan, _ in todo}
    failed: list[tuple[RunPlan, str]] = []
    finished = 0  # runs of this call done, failed or committed by another worker

    def progress(event: Any) -> None:
        if isinstance(event, engines.PopulationEpoch):
            notify(RunEvent("population", None, finished, total, population=event))
        else:
            plan = by_key[event.key]
            notify(RunEvent("epoch", plan, finished, total, epoch=event.epoch, logs=event.logs))

    control = engines.Control(
        load=store.load_checkpoint,
        save=store.save_checkpoint,
        every=checkpoint_every,
        stop_requested=stop_requested or (lambda: False),
    )
    # What one worker claims and trains at a time: a population group, or one solo run.
    units: dict[tuple[str, str], list[RunPlan]] = {}
    for plan, a in todo:
        units.setdefault((a.engine, a.group or plan.key), []).append(plan)
    failed_keys: set[str] = set()
    skipped: list[tuple[RunPlan, str]] = []
    trained = 0  # runs this worker committed
    waiting_for = ""

    def still_open(plan: RunPlan) -> bool:
        """Not finished here, not failed here, and not committed by another worker."""
        nonlocal finished
        if (plan.variant, plan.seed) in results or plan.key in failed_keys:
            return False
        stored = store.finished(plan)
        if stored is None:
            return True
        results[(plan.variant, plan.seed)] = stored
        finished += 1
        notify(RunEvent("elsewhere", plan, finished, total, result=stored))
        return False

    try:
        while True:
            pending = [
                (name, [p for p in unit if still_open(p)]) for (name, _), unit in units.items()
            ]
            pending = [(name, unit) for name, unit in pending if unit]
            if not pending:
                break
            claimed_any = False
            for name, unit in pending:
                mine = store.claim(unit)
                if not mine:
                    continue
                claimed_any = True
                tasks = [engines.RunTask(p, splits(p.split_seed)) for p in mine]
                try:
                    for outcome in engines.get(name).run(tasks, dataset, progress, control):
                        plan = by_key[outcome.key]
                        finished += 1
                        if isinstance(outcome, engines.RunFailed):
                            store.save_failure(plan, outcome.traceback)
                            failed.append((plan, outcome.error))
                            failed_keys.add(plan.key)
                            notify(RunEvent("failed", plan, finished, total, error=outcome.error))
                        elif store.save(plan, outcome.result, outcome.weights):
                            trained += 1
                            results[(plan.variant, plan.seed)] = outcome.result
                            notify(RunEvent("done", plan, finished, total, result=outcome.result))
                    store.drop_checkpoint([p.key for p in mine])
                finally:
                    store.release(mine)
            if claimed_any:
                continue
            # Every run left is claimed by a live worker: wait for it, or leave it to it.
            left = [p for _, unit in pending for p in unit]
            holders = ", ".join(store.holders(left)) or "another worker"
            if not wait:
                skipped = [(p, f"claimed by {holders}") for p in left]
                break
            if holders != waiting_for:  # say it once per change, not every poll
                notify(RunEvent("waiting", None, finished, total, error=holders))
                waiting_for = holders
            time.sleep(poll)
    finally:
        store.close()

    ordered = [results[(p.variant, p.seed)] for p in plans if (p.variant, p.seed) in results]
    return StudyRun(
        selected, store, ordered, trained, len(plans) - total, failed, dataset, skipped=skipped
    )


class _SplitCache:
    """Each split seed's split, drawn once."""

    def __init__(self, dataset: Dataset, spec: StudySpec) -> None:
        self.dataset, self.spec = dataset, spec
        self._cache: dict[int, Splits] = {}

    def __call__(self, seed: int) -> Splits:
        if seed not in self._cache:
            self._cache[seed] = make_splits(
                self.dataset, validation=self.spec.validation, seed=seed
            )
        return self._cache[seed]


def _write_index(
    store: RunStore,
    spec: StudySpec,
    dataset: Dataset,
    plans: list[RunPlan],
    findings: list[Any],
    splits: Splits,
) -> None:
    store.write_index(
        {
            "study": spec.name,
            "description": spec.description,
            "source": spec.source,
            "spec": spec.model_dump(mode="json", exclude={"variants"}, exclude_none=True),
            "variants": list(spec.variants),
            "seeds": list(spec.seeds),
            "baseline": spec.baseline_variant,
            "primary_metric": primary_metric(spec, dataset),
            "dataset": {
                "name": dataset.name,
                "task": dataset.task,
                "classes": list(dataset.class_names),
                "features": len(dataset.feature_names),
                "feature_names": list(dataset.feature_names),
                "input_shape": list(dataset.input_shape),
                "source": dataset.source,
                "citation": dataset.citation,
                "majority_fraction": dataset.majority_fraction(),
                "intake": describe_intake(dataset),
            },
            "protocol": {
                "validation": spec.validation,
                "validated_on": "test set" if splits.validation_is_test else "validation split",
                "split_sizes": splits.sizes(),
                "resplit": spec.resplit,
                "split_seed": spec.split_seed,
            },
            "backend": plans[0].backend if plans else _backend.name(),
            "engines": sorted({p.engine for p in plans}),
            "runs": [
                {
                    "variant": p.variant,
                    "seed": p.seed,
                    "key": p.key,
                    "dir": str(store.run_dir(p.variant, p.seed).relative_to(store.root)),
                }
                for p in plans
            ],
            "lint": [
                {
                    "code": f.code,
                    "severity": f.severity,
                    "scope": f.scope,
                    "path": f.path,
                    "message": f.message,
                    "fix": f.fix,
                    "ignored": f.ignored,
                }
                for f in findings
            ],
            "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
    )
