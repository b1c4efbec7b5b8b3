"""Turn a recipe into a compiled Keras model for a given dataset.

Values that depend on the data are derived here, when a run starts: the input shape, how the
targets are encoded for the loss (integer labels, one-hot rows or a 0/1 column) and the default
metrics. :func:`check_compatible` finds recipe/data mismatches before any training starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tricklab import _backend, components
from tricklab._validation import did_you_mean
from tricklab.components import ONE_HOT_LOSSES, PARAMETERISED_ACTIVATIONS
from tricklab.data import Dataset
from tricklab.errors import SpecError
from tricklab.registry import Component
from tricklab.spec import (
    ActivationLayer,
    BatchNormLayer,
    DenseLayer,
    DropoutLayer,
    FlattenLayer,
    GaussianNoiseLayer,
    Recipe,
)

TargetFormat = Literal["sparse", "one_hot", "binary", "regression"]


@dataclass(frozen=True)
class Target:
    """How labels are fed to the loss, derived from the data, the loss and the output layer."""

    format: TargetFormat
    n_classes: int  # 0 for regression

    def encode(self, y: np.ndarray) -> np.ndarray:
        if self.format == "sparse":
            return y.astype("int32")
        if self.format == "one_hot":
            return np.eye(self.n_classes, dtype="float32")[y]
        return y.astype("float32").reshape(-1, 1)


def target_for(recipe: Recipe, dataset: Dataset) -> Target:
    """The target encoding; raises :class:`SpecError` if the recipe cannot fit this data."""
    problems = check_compatible(recipe, dataset)
    if problems:
        raise SpecError(problems)
    return _target(recipe, dataset)


def _target(recipe: Recipe, dataset: Dataset) -> Target:
    loss = recipe.train.loss.name
    units = recipe.model.output_layer()[1].units
    if dataset.task == "regression":
        return Target("regression", 0)
    if loss == "sparse_categorical_crossentropy":
        return Target("sparse", dataset.n_classes)
    if units == 1:
        return Target("binary", dataset.n_classes)
    return Target("one_hot", dataset.n_classes)


def check_compatible(recipe: Recipe, dataset: Dataset) -> list[str]:
    """Problems (``"<path>: <message>"``) that would make this recipe fail on this data."""
    problems: list[str] = []
    index, output = recipe.model.output_layer()
    where = f"model.layers[{index}].units"
    loss = recipe.train.loss.name
    k = dataset.n_classes
    if dataset.task == "regression":
        if output.units != 1:
            problems.append(
                f"{where}: a regression target needs 1 output unit. Received: units={output.units}."
            )
        if loss in ONE_HOT_LOSSES or loss == "sparse_categorical_crossentropy":
            problems.append(
                f"train.loss: '{loss}' needs class labels, but dataset '{dataset.name}' has a "
                "real-valued target. Use a regression loss such as mean_squared_error."
            )
    elif loss == "sparse_categorical_crossentropy" and output.units != k:
        problems.append(
            f"{where}: sparse_categorical_crossentropy needs one output unit per class "
            f"({k} for dataset '{dataset.name}'). Received: units={output.units}."
        )
    elif output.units not in (k,) and not (output.units == 1 and k == 2):
        accepted = "1 (a probability for the positive class) or 2" if k == 2 else str(k)
        problems.append(
            f"{where}: the output layer must have {accepted} units for the {k} classes of "
            f"dataset '{dataset.name}'. Received: units={output.units}."
        )
    problems += _check_monitors(recipe, dataset)
    spe = recipe.train.steps_per_execution
    if _backend.name() == "torch" and spe not in (None, 1):
        problems.append(
            f"train.steps_per_execution: must be 1 with the PyTorch backend (or omitted). "
            f"Received: steps_per_execution={spe}."
        )
    return problems


def logged_names(recipe: Recipe, dataset: Dataset) -> list[str]:
    """History columns a run of this recipe logs: loss, metrics, and their val_ twins."""
    names = ["loss", *(m.name for m in metrics_for(recipe, dataset))]
    return names + [f"val_{n}" for n in names]


def _check_monitors(recipe: Recipe, dataset: Dataset) -> list[str]:
    problems = []
    if dataset.task == "regression":
        for i, metric in enumerate(recipe.train.metrics or ()):
            if metric.name == "accuracy":
                problems.append(
                    f"train.metrics[{i}]: accuracy needs class labels, but dataset "
                    f"'{dataset.name}' has a real-valued target. Use mean_absolute_error."
                )
    logged = logged_names(recipe, dataset)
    monitor = recipe.train.checkpoint_monitor()
    if monitor not in logged:
        field = (
            "train.checkpoint.monitor"
            if recipe.train.checkpoint.monitor
            else (
                "train.early_stopping.monitor"
                if recipe.train.early_stopping
                else "train.checkpoint"
            )
        )
        problems.append(
            f"{field}: '{monitor}' is not logged by this run, so the best-weights checkpoint "
            f"could not pick an epoch. Expected one of: {', '.join(logged)}."
        )
    return problems


#: Test scores the engines compute for every run of a task, besides its loss and compiled
#: metrics (``engines._scoring.score``).
COMPUTED_SCORES = {
    "binary": ("auc", "balanced_accuracy", "majority_baseline"),
    "multiclass": ("balanced_accuracy", "majority_baseline"),
    "regression": ("mse", "mae", "r2", "mean_baseline_mse"),
}
#: The primary metric of a study that names none: one every variant shares, whatever its loss.
DEFAULT_PRIMARY_METRIC = {"binary": "auc", "multiclass": "accuracy", "regression": "mse"}


def primary_metric_choices(recipes: list[Recipe], dataset: Dataset) -> list[str]:
    """Test scores every one of ``recipes`` records on this data (a primary metric must be one)."""
    shared: set[str] | None = None
    for recipe in recipes:
        names = {"loss", *(m.name for m in metrics_for(recipe, dataset))}
        shared = names if shared is None else shared & names
    computed = COMPUTED_SCORES[dataset.task]
    return ["loss", *sorted((shared or set()) - {"loss"} - set(computed)), *computed]


def primary_metric(spec: Any, dataset: Dataset) -> str:
    """The study's primary metric: its own, checked against the data, or the task's default.

    Raises :class:`SpecError` (located at ``primary_metric``) listing the valid ones.
    """
    chosen = spec.primary_metric or DEFAULT_PRIMARY_METRIC[dataset.task]
    choices = primary_metric_choices(list(spec.variants.values()), dataset)
    if chosen not in choices:
        task = {"binary": "a binary", "multiclass": "a multiclass", "regression": "a regression"}
        raise SpecError(
            f"must be a test score every variant records on {task[dataset.task]} target "
            f"(dataset '{dataset.name}'). Received: primary_metric={chosen!r}."
            f"{did_you_mean(chosen, choices)} Expected one of: {', '.join(choices)}.",
            file=spec.source,
            where="primary_metric",
        )
    return chosen


def metrics_for(recipe: Recipe, dataset: Dataset) -> tuple[Component, ...]:
    """The metrics compiled into the model (default: accuracy, or MAE for regression)."""
    if recipe.train.metrics is not None:
        return recipe.train.metrics
    default = "mean_absolute_error" if dataset.task == "regression" else "accuracy"
    return (components.METRICS.parse(default),)


# -- Keras objects ------------------------------------------------------------------------------
def build_model(recipe: Recipe, input_shape: tuple[int, ...]) -> Any:
    """An uncompiled ``keras.Sequential`` for this recipe."""
    keras = _backend.keras()
    layers: list[Any] = [keras.Input(shape=tuple(input_shape))]
    for index, spec in enumerate(recipe.model.layers):
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
    raise AssertionError(f"unhandled layer spec {type(spec).__name__}")


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
    from tricklab.schedules import apply_momentum_cycle  # imports Keras: compile time only

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
