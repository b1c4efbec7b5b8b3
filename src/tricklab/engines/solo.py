"""The solo engine: one ``model.fit`` per run, then the test split with the last and best weights.

Small models spend most of their time in per-step overhead, not arithmetic, so runs are compiled
(XLA through JAX by default) with ``steps_per_execution`` steps per call (README, "Speed").
Works on every backend; diagnostics are measured here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from tricklab.base import backend as _backend
from tricklab.base.errors import SpecError, TricklabError
from tricklab.data import Dataset, Splits, Target, target_for
from tricklab.engines._protocol import (
    Checkpointer,
    Control,
    EpochEnd,
    Interrupted,
    Progress,
    RunDone,
    RunFailed,
    RunPruned,
    RunTask,
)
from tricklab.engines._scoring import (
    class_weights,
    reference,
    run_result,
    seed_everything,
    test_scores,
)
from tricklab.engines._weights import weights_layout
from tricklab.engines.build import build_model, compile_model
from tricklab.engines.contract import ResultStatus, RunPlan, RunResult
from tricklab.spec import Recipe

ENGINE = "solo"


class SoloEngine:
    """Trains each task with its own ``model.fit``, one after the other."""

    name = ENGINE

    def run(
        self,
        tasks: Sequence[RunTask],
        dataset: Dataset,
        progress: Progress | None = None,
        control: Control | None = None,
    ) -> Iterator[RunDone | RunFailed | RunPruned]:
        report = progress or (lambda event: None)
        for task in tasks:
            key = task.plan.key

            def on_epoch(epoch: int, logs: dict[str, float], key: str = key) -> None:
                report(EpochEnd(key, epoch, logs))

            try:
                result, weights, predictions, last = train_run(
                    task.plan,
                    dataset,
                    task.splits,
                    on_epoch=on_epoch,
                    control=control,
                )
            except _Pruned as pruned:
                yield RunPruned(key, pruned.epoch)
                continue
            except (TricklabError, Interrupted, OSError):  # not the run's fault: stop
                raise
            except Exception as exc:  # one broken run must not lose the others
                yield RunFailed.from_exception(key, exc)
                continue
            layout = weights_layout(task.plan.recipe, task.splits.x_train.shape[1:])
            yield RunDone(key, result, weights, predictions, layout, *last)


def train_run(
    plan: RunPlan,
    dataset: Dataset,
    splits: Splits,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    callbacks: Sequence[Any] = (),
    control: Control | None = None,
) -> tuple[RunResult, list[np.ndarray], np.ndarray, tuple[list[np.ndarray], np.ndarray]]:
    """Train ``plan`` on ``splits``: its result, its best weights (``get_weights()`` order) and
    their test predictions (``_scoring.test_predictions``), and the last weights (what ``fit``
    returned) with theirs.

    With ``control``, the run saves checkpoints and resumes from the last one (README, "The run
    store"); a resumed run ends with the history of an uninterrupted one.
    """
    keras = _backend.keras()
    from tricklab.engines import _callbacks  # defines Keras callback classes: imports Keras

    recipe, train = plan.recipe, plan.recipe.train
    target = target_for(recipe, dataset)

    # One seed fixes weight initialisation, dropout masks and the order of batches.
    seed_everything(plan.init_seed)
    try:
        model = build_model(recipe, splits.x_train.shape[1:])
    except SpecError as exc:  # a builder's problem: one line naming its variant
        raise exc.located(where=f"variants.{plan.variant}") from None
    compile_model(model, recipe, dataset, target)

    # Fresh callbacks for every run: they carry state (best value so far, patience left).
    timer = _callbacks.EpochTimer()
    best = _callbacks.BestWeights(train.checkpoint_monitor(), train.checkpoint.mode)
    fit_callbacks = [timer, best, keras.callbacks.TerminateOnNaN()]
    watched: list[Any] = [timer, best]
    if train.early_stopping is not None:
        stopper = keras.callbacks.EarlyStopping(**train.early_stopping.model_dump())
        fit_callbacks.append(stopper)
        watched.append(stopper)
    probe = _diagnostics(plan, splits, target)
    if probe is not None:
        fit_callbacks.append(probe)
        # Diagnostics rows start at the untrained model: such a run restarts, never resumes.
        kept = control or Control()
        control = Control(stop_requested=kept.stop_requested, prune=kept.prune)
    if on_epoch is not None:
        fit_callbacks.append(_callbacks.EpochProgress(on_epoch))
    pruner = None
    if control is not None and control.prune is not None:
        pruner = _callbacks.PruneCheck(plan.key, control.prune)
        fit_callbacks.append(pruner)

    checkpointer = Checkpointer(control, [plan.key])
    resumed = checkpointer.load()
    x_train, y_train = splits.x_train, target.encode(splits.to_model(splits.y_train))
    if resumed is not None:
        _restore(model, resumed, x_train, y_train)
    resumable = _callbacks.ResumableRun(checkpointer, train.epochs, watched, resumed)

    started = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=train.batch_size,
        epochs=train.epochs,
        initial_epoch=resumed["epoch"] if resumed is not None else 0,
        validation_data=(splits.x_val, target.encode(splits.to_model(splits.y_val))),
        shuffle=train.shuffle,
        class_weight=class_weights(recipe, dataset, splits),  # weights the training loss only
        callbacks=[*fit_callbacks, *callbacks, resumable],
        verbose=0,
    ).history
    seconds_total = resumable.seconds_before + time.perf_counter() - started
    if pruner is not None and pruner.pruned_at is not None:
        raise _Pruned(pruner.pruned_at)  # a pruned trial needs no test scores
    if resumed is not None:
        history = {k: [*resumed["history"].get(k, []), *v] for k, v in history.items()}

    # "Last" is the model fit() returns; "best" is the snapshot of the best monitored epoch.
    baseline = reference(splits, target)
    last, predictions = _evaluate(model, splits, target, baseline, recipe, dataset)
    last_weights, last_predictions = model.get_weights(), predictions
    diverged = not all(math.isfinite(v) for v in history.get("loss", [float("nan")]))
    if best.weights is not None:
        weights = best.weights
        model.set_weights(weights)
        best_scores, predictions = _evaluate(model, splits, target, baseline, recipe, dataset)
    else:  # the monitored value was never finite: there is no best epoch to go back to
        weights = model.get_weights()
        best_scores = {**last, "confusion_matrix": None}

    result = run_result(
        plan,
        dataset,
        splits,
        best=best_scores,
        last=last,
        history=history,
        best_weights=best,
        status=ResultStatus.DIVERGED if diverged else ResultStatus.OK,
        params=int(model.count_params()),
        seconds_per_epoch=timer.steady(),
        first_epoch_seconds=timer.durations[0] if timer.durations else 0.0,
        seconds_total=seconds_total,
        engine=ENGINE,
        diagnostics=probe.rows if probe is not None else [],
        diagnostics_seconds=probe.seconds if probe is not None else 0.0,
    )
    return result, weights, predictions, (last_weights, last_predictions)


class _Pruned(Exception):
    def __init__(self, epoch: int) -> None:
        super().__init__(f"pruned after epoch {epoch}")
        self.epoch = epoch


def _restore(model: Any, state: dict[str, Any], x: np.ndarray, y: np.ndarray) -> None:
    """Put a checkpoint back: weights, optimizer slots, dropout seeds, numpy's RNG.

    Building the model here keeps ``fit`` from peeking at a batch, which would draw a
    permutation from numpy's RNG that the uninterrupted run drew at its start.
    """
    model._symbolic_build(data_batch=(x[:2], y[:2]))
    model.optimizer.build(model.trainable_variables)
    for variable, value in zip(model.variables, state["variables"], strict=True):
        variable.assign(value)
    for variable, value in zip(model.optimizer.variables, state["optimizer"], strict=True):
        variable.assign(value)
    np.random.set_state(state["numpy_rng"])


def _diagnostics(plan: RunPlan, splits: Splits, target: Target) -> Any:
    """The diagnostics callback on a fixed validation batch, if the study asks for it."""
    if plan.diagnostics is None:
        return None
    from tricklab.engines.diagnostics import make_callback

    n = plan.diagnostics["batch_size"]
    return make_callback(
        splits.x_val[:n],
        target.encode(splits.to_model(splits.y_val[:n])),
        every=plan.diagnostics["every"],
    )


def _evaluate(
    model: Any,
    splits: Splits,
    target: Target,
    baseline: float,
    recipe: Recipe,
    dataset: Dataset,
) -> tuple[dict[str, Any], np.ndarray]:
    """The test split's scores for the model's current weights, and its test predictions."""
    batch_size = recipe.train.batch_size
    y = target.encode(splits.to_model(splits.y_test))
    keras_scores = model.evaluate(
        splits.x_test, y, batch_size=batch_size, return_dict=True, verbose=0
    )
    outputs = model.predict(splits.x_test, batch_size=batch_size, verbose=0)
    return test_scores(
        keras_scores, outputs, splits, target, baseline, recipe=recipe, dataset=dataset
    )
