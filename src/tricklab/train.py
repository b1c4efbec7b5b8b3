"""The solo Keras engine: train one run with ``model.fit`` and evaluate it on the test split.

Small models spend most of their time in per-step overhead, not arithmetic, so runs are compiled
(XLA through JAX by default) with ``steps_per_execution`` steps per call (README, "Speed").
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tricklab import _backend
from tricklab.build import Target, build_model, compile_model, target_for
from tricklab.datasets import Dataset, Splits
from tricklab.result import RunPlan, RunResult

ENGINE = "keras-solo"


def train_run(
    plan: RunPlan,
    dataset: Dataset,
    splits: Splits,
    checkpoint_path: Path,
    callbacks: Sequence[Any] = (),
) -> RunResult:
    """Train ``plan`` on ``splits``; best weights go to ``checkpoint_path`` (``*.weights.h5``)."""
    keras = _backend.keras()
    from tricklab import _callbacks  # defines Keras callback classes: imports Keras

    recipe, train = plan.recipe, plan.recipe.train
    target = target_for(recipe, dataset)

    # One seed fixes weight initialisation, dropout masks and the order of batches.
    keras.utils.set_random_seed(plan.seed)
    model = build_model(recipe, splits.x_train.shape[1:])
    compile_model(model, recipe, dataset, target)

    # Fresh callbacks for every run: they carry state (best value so far, patience left).
    timer = _callbacks.EpochTimer()
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(checkpoint_path),
        monitor=train.checkpoint_monitor(),
        mode=train.checkpoint.mode,
        save_best_only=True,
        save_weights_only=True,
    )
    best = _callbacks.BestEpoch(checkpoint)
    fit_callbacks = [timer, checkpoint, best, keras.callbacks.TerminateOnNaN()]
    if train.early_stopping is not None:
        fit_callbacks.append(keras.callbacks.EarlyStopping(**train.early_stopping.model_dump()))
    probe = _diagnostics(plan, splits, target)
    if probe is not None:
        fit_callbacks.append(probe)

    started = time.perf_counter()
    history = model.fit(
        splits.x_train,
        target.encode(splits.y_train),
        batch_size=train.batch_size,
        epochs=train.epochs,
        validation_data=(splits.x_val, target.encode(splits.y_val)),
        shuffle=train.shuffle,
        callbacks=[*fit_callbacks, *callbacks],
        verbose=0,
    ).history
    seconds_total = time.perf_counter() - started

    # "Last" is the model fit() returns; "best" is the checkpoint of the best monitored epoch.
    majority = int(np.bincount(splits.y_train).argmax()) if target.format != "regression" else None
    last = _evaluate(model, splits, target, train.batch_size, majority)
    diverged = not all(math.isfinite(v) for v in history.get("loss", [float("nan")]))
    if best.epoch is not None and checkpoint_path.exists():
        model.load_weights(str(checkpoint_path))
        best_scores = _evaluate(model, splits, target, train.batch_size, majority)
    else:  # the monitored value was never finite: there is no best epoch to go back to
        best_scores = {**last, "confusion_matrix": None}

    return RunResult(
        key=plan.key,
        study=plan.study,
        variant=plan.variant,
        seed=plan.seed,
        status="diverged" if diverged else "ok",
        test={"best": _scores(best_scores), "last": _scores(last)},
        epochs_run=len(history["loss"]),
        best_epoch=best.epoch,
        monitor=checkpoint.monitor,
        best_monitor_value=best.value,
        params=int(model.count_params()),
        seconds_per_epoch=timer.steady(),
        first_epoch_seconds=timer.durations[0] if timer.durations else 0.0,
        seconds_total=seconds_total,
        backend=_backend.name(),
        engine=ENGINE,
        versions=_backend.versions(),
        validated_on="test set" if splits.validation_is_test else "validation split",
        split_sizes=splits.sizes(),
        confusion_matrix=best_scores.get("confusion_matrix"),
        input_shape=list(splits.x_train.shape[1:]),
        preprocessing=preprocessing(dataset, splits),
        history={k: [float(v) for v in values] for k, values in history.items()},
        diagnostics=probe.rows if probe is not None else [],
        diagnostics_seconds=probe.seconds if probe is not None else 0.0,
        finished_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )


def _diagnostics(plan: RunPlan, splits: Splits, target: Target) -> Any:
    """The diagnostics callback on a fixed validation batch, if the study asks for it."""
    if plan.diagnostics is None:
        return None
    from tricklab.diagnostics import make_callback

    n = plan.diagnostics["batch_size"]
    return make_callback(
        splits.x_val[:n], target.encode(splits.y_val[:n]), every=plan.diagnostics["every"]
    )


def preprocessing(dataset: Dataset, splits: Splits) -> dict[str, Any]:
    """What turned raw feature values into this run's inputs (for exported models)."""
    out: dict[str, Any] = {}
    if dataset.raw_scale != 1.0:
        out["scale"] = dataset.raw_scale
    if splits.feature_mean is not None and splits.feature_std is not None:
        out["mean"] = [float(v) for v in np.ravel(splits.feature_mean)]
        out["std"] = [float(v) for v in np.ravel(splits.feature_std)]
    return out


def _scores(scores: dict[str, Any]) -> dict[str, float | None]:
    return {k: v for k, v in scores.items() if k != "confusion_matrix"}


def _evaluate(
    model: Any, splits: Splits, target: Target, batch_size: int, majority: int | None
) -> dict[str, Any]:
    """Keras metrics on the test split, plus what accuracy alone hides on imbalanced data."""
    y = target.encode(splits.y_test)
    scores: dict[str, Any] = model.evaluate(
        splits.x_test, y, batch_size=batch_size, return_dict=True, verbose=0
    )
    scores = {k: float(v) for k, v in scores.items()}
    if target.format == "regression":
        return scores
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, roc_auc_score

    probabilities = np.asarray(model.predict(splits.x_test, batch_size=batch_size, verbose=0))
    truth = splits.y_test
    if probabilities.shape[-1] == 1:
        positive = probabilities[:, 0]
        predicted = (positive > 0.5).astype(int)
    else:
        positive = probabilities[:, 1] if probabilities.shape[-1] == 2 else None
        predicted = probabilities.argmax(axis=-1)
    finite = bool(np.isfinite(probabilities).all())
    scores["balanced_accuracy"] = float(balanced_accuracy_score(truth, predicted))
    scores["majority_baseline"] = float(np.mean(truth == majority))
    if target.n_classes == 2 and positive is not None:
        two_classes = len(np.unique(truth)) == 2
        scores["auc"] = float(roc_auc_score(truth, positive)) if finite and two_classes else None
    labels = list(range(target.n_classes))
    scores["confusion_matrix"] = confusion_matrix(truth, predicted, labels=labels).tolist()
    return scores
