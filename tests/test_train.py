"""The solo engine: reproducible histories, what a result holds, best vs last evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import train_tiny


def test_same_seed_same_history_different_seed_different(tiny: dict) -> None:
    tiny["model"]["layers"].insert(1, {"type": "dropout", "rate": 0.3})
    first, _ = train_tiny(tiny, seed=0)
    again, _ = train_tiny(tiny, seed=0)
    other, _ = train_tiny(tiny, seed=1)
    assert first.history == again.history
    assert first.test == again.test
    assert first.history["loss"] != other.history["loss"]


def test_result_holds_what_a_user_checks(tiny: dict) -> None:
    tiny["train"]["epochs"] = 4
    result, model = train_tiny(tiny)
    assert result.status == "ok"
    assert result.epochs_run == 4
    assert set(result.history) == {"loss", "val_loss", "accuracy", "val_accuracy"}
    assert all(len(v) == 4 for v in result.history.values())
    # binary target: accuracy with ROC AUC, average precision, F1, log loss, balanced accuracy
    # and the majority-class baseline
    for weights in ("best", "last"):
        scores = result.test[weights]
        assert set(scores) == {
            *("loss", "accuracy", "auc", "pr_auc", "f1", "log_loss"),
            *("balanced_accuracy", "majority_baseline"),
        }
    assert result.test["best"]["majority_baseline"] == pytest.approx(80 / 94)
    assert result.params == model.count_params() == 16 * 8 + 8 + 8 + 1
    assert result.backend == "jax" and result.engine == "solo"
    assert {"keras", "jax", "numpy", "python"} <= set(result.versions)
    assert result.seconds_per_epoch > 0 and result.seconds_total > 0
    assert result.split_sizes == {"train": 338, "validation": 38, "test": 94}
    assert result.validated_on == "validation split"
    matrix = np.asarray(result.confusion_matrix)
    assert matrix.shape == (2, 2) and matrix.sum() == 94


def test_best_epoch_is_the_lowest_validation_loss(tiny: dict) -> None:
    tiny["train"]["epochs"] = 8
    tiny["train"]["optimizer"] = {"name": "adam", "learning_rate": 0.05}
    result, _ = train_tiny(tiny)
    val = result.history["val_loss"]
    assert result.best_epoch == int(np.argmin(val)) + 1
    assert result.best_monitor_value == pytest.approx(min(val))


def test_checkpoint_can_monitor_a_metric_to_maximise(tiny: dict) -> None:
    tiny["train"]["epochs"] = 5
    tiny["train"]["metrics"] = ["accuracy", "auc"]
    tiny["train"]["checkpoint"] = {"monitor": "val_auc", "mode": "max"}
    result, _ = train_tiny(tiny)
    assert result.monitor == "val_auc"
    assert result.best_epoch == int(np.argmax(result.history["val_auc"])) + 1


def test_validation_on_the_test_set_is_recorded(tiny: dict) -> None:
    tiny["validation"] = "test"
    result, _ = train_tiny(tiny)
    assert result.validated_on == "test set"
    assert result.split_sizes["validation"] == result.split_sizes["test"] == 94


def test_a_diverging_run_is_kept_and_marked(tiny: dict) -> None:
    tiny["train"]["epochs"] = 5
    tiny["train"]["loss"] = "mean_squared_error"
    tiny["model"]["layers"][-1] = {"type": "dense", "units": 1}  # linear: nothing saturates
    tiny["train"]["optimizer"] = {"name": "sgd", "learning_rate": 10.0}
    result, _ = train_tiny(tiny)
    assert result.status == "diverged"
    assert not math.isfinite(result.history["loss"][-1])
