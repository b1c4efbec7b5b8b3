"""Trials: ask Optuna for parameters, train them through the engines, tell Optuna the outcome.

A worker loops: under a lock shared by the workers of this machine it recovers the trials of
dead processes (:mod:`._storage`), counts the COMPLETE, PRUNED and RUNNING trials, and asks for
as many new ones as are left to reach ``--trials`` (at most ``--batch``); then it trains them.
FAIL does not count (the same states as ``MaxTrialsCallback(n, states=(COMPLETE, PRUNED))``,
checked before each ask since ask/tell mode has no ``optimize`` loop to stop), so a rerun of the
same command continues to N and does nothing once N is reached.

A trial is a variant named ``trial-<number>``: the base recipe merged with the sampled overrides
and validated as a variant is, trained with the study's first seed on that seed's split (so
trials differ only in their parameters; under cv, fold 0 of repeat 0). Its value is the best
value of the objective (a history column, ``val_loss`` by default) over its epochs, and its
``val_loss`` at that epoch is kept (a user attribute) to break ties on the value. Each epoch's
value is reported to its trial and the median pruner may stop it there (``Control.prune``); with
``--batch`` the trials train as populations and each member is pruned on its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from tricklab import engines
from tricklab.base.errors import SpecError, TricklabError
from tricklab.spec import METRIC_CATALOGUE, Direction
from tricklab.tools.search import _storage
from tricklab.tools.search._space import SearchSpace, base_recipe, parse_space, trial_recipe


def infer_direction(metric: str) -> Direction:
    """Which way Optuna optimises ``metric`` (a history column such as ``val_loss``): the
    metric catalogue's direction, ``minimize`` for losses, errors and counts of mistakes."""
    return METRIC_CATALOGUE.get(metric).direction


@dataclass(frozen=True)
class TrialEvent:
    """What a display is told: a trial ``complete`` (``value``), ``pruned`` (``epoch``),
    ``failed`` (``error``) or ``requeued`` (its process died; its parameters are queued)."""

    number: int
    state: str
    value: float | None = None
    epoch: int | None = None
    error: str = ""
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


Listener = Callable[[TrialEvent], None]


@dataclass
class SearchContext:
    """A search on its data and storage, ready for workers (:func:`prepare`)."""

    resolved: Any  # tricklab.data.ResolvedStudy
    space: SearchSpace
    base: dict[str, Any]
    storage: str  # journal path or RDB URL
    study: Any  # optuna.Study
    objective: str
    direction: str
    lock: Path
    root: Path  # runs/<study>/search

    @property
    def spec(self) -> Any:
        return self.resolved.spec


def prepare(
    spec: Any,
    *,
    out: str | Path = "runs",
    storage: str | None = None,
    objective: str = "val_loss",
    direction: str | None = None,
    startup_trials: int = 5,
    sampler_seed: int | None = None,
) -> SearchContext:
    """Check the search space and objective against the data, and open (or create) the study.

    ``sampler_seed`` seeds this process's TPE sampler (reproducible single-worker searches).
    """
    import optuna

    from tricklab.data import logged_names, resolve
    from tricklab.store import RunStore

    space = parse_space(spec)
    resolved = resolve(spec).check()
    logged = logged_names(spec.variants[next(iter(spec.variants))], resolved.dataset)
    if objective not in logged:
        raise TricklabError(
            f"--objective: '{objective}' is not logged by this study's runs. "
            f"Expected one of: {', '.join(logged)}. Received: {objective}."
        )
    direction = direction or infer_direction(objective).value
    store = RunStore(Path(out) / spec.name)
    location = storage or str(store.search_storage_path())
    _storage.check_storage(storage)  # the default's folder is created
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = _storage.open_storage(location)
    study = optuna.create_study(
        storage=opened,
        study_name=spec.name,
        # optuna checks the string itself (ValueError); its annotation admits only literals.
        direction=cast(Literal["minimize", "maximize"], direction),
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(constant_liar=True, seed=sampler_seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=startup_trials),
    )
    base = base_recipe(spec)
    _check_same_search(study, location, spec, resolved, base, objective, direction)
    return SearchContext(
        resolved, space, base, location, study, objective, direction,
        _storage.ask_lock_path(location, store.search_dir), store.search_dir,
    )  # fmt: skip


def _check_same_search(
    study: Any, location: str, spec: Any, resolved: Any, base: Any, objective: str, direction: str
) -> None:
    """A storage holds one search: the same recipe, space, data, seed, backend and objective."""
    what = {
        "base": base,
        "search": spec.search,
        "dataset": spec.dataset.model_dump(mode="json"),
        "data": resolved.dataset.fingerprint,
        "validation": spec.validation,
        "split": [spec.resplit, spec.split_seed],
        "seed": spec.seeds[0],
        "backend": resolved.backend,
    }
    fingerprint = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]
    attrs = study.user_attrs
    if not attrs:
        study.set_user_attr("fingerprint", fingerprint)
        study.set_user_attr("objective", objective)
        return
    stored = study.direction.name.lower()
    if attrs.get("objective") != objective or stored != direction:
        raise TricklabError(
            f"--objective/--direction: the search in {_storage.shown(location)} optimises "
            f"{attrs.get('objective')} ({stored}). Received: {objective} ({direction}). Use "
            "another --storage for another objective."
        )
    if attrs.get("fingerprint") != fingerprint:
        raise TricklabError(
            f"--storage: the search in {_storage.shown(location)} was started from another "
            "definition (base recipe, [search], data, first seed or backend differ), so its "
            "trials are not "
            "comparable with new ones. Use another --storage, or delete the old one to start "
            "again."
        )


# -- the worker loop ----------------------------------------------------------------------------
def run_worker(
    ctx: SearchContext,
    *,
    trials: int,
    batch: int = 1,
    listener: Listener | None = None,
    stop_requested: Callable[[], bool] | None = None,
) -> int:
    """Ask and train trials until ``trials`` COMPLETE + PRUNED (+ RUNNING elsewhere) exist.

    Returns how many trials this worker finished.
    """
    from optuna.trial import TrialState

    notify = listener or (lambda event: None)
    counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    done = 0
    with _storage.Heartbeat(ctx.study._storage) as heartbeat:
        while True:
            with _storage.ask_lock(ctx.lock):
                for number in _storage.recover(ctx.study):
                    notify(TrialEvent(number, "requeued", error="its process died"))
                left = trials - len(ctx.study.get_trials(deepcopy=False, states=counted))
                if left <= 0:
                    return done
                distributions = ctx.space.distributions()
                with _storage.quiet():
                    asked = [ctx.study.ask(distributions) for _ in range(min(batch, left))]
                for trial in asked:
                    _storage.mark_running(trial)
            heartbeat.beat([t._trial_id for t in asked])
            done += _train(ctx, asked, batch > 1, notify, stop_requested or (lambda: False))


def _train(
    ctx: SearchContext,
    asked: list[Any],
    batched: bool,
    notify: Listener,
    stop_requested: Callable[[], bool],
) -> int:
    """Train the ``asked`` trials and tell Optuna each outcome; returns how many finished."""
    from tricklab.study import make_plan

    resolved = ctx.resolved
    # Trials with the same parameters are one run (the run key ignores the name): it trains
    # once and every one of them is told its outcome.
    open_trials: dict[str, list[Any]] = {}
    plans = []
    for trial in asked:
        overrides = ctx.space.overrides(trial.params)
        trial.set_user_attr("overrides", overrides)
        name = f"trial-{trial.number}"
        try:
            recipe = _checked_recipe(ctx, overrides)
        except SpecError as exc:
            _fail(ctx, trial, f"{name}: {exc}", notify)
            continue
        spec = resolved.spec.model_copy(
            update={"variants": {name: recipe}, "overrides": {name: overrides}}
        )
        plans.append((dataclasses.replace(resolved, spec=spec), name, recipe, trial))
    if not plans:
        return 0
    choices = ["solo"] * len(plans)
    if batched:
        assigned = engines.assign(
            [recipe for _, _, recipe, _ in plans],
            choice="auto",
            backend=resolved.backend,
            diagnostics=resolved.spec.diagnostics is not None,
            fitted_per_run=resolved.dataset.fitted_per_run,
        )
        choices = [a.engine for a in assigned]
    seed = resolved.spec.seeds[0]
    groups: dict[str, list[Any]] = {}
    for (trial_study, name, _, trial), engine in zip(plans, choices, strict=True):
        plan = make_plan(trial_study, name, seed, engine)
        if plan.key not in open_trials:
            groups.setdefault(engine, []).append(engines.RunTask(plan, resolved.splits(seed)))
        open_trials.setdefault(plan.key, []).append(trial)

    def prune(key: str, epoch: int, logs: dict[str, float]) -> bool:
        value = logs.get(ctx.objective)
        if value is None or not math.isfinite(value):
            return False  # a diverged run ends by itself and fails below
        for trial in open_trials[key]:
            trial.report(float(value), epoch)
        return bool(open_trials[key][0].should_prune())

    control = engines.Control(stop_requested=stop_requested, prune=prune)
    finished = 0
    try:
        for engine, tasks in groups.items():
            started = time.perf_counter()
            for outcome in engines.get(engine).run(tasks, resolved.dataset, None, control):
                for trial in open_trials.pop(outcome.key):
                    trial.set_user_attr("seconds", time.perf_counter() - started)
                    finished += _tell(ctx, trial, outcome, notify)
    finally:  # interrupted (Ctrl-C) or broken: the open trials are queued again for a rerun
        for trial in [t for same in open_trials.values() for t in same]:
            _fail(ctx, trial, "interrupted", notify, requeue=True)
    return finished


def _checked_recipe(ctx: SearchContext, overrides: dict[str, Any]) -> Any:
    from tricklab.data import check_compatible, logged_names

    # a builder is located from the study's folder and told the data's outputs, as a variant is
    recipe = ctx.resolved.bind(trial_recipe(ctx.base, overrides))
    dataset = ctx.resolved.dataset
    problems = check_compatible(recipe, dataset)
    if ctx.objective not in logged_names(recipe, dataset):
        problems.append(f"does not log the objective '{ctx.objective}'")
    if problems:
        raise SpecError(problems)
    return recipe


def _tell(ctx: SearchContext, trial: Any, outcome: Any, notify: Listener) -> int:
    from optuna.trial import TrialState

    params = dict(trial.params)
    if isinstance(outcome, engines.RunPruned):
        trial.set_user_attr("epochs_run", outcome.epoch)
        ctx.study.tell(trial, state=TrialState.PRUNED)
        notify(TrialEvent(trial.number, "pruned", epoch=outcome.epoch, params=params))
        return 1
    if isinstance(outcome, engines.RunFailed):
        _fail(ctx, trial, outcome.error, notify)
        return 0
    result = outcome.result
    values = [(i + 1, v) for i, v in enumerate(result.history.get(ctx.objective, []))]
    values = [(epoch, v) for epoch, v in values if math.isfinite(v)]
    if not values:
        _fail(ctx, trial, f"no finite {ctx.objective} in any epoch (diverged)", notify)
        return 0
    pick = min if ctx.direction == "minimize" else max
    epoch, value = pick(values, key=lambda pair: pair[1])
    metric = ctx.resolved.primary_metric
    trial.set_user_attr("best_epoch", epoch)
    # The validation loss at that epoch breaks ties on the objective (_report.ranked_trials).
    losses = result.history.get("val_loss", [])
    if epoch <= len(losses) and math.isfinite(losses[epoch - 1]):
        trial.set_user_attr("val_loss", float(losses[epoch - 1]))
    trial.set_user_attr("epochs_run", result.epochs_run)
    trial.set_user_attr(f"test_{metric}", result.test["best"].get(metric))
    ctx.study.tell(trial, value)
    notify(TrialEvent(trial.number, "complete", value=value, epoch=epoch, params=params))
    return 1


def _fail(
    ctx: SearchContext, trial: Any, error: str, notify: Listener, *, requeue: bool = False
) -> None:
    from optuna.trial import TrialState

    trial.set_user_attr("error", error.splitlines()[0] if error else "")
    ctx.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    if requeue:
        _storage.requeue(ctx.study, ctx.study._storage.get_trial(trial._trial_id))
    notify(TrialEvent(trial.number, "requeued" if requeue else "failed", error=error))
