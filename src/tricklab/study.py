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

from tricklab import engines, executors
from tricklab.base import backend as _backend
from tricklab.base.errors import DataError
from tricklab.data import Dataset, ResolvedStudy, load_dataset, resolve_study
from tricklab.engines import Assignment, PopulationEpoch
from tricklab.engines.contract import RunPlan, RunResult
from tricklab.spec import StudySpec, load_study
from tricklab.store import RunState, RunStore


@dataclass
class RunEvent:
    """What a progress display is told about.

    ``kind``: "reused" (a stored run), "damaged" (a stored run's files are damaged: ``error``
    says which; it is retrained), "repaired" (only its split's labels were damaged: rewritten,
    the run is reused), "fallback" (a run trains solo: ``error`` says why), "epoch" (a run
    finished an epoch), "population" (a population finished an epoch: ``population``),
    "done", "failed", "lost" (this worker lost its claim while training: its result was
    discarded; ``error`` names the holder), "elsewhere" (another worker committed it) or
    "waiting" (every run left is claimed by live workers: ``error`` names them).
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
        return load_dataset(
            spec.dataset, base_dir=spec.base_dir, max_columns=spec.limits.max_columns
        )
    except DataError as exc:
        prefix = f"{spec.source}: dataset: " if spec.source else "dataset: "
        raise DataError(prefix + str(exc)) from None


def resolve(
    spec: StudySpec, dataset: Dataset | None = None, *, backend: str | None = None
) -> ResolvedStudy:
    """The study on its data (loaded if not given): task, primary metric, protocol, splits.

    Every command reads the study through this one object (:mod:`tricklab.data._resolved`).
    It is not checked: :meth:`~tricklab.data.ResolvedStudy.check` raises its problems.
    """
    data = dataset if dataset is not None else load_data(spec)
    try:
        return resolve_study(spec, data, backend=backend or _backend.name())
    except DataError as exc:  # the rows a protocol asks for (cv folds) do not exist
        raise DataError(f"{spec.source}: {exc}" if spec.source else str(exc)) from None


def lint_study(study: ResolvedStudy) -> list[Any]:
    """The linter's findings for this study."""
    from tricklab.tools.lint import lint

    return lint(study)


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
    _written: bool = field(default=False, repr=False)

    @property
    def root(self) -> Path:
        return self.store.root

    def _loaded(self) -> Any:
        """The :class:`~tricklab.report.Report`, computed once from the store (no file written)."""
        from tricklab.report import load_report

        if self._report is None:
            self._report = load_report(self.root)
        return self._report

    def report(self) -> Any:
        """Write report.md and report.html (once); the :class:`~tricklab.report.Report`."""
        from tricklab.report import write_report

        report = self._loaded()
        if not self._written:
            write_report(report)
            self._written = True
        return report

    def table(self) -> Any:
        """One row per variant: test metrics, epochs, gap, seconds (a pandas DataFrame);
        computed without writing any file."""
        return self._loaded().table

    def comparisons(self) -> Any:
        """Each variant against the baseline on the primary metric (a pandas DataFrame);
        computed without writing any file."""
        from tricklab.stats import comparison_frame

        return comparison_frame(self._loaded().comparisons)

    def figures(self) -> dict[str, Any]:
        """The report's matplotlib figures by name (learning_curves, ...)."""
        return self.report().figures


def run_study(
    study: StudySpec | ResolvedStudy | str | Path,
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
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
) -> StudyRun:
    """Train every run of ``study`` not already in ``out/<study>/``; return all results.

    ``variants``/``seeds`` select the runs to train (``--variant``, ``--seeds``); the index
    keeps the whole study. ``engine``: "auto" (populations on JAX where a group has 2+ runs,
    else solo), "solo" or "population" (README, "Engines"). Any number of processes may run
    the same study: each claims what it trains (a population, or one solo run); runs claimed
    by live workers are waited for, or skipped with ``wait=False``. Training saves checkpoints
    every ``checkpoint_every`` seconds; ``stop_requested`` (Ctrl-C) stops at the next epoch
    boundary with a checkpoint and raises :class:`~tricklab.engines.Interrupted`.
    ``executor``: where the runs train: "local" (this process), "process" (``workers``
    processes on this machine) or "ray" (a local Ray with ``workers`` CPUs, or the cluster at
    ``address``); README, "Executors".
    """
    runner = executors.get(executor, workers=workers, address=address)
    if isinstance(study, ResolvedStudy):
        resolved, definition = study, study.spec
    else:
        definition = study if isinstance(study, StudySpec) else load_study(study)
        resolved = resolve(definition)
    selected = definition.select(variants, seeds)
    dataset = resolved.dataset
    planned = plan_study(resolved, engine=engine)
    assigned = {(plan.variant, plan.seed): a for plan, a in planned}
    first = {plan.variant: a for plan, a in reversed(planned)}

    def plan_for(variant: str, seed: int) -> tuple[RunPlan, Assignment]:
        # A seed beyond the study's list trains with its variant's engine.
        a = assigned.get((variant, seed), first[variant])
        return make_plan(resolved, variant, seed, engine=a.engine), a

    chosen = [plan_for(v, seed) for v in selected.variants for seed in selected.seeds]
    plans = [plan for plan, _ in chosen]
    store = RunStore(Path(out) / definition.name, lease=lease, renew=renew)
    notify = listener or (lambda event: None)
    if fresh:
        store.reset(plans)
    extra = [
        plan_for(variant, seed)[0]
        for variant in definition.variants
        for seed in store.stored_seeds(variant)
        if seed not in definition.seeds
    ]
    indexed = [p for p, _ in planned] + [
        p for p in extra if p in plans or store.finished(p) is not None
    ]
    findings = lint_study(resolved)
    _write_index(store, resolved, indexed, findings)

    results: dict[tuple[str, int], RunResult] = {}
    todo: list[tuple[RunPlan, Assignment]] = []
    for plan, assignment in chosen:
        status = store.status(plan.variant, plan.seed, plan.key)
        if status.labels_only:  # the run is whole; its split's true labels are written again
            store.repair_labels(plan, resolved.splits(plan.seed).y_test)
            notify(RunEvent("repaired", plan, 0, 0, error=status.detail))
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

    control = engines.Control(
        load=store.load_checkpoint,
        save=store.save_checkpoint,
        every=checkpoint_every,
        stop_requested=stop_requested or (lambda: False),
    )
    job = {  # how a worker process of the process executor runs this same selection
        "study": definition,
        "out": out,
        "variants": variants,
        "seeds": seeds,
        "engine": engine,
        "wait": wait,
        "checkpoint_every": checkpoint_every,
        "lease": lease,
        "renew": renew,
        "poll": poll,
    }
    done = executors.schedule(
        runner,
        todo,
        store=store,
        dataset=dataset,
        task=lambda p: engines.RunTask(p, resolved.splits(p.seed)),
        results=results,
        notify=notify,
        control=control,
        wait=wait,
        poll=poll,
        job=job,
    )

    ordered = [results[(p.variant, p.seed)] for p in plans if (p.variant, p.seed) in results]
    return StudyRun(
        selected,
        store,
        ordered,
        done.trained,
        len(plans) - total,
        done.failed,
        dataset,
        skipped=done.skipped,
    )


def _write_index(
    store: RunStore, study: ResolvedStudy, plans: list[RunPlan], findings: list[Any]
) -> None:
    spec = study.spec
    store.write_index(
        {
            "study": spec.name,
            "description": spec.description,
            "source": spec.source,
            "spec": spec.model_dump(mode="json", exclude={"variants"}, exclude_none=True),
            "variants": list(spec.variants),
            "seeds": list(spec.seeds),
            "baseline": spec.baseline_variant,
            "resolved": study.to_json(),  # task, primary metric, protocol, dataset (report)
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
