"""What every engine shares: seeding, test scoring and the weights contract.

- Seeding: one seed fixes initial weights, dropout masks and batch order (README,
  "Reproducibility"); both engines draw them the way ``model.fit`` does.
- Test scoring: Keras ``evaluate`` semantics for the loss and compiled metrics (regularization
  penalties included), plus, from the model's test outputs, what accuracy hides on imbalanced
  data (ROC AUC, average precision, F1, log loss, balanced accuracy, the majority baseline, the
  confusion matrix) or, for
  regression, errors on the target's own scale that every loss can be compared on (MSE, MAE,
  R^2 and the mean predictor's MSE).
- Predictions: the best weights' outputs on the test rows, kept so that ROC curves and later
  metrics need no retraining (:func:`test_predictions`).
- Weights: a run's weights are ``model.get_weights()`` of ``build_model(recipe, input_shape)``;
  where each goes in its ``best.weights.h5`` is :mod:`tricklab.engines._weights`'s business.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np

from tricklab.base import backend as _backend
from tricklab.data import Dataset, Splits, Target
from tricklab.engines.contract import RunPlan, RunResult

if TYPE_CHECKING:
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


def reference(splits: Splits, target: Target) -> float:
    """What the baseline predicts: the most common training class, or the training mean."""
    if target.format == "regression":
        return float(np.mean(splits.y_train, dtype=np.float64))
    return float(np.bincount(splits.y_train).argmax())


def class_weights(recipe: Recipe, dataset: Dataset, splits: Splits) -> dict[int, float] | None:
    """The run's ``class_weight`` for ``fit``: class index -> weight; None without class weights.

    ``"balanced"`` is scikit-learn's rule, n_samples / (n_classes * bincount(y)), on the run's
    training rows (a class missing from them keeps Keras's weight for a class without one, 1);
    a table's class labels (checked by ``data.check_compatible``) become the data's class indices.
    """
    weights = recipe.train.class_weight
    if weights is None:
        return None
    if weights == "balanced":
        from sklearn.utils.class_weight import compute_class_weight

        classes = np.unique(splits.y_train)
        balanced = compute_class_weight("balanced", classes=classes, y=splits.y_train)
        return {int(c): float(w) for c, w in zip(classes, balanced, strict=True)}
    return {dataset.class_names.index(label): float(w) for label, w in weights.items()}


def class_weight_vector(weights: dict[int, float] | None, n_classes: int) -> np.ndarray | None:
    """``weights`` as one float32 weight per class index, the sample weights Keras gives each
    row of a class (``class_weight_to_sample_weights``: 1 for a class without a weight)."""
    if weights is None:
        return None
    return np.array([weights.get(c, 1.0) for c in range(n_classes)], dtype="float32")


def score(
    keras_scores: dict[str, float],
    outputs: np.ndarray,
    truth: np.ndarray,
    target: Target,
    baseline: float,
) -> dict[str, Any]:
    """Test scores of one set of weights: Keras's loss and metrics (``evaluate`` semantics),
    plus what they hide, computed from the model's ``outputs`` on the test rows.

    Classification: balanced accuracy, ROC AUC and average precision ``pr_auc`` (binary), F1
    (binary ``f1`` of the positive class at the threshold 0.5; multiclass ``f1_macro``), the
    ``log_loss`` of the outputs as class probabilities (None when they are not), the majority
    baseline (``baseline`` is the majority class) and the confusion matrix. The scores that read
    probabilities are computed from the stored predictions (:func:`test_predictions`), so that
    scikit-learn gives the same on ``predictions.npy``. Regression, on the target's own scale
    whatever the loss: mean squared error ``mse``, ``mae``, ``r2`` and ``mean_baseline_mse``, the
    error of always predicting the training mean (``baseline``).
    """
    from sklearn.metrics import (
        average_precision_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        mean_absolute_error,
        mean_squared_error,
        r2_score,
        roc_auc_score,
    )

    scores: dict[str, Any] = {k: float(v) for k, v in keras_scores.items()}
    stored = test_predictions(outputs, target)  # float32, as predictions.npy keeps them
    outputs = np.asarray(outputs, dtype=np.float64)
    finite = bool(np.isfinite(outputs).all())
    if target.format == "regression":
        truth = np.asarray(truth, dtype=np.float64)
        predicted = outputs.reshape(len(truth))
        scores["mean_baseline_mse"] = float(np.mean((truth - baseline) ** 2))
        if not finite:  # a diverged run predicts NaN: its errors are unknown, not zero
            return {**scores, "mse": None, "mae": None, "r2": None}
        scores["mse"] = float(mean_squared_error(truth, predicted))
        scores["mae"] = float(mean_absolute_error(truth, predicted))
        scores["r2"] = float(r2_score(truth, predicted))
        return scores
    positive: np.ndarray | None
    if outputs.shape[-1] == 1:
        positive = outputs[:, 0]
        predicted = (positive > 0.5).astype(int)
    else:
        positive = outputs[:, 1] if outputs.shape[-1] == 2 else None
        predicted = outputs.argmax(axis=-1)
    scores["balanced_accuracy"] = float(balanced_accuracy_score(truth, predicted))
    scores["majority_baseline"] = float(np.mean(truth == int(baseline)))
    labels = list(range(target.n_classes))
    if target.n_classes == 2 and positive is not None:
        two_classes = len(np.unique(truth)) == 2
        scores["auc"] = float(roc_auc_score(truth, positive)) if finite and two_classes else None
        ranked = finite and two_classes
        scores["pr_auc"] = float(average_precision_score(truth, stored)) if ranked else None
        scores["f1"] = float(f1_score(truth, predicted, zero_division=0.0))
    else:
        scores["f1_macro"] = float(f1_score(truth, predicted, average="macro", zero_division=0.0))
    scores["log_loss"] = _log_loss(truth, stored, labels)
    scores["confusion_matrix"] = confusion_matrix(truth, predicted, labels=labels).tolist()
    return scores


def test_scores(
    keras_scores: dict[str, float],
    outputs: np.ndarray,
    splits: Splits,
    target: Target,
    baseline: float,
    *,
    recipe: Recipe,
    dataset: Dataset,
) -> tuple[dict[str, Any], np.ndarray]:
    """:func:`score` and :func:`test_predictions` of the model's test ``outputs``. With a
    target transform (``splits.target_scaling``) the outputs are first mapped back to the
    target's own scale, and Keras's loss and metrics recomputed there
    (:func:`~tricklab.engines.build.original_scale_scores`): every test score and the stored
    predictions are on the scale the user's data is written in."""
    if splits.target_scaling is not None:
        from tricklab.engines.build import original_scale_scores

        outputs = splits.from_model(outputs)
        keras_scores = original_scale_scores(recipe, dataset, target, splits.y_test, outputs)
    scores = score(keras_scores, outputs, splits.y_test, target, baseline)
    return scores, test_predictions(outputs, target)


def _log_loss(truth: np.ndarray, probabilities: np.ndarray, labels: list[int]) -> float | None:
    """scikit-learn's log loss of the stored predictions (the positive class's probabilities, or
    a row of class probabilities per test row); None where they are not probabilities: not
    finite, outside [0, 1] (a tanh output for a hinge loss) or rows that do not sum to 1 by
    scikit-learn's own check."""
    from sklearn.metrics import log_loss

    if probabilities.size == 0 or not np.isfinite(probabilities).all():
        return None
    if probabilities.min() < 0 or probabilities.max() > 1:
        return None
    if probabilities.ndim == 2:
        tolerance = float(np.sqrt(np.finfo(probabilities.dtype).eps))
        if not np.isclose(probabilities.sum(axis=1), 1, rtol=tolerance, atol=0).all():
            return None
    return float(log_loss(truth, probabilities, labels=labels))


def test_predictions(outputs: np.ndarray, target: Target) -> np.ndarray:
    """What the store keeps of the model's test ``outputs`` (predictions.npy), as float32:
    (n,) positive-class scores for two classes, (n, k) class scores for k > 2 classes, and
    (n,) predictions on the target's own scale for regression."""
    outputs = np.asarray(outputs, dtype=np.float32)
    if target.format == "regression":
        return outputs.reshape(len(outputs))
    if target.n_classes == 2:  # one sigmoid unit, or the second of two units
        return np.ascontiguousarray(outputs[:, -1])
    return outputs


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
    if splits.target_scaling is not None:  # the model's outputs are on this scale
        out["target"] = splits.target_scaling.to_json()
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
        confusion_matrix_last=last.get("confusion_matrix"),
        input_shape=list(splits.x_train.shape[1:]),
        preprocessing=preprocessing(dataset, splits),
        history={k: [float(v) for v in values] for k, values in history.items()},
        finished_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **fields,
    )
