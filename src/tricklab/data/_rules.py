"""What a recipe needs from the data: rules that cannot be checked without it.

The data-free rules live in the spec (pydantic); the ones here look at the loaded dataset: how
labels are encoded for the loss (:class:`Target`), whether a recipe fits the task
(:func:`check_compatible`), what each run logs, and which primary metric a study may use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from tricklab.base import backend as _backend
from tricklab.base.errors import SpecError
from tricklab.data._dataset import Dataset
from tricklab.spec import COMPUTED_SCORES, components, default_primary_metric, messages
from tricklab.spec.components import ONE_HOT_LOSSES

if TYPE_CHECKING:  # the spec imports tricklab.data for its dataset entry
    from tricklab.spec import Component, Recipe

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
            one_hot: np.ndarray = np.eye(self.n_classes, dtype="float32")[y]
            return one_hot
        return y.astype("float32").reshape(-1, 1)


def target_for(recipe: Recipe, dataset: Dataset) -> Target:
    """The target encoding; raises :class:`SpecError` if the recipe cannot fit this data."""
    problems = check_compatible(recipe, dataset)
    if problems:
        raise SpecError(problems)
    return _target(recipe, dataset)


def builder_outputs(dataset: Dataset) -> int:
    """The output units a builder is asked for: 1 for a binary or regression target (a builder
    does not know the loss: one sigmoid probability, or one value), else one per class."""
    if dataset.task == "regression" or dataset.n_classes == 2:
        return 1
    return dataset.n_classes


def bind_outputs(recipe: Recipe, dataset: Dataset) -> Recipe:
    """A builder recipe with the output units of this data recorded (spec.json, the run key);
    a layers recipe as is."""
    bound = recipe.model.bound
    if not recipe.model.is_builder or bound is None:
        return recipe
    outputs = builder_outputs(dataset)
    if bound.outputs == outputs:
        return recipe
    model = recipe.model.model_copy(update={"bound": bound.model_copy(update={"outputs": outputs})})
    return recipe.model_copy(update={"model": model})


def _output_units(recipe: Recipe, dataset: Dataset) -> tuple[str, int]:
    """Where the output units are set, and how many: the last Dense layer's, or a builder's."""
    if recipe.model.is_builder:
        return "model.builder", builder_outputs(dataset)
    index, output = recipe.model.output_layer()
    return f"model.layers[{index}].units", output.units


def _target(recipe: Recipe, dataset: Dataset) -> Target:
    loss = recipe.train.loss.name
    units = _output_units(recipe, dataset)[1]
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
    where, units = _output_units(recipe, dataset)
    loss = recipe.train.loss.name
    k = dataset.n_classes
    if dataset.task == "regression":
        if units != 1:
            problems.append(
                f"{where}: a regression target needs 1 output unit. Received: units={units}."
            )
        if loss in ONE_HOT_LOSSES or loss == "sparse_categorical_crossentropy":
            problems.append(
                f"train.loss: '{loss}' needs class labels, but dataset '{dataset.name}' has a "
                "real-valued target. Use a regression loss such as mean_squared_error."
            )
    elif loss == "sparse_categorical_crossentropy" and units != k:
        if recipe.model.is_builder:  # a builder's model has one output for two classes
            problems.append(
                f"train.loss: sparse_categorical_crossentropy needs one output per class, but a "
                f"builder is asked for outputs=1 on the 2 classes of dataset '{dataset.name}' "
                "(one probability). Use binary_crossentropy. Received: "
                "loss='sparse_categorical_crossentropy'."
            )
        else:
            problems.append(
                f"{where}: sparse_categorical_crossentropy needs one output unit per class "
                f"({k} for dataset '{dataset.name}'). Received: units={units}."
            )
    elif units not in (k,) and not (units == 1 and k == 2):
        accepted = "1 (a probability for the positive class) or 2" if k == 2 else str(k)
        problems.append(
            f"{where}: the output layer must have {accepted} units for the {k} classes of "
            f"dataset '{dataset.name}'. Received: units={units}."
        )
    problems += _check_monitors(recipe, dataset)
    problems += _check_class_weight(recipe, dataset)
    spe = recipe.train.steps_per_execution
    if _backend.name() == "torch" and spe not in (None, 1):
        problems.append(
            f"train.steps_per_execution: must be 1 with the PyTorch backend (or omitted). "
            f"Received: steps_per_execution={spe}."
        )
    return problems


def _check_class_weight(recipe: Recipe, dataset: Dataset) -> list[str]:
    """``train.class_weight`` needs classes, and its labels must be the data's."""
    weights = recipe.train.class_weight
    if weights is None:
        return []
    received = f"Received: class_weight={messages.show(weights)}."
    if dataset.task == "regression":
        target = dataset.intake.target if dataset.intake and dataset.intake.target else None
        what = target or f"dataset '{dataset.name}'"
        return [
            "train.class_weight: class weights need a classification target; "
            f"{what} is regression. {received}"
        ]
    if weights == "balanced":
        return []
    unknown = [label for label in weights if label not in dataset.class_names]
    if not unknown:
        return []
    names = list(dataset.class_names)
    hint = messages.did_you_mean(unknown[0], names) if len(unknown) == 1 else ""
    return [
        f"train.class_weight: unknown class {', '.join(map(repr, unknown))} for dataset "
        f"'{dataset.name}' (keys are the class labels as written in the data).{hint} "
        f"Expected one of: {', '.join(map(repr, names))}. {received}"
    ]


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


def primary_metric_choices(recipes: list[Recipe], dataset: Dataset) -> list[str]:
    """Test scores every one of ``recipes`` records on this data (a primary metric must be one)."""
    shared: set[str] | None = None
    for recipe in recipes:
        names = {"loss", *(m.name for m in metrics_for(recipe, dataset))}
        shared = names if shared is None else shared & names
    computed = COMPUTED_SCORES[dataset.task]
    return ["loss", *sorted((shared or set()) - {"loss"} - set(computed)), *computed]


def primary_metric(spec: Any, dataset: Dataset) -> str:
    """The study's primary metric: its own, checked against the data, or the task's default
    (from the metric catalogue, :data:`tricklab.spec.DEFAULT_PRIMARY_METRIC`).

    Raises :class:`SpecError` (located at ``primary_metric``) listing the valid ones.
    """
    chosen = spec.primary_metric or default_primary_metric(dataset.task)
    choices = primary_metric_choices(list(spec.variants.values()), dataset)
    if chosen not in choices:
        task = {"binary": "a binary", "multiclass": "a multiclass", "regression": "a regression"}
        raise SpecError(
            f"must be a test score every variant records on {task[dataset.task]} target "
            f"(dataset '{dataset.name}'). Received: primary_metric={chosen!r}."
            f"{messages.did_you_mean(chosen, choices)} Expected one of: {', '.join(choices)}.",
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
