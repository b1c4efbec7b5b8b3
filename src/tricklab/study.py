"""Plan and train a study: every variant x seed, reusing what the store already holds.

Before anything trains, every variant is checked against the data, so a mistake in the last
variant cannot waste the time spent on the first ones. This module trains and stores; the
Python API (:func:`tricklab.run_study`, :mod:`tricklab.api`) adds the lint findings and the
report on top, and the process executor's workers call :func:`train_study` directly.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tricklab import engines, executors
from tricklab.data import Dataset, ResolvedStudy, resolve
from tricklab.engines import Assignment
from tricklab.engines import references as references_module
from tricklab.engines.contract import RunPlan, RunResult
from tricklab.executors import EventKind, Listener, RunEvent
from tricklab.spec import RunOptions, StudySpec, load_study
from tricklab.store import IndexedRun, RunState, RunStore, StudyIndex


def plan_study(study: ResolvedStudy, engine: str = "solo") -> list[tuple[RunPlan, Assignment]]:
    """Every variant x seed of the study with the engine that trains it, checked against the data.

    Engines are assigned over the whole study (not the runs left to train), so a run keeps its
    engine, and its key, whichever subset of the study a command trains.
    """
    spec = study.check().spec
    pairs = [(variant, seed) for variant in spec.variants for seed in spec.seeds]
    assignments = engines.assign(
        [spec.variants[variant] for variant, _ in pairs],
        choice=engine,
        backend=study.backend,
        diagnostics=spec.diagnostics is not None,
        test_rows=[study.test_rows(seed) for _, seed in pairs] if spec.cv else None,
        fitted_per_run=study.dataset.fitted_per_run,
    )
    return [
        (make_plan(study, variant, seed, a.engine), a)
        for (variant, seed), a in zip(pairs, assignments, strict=True)
    ]


def make_plan(study: ResolvedStudy, variant: str, seed: int, engine: str = "solo") -> RunPlan:
    """One run of the study, fully resolved."""
    spec, where = study.spec, study.run_split(seed)
    return RunPlan(
        study=spec.name,
        variant=variant,
        seed=seed,
        recipe=spec.variants[variant],
        dataset=spec.dataset.model_dump(mode="json"),
        data_fingerprint=study.dataset.fingerprint,
        validation=spec.validation,
        split_seed=where.split_seed,
        backend=study.backend,
        diagnostics=spec.diagnostics.model_dump() if spec.diagnostics else None,
        engine=engine,
        fold=where.fold,
        folds=where.folds,
        model_seed=where.model_seed if where.fold is not None else None,
    )


@dataclass
class Trained:
    """What :func:`train_study` did: where the study is stored and what each run gave."""

    spec: StudySpec
    store: RunStore
    results: list[RunResult]
    trained: int
    reused: int
    failed: list[tuple[RunPlan, str]]
    dataset: Dataset
    #: Runs left to live workers (``wait=False``), with who holds them.
    skipped: list[tuple[RunPlan, str]] = field(default_factory=list)
    #: Run seeds whose reference models were fit now, and reused from the store (not runs).
    references_fitted: int = 0
    references_reused: int = 0

    @property
    def root(self) -> Path:
        return self.store.root


def train_study(
    study: StudySpec | ResolvedStudy | str | Path,
    *,
    out: str | Path = "runs",
    variants: list[str] | None = None,
    seeds: int | None = None,
    fresh: bool = False,
    options: RunOptions | None = None,
    listener: Listener | None = None,
    stop_requested: Callable[[], bool] | None = None,
    findings: Sequence[Mapping[str, Any]] | None = None,
    references: bool = True,
) -> Trained:
    """Train every run of ``study`` not already in ``out/<study>/``; return all results.

    ``variants``/``seeds`` select the runs to train (``--variant``, ``--seeds``); the index
    keeps the whole study, with the lint ``findings`` (serialised) when they are given (a worker
    process leaves the index to its parent). Any number of processes may train the same study:
    each claims what it trains (a population, or one solo run); runs claimed by live workers
    are waited for, or skipped with ``options.wait=False``. ``stop_requested`` (Ctrl-C) stops at
    the next epoch boundary with a checkpoint and raises :class:`~tricklab.engines.Interrupted`.

    Then, for the seeds with finished runs, the reference models (:func:`fit_references`) are
    fit on a table's run rows unless the study says ``references = false`` or ``references``
    is False (a worker process leaves them to its parent).
    """
    options = options or RunOptions()
    runner = executors.get(options)
    if isinstance(study, ResolvedStudy):
        resolved, definition = study, study.spec
    else:
        definition = study if isinstance(study, StudySpec) else load_study(study)
        resolved = resolve(definition)
    selected = definition.select(variants, seeds)
    planned = plan_study(resolved, engine=options.engine)
    assigned = {(plan.variant, plan.seed): a for plan, a in planned}
    first = {plan.variant: a for plan, a in reversed(planned)}

    def plan_for(variant: str, seed: int) -> tuple[RunPlan, Assignment]:
        # A seed beyond the study's list trains with its variant's engine.
        a = assigned.get((variant, seed), first[variant])
        return make_plan(resolved, variant, seed, engine=a.engine), a

    chosen = [plan_for(v, seed) for v in selected.variants for seed in selected.seeds]
    plans = [plan for plan, _ in chosen]
    store = RunStore(Path(out) / definition.name, lease=options.lease, renew=options.renew)
    notify = listener or (lambda event: None)
    if fresh:
        store.reset(plans)
    if findings is not None:
        extra = [
            plan_for(variant, seed)[0]
            for variant in definition.variants
            for seed in store.stored_seeds(variant)
            if seed not in definition.seeds
        ]
        indexed = [p for p, _ in planned] + [
            p for p in extra if p in plans or store.finished(p) is not None
        ]
        _write_index(store, resolved, indexed, findings)

    results: dict[tuple[str, int], RunResult] = {}
    todo: list[tuple[RunPlan, Assignment]] = []
    for plan, assignment in chosen:
        status = store.status(plan.variant, plan.seed, plan.key)
        if status.labels_only:  # the run is whole; its split's true labels are written again
            store.repair_labels(plan, resolved.splits(plan.seed).y_test)
            notify(RunEvent(EventKind.REPAIRED, plan, 0, 0, error=status.detail))
            status = store.status(plan.variant, plan.seed, plan.key)
        if status.result is not None:
            results[(plan.variant, plan.seed)] = status.result
            notify(RunEvent(EventKind.REUSED, plan, 0, 0, result=status.result))
            continue
        if status.state == RunState.DAMAGED:
            notify(RunEvent(EventKind.DAMAGED, plan, 0, 0, error=status.detail))
        todo.append((plan, assignment))
    total = len(todo)
    for plan, assignment in todo:
        if assignment.reason:
            notify(RunEvent(EventKind.FALLBACK, plan, 0, total, error=assignment.reason))

    control = engines.Control(
        load=store.load_checkpoint,
        save=store.save_checkpoint,
        every=options.checkpoint_every,
        stop_requested=stop_requested or (lambda: False),
    )
    # How a worker process of the process executor trains this same selection, here.
    local = options.model_copy(update={"executor": "local", "workers": None, "address": None})
    job = functools.partial(
        _work,
        definition,
        out=out,
        variants=variants,
        seeds=seeds,
        options=local,
        references=False,
    )
    done = executors.schedule(
        runner,
        todo,
        store=store,
        dataset=resolved.dataset,
        task=lambda p: engines.RunTask(p, resolved.splits(p.seed)),
        results=results,
        notify=notify,
        control=control,
        wait=options.wait,
        poll=options.poll,
        job=job,
    )

    ordered = [results[(p.variant, p.seed)] for p in plans if (p.variant, p.seed) in results]
    fitted = reused = 0
    if references and definition.references:
        fitted, reused = fit_references(store, resolved, sorted({r.seed for r in ordered}))
    return Trained(
        selected,
        store,
        ordered,
        done.trained,
        len(plans) - total,
        done.failed,
        resolved.dataset,
        skipped=done.skipped,
        references_fitted=fitted,
        references_reused=reused,
    )


def fit_references(store: RunStore, study: ResolvedStudy, seeds: Sequence[int]) -> tuple[int, int]:
    """Fit the reference models of run ``seeds`` that the store does not hold for these rows
    (:mod:`tricklab.engines.references`; a table only); (seeds fit, seeds reused)."""
    if not references_module.takes_references(study.dataset.input_shape):
        return 0, 0
    fitted = reused = 0
    for seed in seeds:
        key = references_module.reference_key(study, seed)
        if store.read_references(seed, key) is not None:
            reused += 1
            continue
        store.write_references(references_module.fit_references(study, seed))
        fitted += 1
    return fitted, reused


def _work(
    study: StudySpec,
    listener: Listener,
    stop_requested: Callable[[], bool],
    **selection: Any,
) -> None:
    """A worker process's job (:data:`~tricklab.executors.WorkerJob`): train here."""
    train_study(study, listener=listener, stop_requested=stop_requested, **selection)


def _write_index(
    store: RunStore,
    study: ResolvedStudy,
    plans: list[RunPlan],
    findings: Sequence[Mapping[str, Any]],
) -> None:
    spec = study.spec
    store.write_index(
        StudyIndex(
            study=spec.name,
            description=spec.description or "",
            source=spec.source or "",
            spec=spec.model_dump(mode="json", exclude={"variants"}, exclude_none=True),
            variants=tuple(spec.variants),
            seeds=tuple(spec.seeds),
            baseline=spec.baseline_variant,
            resolved=study.to_json(),  # task, primary metric, protocol, dataset (report)
            engines=tuple(sorted({p.engine for p in plans})),
            runs=tuple(
                IndexedRun(
                    p.variant,
                    p.seed,
                    p.key,
                    str(store.run_dir(p.variant, p.seed).relative_to(store.root)),
                )
                for p in plans
            ),
            lint=tuple(dict(f) for f in findings),
            updated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
    )
