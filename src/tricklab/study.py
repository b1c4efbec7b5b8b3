"""Run a study: every variant x seed, reusing what the store already holds.

    >>> import tricklab
    >>> result = tricklab.run_study("studies/thoracic-losses.toml")
    >>> result.table()          # pandas DataFrame, one row per variant

Before anything trains, every variant is checked against the data, so a mistake in the last
variant cannot waste the time spent on the first ones.
"""

from __future__ import annotations

import datetime as dt
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tricklab import _backend
from tricklab.build import check_compatible
from tricklab.datasets import Dataset, Splits, load_dataset, make_splits
from tricklab.errors import DataError, SpecError, TricklabError
from tricklab.result import RunPlan, RunResult
from tricklab.spec import StudySpec, load_study
from tricklab.store import WEIGHTS, RunStore


class Engine(Protocol):
    """Anything that turns a plan into a result (the solo Keras trainer, later a population)."""

    def __call__(
        self,
        plan: RunPlan,
        dataset: Dataset,
        splits: Splits,
        checkpoint_path: Path,
        callbacks: Iterable[Any] = (),
    ) -> RunResult: ...


@dataclass
class RunEvent:
    """What a progress display is told about."""

    kind: str  # "start", "epoch", "done", "reused", "failed"
    plan: RunPlan
    index: int  # position among the runs to train (1-based)
    total: int  # runs to train
    epoch: int = 0
    logs: dict[str, float] = field(default_factory=dict)
    result: RunResult | None = None
    error: str = ""


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


def plan_study(spec: StudySpec, dataset: Dataset, backend: str | None = None) -> list[RunPlan]:
    """Every variant x seed of the study, checked against the data first."""
    check_study(spec, dataset)
    return [
        make_plan(spec, variant, seed, dataset, backend)
        for variant in spec.variants
        for seed in spec.seeds
    ]


def make_plan(
    spec: StudySpec, variant: str, seed: int, dataset: Dataset, backend: str | None = None
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
    engine: Engine | None = None,
) -> StudyRun:
    """Train every run of ``study`` not already in ``out/<study>/``; return all results."""
    spec = study if isinstance(study, StudySpec) else load_study(study)
    dataset = load_data(spec)
    plans = plan_study(spec, dataset)
    store = RunStore(Path(out) / spec.name)
    if fresh:
        store.clear()
    if engine is None:
        from tricklab.train import train_run as engine
    notify = listener or (lambda event: None)

    results: dict[tuple[str, int], RunResult] = {}
    todo: list[RunPlan] = []
    for plan in plans:
        stored = store.finished(plan)
        if stored is not None:
            results[(plan.variant, plan.seed)] = stored
            notify(RunEvent("reused", plan, 0, 0, result=stored))
        else:
            todo.append(plan)
    # The split of the study's split_seed: its sizes go in the index, and runs train on it.
    splits_cache = {
        spec.split_seed: make_splits(dataset, validation=spec.validation, seed=spec.split_seed)
    }
    _write_index(
        store, spec, dataset, plans, lint_study(spec, dataset), splits_cache[spec.split_seed]
    )

    failed: list[tuple[RunPlan, str]] = []
    for index, plan in enumerate(todo, start=1):
        notify(RunEvent("start", plan, index, len(todo)))
        if plan.split_seed not in splits_cache:
            splits_cache[plan.split_seed] = make_splits(
                dataset, validation=spec.validation, seed=plan.split_seed
            )
        try:
            result = _train_one(
                engine,
                store,
                plan,
                dataset,
                splits_cache[plan.split_seed],
                lambda e, logs, p=plan, i=index: notify(
                    RunEvent("epoch", p, i, len(todo), epoch=e, logs=logs)
                ),
            )
        except TricklabError:
            raise
        except Exception as exc:  # one broken run must not lose the others
            error = "".join(traceback.format_exception_only(exc)).strip()
            store.save_failure(plan, traceback.format_exc())
            failed.append((plan, error))
            notify(RunEvent("failed", plan, index, len(todo), error=error))
            continue
        results[(plan.variant, plan.seed)] = result
        notify(RunEvent("done", plan, index, len(todo), result=result))

    ordered = [results[(p.variant, p.seed)] for p in plans if (p.variant, p.seed) in results]
    return StudyRun(
        spec, store, ordered, len(todo) - len(failed), len(plans) - len(todo), failed, dataset
    )


def _train_one(
    engine: Engine,
    store: RunStore,
    plan: RunPlan,
    dataset: Dataset,
    splits: Splits,
    on_epoch: Callable[[int, dict[str, float]], None],
) -> RunResult:
    from tricklab._callbacks import EpochProgress

    staging = store.staging_dir(plan.variant, plan.seed)
    result = engine(plan, dataset, splits, staging / WEIGHTS, callbacks=[EpochProgress(on_epoch)])
    store.save(plan, result, staging)
    return result


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
