"""Imbalance made visible: ``train.class_weight`` in both engines, and the computed test scores
that accuracy hides (``pr_auc``, ``f1``, ``f1_macro``, ``log_loss``)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TINY, train_tiny
from test_population import BASE, assert_same_run, both_engines

from tricklab.api import run_study
from tricklab.base import backend as _backend
from tricklab.base.errors import SpecError
from tricklab.cli import main
from tricklab.data import Target, resolve
from tricklab.engines import _scoring, assign
from tricklab.spec import StudySpec
from tricklab.store import RunStore

# Thoracic: 400 survived (class 0), 70 died (class 1).
WEIGHTED = {
    "plain": {},
    "balanced": {"train.class_weight": "balanced"},
    "died_x5": {"train.class_weight": {"died": 5.0, "survived": 0.5}},
}


# -- both engines: the same weighting --------------------------------------------------------------
def test_class_weights_in_a_population_reproduce_their_solo_runs() -> None:
    """Members differing in class weights ("balanced", a table, none) share one population and
    each reproduces its solo ``fit(class_weight=...)`` (training loss weighted, validation not)."""
    table = copy.deepcopy(BASE)
    table.update(variants=WEIGHTED, resplit=True, train={**BASE["train"], "epochs": 2})
    spec = StudySpec.from_dict(table)
    recipes = [spec.variants[name] for name in WEIGHTED for _ in spec.seeds]
    groups = {a.group for a in assign(recipes, choice="auto", backend="jax", diagnostics=False)}
    assert groups == {"population-1"}  # one program for all of them
    outcomes = both_engines(table)
    for key, solo in outcomes["solo"].items():
        assert_same_run(outcomes["population"][key], solo)
    # The weights change training: the same seed trains to other weights with them.
    for variant in ("balanced", "died_x5"):
        weighted, plain = outcomes["population"][(variant, 0)], outcomes["population"][("plain", 0)]
        assert not np.allclose(weighted.weights[0], plain.weights[0])


def test_balanced_is_scikit_learns_rule_on_the_training_rows_and_tables_map_labels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sklearn.utils.class_weight import compute_class_weight

    keras = _backend.keras()
    passed: list[Any] = []
    fit = keras.Model.fit

    def spying_fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        passed.append(kwargs.get("class_weight"))
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spying_fit)
    table = copy.deepcopy(TINY)
    table.update(variants=WEIGHTED, train={**TINY["train"], "epochs": 1})
    y_train = resolve(StudySpec.from_dict(table)).splits(0).y_train
    for variant in WEIGHTED:
        train_tiny(table, variant)
    plain, balanced, table_weights = passed
    assert plain is None
    expected = compute_class_weight("balanced", classes=np.array([0, 1]), y=y_train)
    assert balanced == pytest.approx({0: expected[0], 1: expected[1]}, rel=1e-12)
    assert balanced[1] == pytest.approx(len(y_train) / (2 * np.sum(y_train == 1)), rel=1e-12)
    assert table_weights == {1: 5.0, 0: 0.5}  # class_names: ('survived', 'died')


def test_population_sample_weights_are_the_class_weights_of_each_row() -> None:
    weights = _scoring.class_weight_vector({1: 5.0}, 3)
    assert weights is not None and weights.dtype == np.float32
    np.testing.assert_array_equal(weights, [1.0, 5.0, 1.0])  # Keras: 1 for a class without one
    assert _scoring.class_weight_vector(None, 3) is None


# -- located errors -------------------------------------------------------------------------------
REGRESSION_STUDY = """
dataset = {csv = "data.csv", target = "y"}
seeds = 1
[model]
layers = [{type = "dense", units = 1}]
[train]
loss = "mean_squared_error"
epochs = 1
[variants.plain]
[variants.x]
train.class_weight = "balanced"
"""


def test_class_weights_on_a_regression_target_are_one_located_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    rows = "".join(f"{a:.3f},{2 * a + 1:.3f}\n" for a in rng.normal(size=40))
    (tmp_path / "data.csv").write_text("a,y\n" + rows)
    (tmp_path / "study.toml").write_text(REGRESSION_STUDY)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "study.toml", "--out", "runs", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: study.toml: variants.x: train.class_weight: class weights need a classification "
        "target; 'y' is regression. Received: class_weight='balanced'."
    )
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("result.json"))


def test_an_unknown_class_label_is_a_located_error_listing_the_classes() -> None:
    table = copy.deepcopy(TINY)
    table["variants"] = {"typo": {"train.class_weight": {"dead": 5.0}}}
    with pytest.raises(SpecError) as caught:
        resolve(StudySpec.from_dict(table)).check()
    assert str(caught.value) == (
        "variants.typo: train.class_weight: unknown class 'dead' for dataset 'thoracic' (keys "
        "are the class labels as written in the data). Did you mean 'died'? Expected one of: "
        "'survived', 'died'. Received: class_weight={dead = 5.0}."
    )


def test_a_class_weight_that_is_not_weights_is_a_spec_error() -> None:
    table = copy.deepcopy(TINY)
    table["train"]["class_weight"] = {"died": -1}
    with pytest.raises(SpecError, match=r"train\.class_weight: must be \"balanced\" or a table"):
        StudySpec.from_dict(table)


# -- the computed scores equal scikit-learn's on the stored predictions ----------------------------
MULTICLASS_LAYERS = [
    {"type": "dense", "units": 8, "activation": "relu"},
    {"type": "dense", "units": 3, "activation": "softmax"},
]


def _multiclass_csv(path: Path) -> Path:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(90, 2))
    y = (x[:, 0] > -0.5).astype(int) + (x[:, 1] > 0.8).astype(int)
    lines = [f"{a:.3f},{b:.3f},{c}\n" for (a, b), c in zip(x, y, strict=True)]
    path.write_text("a,b,y\n" + "".join(lines))
    return path


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_new_scores_equal_scikit_learns_on_the_stored_predictions(
    tmp_path: Path, task: str
) -> None:
    from sklearn.metrics import average_precision_score, f1_score, log_loss

    table = copy.deepcopy(TINY)
    table.update(name="scores", seeds=[0, 1], train={**TINY["train"], "epochs": 3})
    table["variants"] = {"plain": {}, "balanced": {"train.class_weight": "balanced"}}
    engine = "solo"
    if task == "multiclass":
        table["dataset"] = {"csv": str(_multiclass_csv(tmp_path / "multi.csv")), "target": "y"}
        table["model"] = {"layers": MULTICLASS_LAYERS}
        table["train"]["loss"] = "sparse_categorical_crossentropy"
        engine = "population"
    outcome = run_study(StudySpec.from_dict(table), out=tmp_path / "runs", engine=engine)
    assert outcome.trained == 4 and not outcome.failed
    store = RunStore(tmp_path / "runs" / "scores")
    for result in outcome.results:
        stored = store.load_predictions(result.variant, result.seed)
        assert stored is not None
        y_true, predictions = stored
        best = result.test["best"]
        if task == "binary":
            predicted = (predictions > 0.5).astype(int)
            expected = {
                "pr_auc": average_precision_score(y_true, predictions),
                "f1": f1_score(y_true, predicted),
                "log_loss": log_loss(y_true, predictions, labels=[0, 1]),
            }
            assert "f1_macro" not in best
        else:
            predicted = predictions.argmax(axis=1)
            expected = {
                "f1_macro": f1_score(y_true, predicted, average="macro"),
                "log_loss": log_loss(y_true, predictions, labels=[0, 1, 2]),
            }
            assert "f1" not in best and "pr_auc" not in best
        for metric, value in expected.items():
            assert best[metric] == pytest.approx(value, rel=0, abs=1e-9), metric
            assert isinstance(result.test["last"][metric], float), metric


def test_log_loss_is_none_when_the_outputs_are_not_probabilities() -> None:
    truth = np.array([0, 1, 1, 0])
    tanh = np.array([[-0.9], [0.8], [0.3], [-0.2]])  # a hinge loss's outputs
    scores = _scoring.score({}, tanh, truth, Target("binary", 2), 0.0)
    assert scores["log_loss"] is None and scores["pr_auc"] == 1.0
    sigmoid = (tanh + 1) / 2
    assert _scoring.score({}, sigmoid, truth, Target("binary", 2), 0.0)["log_loss"] > 0


def test_toml_class_labels_map_to_the_classes_of_the_data(tmp_path: Path) -> None:
    """TOML keys are strings: ``{"0" = 1.0, "1" = 11.0}`` names the labels "0" and "1"."""
    rng = np.random.default_rng(2)
    rows = "".join(f"{a:.3f},{int(a > 1.0)}\n" for a in rng.normal(size=60))
    (tmp_path / "data.csv").write_text("a,y\n" + rows)
    study = tmp_path / "study.toml"
    study.write_text(
        REGRESSION_STUDY.replace('"mean_squared_error"', '"binary_crossentropy"')
        .replace("units = 1}", 'units = 1, activation = "sigmoid"}')
        .replace('"balanced"', '{"1" = 11.0, "0" = 1.0}')
    )
    resolved = resolve(StudySpec.from_file(study)).check()
    recipe = resolved.spec.variants["x"]
    assert recipe.train.class_weight == {"1": 11.0, "0": 1.0}
    weights = _scoring.class_weights(recipe, resolved.dataset, resolved.splits(0))
    assert weights == {
        resolved.dataset.class_names.index("1"): 11.0,
        resolved.dataset.class_names.index("0"): 1.0,
    }
