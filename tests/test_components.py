"""The registries agree with the installed Keras: every name builds, every argument exists."""

from __future__ import annotations

import inspect

import keras
import pytest

from tricklab.spec import components
from tricklab.spec._registry import ComponentError, resolve
from tricklab.spec.components import (
    ACTIVATIONS,
    EXCLUDED_ACTIVATIONS,
    EXCLUDED_LOSSES,
    LOSSES,
    OPTIMIZERS,
    REGISTRIES,
    REGULARIZERS,
)

TABLE_REGISTRIES = [r for r in REGISTRIES.values() if r.kind not in ("activation", "metric")]


@pytest.mark.parametrize("registry", TABLE_REGISTRIES, ids=lambda r: r.kind)
def test_every_argument_is_one_keras_accepts(registry) -> None:
    for name in registry.names():
        entry = registry.entry(name)
        accepted = set(inspect.signature(resolve(entry.target)).parameters)
        unknown = set(entry.params) - accepted
        assert not unknown, f"{registry.kind} {name}: Keras does not take {unknown}"


@pytest.mark.parametrize("registry", TABLE_REGISTRIES, ids=lambda r: r.kind)
def test_every_name_builds_a_keras_object(registry) -> None:
    examples = {
        "exponential_decay": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.9},
        "inverse_time_decay": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5},
        "cosine_decay": {"initial_learning_rate": 0.1, "decay_steps": 10},
        "cosine_decay_restarts": {"initial_learning_rate": 0.1, "first_decay_steps": 10},
        "piecewise_constant_decay": {"boundaries": [10], "values": [0.1, 0.01]},
        "polynomial_decay": {"initial_learning_rate": 0.1, "decay_steps": 10},
        "one_cycle": {"max_learning_rate": 0.01, "total_steps": 100},
    }
    for name in registry.names():
        built = registry.get({"name": name, **examples.get(name, {})})
        assert type(built).__module__.startswith(("keras", "tricklab")), (name, built)


def test_every_keras_loss_is_offered_or_excluded_with_a_reason() -> None:
    offered = {resolve(LOSSES.entry(n).target).__name__ for n in LOSSES.names()}
    keras_losses = {
        name
        for name, obj in vars(keras.losses).items()
        if inspect.isclass(obj)
        and issubclass(obj, keras.losses.Loss)
        and obj is not keras.losses.Loss
    }
    assert keras_losses - offered == set(EXCLUDED_LOSSES)


def test_every_keras_activation_is_offered_or_excluded() -> None:
    public = {
        n
        for n in dir(keras.activations)
        if not n.startswith("_") and n not in ("get", "serialize", "deserialize")
    }
    aliases = {"swish", "hard_swish"}
    assert public - set(ACTIVATIONS.names()) - aliases == set(EXCLUDED_ACTIVATIONS)
    for name in ACTIVATIONS.names():
        assert ACTIVATIONS.get(name) is keras.activations.get(name)


def test_lecture_losses_and_aliases() -> None:
    lecture = [
        "mean_squared_error",
        "mean_absolute_error",
        "mean_absolute_percentage_error",
        "mean_squared_logarithmic_error",
        "binary_crossentropy",
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
        "poisson",
    ]
    for name in lecture:
        assert LOSSES.parse(name).name == name
    assert LOSSES.parse("mse").name == "mean_squared_error"
    assert isinstance(LOSSES.get("msle"), keras.losses.MeanSquaredLogarithmicError)


def test_get_accepts_a_name_a_table_or_a_keras_object() -> None:
    assert isinstance(REGULARIZERS.get("l2"), keras.regularizers.L2)
    built = REGULARIZERS.get({"name": "l1_l2", "l1": 0.01, "l2": 0.02})
    assert (built.l1, built.l2) == pytest.approx((0.01, 0.02))
    obj = keras.regularizers.L2(0.05)
    assert REGULARIZERS.get(obj) is obj
    assert REGULARIZERS.parse(obj).to_dict() == {"name": "l2", "l2": 0.05}
    assert ACTIVATIONS.parse(keras.activations.tanh).name == "tanh"


def test_get_rejects_an_object_of_another_kind() -> None:
    with pytest.raises(ComponentError, match="MaxNorm is not a registered regularizer"):
        REGULARIZERS.get(keras.constraints.MaxNorm(2.0))


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(ComponentError) as info:
        OPTIMIZERS.get("adamm")
    assert str(info.value) == (
        "unknown optimizer 'adamm'. Did you mean 'adam'? Expected one of: adadelta, adagrad, "
        "adam, adamax, adamw, lamb, lion, nadam, rmsprop, sgd."
    )


def test_parameterised_activations_build_their_keras_layer() -> None:
    layer = ACTIVATIONS.get({"name": "leaky_relu", "negative_slope": 0.1})
    assert isinstance(layer, keras.layers.LeakyReLU)
    assert layer.negative_slope == pytest.approx(0.1)
    # the table form without arguments uses the documented default slope of keras.activations
    default = components.PARAMETERISED_ACTIVATIONS["leaky_relu"][1]["negative_slope"]
    assert (
        default
        == inspect.signature(keras.activations.leaky_relu).parameters["negative_slope"].default
    )
    with pytest.raises(ComponentError, match="unknown argument 'alpha' for activation 'tanh'"):
        ACTIVATIONS.parse({"name": "tanh", "alpha": 1.0})
