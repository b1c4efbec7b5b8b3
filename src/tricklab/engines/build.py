"""Turn a recipe into a compiled Keras model for a given dataset.

Values that depend on the data are derived here, when a run starts: the input shape, how the
targets are encoded for the loss (integer labels, one-hot rows or a 0/1 column) and the default
metrics. :func:`check_compatible` finds recipe/data mismatches before any training starts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tricklab.base import backend as _backend
from tricklab.data import Dataset, Target, metrics_for
from tricklab.engines._builder import call_builder
from tricklab.spec import (
    ActivationLayer,
    BatchNormLayer,
    Component,
    DenseLayer,
    DropoutLayer,
    FlattenLayer,
    GaussianNoiseLayer,
    Recipe,
    components,
)
from tricklab.spec.components import PARAMETERISED_ACTIVATIONS


# -- Keras objects ------------------------------------------------------------------------------
def build_model(recipe: Recipe, input_shape: tuple[int, ...]) -> Any:
    """An uncompiled ``keras.Sequential`` for this recipe, or its builder's model
    (:func:`tricklab.engines._builder.call_builder`)."""
    keras = _backend.keras()
    if recipe.model.is_builder:
        return call_builder(recipe.model, tuple(int(n) for n in input_shape))
    specs = recipe.model.layer_specs()
    # Token ids stay integers up to the Embedding (a float32 input is exact only up to 2**24).
    ids = bool(specs) and specs[0].type == "embedding"
    layers: list[Any] = [keras.Input(shape=tuple(input_shape), dtype="int32" if ids else None)]
    for index, spec in enumerate(specs):
        for copy in range(spec.repeat):
            name = f"{spec.type}_{index}" + (f"_{copy + 1}" if copy else "")
            layers += _layers(keras, spec, name)
    return keras.Sequential(layers, name="tricklab")


def _layers(keras: Any, spec: Any, name: str) -> list[Any]:
    """The Keras layer(s) for one layer spec (a parameterised activation adds its own layer)."""
    if isinstance(spec, DenseLayer):
        kwargs = {
            key: _build(getattr(spec, key))
            for key in (
                "kernel_initializer",
                "bias_initializer",
                "kernel_regularizer",
                "bias_regularizer",
                "activity_regularizer",
                "kernel_constraint",
                "bias_constraint",
            )
            if getattr(spec, key) is not None
        }
        activation, extra = _activation(spec.activation, name)
        dense = keras.layers.Dense(
            spec.units, activation=activation, use_bias=spec.use_bias, name=name, **kwargs
        )
        return [dense, *extra]
    if isinstance(spec, DropoutLayer):
        return [keras.layers.Dropout(spec.rate, name=name)]
    if isinstance(spec, FlattenLayer):
        return [keras.layers.Flatten(name=name)]
    if isinstance(spec, BatchNormLayer):
        options = {
            k: v
            for k, v in (("momentum", spec.momentum), ("epsilon", spec.epsilon))
            if v is not None
        }
        return [
            keras.layers.BatchNormalization(
                center=spec.center, scale=spec.scale, name=name, **options
            )
        ]
    if isinstance(spec, ActivationLayer):
        activation, extra = _activation(spec.activation, name)
        return extra or [keras.layers.Activation(activation, name=name)]
    if isinstance(spec, GaussianNoiseLayer):
        return [keras.layers.GaussianNoise(spec.stddev, name=name)]
    return _keyword_layers(keras, spec, name)


#: Layer type -> Keras class, for the layers built from their spec's fields as keywords.
KERAS_CLASSES = {
    "conv1d": "Conv1D",
    "conv2d": "Conv2D",
    "separable_conv2d": "SeparableConv2D",
    "max_pooling1d": "MaxPooling1D",
    "max_pooling2d": "MaxPooling2D",
    "average_pooling1d": "AveragePooling1D",
    "average_pooling2d": "AveragePooling2D",
    "global_average_pooling1d": "GlobalAveragePooling1D",
    "global_average_pooling2d": "GlobalAveragePooling2D",
    "global_max_pooling1d": "GlobalMaxPooling1D",
    "global_max_pooling2d": "GlobalMaxPooling2D",
    "reshape": "Reshape",
    "layer_norm": "LayerNormalization",
    "embedding": "Embedding",
    "lstm": "LSTM",
    "gru": "GRU",
    "bidirectional": "Bidirectional",
    "random_flip": "RandomFlip",
    "random_translation": "RandomTranslation",
    "random_rotation": "RandomRotation",
    "random_zoom": "RandomZoom",
    "random_contrast": "RandomContrast",
}


def _keyword_layers(keras: Any, spec: Any, name: str) -> list[Any]:
    """A layer whose spec fields are its Keras keywords (None: the Keras default); a
    parameterised activation (prelu, ...) of a convolution becomes a layer after it."""
    if spec.type not in KERAS_CLASSES:
        raise AssertionError(f"unhandled layer spec {type(spec).__name__}")
    kwargs = _keywords(spec)
    extra: list[Any] = []
    if spec.type == "bidirectional":
        inner = spec.layer
        kwargs["layer"] = getattr(keras.layers, KERAS_CLASSES[inner.type])(
            **_keywords(inner), name=f"{name}_{inner.type}"
        )
    elif "activation" in kwargs and spec.type not in ("lstm", "gru"):
        kwargs["activation"], extra = _activation(spec.activation, name)
    cls = getattr(keras.layers, KERAS_CLASSES[spec.type])
    return [cls(**kwargs, name=name), *extra]


def _keywords(spec: Any) -> dict[str, Any]:
    """The spec's fields set (not None), components built, as Keras keywords."""
    kwargs: dict[str, Any] = {}
    for key in type(spec).model_fields:
        value = getattr(spec, key)
        if key in ("type", "repeat", "layer") or value is None:
            continue
        kwargs[key] = _build(value) if isinstance(value, Component) else value
    return kwargs


def _activation(component: Component | None, name: str) -> tuple[Any, list[Any]]:
    """(activation for the layer itself, layers to add after it)."""
    if component is None:
        return None, []
    built = components.ACTIVATIONS.build(component)
    if component.name in PARAMETERISED_ACTIVATIONS and component.args:
        built.name = f"{name}_{component.name}"
        return None, [built]
    return built, []


def _build(component: Component) -> Any:
    return components.REGISTRIES[component.kind].build(component)


def compile_model(model: Any, recipe: Recipe, dataset: Dataset, target: Target) -> None:
    """Compile with the recipe's optimizer, loss and metrics (accuracy resolved by target)."""
    model.compile(
        optimizer=_optimizer(recipe),
        loss=_build(recipe.train.loss),
        metrics=[_metric(m, target) for m in metrics_for(recipe, dataset)],
        steps_per_execution=steps_per_execution(recipe),
    )


def original_scale_scores(
    recipe: Recipe, dataset: Dataset, target: Target, truth: np.ndarray, outputs: np.ndarray
) -> dict[str, float]:
    """Keras's test loss and compiled metrics of ``outputs`` against ``truth``, both on a
    transformed regression target's own scale (``target_transform``): fresh copies of the
    recipe's loss and metrics, over every test row at once. The loss is its data term only:
    a regularization penalty is on no target's scale."""
    keras = _backend.keras()
    y_true = np.asarray(truth, dtype="float32").reshape(-1, 1)
    y_pred = np.asarray(outputs, dtype="float32").reshape(-1, 1)
    scores = {"loss": float(keras.ops.convert_to_numpy(_build(recipe.train.loss)(y_true, y_pred)))}
    for component in metrics_for(recipe, dataset):
        metric = _metric(component, target)
        if isinstance(metric, str):  # a metric given by name, as compile wraps it
            metric = keras.metrics.MeanMetricWrapper(keras.metrics.get(metric), name=metric)
        metric.update_state(y_true, y_pred)
        scores[metric.name] = float(keras.ops.convert_to_numpy(metric.result()))
    return scores


#: Steps per compiled call unless a recipe says otherwise: small models spend their time in
#: per-step overhead, which batching steps into one call removes (README, "Speed").
DEFAULT_STEPS_PER_EXECUTION = 50


def steps_per_execution(recipe: Recipe) -> int:
    """The recipe's value, else 50 (1 on PyTorch, which supports no other)."""
    if recipe.train.steps_per_execution is not None:
        return recipe.train.steps_per_execution
    return 1 if _backend.name() == "torch" else DEFAULT_STEPS_PER_EXECUTION


def _optimizer(recipe: Recipe) -> Any:
    """The recipe's optimizer; with a one_cycle schedule, one that also cycles its momentum."""
    from tricklab.engines.schedules import apply_momentum_cycle  # imports Keras: compile time only

    return apply_momentum_cycle(_build(recipe.train.optimizer))


def _metric(component: Component, target: Target) -> Any:
    if component.name != "accuracy":
        return _build(component)
    keras = _backend.keras()
    cls = {
        "binary": keras.metrics.BinaryAccuracy,
        "sparse": keras.metrics.SparseCategoricalAccuracy,
        "one_hot": keras.metrics.CategoricalAccuracy,
    }[target.format]
    return cls(name="accuracy")


def summary(recipe: Recipe, input_shape: tuple[int, ...]) -> str:
    """``model.summary()`` as text (the lecture prints it after every change)."""
    lines: list[str] = []
    build_model(recipe, input_shape).summary(print_fn=lambda line, **_: lines.append(line))
    return "\n".join(lines)
