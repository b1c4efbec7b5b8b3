"""What every engine shares: seeding, test scoring and the weights contract.

- Seeding: one seed fixes initial weights, dropout masks and batch order (README,
  "Reproducibility"); both engines draw them the way ``model.fit`` does.
- Test scoring: Keras ``evaluate`` semantics for the loss and compiled metrics (regularization
  penalties included), plus what accuracy hides on imbalanced data: ROC AUC, balanced accuracy,
  the majority baseline and the confusion matrix, from the predicted probabilities.
- Weights: a run's weights are ``model.get_weights()`` of ``build_model(recipe, input_shape)``;
  ``best.weights.h5`` holds them so that ``export`` and ``predict`` can load them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

from tricklab import _backend
from tricklab.build import Target
from tricklab.datasets import Dataset, Splits
from tricklab.result import RunPlan, RunResult
from tricklab.spec import Recipe


def seed_everything(seed: int) -> None:
    """Python's, numpy's and Keras's global RNGs, as before a solo ``fit``."""
    _backend.keras().utils.set_random_seed(seed)


def batch_order_rng(seed: int, rows: int, shuffle: bool) -> np.random.RandomState:
    """The RNG whose next ``permutation(rows)`` is the order ``model.fit`` feeds epoch 1 in,
    after ``set_random_seed(seed)``; each later call gives the next epoch's order.

    Keras shuffles with numpy's global RNG: one permutation when ``fit`` first builds its
    metrics (it peeks at a batch), then one per epoch.
    """
    rng = np.random.RandomState(seed)
    if shuffle:
        rng.permutation(rows)
    return rng


def majority_class(splits: Splits, target: Target) -> int | None:
    """The most common training class (the majority baseline predicts it)."""
    if target.format == "regression":
        return None
    return int(np.bincount(splits.y_train).argmax())


def score(
    keras_scores: dict[str, float],
    probabilities: np.ndarray,
    truth: np.ndarray,
    target: Target,
    majority: int | None,
) -> dict[str, Any]:
    """Test scores of one set of weights: Keras's loss and metrics plus the imbalance-aware ones."""
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, roc_auc_score

    scores: dict[str, Any] = {k: float(v) for k, v in keras_scores.items()}
    if target.format == "regression":
        return scores
    probabilities = np.asarray(probabilities)
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


def without_matrix(scores: dict[str, Any]) -> dict[str, float | None]:
    return {k: v for k, v in scores.items() if k != "confusion_matrix"}


def preprocessing(dataset: Dataset, splits: Splits) -> dict[str, Any]:
    """What turned raw feature values into this run's inputs (for exported models)."""
    out: dict[str, Any] = {}
    if dataset.raw_scale != 1.0:
        out["scale"] = dataset.raw_scale
    if splits.feature_mean is not None and splits.feature_std is not None:
        out["mean"] = [float(v) for v in np.ravel(splits.feature_mean)]
        out["std"] = [float(v) for v in np.ravel(splits.feature_std)]
    return out


def run_result(
    plan: RunPlan,
    dataset: Dataset,
    splits: Splits,
    *,
    best: dict[str, Any],
    last: dict[str, Any],
    history: dict[str, list[float]],
    best_weights: Any,  # the BestWeights callback the run trained with
    **fields: Any,
) -> RunResult:
    """A run's result: what every engine records the same way, plus the engine's ``fields``
    (engine, params, timings, diagnostics, ...)."""
    return RunResult(
        key=plan.key,
        study=plan.study,
        variant=plan.variant,
        seed=plan.seed,
        test={"best": without_matrix(best), "last": without_matrix(last)},
        epochs_run=len(history.get("loss", [])),
        best_epoch=best_weights.epoch,
        monitor=best_weights.monitor,
        best_monitor_value=best_weights.value,
        backend=_backend.name(),
        versions=_backend.versions(),
        validated_on="test set" if splits.validation_is_test else "validation split",
        split_sizes=splits.sizes(),
        confusion_matrix=best.get("confusion_matrix"),
        input_shape=list(splits.x_train.shape[1:]),
        preprocessing=preprocessing(dataset, splits),
        history={k: [float(v) for v in values] for k, values in history.items()},
        finished_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **fields,
    )


def write_weights(
    path: Path, recipe: Recipe, input_shape: tuple[int, ...], weights: list[np.ndarray]
) -> None:
    """Write ``weights`` as the ``.weights.h5`` file of ``build_model(recipe, input_shape)``."""
    from tricklab.build import build_model

    model = build_model(recipe, input_shape)
    model.set_weights(weights)
    model.save_weights(str(path))
