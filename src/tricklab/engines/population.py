"""The population engine: the runs of a group train as one compiled JAX program.

Every run of a small model pays for its own compilation and per-step dispatch; the arithmetic is a
fraction of its time. Here one program trains a whole population: per epoch, one ``jax.jit`` call
scans over the training steps and then the validation batches of every member.

How members stay independent and reproduce their solo runs:

- Members with the same recipe form a *cohort*. A cohort steps with Keras's own pure
  ``model.train_step(state, batch)`` (the function ``fit`` compiles), vmapped over its members'
  states: weights, optimizer slots, metric accumulators and the seed-generator states (Dropout,
  GaussianNoise, recurrent dropout, augmentation). So it trains whatever ``train_step`` takes, any
  layer kind (``--engine auto`` decides where that pays, ``_grouping``). Cohorts differing in
  loss, activation, regularizers, constraints, dropout rate, optimizer or schedule are traced
  side by side in the same scan body.
- A member's initial weights and seed-generator states are those of its model built after
  ``set_random_seed(seed)``, derived from the cohort's one model without building its own
  (``_initial``; else each member's model is built), and its batch order comes from numpy's RNG
  with that seed, exactly as in ``fit`` (see ``_scoring.batch_order_rng``). A seed generator's
  state is a pure ``[seed, counter]`` pair that ``train_step`` advances once per draw, so a
  vmapped member draws the masks and augmentations its solo run draws. Each member gathers its
  own rows from one copy of the data (float32, or the dataset's integer dtype for token ids) and
  standardises them with its own split's mean and std inside the step (``_population_data``);
  a target standardised per run (``target_transform``) is one copy per member. A member with
  ``train.class_weight`` trains on ``(x, y, sample_weight)`` batches, its own class weights per
  row (``"balanced"`` from its own training rows), as ``fit(class_weight=...)`` builds them; so
  members differing in class weights share the program, and their validation is unweighted.
- Per-member callbacks run on the host after each epoch on a small proxy model: Keras's own
  ``EarlyStopping`` (patience, ``min_delta``, ``restore_best_weights``) and the best-weights
  snapshot. A stopped member is frozen (its state is no longer updated); a member whose loss
  becomes NaN/inf is frozen and recorded as diverged; the others go on. The population ends when
  every member has stopped.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tricklab.base import backend as _backend
from tricklab.base.errors import TricklabError
from tricklab.base.quiet import concerning
from tricklab.data import Dataset, Target, target_for
from tricklab.engines._callbacks import (
    BestWeights,
    callback_state,
    restore_callback,
    steady,
)
from tricklab.engines._grouping import population_key
from tricklab.engines._initial import built_states, initial_states
from tricklab.engines._population_data import device_data
from tricklab.engines._program import batched, compile_programs
from tricklab.engines._protocol import (
    Checkpointer,
    Control,
    EpochEnd,
    Interrupted,
    PopulationEpoch,
    Progress,
    RunDone,
    RunFailed,
    RunPruned,
    RunTask,
)
from tricklab.engines._scoring import (
    batch_order_rng,
    reference,
    run_result,
    seed_everything,
    test_scores,
)
from tricklab.engines._weights import weights_layout
from tricklab.engines.build import build_model, compile_model
from tricklab.engines.contract import ResultStatus

ENGINE = "population"


class PopulationEngine:
    """Trains each group of tasks (same layer shapes, batch size, epochs) as one program."""

    name = ENGINE

    def run(
        self,
        tasks: Sequence[RunTask],
        dataset: Dataset,
        progress: Progress | None = None,
        control: Control | None = None,
    ) -> Iterator[RunDone | RunFailed | RunPruned]:
        # Members hold their rows in one array: equal layer shapes and steps, and equal splits
        # (cross-validation folds may differ by a row).
        groups: dict[tuple[str, tuple[int, ...]], list[RunTask]] = {}
        for task in tasks:
            sizes = tuple(task.splits.sizes().values())
            groups.setdefault((population_key(task.plan.recipe), sizes), []).append(task)
        for members in groups.values():
            population = Population(members, dataset)
            try:
                yield from population.train(progress or (lambda event: None), control)
            except (TricklabError, Interrupted, OSError):  # not the run's fault: stop
                raise
            except Exception as exc:  # the program failed: every unfinished member failed
                for task in members:
                    if task.plan.key not in population.finished:
                        yield RunFailed.from_exception(task.plan.key, exc)


# -- the members --------------------------------------------------------------------------------
@dataclass
class Member:
    """One run of the population: where its rows are and its host-side training record."""

    task: RunTask
    cohort: int
    index: int  # position within its cohort
    orders: Any  # np.random.RandomState: the member's batch order, as fit draws it
    history: dict[str, list[float]] = field(default_factory=dict)
    best: Any = None  # BestWeights callback
    proxy: Any = None
    callbacks: list[Any] = field(default_factory=list)  # best, then EarlyStopping if any
    training: bool = True
    diverged: bool = False
    pruned: int | None = None  # the epoch after which Control.prune stopped it


class _MemberModel:
    """What Keras callbacks see of one member: its weights, metrics and ``stop_training``."""

    def __init__(self, population: Population, member: Member) -> None:
        self._population, self._member = population, member
        self.metrics = population.cohorts[member.cohort].model.metrics  # for mode="auto"
        self.stop_training = False

    def get_weights(self) -> list[np.ndarray]:
        return self._population.member_weights(self._member)

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self._population.set_member_weights(self._member, weights)


@dataclass
class Cohort:
    """Members with one recipe: one Keras model whose pure steps are vmapped over them."""

    model: Any  # built and compiled; its variables are never trained
    target: Target
    members: list[Member]
    weight_slots: list[tuple[int, int]]  # model.weights[i] -> (0 trainable | 1 non-trainable, j)
    init_optimizer: list[Any]
    init_metrics: list[Any]
    train_rows: Any = None  # (members, training rows): indices into dataset.x
    #: each member feeds the model its own targets (a target scaled with its own training
    #: rows' mean and std: ``target_transform``); else one copy serves them all
    y_per_member: bool = False


# -- the population -----------------------------------------------------------------------------
class Population:
    """Members of one group; :meth:`train` runs them to the end and yields their outcomes."""

    def __init__(self, tasks: Sequence[RunTask], dataset: Dataset) -> None:
        self.tasks, self.dataset = list(tasks), dataset
        self.finished: set[str] = set()
        self.cohorts: list[Cohort] = []
        self.states: list[Any] = []  # per cohort: (trainable, non_trainable, optimizer, metrics)

    # -- set-up ---------------------------------------------------------------------------------
    def _build(self) -> None:
        import jax.numpy as jnp

        dataset, first = self.dataset, self.tasks[0]
        by_recipe: dict[str, list[RunTask]] = {}
        for task in self.tasks:
            by_recipe.setdefault(task.plan.recipe.model_dump_json(), []).append(task)
        input_shape = first.splits.x_train.shape[1:]
        for tasks in by_recipe.values():
            recipe = tasks[0].plan.recipe
            target = target_for(recipe, dataset)
            # The cohort's template: compiled and built like fit builds it, never trained.
            seed_everything(tasks[0].plan.init_seed)
            model = build_model(recipe, input_shape)
            compile_model(model, recipe, dataset, target)
            sample = first.splits
            with concerning(task.plan for task in tasks):  # Keras's warnings name the cohort
                model._symbolic_build(
                    data_batch=(
                        sample.x_train[:2],
                        target.encode(sample.to_model(sample.y_train[:2])),
                    )
                )
            model.optimizer.build(model.trainable_variables)
            model.reset_metrics()
            slots = _weight_slots(model)
            cohort = Cohort(
                model,
                target,
                [],
                slots,
                [v.value for v in model.optimizer.variables],
                [v.value for v in model.metrics_variables],
                y_per_member=dataset.target_transform is not None,
            )
            # Initial weights and dropout seed states exactly as the solo runs draw them.
            seeds = [task.plan.init_seed for task in tasks]
            initial = initial_states(model, seeds[0], seeds)
            trainable, non_trainable = initial or built_states(recipe, input_shape, seeds)
            for task in tasks:
                rows, shuffle = len(task.splits.y_train), recipe.train.shuffle
                orders = batch_order_rng(task.plan.init_seed, rows, shuffle)
                member = Member(task, len(self.cohorts), len(cohort.members), orders)
                cohort.members.append(member)
            k = len(tasks)
            self.states.append(
                (
                    trainable,
                    non_trainable,
                    [jnp.broadcast_to(v, (k, *v.shape)) for v in cohort.init_optimizer],
                    [jnp.broadcast_to(v, (k, *v.shape)) for v in cohort.init_metrics],
                )
            )
            self.cohorts.append(cohort)
        self.members = [m for c in self.cohorts for m in c.members]
        for member in self.members:
            train = member.task.plan.recipe.train
            member.proxy = _MemberModel(self, member)
            member.best = BestWeights(train.checkpoint_monitor(), train.checkpoint.mode)
            callbacks = [member.best]
            if train.early_stopping is not None:
                keras = _backend.keras()
                callbacks.append(keras.callbacks.EarlyStopping(**train.early_stopping.model_dump()))
            for callback in callbacks:
                callback.set_model(member.proxy)
                callback.on_train_begin()
            member.callbacks = callbacks

    # -- member weights (for callbacks and results) ---------------------------------------------
    def member_weights(self, member: Member) -> list[np.ndarray]:
        cohort, state = self.cohorts[member.cohort], self.states[member.cohort]
        return [np.asarray(state[kind][j][member.index]) for kind, j in cohort.weight_slots]

    def set_member_weights(self, member: Member, weights: list[np.ndarray]) -> None:
        cohort = self.cohorts[member.cohort]
        tv, ntv, ov, mv = self.states[member.cohort]
        lists = [list(tv), list(ntv)]
        for (kind, j), value in zip(cohort.weight_slots, weights, strict=True):
            lists[kind][j] = lists[kind][j].at[member.index].set(value)
        self.states[member.cohort] = (lists[0], lists[1], ov, mv)

    # -- training -------------------------------------------------------------------------------
    def train(
        self, progress: Progress, control: Control | None
    ) -> Iterator[RunDone | RunFailed | RunPruned]:
        import jax
        import jax.numpy as jnp

        started = time.perf_counter()
        self._build()
        data = device_data(self.dataset, self.cohorts)
        first = self.tasks[0].plan.recipe.train
        batch_size, epochs = first.batch_size, first.epochs
        epoch_fn, evaluate_fn = compile_programs(self.cohorts, batch_size)
        durations: list[float] = []
        prune = control.prune if control is not None else None
        checkpointer = Checkpointer(control, [task.plan.key for task in self.tasks])
        start, before = 0, 0.0  # before: training time spent before a resume
        resumed = checkpointer.load()
        if resumed is not None:
            start, durations = resumed["epoch"], resumed["durations"]
            before = float(resumed.get("seconds", 0.0))
            self._restore(resumed)
        for epoch in range(start, epochs):
            if not any(m.training for m in self.members):
                break
            tick = time.perf_counter()
            batches = []
            for cohort in self.cohorts:
                rows = cohort.train_rows
                n, shuffle = rows.shape[1], cohort.members[0].task.plan.recipe.train.shuffle
                orders = [
                    m.orders.permutation(n) if shuffle else np.arange(n) for m in cohort.members
                ]
                batches.append(batched(np.take_along_axis(rows, np.stack(orders), 1), batch_size))
            active = [jnp.asarray([m.training for m in c.members]) for c in self.cohorts]
            self.states, train_logs, val_logs = epoch_fn(self.states, active, data, batches)
            train_logs, val_logs = jax.device_get((train_logs, val_logs))
            durations.append(time.perf_counter() - tick)
            for member in self.members:
                if not member.training:
                    continue
                c, j = member.cohort, member.index
                logs = {k: float(v[j]) for k, v in train_logs[c].items()}
                logs.update({f"val_{k}": float(v[j]) for k, v in val_logs[c].items()})
                for name, logged in logs.items():
                    member.history.setdefault(name, []).append(logged)
                for callback in member.callbacks:
                    callback.on_epoch_end(epoch, logs)
                if not math.isfinite(logs.get("loss", math.nan)):
                    member.diverged = True
                if prune is not None and prune(member.task.plan.key, epoch + 1, logs):
                    member.pruned = epoch + 1  # frozen like an early-stopped member
                stopped = member.diverged or member.proxy.stop_training or member.pruned
                if stopped or epoch + 1 == epochs:
                    # fit's end for this member (EarlyStopping restores its best weights here)
                    member.training = False
                    for callback in member.callbacks:
                        callback.on_train_end()
                progress(EpochEnd(member.task.plan.key, epoch + 1, logs))
            progress(
                PopulationEpoch(
                    members=len(self.members),
                    training=sum(m.training for m in self.members),
                    epoch=epoch + 1,
                    epochs=epochs,
                )
            )

            def state(e: int, d: list[float]) -> dict[str, Any]:
                return self._state(e, d, before + time.perf_counter() - started)

            checkpointer.epoch_end(
                epoch + 1,
                not any(m.training for m in self.members),
                functools.partial(state, epoch + 1, list(durations)),
            )
        total = before + time.perf_counter() - started
        yield from self._results(evaluate_fn, data, durations, total)

    # -- checkpoints ----------------------------------------------------------------------------
    def _state(self, epoch: int, durations: list[float], seconds: float) -> dict[str, Any]:
        """Everything the population needs to go on after ``epoch`` as if never stopped."""
        import jax

        return {
            "epoch": epoch,
            "durations": durations,
            "seconds": seconds,
            "states": jax.device_get(self.states),
            "members": [
                {
                    "history": m.history,
                    "training": m.training,
                    "diverged": m.diverged,
                    "pruned": m.pruned,
                    "stop_training": m.proxy.stop_training,
                    "orders": m.orders.get_state(),
                    "callbacks": [callback_state(c) for c in m.callbacks],
                }
                for m in self.members
            ],
        }

    def _restore(self, state: dict[str, Any]) -> None:
        import jax
        import jax.numpy as jnp

        self.states = jax.tree.map(jnp.asarray, state["states"])
        for member, saved in zip(self.members, state["members"], strict=True):
            member.history, member.training = saved["history"], saved["training"]
            member.diverged, member.proxy.stop_training = saved["diverged"], saved["stop_training"]
            member.pruned = saved.get("pruned")
            member.orders.set_state(saved["orders"])
            for callback, values in zip(member.callbacks, saved["callbacks"], strict=True):
                restore_callback(callback, values)

    # -- test scores and results ----------------------------------------------------------------
    def _results(
        self, evaluate_fn: Any, data: Any, durations: list[float], total: float
    ) -> Iterator[RunDone | RunPruned]:
        import jax

        last = [(s[0], s[1]) for s in self.states]
        best = []
        for i, cohort in enumerate(self.cohorts):
            tv, ntv = [list(x) for x in last[i]]
            for member in cohort.members:
                weights = member.best.weights or self.member_weights(member)
                for (kind, j), value in zip(cohort.weight_slots, weights, strict=True):
                    target = tv if kind == 0 else ntv
                    target[j] = target[j].at[member.index].set(value)
            best.append((tv, ntv))
        last_logs, last_outputs = jax.device_get(evaluate_fn(last, data))
        best_logs, best_outputs = jax.device_get(evaluate_fn(best, data))
        k = len(self.members)
        for cohort in self.cohorts:
            model = cohort.model
            for member in cohort.members:
                j, task = member.index, member.task
                splits, plan = task.splits, task.plan
                if member.pruned is not None:
                    self.finished.add(plan.key)
                    yield RunPruned(plan.key, member.pruned)
                    continue
                baseline = reference(splits, cohort.target)

                last_scores, last_predictions = self._scores(
                    member, last_logs, last_outputs, baseline
                )
                # Without a best epoch, "best" is evaluated with the last weights, as in solo.
                best_scores, predictions = self._scores(member, best_logs, best_outputs, baseline)
                has_best = member.best.weights is not None
                if not has_best:
                    best_scores = {**last_scores, "confusion_matrix": None}
                result = run_result(
                    plan,
                    self.dataset,
                    splits,
                    best=best_scores,
                    last=last_scores,
                    history=member.history,
                    best_weights=member.best,
                    status=ResultStatus.DIVERGED if member.diverged else ResultStatus.OK,
                    params=int(model.count_params()),
                    # The population's time, shared equally by its members (README, "Engines").
                    seconds_per_epoch=steady(durations) / k,
                    first_epoch_seconds=(durations[0] if durations else 0.0) / k,
                    seconds_total=total / k,
                    engine=ENGINE,
                )
                last_weights = self.member_weights(member)
                weights = member.best.weights or last_weights
                self.finished.add(plan.key)
                layout = weights_layout(plan.recipe, splits.x_train.shape[1:])  # once per cohort
                yield RunDone(
                    plan.key, result, weights, predictions, layout, last_weights, last_predictions
                )

    def _scores(
        self, member: Member, logs: Any, outputs: Any, baseline: float
    ) -> tuple[dict[str, Any], np.ndarray]:
        """One member's test scores and predictions from the population's vectorised
        evaluation."""
        i, j = member.cohort, member.index
        target, splits = self.cohorts[i].target, member.task.splits
        keras_scores = {name: float(v[j]) for name, v in logs[i].items()}
        return test_scores(
            keras_scores,
            np.asarray(outputs[i][j]),
            splits,
            target,
            baseline,
            recipe=member.task.plan.recipe,
            dataset=self.dataset,
        )


def _weight_slots(model: Any) -> list[tuple[int, int]]:
    trainable = {v.path: j for j, v in enumerate(model.trainable_variables)}
    non_trainable = {v.path: j for j, v in enumerate(model.non_trainable_variables)}
    return [
        (0, trainable[v.path]) if v.path in trainable else (1, non_trainable[v.path])
        for v in model.weights
    ]
