"""tricklab.lint: one triggering and one clean study per rule, silencing, and variant collapse."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tricklab.base.errors import SpecError
from tricklab.data import Dataset, load_dataset
from tricklab.spec import StudySpec
from tricklab.tools.lint import (
    KERAS_DEFAULTS,
    RULES,
    SEVERITIES,
    Finding,
    active,
    estimate,
    format_findings,
    lint,
)

RELU = {"type": "dense", "units": 8, "activation": "relu"}
LINEAR = {"type": "dense", "units": 8}
SIGMOID_OUT = {"type": "dense", "units": 1, "activation": "sigmoid"}
SOFTMAX3 = {"type": "dense", "units": 3, "activation": "softmax"}
DROPOUT = {"type": "dropout", "rate": 0.5}


def make(
    layers: list[dict[str, Any]] | None = None,
    train: dict[str, Any] | None = None,
    variants: dict[str, Any] | None = None,
    **top: Any,
) -> StudySpec:
    """A study on thoracic (unless ``dataset`` is given) with a clean base recipe by default."""
    raw: dict[str, Any] = {
        "name": "t",
        "dataset": "thoracic",
        "model": {"layers": layers or [RELU, SIGMOID_OUT]},
        "train": {"loss": "binary_crossentropy", **(train or {})},
        **top,
    }
    if variants is not None:
        raw["variants"] = variants
    return StudySpec.from_dict(raw)


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def only(findings: list[Finding], code: str) -> Finding:
    matching = [f for f in findings if f.code == code]
    assert len(matching) == 1, format_findings(findings)
    return matching[0]


@pytest.fixture(scope="module")
def thoracic() -> Dataset:
    return load_dataset("thoracic")


def _write_csv(path: Path, columns: dict[str, np.ndarray]) -> Path:
    names = list(columns)
    rows = zip(*(columns[n] for n in names), strict=True)
    path.write_text(
        ",".join(names) + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows),
        encoding="utf-8",
    )
    return path


def _csv_study(path: Path, layers: list[dict[str, Any]], loss: str, **top: Any) -> StudySpec:
    return make(layers, {"loss": loss}, dataset={"csv": str(path), "target": "y"}, **top)


@pytest.fixture
def multiclass(tmp_path: Path) -> Path:
    """40 rows, 3 classes, balanced enough (the majority is 40 %)."""
    rng = np.random.default_rng(0)
    y = np.array([0, 1, 2, 0] * 10)
    return _write_csv(
        tmp_path / "multi.csv",
        {"a": rng.normal(size=40).round(3), "b": rng.normal(size=40), "y": y},
    )


@pytest.fixture
def imbalanced(tmp_path: Path) -> Path:
    """40 rows, 3 classes, 85 % of them class 0."""
    rng = np.random.default_rng(1)
    y = np.array([0] * 34 + [1] * 3 + [2] * 3)
    return _write_csv(tmp_path / "imb.csv", {"a": rng.normal(size=40), "y": y})


def _regression_csv(path: Path, *, zeros: bool) -> Path:
    rng = np.random.default_rng(2)
    y = rng.uniform(1, 5, size=30).round(3)
    if zeros:
        y[[3, 7]] = 0.0
    return _write_csv(path, {"a": rng.normal(size=30), "y": y})


# --- clean studies -------------------------------------------------------------------------------


def test_a_clean_study_has_no_findings(thoracic: Dataset) -> None:
    assert lint(make(), thoracic) == []
    assert lint(make()) == []


def test_rules_table_lists_every_code_once_with_a_severity() -> None:
    assert list(RULES) == [f"TL{n:03d}" for n in range(1, 22)]
    assert all(RULES[code] and "\n" not in RULES[code] for code in RULES)
    assert set(SEVERITIES) == set(RULES)
    assert {c for c, s in SEVERITIES.items() if s == "hint"} == {"TL008"}
    assert {c for c, s in SEVERITIES.items() if s == "error"} == {"TL015", "TL017", "TL019"}


# --- TL001 ---------------------------------------------------------------------------------------


def test_tl001_linear_dense_before_dense_as_in_the_lecture() -> None:
    # the lecture: Flatten, Dense(64, l2, no activation), Dropout(0.5), Dense(10, softmax)
    spec = make([{"type": "flatten"}, LINEAR, DROPOUT, SIGMOID_OUT])
    finding = only(lint(spec), "TL001")
    assert finding.path == "model.layers[1].activation"
    assert finding.variant is None
    assert "collapse into one linear map" in finding.message
    assert "units=8" in finding.message and "model.layers[3]" in finding.message
    assert 'activation = "relu"' in finding.fix


@pytest.mark.parametrize(
    "layers",
    [
        [{**LINEAR, "activation": "linear"}, SIGMOID_OUT],
        [LINEAR, {"type": "batch_norm"}, {"type": "gaussian_noise", "stddev": 0.1}, SIGMOID_OUT],
        [LINEAR, {"type": "activation", "activation": "linear"}, SIGMOID_OUT],
        [{**LINEAR, "repeat": 2}, {"type": "activation", "activation": "relu"}, SIGMOID_OUT],
    ],
)
def test_tl001_variants_of_the_pattern(layers: list[dict[str, Any]]) -> None:
    assert codes(lint(make(layers))) == ["TL001"]


@pytest.mark.parametrize(
    "layers",
    [
        [RELU, DROPOUT, SIGMOID_OUT],
        [LINEAR, {"type": "activation", "activation": "relu"}, SIGMOID_OUT],
        [{"type": "dense", "units": 1}],  # a linear output layer alone (regression, logits)
        [RELU, LINEAR],
    ],
)
def test_tl001_clean(layers: list[dict[str, Any]]) -> None:
    assert "TL001" not in codes(lint(make(layers)))


# --- TL002 ---------------------------------------------------------------------------------------


def test_tl002_softmax_on_one_unit_line_is_pinned() -> None:
    spec = make(
        [RELU, DROPOUT, SIGMOID_OUT],
        variants={"x": {"model.layers[2].activation": "softmax"}, "ok": {}},
    )
    assert format_findings(lint(spec)) == [
        "TL002 warning variants.x: model.layers[2].activation: softmax on a single output unit "
        "always outputs 1.0, so the model cannot learn. Fix: use sigmoid with 1 unit, or "
        "softmax with one unit per class."
    ]


def test_tl002_softmax_in_an_activation_layer_after_the_output() -> None:
    layers = [RELU, {"type": "dense", "units": 1}, {"type": "activation", "activation": "softmax"}]
    assert only(lint(make(layers)), "TL002").path == "model.layers[2].activation"


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "categorical_crossentropy"])
def test_tl002_sigmoid_on_several_units_with_a_categorical_loss(loss: str) -> None:
    spec = make([RELU, {**SOFTMAX3, "activation": "sigmoid"}], {"loss": loss})
    finding = only(lint(spec), "TL002")
    assert finding.path == "model.layers[1].activation"
    assert f"sigmoid on 3 output units with loss '{loss}'" in finding.message
    assert "softmax" in finding.fix


@pytest.mark.parametrize(
    ("out", "loss"),
    [
        (SOFTMAX3, "sparse_categorical_crossentropy"),
        ({**SOFTMAX3, "activation": "sigmoid"}, "binary_crossentropy"),  # multi-label
        (SIGMOID_OUT, "binary_crossentropy"),
        ({"type": "dense", "units": 3}, "categorical_crossentropy"),  # logits
    ],
)
def test_tl002_clean(out: dict[str, Any], loss: str) -> None:
    assert "TL002" not in codes(lint(make([RELU, out], {"loss": loss})))


# --- TL003 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["mse", "mean_absolute_error", "poisson", "msle"])
def test_tl003_regression_loss_on_binary_target(loss: str, thoracic: Dataset) -> None:
    finding = only(lint(make(train={"loss": loss}), thoracic), "TL003")
    assert finding.path == "train.loss"
    assert "on the 2-class target of dataset 'thoracic'" in finding.message
    assert finding.fix.startswith("use binary_crossentropy")


def test_tl003_multiclass_fix_names_sparse_crossentropy(multiclass: Path) -> None:
    spec = _csv_study(multiclass, [RELU, SOFTMAX3], "mean_squared_error")
    finding = only(lint(spec, load_dataset(spec.dataset)), "TL003")
    assert "3-class target" in finding.message
    assert "sparse_categorical_crossentropy" in finding.fix


def test_tl003_clean_on_a_regression_target_or_without_data(tmp_path: Path) -> None:
    path = _regression_csv(tmp_path / "r.csv", zeros=False)
    spec = _csv_study(path, [RELU, {"type": "dense", "units": 1}], "mse")
    assert lint(spec, load_dataset(spec.dataset)) == []
    assert "TL003" not in codes(lint(make(train={"loss": "mse"})))  # data rules need data


# --- TL004 ---------------------------------------------------------------------------------------


def test_tl004_mape_with_zero_targets(tmp_path: Path) -> None:
    path = _regression_csv(tmp_path / "r.csv", zeros=True)
    spec = make(
        [RELU, {"type": "dense", "units": 1}],
        {"loss": "mape", "metrics": ["mean_absolute_error", "mean_absolute_percentage_error"]},
        dataset={"csv": str(path), "target": "y"},
    )
    findings = [f for f in lint(spec, load_dataset(spec.dataset)) if f.code == "TL004"]
    assert [f.path for f in findings] == ["train.loss", "train.metrics[1]"]
    assert "2 of 30 targets of dataset 'r.csv' are 0" in findings[0].message
    assert "mean_absolute_error" in findings[0].fix


def test_tl004_clean_without_zero_targets(tmp_path: Path) -> None:
    path = _regression_csv(tmp_path / "r.csv", zeros=False)
    spec = _csv_study(path, [RELU, {"type": "dense", "units": 1}], "mape")
    assert lint(spec, load_dataset(spec.dataset)) == []


# --- TL005 ---------------------------------------------------------------------------------------


def test_tl005_validation_on_the_test_set() -> None:
    finding = only(lint(make(validation="test")), "TL005")
    assert (finding.variant, finding.path) == (None, "validation")
    assert finding.line().startswith('TL005 warning validation: validation = "test" ')
    assert "optimistic" in finding.message
    assert "validation = 0.1" in finding.fix


def test_tl005_clean() -> None:
    assert lint(make(validation=0.2)) == []


# --- TL006 ---------------------------------------------------------------------------------------


def test_tl006_thoracic_id_column(thoracic: Dataset) -> None:
    spec = make(dataset={"name": "thoracic", "keep_id": True})
    finding = only(lint(spec, load_dataset(spec.dataset)), "TL006")
    assert (finding.variant, finding.path) == (None, "dataset.keep_id")
    assert "'id' (column 0)" in finding.message and "1..470" in finding.message
    assert finding.fix == "set keep_id = false in the dataset table."
    assert lint(make(), thoracic) == []  # keep_id = false: the default


def test_tl006_csv_id_column_in_any_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    ids = rng.permutation(np.arange(100, 140))
    path = _write_csv(tmp_path / "c.csv", {"row": ids, "a": rng.normal(size=40), "y": ids % 2})
    spec = _csv_study(path, [RELU, SIGMOID_OUT], "binary_crossentropy")
    finding = only(lint(spec, load_dataset(spec.dataset)), "TL006")
    assert finding.path == "dataset"
    assert "'row' (column 0)" in finding.message and "100..139" in finding.message
    assert finding.fix == 'add drop = ["row"] to the dataset table.'


def test_tl006_clean_for_unique_integers_with_gaps(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    spaced = rng.permutation(np.arange(40) * 3)  # unique integers, but not a gap-free range
    counts = np.arange(40) % 7  # integers in a range, but not unique
    path = _write_csv(tmp_path / "c.csv", {"s": spaced, "k": counts, "y": np.arange(40) % 2})
    spec = _csv_study(path, [RELU, SIGMOID_OUT], "binary_crossentropy")
    assert lint(spec, load_dataset(spec.dataset)) == []


# --- TL007 / TL008 -------------------------------------------------------------------------------

L2 = {"name": "l2", "l2": 0.01}


def test_tl007_l2_with_adamw_default_weight_decay() -> None:
    spec = make([{**RELU, "kernel_regularizer": L2}, SIGMOID_OUT], {"optimizer": "adamw"})
    finding = only(lint(spec), "TL007")
    assert finding.path == "model.layers[0].kernel_regularizer"
    assert "weight_decay=0.004 (the Keras default)" in finding.message
    assert "penalty is applied twice" in finding.message
    assert 'optimizer = "adam"' in finding.fix


@pytest.mark.parametrize(
    ("regularizer", "optimizer"),
    [
        (L2, {"name": "adam", "weight_decay": 0.01}),
        ("l2", {"name": "sgd", "weight_decay": 0.001}),  # l2 = 0.01 by default
        ({"name": "l1_l2", "l2": 0.001}, "adamw"),
    ],
)
def test_tl007_triggers(regularizer: Any, optimizer: Any) -> None:
    spec = make(
        [{**RELU, "kernel_regularizer": regularizer}, SIGMOID_OUT], {"optimizer": optimizer}
    )
    assert codes(lint(spec)) == ["TL007"]


@pytest.mark.parametrize(
    ("regularizer", "optimizer"),
    [
        (L2, "adam"),
        (L2, {"name": "adamw", "weight_decay": 0.0}),
        ({"name": "l1_l2", "l1": 0.01}, "adamw"),  # l2 = 0 by default
        ({"name": "l1", "l1": 0.01}, "adamw"),
    ],
)
def test_tl007_clean(regularizer: Any, optimizer: Any) -> None:
    spec = make(
        [{**RELU, "kernel_regularizer": regularizer}, SIGMOID_OUT], {"optimizer": optimizer}
    )
    assert lint(spec) == []


def test_tl008_l2_with_max_norm_is_a_hint() -> None:
    layer = {
        **RELU,
        "kernel_regularizer": L2,
        "kernel_constraint": {"name": "max_norm", "max_value": 2.0},
    }
    finding = only(lint(make([layer, SIGMOID_OUT])), "TL008")
    assert finding.severity == "hint"
    assert finding.path == "model.layers[0].kernel_regularizer"
    assert "max_norm(max_value=2.0)" in finding.message
    assert finding.line().startswith("TL008 hint all variants: model.layers[0]")


@pytest.mark.parametrize(
    "extra",
    [
        {"kernel_regularizer": L2},
        {"kernel_constraint": "max_norm"},
        {"kernel_regularizer": {"name": "l1", "l1": 0.01}, "kernel_constraint": "max_norm"},
    ],
)
def test_tl008_clean(extra: dict[str, Any]) -> None:
    assert lint(make([{**RELU, **extra}, SIGMOID_OUT])) == []


# --- TL009 ---------------------------------------------------------------------------------------


def test_tl009_dropout_after_the_output_layer() -> None:
    finding = only(lint(make([RELU, SIGMOID_OUT, DROPOUT])), "TL009")
    assert finding.path == "model.layers[2]"
    assert "after the output layer model.layers[1]" in finding.message


def test_tl009_rate_one_drops_everything() -> None:
    finding = only(lint(make([RELU, {"type": "dropout", "rate": 1.0}, SIGMOID_OUT])), "TL009")
    assert finding.path == "model.layers[1].rate"
    assert "rate=1 drops every input" in finding.message


def test_tl009_clean() -> None:
    assert lint(make([RELU, {"type": "dropout", "rate": 0.99}, SIGMOID_OUT])) == []


# --- TL010 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_data", [True, False])
def test_tl010_early_stopping_on_an_unlogged_metric(with_data: bool, thoracic: Dataset) -> None:
    spec = make(train={"early_stopping": {"monitor": "val_acc", "patience": 3}})
    finding = only(lint(spec, thoracic if with_data else None), "TL010")
    assert finding.path == "train.early_stopping.monitor"
    assert "monitors 'val_acc', which this run does not log" in finding.message
    assert finding.fix.startswith('monitor = "val_accuracy"')


def test_tl010_checkpoint_monitor_and_listed_metrics(thoracic: Dataset) -> None:
    spec = make(
        train={
            "metrics": ["auc"],
            "early_stopping": {"monitor": "val_auc"},
            "checkpoint": {"monitor": "val_accuracy"},  # not logged: metrics replace accuracy
        }
    )
    for dataset in (thoracic, None):
        finding = only(lint(spec, dataset), "TL010")
        assert finding.path == "train.checkpoint.monitor"
        assert "loss, auc, val_loss, val_auc" in finding.message


def test_tl010_clean(tmp_path: Path, thoracic: Dataset) -> None:
    spec = make(train={"metrics": ["auc"], "early_stopping": {"monitor": "val_auc"}})
    assert lint(spec, thoracic) == [] and lint(spec) == []
    path = _regression_csv(tmp_path / "r.csv", zeros=False)
    regression = make(
        [RELU, {"type": "dense", "units": 1}],
        {"loss": "mse", "early_stopping": {"monitor": "val_mean_absolute_error"}},
        dataset={"csv": str(path), "target": "y"},
    )
    assert lint(regression, load_dataset(regression.dataset)) == []
    assert lint(regression) == []


# --- TL011 ---------------------------------------------------------------------------------------


def test_tl011_accuracy_on_thoracic(thoracic: Dataset) -> None:
    finding = only(lint(make(primary_metric="accuracy"), thoracic), "TL011")
    assert (finding.variant, finding.path) == (None, "primary_metric")
    assert "85% of the targets of dataset 'thoracic' are class 'survived'" in finding.message
    assert '"auc"' in finding.fix


def test_tl011_default_accuracy_on_imbalanced_multiclass(imbalanced: Path) -> None:
    spec = _csv_study(imbalanced, [RELU, SOFTMAX3], "sparse_categorical_crossentropy")
    finding = only(lint(spec, load_dataset(spec.dataset)), "TL011")
    assert finding.message.startswith("accuracy is the default primary metric")
    assert finding.fix == 'set primary_metric = "balanced_accuracy".'


def test_tl011_clean(thoracic: Dataset, imbalanced: Path, multiclass: Path) -> None:
    assert lint(make(), thoracic) == []  # binary: ROC AUC by default
    assert lint(make(primary_metric="accuracy")) == []  # needs data
    spec = _csv_study(
        imbalanced,
        [RELU, SOFTMAX3],
        "sparse_categorical_crossentropy",
        primary_metric="balanced_accuracy",
    )
    assert lint(spec, load_dataset(spec.dataset)) == []
    spec = _csv_study(multiclass, [RELU, SOFTMAX3], "sparse_categorical_crossentropy")
    assert lint(spec, load_dataset(spec.dataset)) == []


# --- variants, silencing, errors -----------------------------------------------------------------


def test_identical_findings_in_every_variant_collapse(thoracic: Dataset) -> None:
    spec = make(
        [LINEAR, SIGMOID_OUT],
        {"loss": "mse"},
        variants={
            "mse": {},
            "mae": {"train.loss": "mae"},
            "bce": {"train.loss": "binary_crossentropy"},
        },
    )
    findings = lint(spec, thoracic)
    assert [(f.code, f.variant) for f in findings] == [
        ("TL001", None),
        ("TL003", "mse"),
        ("TL003", "mae"),
    ]
    assert findings[0].line().startswith("TL001 warning all variants: model.layers[0].activation:")
    assert findings[1].line().startswith("TL003 warning variants.mse: train.loss: regression loss")


def test_ignore_keeps_the_finding_with_its_reason() -> None:
    spec = make(validation="test", lint={"ignore": {"TL005": "the lecture validates on test"}})
    findings = lint(spec)
    assert [(f.code, f.ignored) for f in findings] == [("TL005", "the lecture validates on test")]
    assert active(findings) == []
    (line,) = format_findings(findings)
    assert line.startswith("TL005 warning validation:")
    assert line.endswith(" (ignored: the lecture validates on test)")


def test_ignore_of_one_rule_leaves_the_others_active() -> None:
    spec = make([LINEAR, SIGMOID_OUT], validation="test", lint={"ignore": {"TL005": "on purpose"}})
    assert codes(active(lint(spec))) == ["TL001"]


def test_unknown_rule_in_ignore_is_an_error() -> None:
    spec = make(lint={"ignore": {"TL099": "typo"}})
    with pytest.raises(SpecError) as caught:
        lint(spec)
    expected = ", ".join(f"TL{n:03d}" for n in range(1, 22))
    assert str(caught.value) == f"lint.ignore: unknown rule 'TL099'. Expected one of: {expected}."


def test_keras_defaults_match_keras() -> None:
    import inspect

    from tricklab.base import backend as _backend

    keras = _backend.keras()
    classes = {
        ("regularizer", "l2"): keras.regularizers.L2,
        ("regularizer", "l1_l2"): keras.regularizers.L1L2,
        ("optimizer", "adamw"): keras.optimizers.AdamW,
    }
    for (kind, name, arg), value in KERAS_DEFAULTS.items():
        default = inspect.signature(classes[kind, name]).parameters[arg].default
        assert default == pytest.approx(value), (kind, name, arg)
    for name in ("Adam", "SGD", "Lion", "Lamb", "RMSprop"):  # no decoupled decay by default
        default = inspect.signature(getattr(keras.optimizers, name)).parameters["weight_decay"]
        assert default.default in (None, 0, 0.0), name


def test_importing_lint_does_not_import_keras() -> None:
    code = (
        "import sys, tricklab.tools.lint; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('keras', 'jax', 'tensorflow', 'torch')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --- TL012 ---------------------------------------------------------------------------------------
def test_tl012_sigmoid_and_crossentropy_on_a_real_valued_target(tmp_path: Path) -> None:
    path = _regression_csv(tmp_path / "r.csv", zeros=False)
    spec = _csv_study(path, [RELU, SIGMOID_OUT], "binary_crossentropy")
    found = only(lint(spec, load_dataset(spec.dataset)), "TL012")
    assert found.path == "train.loss"
    assert "a sigmoid output (values in [0, 1]) and the binary_crossentropy loss" in found.message
    assert 'set task = "classification" in the dataset table' in found.fix


def test_tl012_crossentropy_on_a_linear_output(thoracic: Dataset) -> None:
    found = only(lint(make([RELU, {"type": "dense", "units": 1}]), thoracic), "TL012")
    assert found.path == "model.layers[1].activation"
    assert "binary_crossentropy expects probabilities" in found.message


def test_tl012_clean(tmp_path: Path, thoracic: Dataset) -> None:
    logits = {"name": "binary_crossentropy", "from_logits": True}
    linear = [RELU, {"type": "dense", "units": 1}]
    assert "TL012" not in codes(lint(make(linear, {"loss": logits}), thoracic))
    path = _regression_csv(tmp_path / "r.csv", zeros=False)
    spec = _csv_study(path, linear, "mse")
    assert "TL012" not in codes(lint(spec, load_dataset(spec.dataset)))


# --- TL013 ---------------------------------------------------------------------------------------
def test_tl013_variants_with_other_losses_judged_on_the_loss(thoracic: Dataset) -> None:
    variants = {"bce": {}, "mse": {"train.loss": "mse"}}
    found = only(lint(make(variants=variants, primary_metric="loss"), thoracic), "TL013")
    assert found.path == "primary_metric" and found.variant is None
    assert "(binary_crossentropy, mean_squared_error)" in found.message
    assert "TL013" not in codes(lint(make(variants=variants, primary_metric="auc"), thoracic))
    same = {"a": {}, "b": {"train.batch_size": 16}}
    assert "TL013" not in codes(lint(make(variants=same, primary_metric="loss"), thoracic))


# --- TL014 ---------------------------------------------------------------------------------------
def _one_cycle(total_steps: int) -> dict[str, Any]:
    schedule = {"name": "one_cycle", "max_learning_rate": 0.01, "total_steps": total_steps}
    return {"name": "adam", "learning_rate": schedule}


def test_tl014_one_cycle_total_steps_against_epochs_and_batches(thoracic: Dataset) -> None:
    # thoracic: 470 rows, 94 test, 38 validation -> 338 training rows; batch 32 -> 11 steps
    train = {"epochs": 10, "batch_size": 32, "optimizer": _one_cycle(1000)}
    found = only(lint(make(train=train, variants={"a": {}}), thoracic), "TL014")
    assert found.variant == "a"
    assert "10 epochs of ceil(338 training rows / batch 32) steps are 110" in found.message
    assert found.fix == "set total_steps = 110."
    clean = make(train={**train, "optimizer": _one_cycle(110)}, variants={"a": {}})
    assert "TL014" not in codes(lint(clean, thoracic))
    shorter = clean.with_epochs(5)  # `run --epochs 5` is linted on the recipe it trains
    assert "steps are 55" in only(lint(shorter, thoracic), "TL014").message


# --- TL015 ---------------------------------------------------------------------------------------
WIDE = {"type": "dense", "units": 65_536, "activation": "relu"}


@pytest.mark.parametrize(
    ("layers", "input_shape", "optimizer"),
    [
        ([RELU, SIGMOID_OUT], (16,), "adam"),
        ([{"type": "flatten"}, {**RELU, "repeat": 3}, DROPOUT, SOFTMAX3], (28, 28), "sgd"),
        ([{"type": "batch_norm"}, {**LINEAR, "use_bias": False}, SIGMOID_OUT], (7,), "rmsprop"),
    ],
)
def test_tl015_parameter_count_is_keras_own(
    layers: list[dict[str, Any]], input_shape: tuple[int, ...], optimizer: str
) -> None:
    from tricklab.engines.build import build_model

    recipe = make(layers, {"optimizer": optimizer}).variants["baseline"]
    assert estimate(recipe, input_shape).params == build_model(recipe, input_shape).count_params()


def test_tl015_a_run_beyond_the_machine_is_an_error(thoracic: Dataset) -> None:
    found = only(lint(make([WIDE, WIDE, SIGMOID_OUT]), thoracic), "TL015")
    assert found.severity == "error" and found.variant is None and found.path == "model.layers"
    assert "4,296,212,481 parameters" in found.message
    assert "of memory available on this machine" in found.message


def test_tl015_over_half_the_memory_is_a_warning(
    thoracic: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = make(variants={"baseline": {}, "wide": {"model.layers[0].units": 4096}})
    need = estimate(spec.variants["wide"], thoracic.input_shape).bytes
    monkeypatch.setattr("tricklab.tools.lint.available_memory", lambda: int(need * 1.5))
    found = only(lint(spec, thoracic), "TL015")
    assert (found.severity, found.variant) == ("warning", "wide")  # the baseline fits
    assert "over half of the" in found.message
    monkeypatch.setattr("tricklab.tools.lint.available_memory", lambda: need * 2)
    assert "TL015" not in codes(lint(spec, thoracic))


@pytest.mark.parametrize(
    ("command", "consequence"), [("run", "Nothing was trained"), ("summary", "No model was built")]
)
def test_tl015_stops_run_and_summary_before_keras_in_one_line(
    command: str, consequence: str, tmp_path: Path
) -> None:
    study = tmp_path / "huge.toml"
    study.write_text(
        'name = "huge"\ndataset = "thoracic"\nseeds = 1\n[model]\nlayers = [\n'
        '  {type = "dense", units = 65536}, {type = "dense", units = 65536},\n'
        '  {type = "dense", units = 1, activation = "sigmoid"},\n]\n'
        '[train]\nloss = "binary_crossentropy"\n',
        encoding="utf-8",
    )
    code = (
        "import sys; from tricklab.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print('KERAS' if 'keras' in sys.modules else 'NO-KERAS'); sys.exit(code)"
    )
    args = [command, str(study), *(["--out", str(tmp_path / "runs")] if command == "run" else [])]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "NO-KERAS"
    line = f"error: {study}: TL015 error all variants: model.layers: one run needs at least "
    assert done.stderr.startswith(line) and len(done.stderr.splitlines()) == 1, done.stderr
    assert f'{consequence} ([lint] ignore = {{TL015 = "reason"}} goes on anyway).' in done.stderr
    assert not (tmp_path / "runs").exists()


def test_tl015_lint_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tricklab.cli import main

    study = tmp_path / "huge.toml"
    study.write_text(
        'name = "huge"\ndataset = "thoracic"\n[model]\nlayers = [\n'
        '  {type = "dense", units = 65536}, {type = "dense", units = 65536},\n'
        '  {type = "dense", units = 1, activation = "sigmoid"},\n]\n'
        '[train]\nloss = "binary_crossentropy"\n',
        encoding="utf-8",
    )
    assert main(["lint", str(study)]) == 2
    out = capsys.readouterr().out
    assert "\nTL015 error all variants: model.layers: one run needs at least 64.0 GiB" in out
    assert out.endswith("1 variant x 3 seeds; 1 error, 2 warning(s), 0 hint(s), 0 ignored\n")


# --- TL021 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "transform", "said"),
    [
        (lambda y: 250_000 + 80_000 * y, "standardize", "std 7.66e+04"),  # symmetric prices
        (lambda y: np.exp(10 + y), "log", "skewed to the right"),  # positive, skewed
    ],
)
def test_tl021_a_target_far_from_unit_scale(
    tmp_path: Path, target: Any, transform: str, said: str
) -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(size=60)
    y = target(a + 0.1 * rng.normal(size=60))
    path = _write_csv(tmp_path / "r.csv", {"a": a, "y": y})
    out = [{"type": "dense", "units": 1}]
    spec = _csv_study(path, [RELU, *out], "mean_squared_error")
    finding = only(lint(spec, load_dataset(spec.dataset)), "TL021")
    assert finding.path == "dataset.target_transform" and said in finding.message
    assert finding.fix.startswith(f'set target_transform = "{transform}" in the dataset table')
    fixed = make(
        [RELU, *out],
        {"loss": "mean_squared_error"},
        dataset={"csv": str(path), "target": "y", "target_transform": transform},
    )
    assert lint(fixed, load_dataset(fixed.dataset)) == []
    near_one = _write_csv(tmp_path / "n.csv", {"a": a, "y": a + 0.1 * rng.normal(size=60)})
    clean = _csv_study(near_one, [RELU, *out], "mean_squared_error")
    assert lint(clean, load_dataset(clean.dataset)) == []
