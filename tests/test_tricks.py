"""Every trick of the lecture trains, and is really in the model that trained.

Each test trains a tiny run (the Thoracic table, 8 hidden units, 2-3 epochs) through the real
trainer and inspects the trained Keras model: the loss object, the optimizer and its schedule,
the layers' regularizers and constraints, dropout, early stopping and the activations.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import pytest
from conftest import train_tiny

LECTURE_LOSSES = {
    "mean_squared_error": keras.losses.MeanSquaredError,
    "mean_absolute_error": keras.losses.MeanAbsoluteError,
    "mean_absolute_percentage_error": keras.losses.MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": keras.losses.MeanSquaredLogarithmicError,
    "binary_crossentropy": keras.losses.BinaryCrossentropy,
    "poisson": keras.losses.Poisson,
}


def dense(model: Any, index: int = 0) -> Any:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][index]


def recomputed_auc(study: dict[str, Any], model: Any, seed: int = 0) -> float:
    """The AUC of ``model``'s positive-class scores on the test rows of the run's split,
    computed here (train_tiny's model holds the run's best weights)."""
    from sklearn.metrics import roc_auc_score

    from tricklab.data import resolve
    from tricklab.spec import StudySpec

    splits = resolve(StudySpec.from_dict(study)).splits(seed)
    scores = np.asarray(model.predict(splits.x_test, verbose=0))[:, -1]
    return float(roc_auc_score(splits.y_test, scores))


@pytest.mark.parametrize("loss", sorted(LECTURE_LOSSES))
def test_loss_on_one_sigmoid_unit(tiny: dict, loss: str) -> None:
    tiny["train"]["loss"] = loss
    result, model = train_tiny(tiny)
    assert isinstance(model.loss, LECTURE_LOSSES[loss])
    assert result.status == "ok"
    assert math.isfinite(result.history["loss"][-1])
    assert result.test["best"]["auc"] == pytest.approx(recomputed_auc(tiny, model))


def test_categorical_crossentropy_with_one_softmax_unit_per_class(tiny: dict) -> None:
    tiny["train"]["loss"] = "categorical_crossentropy"
    tiny["model"]["layers"][-1] = {"type": "dense", "units": 2, "activation": "softmax"}
    tiny["train"]["epochs"] = 4
    result, model = train_tiny(tiny)
    assert isinstance(model.loss, keras.losses.CategoricalCrossentropy)
    # one-hot targets were made automatically, so the loss is informative and decreases
    assert 0 < result.history["loss"][-1] < result.history["loss"][0]


def test_categorical_crossentropy_on_one_sigmoid_unit_cannot_learn(tiny: dict) -> None:
    # Keras normalises the predictions to sum to 1 over the output units: one unit -> always 1.0,
    # so the loss is 0 for every sample and no gradient flows (thoracic-losses.toml shows it).
    tiny["train"]["loss"] = "categorical_crossentropy"
    tiny["train"]["epochs"] = 3
    result, model = train_tiny(tiny)
    # the normalised prediction is clipped to 1 - 1e-7: a constant loss of about 1e-7 * y
    assert max(result.history["loss"]) < 1e-6
    keras.utils.set_random_seed(0)  # the same initialisation as the run: nothing moved
    fresh = keras.Sequential.from_config(model.get_config())
    for trained, initial in zip(model.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(trained, initial)


def test_sparse_categorical_crossentropy(tiny: dict) -> None:
    tiny["train"]["loss"] = "sparse_categorical_crossentropy"
    tiny["model"]["layers"][-1] = {"type": "dense", "units": 2, "activation": "softmax"}
    result, model = train_tiny(tiny)
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    assert model.output_shape == (None, 2)
    # the AUC of the second unit's probability: the positive class's
    assert result.test["best"]["auc"] == pytest.approx(recomputed_auc(tiny, model))


@pytest.mark.parametrize(
    ("table", "cls", "attributes"),
    [
        (
            {"name": "adam", "learning_rate": 0.001, "beta_1": 0.89},
            keras.optimizers.Adam,
            {"beta_1": 0.89},
        ),
        ({"name": "adamw", "weight_decay": 0.01}, keras.optimizers.AdamW, {"weight_decay": 0.01}),
        (
            {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
            keras.optimizers.SGD,
            {"momentum": 0.9, "nesterov": True},
        ),
        ({"name": "rmsprop", "rho": 0.8}, keras.optimizers.RMSprop, {"rho": 0.8}),
    ],
    ids=["adam-beta_1", "adamw", "sgd-nesterov", "rmsprop"],
)
def test_optimizer_and_its_arguments(tiny: dict, table: dict, cls: type, attributes: dict) -> None:
    tiny["train"]["optimizer"] = table
    _, model = train_tiny(tiny)
    assert type(model.optimizer) is cls
    for key, value in attributes.items():
        assert getattr(model.optimizer, key) == pytest.approx(value)
    assert int(model.optimizer.iterations) > 0


SCHEDULES = {
    "exponential_decay": (
        {"initial_learning_rate": 0.01, "decay_steps": 5, "decay_rate": 0.5},
        keras.optimizers.schedules.ExponentialDecay,
    ),
    "cosine_decay": (
        {"initial_learning_rate": 0.01, "decay_steps": 20},
        keras.optimizers.schedules.CosineDecay,
    ),
    "cosine_decay_restarts": (
        {"initial_learning_rate": 0.01, "first_decay_steps": 7},
        keras.optimizers.schedules.CosineDecayRestarts,
    ),
    "piecewise_constant_decay": (
        {"boundaries": [5], "values": [0.01, 0.001]},
        keras.optimizers.schedules.PiecewiseConstantDecay,
    ),
    "inverse_time_decay": (
        {"initial_learning_rate": 0.01, "decay_steps": 5, "decay_rate": 1.0},
        keras.optimizers.schedules.InverseTimeDecay,
    ),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_learning_rate_schedule(tiny: dict, name: str, optimizer: str) -> None:
    args, cls = SCHEDULES[name]
    tiny["train"]["optimizer"] = {"name": optimizer, "learning_rate": {"name": name, **args}}
    _, model = train_tiny(tiny)
    schedule = model.optimizer._learning_rate
    assert isinstance(schedule, cls)
    config = schedule.get_config()
    for key, value in args.items():
        assert config[key] == value
    # the schedule really drove training: the rate now is the schedule at the current step
    steps = int(model.optimizer.iterations)
    assert steps > 10
    assert float(model.optimizer.learning_rate) == pytest.approx(float(schedule(steps)))
    assert float(schedule(steps)) < 0.01


@pytest.mark.parametrize(
    ("field", "table", "cls"),
    [
        ("kernel_regularizer", {"name": "l2", "l2": 0.01}, keras.regularizers.L2),
        ("kernel_regularizer", {"name": "l1", "l1": 0.01}, keras.regularizers.L1),
        ("activity_regularizer", {"name": "l1", "l1": 0.01}, keras.regularizers.L1),
        ("activity_regularizer", {"name": "l2", "l2": 0.01}, keras.regularizers.L2),
        ("bias_regularizer", {"name": "l1_l2", "l1": 0.01, "l2": 0.01}, keras.regularizers.L1L2),
    ],
    ids=["kernel-l2", "kernel-l1", "activity-l1", "activity-l2", "bias-l1_l2"],
)
def test_regularizer(tiny: dict, field: str, table: dict, cls: type) -> None:
    plain, _ = train_tiny(tiny)
    tiny["model"]["layers"][0][field] = table
    result, model = train_tiny(tiny)
    regularizer = getattr(dense(model), field)
    assert isinstance(regularizer, cls)
    assert regularizer.get_config() == pytest.approx(
        {k: v for k, v in table.items() if k != "name"}
    )
    # the penalty is part of the training loss: same seed, larger loss than without it
    assert result.history["loss"][0] > plain.history["loss"][0]


@pytest.mark.parametrize(
    ("table", "check"),
    [
        ({"name": "max_norm", "max_value": 0.5}, lambda norms, kernel: np.all(norms <= 0.5 + 1e-5)),
        ({"name": "unit_norm"}, lambda norms, kernel: np.allclose(norms, 1.0, atol=1e-4)),
        ({"name": "non_neg"}, lambda norms, kernel: np.all(kernel >= 0)),
        (
            {"name": "min_max_norm", "min_value": 0.5, "max_value": 0.6},
            lambda norms, kernel: np.all((norms >= 0.5 - 1e-4) & (norms <= 0.6 + 1e-4)),
        ),
    ],
    ids=["max_norm", "unit_norm", "non_neg", "min_max_norm"],
)
def test_constraint(tiny: dict, table: dict, check: Any) -> None:
    tiny["model"]["layers"][0]["kernel_constraint"] = table
    _, model = train_tiny(tiny)
    layer = dense(model)
    assert (
        type(layer.kernel_constraint).__name__
        == {
            "max_norm": "MaxNorm",
            "unit_norm": "UnitNorm",
            "non_neg": "NonNeg",
            "min_max_norm": "MinMaxNorm",
        }[table["name"]]
    )
    kernel = np.asarray(layer.kernel)
    norms = np.sqrt((kernel**2).sum(axis=0))  # per output unit, Keras's axis=0
    assert check(norms, kernel)


def test_dropout(tiny: dict) -> None:
    tiny["model"]["layers"].insert(1, {"type": "dropout", "rate": 0.5})
    _, model = train_tiny(tiny)
    layer = next(lay for lay in model.layers if isinstance(lay, keras.layers.Dropout))
    assert layer.rate == 0.5
    x = np.ones((4, 16), dtype="float32")
    assert np.allclose(model(x, training=False), model(x, training=False))
    assert not np.allclose(model(x, training=True), model(x, training=True))


def test_early_stopping_stops_and_the_best_checkpoint_is_evaluated(tiny: dict) -> None:
    tiny["train"]["epochs"] = 40
    # an improvement threshold no epoch can meet: stops after patience + 1 epochs
    tiny["train"]["early_stopping"] = {"monitor": "val_loss", "patience": 2, "min_delta": 10.0}
    result, _ = train_tiny(tiny)
    assert result.epochs_run == 3
    assert result.best_epoch == int(np.argmin(result.history["val_loss"])) + 1
    assert set(result.test) == {"best", "last"}


def test_early_stopping_restore_best_weights_makes_last_equal_best(tiny: dict) -> None:
    tiny["train"]["epochs"] = 15
    tiny["train"]["early_stopping"] = {"patience": 2, "restore_best_weights": True}
    result, _ = train_tiny(tiny)
    # both pick the epoch with the lowest val_loss, so fit() returns the checkpoint's weights
    assert result.test["last"]["loss"] == pytest.approx(result.test["best"]["loss"])


ACTIVATIONS = [
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "softplus",
    "linear",
]


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_hidden_activation(tiny: dict, name: str) -> None:
    tiny["model"]["layers"][0]["activation"] = name
    result, model = train_tiny(tiny)
    assert dense(model).activation is keras.activations.get(name)
    assert result.status == "ok"


def test_leaky_relu_slope_is_a_layer_that_saves_and_loads(tiny: dict, tmp_path: Any) -> None:
    tiny["model"]["layers"][0]["activation"] = {"name": "leaky_relu", "negative_slope": 0.1}
    _, model = train_tiny(tiny)
    leaky = [lay for lay in model.layers if isinstance(lay, keras.layers.LeakyReLU)]
    assert len(leaky) == 1 and leaky[0].negative_slope == pytest.approx(0.1)
    assert dense(model).activation is keras.activations.linear
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(0).normal(size=(5, 16)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_softmax_output(tiny: dict) -> None:
    tiny["train"]["loss"] = "sparse_categorical_crossentropy"
    tiny["model"]["layers"][-1] = {"type": "dense", "units": 2, "activation": "softmax"}
    _, model = train_tiny(tiny)
    assert dense(model, -1).activation is keras.activations.softmax
    x = np.random.default_rng(0).normal(size=(5, 16)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0).sum(axis=1), 1.0, rtol=1e-5)
