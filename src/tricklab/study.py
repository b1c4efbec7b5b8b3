"""Run a study: every variant x seed, reusing what the store already holds.

    >>> import tricklab
    >>> result = tricklab.run_study("studies/thoracic-losses.toml")
    >>> result.table()          # pandas DataFrame, one row per variant

Before anything trains, every variant is checked against the data, so a mistake in the last
variant cannot waste the time spent on the first ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tricklab import _backend, engines
from tricklab.build import check_compatible
from tricklab.datasets import Dataset, Splits, load_dataset, make_splits
from tricklab.engines import Assignment, PopulationEpoch
from tricklab.errors import DataError, SpecError
from tricklab.result import RunPlan, RunResult
from tricklab.spec import StudySpec, load_study
from tricklab.store import RunStore


@dataclass
class RunEvent:
    """What a progress display is told about.

    ``kind``: "reused" (a stored run), "fallback" (a run trains solo: ``error`` says why),
    "epoch" (a run finished an epoch), "population" (a population finished an epoch:
    ``population``), "done" or "failed".
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
    from tricklab.lint import lint

    return lint(spec, dataset if dataset is not None else load_data(spec))


def check_study(spec: StudySpec, dataset: Dataset) -> None:
    """Raise one :class:`SpecError` listing every variant that cannot train on this data."""
    problems = []
    for name, recipe in spec.variants.items():
        problems += [f"variants.{name}: {p}" for p in check_compatible(recipe, dataset)]
    if problems:
        raise SpecError(problems, file=spec.source)


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
    fresh: bool = False,
    listener: Listener | None = None,
    engine: str = "auto",
) -> StudyRun:
    """Train every run of ``study`` not already in ``out/<study>/``; return all results.

    ``engine``: "auto" (populations on JAX where a group has 2+ runs, else solo), "solo" or
    "population" (README, "Engines").
    """
    spec = study if isinstance(study, StudySpec) else load_study(study)
    dataset = load_data(spec)
    planned = plan_study(spec, dataset, engine=engine)
    plans = [plan for plan, _ in planned]
    store = RunStore(Path(out) / spec.name)
    if fresh:
        store.clear()
    notify = listener or (lambda event: None)

    results: dict[tuple[str, int], RunResult] = {}
    todo: list[tuple[RunPlan, Assignment]] = []
    for plan, assignment in planned:
        stored = store.finished(plan)
        if stored is not None:
            results[(plan.variant, plan.seed)] = stored
            notify(RunEvent("reused", plan, 0, 0, result=stored))
        else:
            todo.append((plan, assignment))
    total = len(todo)
    for plan, assignment in todo:
        if assignment.reason:
            notify(RunEvent("fallback", plan, 0, total, error=assignment.reason))
    # Each split seed's split is drawn once; the study's own split's sizes go in the index.
    splits_cache = {
        spec.split_seed: make_splits(dataset, validation=spec.validation, seed=spec.split_seed)
    }

    def splits(seed: int) -> Splits:
        if seed not in splits_cache:
            splits_cache[seed] = make_splits(dataset, validation=spec.validation, seed=seed)
        return splits_cache[seed]

    _write_index(store, spec, dataset, plans, lint_study(spec, dataset), splits(spec.split_seed))

    by_key = {plan.key: plan for plan, _ in todo}
    failed: list[tuple[RunPlan, str]] = []
    finished = 0  # runs of this call done or failed

    def progress(event: Any) -> None:
        if isinstance(event, engines.PopulationEpoch):
            notify(RunEvent("population", None, finished, total, population=event))
        else:
            plan = by_key[event.key]
            notify(RunEvent("epoch", plan, finished, total, epoch=event.epoch, logs=event.logs))

    for name in ("population", "solo"):
        tasks = [
            engines.RunTask(plan, splits(plan.split_seed)) for plan, a in todo if a.engine == name
        ]
        if not tasks:
            continue
        for outcome in engines.get(name).run(tasks, dataset, progress):
            plan = by_key[outcome.key]
            finished += 1
            if isinstance(outcome, engines.RunFailed):
                store.save_failure(plan, outcome.traceback)
                failed.append((plan, outcome.error))
                notify(RunEvent("failed", plan, finished, total, error=outcome.error))
                continue
            store.save(plan, outcome.result, outcome.weights)
            results[(plan.variant, plan.seed)] = outcome.result
            notify(RunEvent("done", plan, finished, total, result=outcome.result))

    ordered = [results[(p.variant, p.seed)] for p in plans if (p.variant, p.seed) in results]
    return StudyRun(spec, store, ordered, total - len(failed), len(plans) - total, failed, dataset)


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
            "primary_metric": spec.primary_metric,
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
