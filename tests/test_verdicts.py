"""Verdicts on the right metric: a validated primary metric, regression judged on a shared scale."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tricklab.api import run_study
from tricklab.base.errors import SpecError
from tricklab.data import resolve
from tricklab.spec import StudySpec


@pytest.fixture(scope="module")
def diabetes_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn's diabetes table (442 rows, a real-valued target), as a user's CSV."""
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True)
    path = tmp_path_factory.mktemp("diabetes") / "diabetes.csv"
    data.frame.to_csv(path, index=False)
    return path


def regression(csv: Path, **changes: Any) -> dict[str, Any]:
    table = {
        "name": "diabetes",
        "dataset": {"csv": str(csv), "target": "target"},
        "seeds": 3,
        "model": {
            "layers": [
                {"type": "dense", "units": 16, "activation": "relu"},
                {"type": "dense", "units": 1},
            ]
        },
        "train": {
            "loss": "mean_squared_error",
            "optimizer": {"name": "adam", "learning_rate": 0.05},
            "epochs": 15,
        },
        "variants": {
            "mse": {},
            "mae": {"train.loss": "mean_absolute_error"},
            "huber": {"train.loss": "huber"},
        },
    }
    table.update(changes)
    return copy.deepcopy(table)


def test_regression_verdicts_use_test_mse_not_each_variants_own_loss(
    diabetes_csv: Path, tmp_path: Path
) -> None:
    outcome = run_study(StudySpec.from_dict(regression(diabetes_csv)), out=tmp_path)
    report = outcome.report()
    assert report.primary_metric == "mse"
    assert {c.metric for c in report.comparisons} == {"mse"}
    for result in outcome.results:
        scores = result.test["best"]
        assert {"mse", "mae", "r2", "mean_baseline_mse"} <= set(scores)
        assert scores["mse"] < scores["mean_baseline_mse"]  # better than predicting the mean
    # Every variant's mse is on the target's scale, whatever loss it trained with: the mae
    # variant's loss is in target units, its mse in squared units (thousands here).
    mae_run = next(r for r in outcome.results if r.variant == "mae")
    assert mae_run.test["best"]["loss"] < 100 < mae_run.test["best"]["mse"]
    # The mean predictor's error is the variance of the test targets around the training mean.
    test_y = pd.read_csv(diabetes_csv)["target"].to_numpy()
    assert (
        0.5 * test_y.var() < outcome.results[0].test["best"]["mean_baseline_mse"] < 2 * test_y.var()
    )
    assert "mean_baseline_mse" in report.table.columns.get_level_values(0) or any(
        "mean_baseline_mse" in str(c) for c in report.table.columns
    )


BINARY = "loss, accuracy, auc, pr_auc, f1, log_loss, balanced_accuracy, majority_baseline"
MULTICLASS = "loss, accuracy, balanced_accuracy, f1_macro, log_loss, majority_baseline"
REGRESSION = "loss, mean_absolute_error, mse, mae, r2, mean_baseline_mse"


@pytest.mark.parametrize(
    ("study", "metric", "expected"),
    [
        ("binary", "f1_macro", rf"on a binary target .*'f1_macro'\. Expected one of: {BINARY}\."),
        ("binary", "acuracy", r"on a binary target .*'acuracy'\. Did you mean 'accuracy'\?"),
        ("multiclass", "auc", rf"on a multiclass target .*Expected one of: {MULTICLASS}\."),
        ("regression", "accuracy", rf"on a regression target .*Expected one of: {REGRESSION}\."),
    ],
)
def test_a_primary_metric_no_run_records_is_a_located_error(
    study: str, metric: str, expected: str, diabetes_csv: Path, tmp_path: Path, tiny: dict
) -> None:
    if study == "binary":
        table = tiny
    elif study == "multiclass":
        rows = np.random.default_rng(0).normal(size=(60, 3))
        csv = tmp_path / "three.csv"
        pd.DataFrame({"a": rows[:, 0], "b": rows[:, 1], "y": np.arange(60) % 3}).to_csv(
            csv, index=False
        )
        table = {**tiny, "dataset": {"csv": str(csv), "target": "y"}}
        table["model"] = {"layers": [{"type": "dense", "units": 3, "activation": "softmax"}]}
        table["train"] = {"loss": "sparse_categorical_crossentropy"}
    else:
        table = regression(diabetes_csv)
    table["primary_metric"] = metric
    spec = StudySpec.from_dict(table)
    with pytest.raises(
        SpecError, match=r"primary_metric: must be a test score every variant records " + expected
    ):
        resolve(spec).check()


def test_the_report_says_what_intake_did_and_why_the_task(
    diabetes_csv: Path, tmp_path: Path
) -> None:
    table = regression(diabetes_csv, seeds=1, variants={"mse": {}})
    table["train"]["epochs"] = 1
    report = run_study(StudySpec.from_dict(table), out=tmp_path).report()
    text = report.markdown.read_text()
    assert "Data intake" in text and "diabetes.csv: 442 rows, 11 columns (target 'target')" in text
    assert "task: regression" in text and "why: " in text
