"""Recipe rules: run on every variant's merged recipe."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

import numpy as np

from tricklab.data import Dataset, logged_names
from tricklab.spec import (
    AUGMENTATION_LAYERS,
    SOLO_ONLY_LAYERS,
    ActivationLayer,
    BatchNormLayer,
    Component,
    DenseLayer,
    DropoutLayer,
    EmbeddingLayer,
    LayerNormLayer,
    Recipe,
)
from tricklab.spec.components import ONE_HOT_LOSSES, REGRESSION_LOSSES
from tricklab.tools.lint._findings import (
    CATEGORICAL_LOSSES,
    CROSSENTROPY_LOSSES,
    KERAS_DEFAULTS,
    MAX_NORM_CONSTRAINTS,
    NORMALISING,
    PASS_THROUGH,
    Finding,
    finding,
)
from tricklab.tools.lint._memory import ShapeError, walk


# -- recipe rules ---------------------------------------------------------------------------------
def recipe_findings(recipe: Recipe, dataset: Dataset | None) -> Iterator[Finding]:
    # A builder's layers are Python code, not listed: the layer rules do not apply to it, and
    # lint runs no user code (its model is checked when first built, by run and summary).
    layers = not recipe.model.is_builder
    if layers:
        yield from _linear_stacks(recipe)
        yield from _output_activation(recipe)
        yield from _weight_penalties(recipe)
        yield from _dropout(recipe)
    yield from _monitors(recipe, dataset)
    if layers:
        yield from _augmentation_order(recipe)
    if dataset is not None:
        if layers:
            yield from _shapes(recipe, dataset)
            yield from _embedding_ids(recipe, dataset)
        yield from _regression_loss(recipe, dataset)
        yield from _head(recipe, dataset)
        yield from _percentage_error(recipe, dataset)


def _is_linear(activation: Component | None) -> bool:
    return activation is None or (activation.name == "linear" and not activation.args)


def _linear_stacks(recipe: Recipe) -> Iterator[Finding]:
    """TL001: a Dense layer without activation whose output goes (almost) straight to a Dense."""
    layers = recipe.model.layer_specs()
    for index, layer in enumerate(layers):
        if not isinstance(layer, DenseLayer) or not _is_linear(layer.activation):
            continue
        shown = "linear activation" if layer.activation else "no activation"
        path = f"model.layers[{index}].activation"
        fix = 'add an activation, e.g. activation = "relu" (or remove the layer).'
        if layer.repeat > 1:
            yield finding(
                "TL001",
                path,
                f"Dense layer with {shown} (units={layer.units}) repeated {layer.repeat} times: "
                "consecutive copies collapse into one linear map, so the extra copies add "
                "parameters but no capacity.",
                fix,
            )
            continue
        following = _next_dense(layers, index)
        if following is not None:
            yield finding(
                "TL001",
                path,
                f"Dense layer with {shown} (units={layer.units}) feeds the Dense layer "
                f"model.layers[{following}]: the two collapse into one linear map, so this layer "
                "adds parameters but no capacity.",
                fix,
            )


def _next_dense(layers: tuple[Any, ...], index: int) -> int | None:
    for later in range(index + 1, len(layers)):
        layer = layers[later]
        if isinstance(layer, DenseLayer):
            return later
        if isinstance(layer, ActivationLayer) and _is_linear(layer.activation):
            continue
        if not isinstance(layer, PASS_THROUGH):
            return None
    return None


def _output_activation(recipe: Recipe) -> Iterator[Finding]:
    """TL002: an output activation that cannot express the target."""
    layers = recipe.model.layer_specs()
    index, output = recipe.model.output_layer()
    where, activation = index, output.activation
    for later in range(index + 1, len(layers)):
        layer = layers[later]
        if isinstance(layer, ActivationLayer):
            where, activation = later, layer.activation
    loss = recipe.train.loss.name
    if loss in ONE_HOT_LOSSES and output.units == 1:
        yield finding(
            "TL002",
            "train.loss",
            f"'{loss}' on a single output unit: Keras normalises the predictions over the "
            "output units, which makes one unit always 1.0, so the loss is constant and the "
            "model cannot learn.",
            "use binary_crossentropy with 1 sigmoid unit, or softmax with one unit per class.",
        )
    if activation is None:
        return
    path = f"model.layers[{where}].activation"
    if activation.name in NORMALISING and output.units == 1:
        yield finding(
            "TL002",
            path,
            f"{activation.name} on a single output unit always outputs "
            f"{NORMALISING[activation.name]}, so the model cannot learn.",
            "use sigmoid with 1 unit, or softmax with one unit per class.",
        )
    if activation.name == "sigmoid" and output.units > 1 and loss in CATEGORICAL_LOSSES:
        yield finding(
            "TL002",
            path,
            f"sigmoid on {output.units} output units with loss '{loss}': each unit is an "
            "independent probability, so the outputs do not form the one distribution over "
            "classes that a categorical loss expects.",
            'use activation = "softmax" on the output layer (sigmoid on several units is for '
            "multi-label targets with binary_crossentropy).",
        )


def _show_l2(regularizer: Component, l2: float) -> str:
    if "l2" in regularizer.args:
        return f"kernel_regularizer {regularizer}"
    return f"kernel_regularizer {regularizer} (l2={l2:g}, the Keras default)"


def _l2_strength(regularizer: Component | None) -> float:
    if regularizer is None or regularizer.name not in ("l2", "l1_l2"):
        return 0.0
    default = KERAS_DEFAULTS[("regularizer", regularizer.name, "l2")]
    return float(regularizer.args.get("l2", default))


def _weight_decay(optimizer: Component) -> tuple[float, bool]:
    """(decoupled weight decay of the optimizer, whether it is the Keras default)."""
    given = optimizer.args.get("weight_decay")
    if given is not None:
        return float(given), False
    return KERAS_DEFAULTS.get(("optimizer", optimizer.name, "weight_decay"), 0.0), True


def _weight_penalties(recipe: Recipe) -> Iterator[Finding]:
    """TL007 (L2 plus optimizer weight decay) and TL008 (L2 plus a max-norm constraint)."""
    optimizer = recipe.train.optimizer
    decay, default = _weight_decay(optimizer)
    for index, layer in enumerate(recipe.model.layer_specs()):
        if not isinstance(layer, DenseLayer):
            continue
        regularizer = layer.kernel_regularizer
        l2 = _l2_strength(regularizer)
        if regularizer is None or l2 <= 0:
            continue
        path = f"model.layers[{index}].kernel_regularizer"
        if decay > 0:
            source = " (the Keras default)" if default else ""
            yield finding(
                "TL007",
                path,
                f"{_show_l2(regularizer, l2)} together with "
                f"optimizer '{optimizer.name}' weight_decay={decay:g}{source}: both shrink the "
                "same weights toward 0, so the penalty is applied twice.",
                "remove the kernel_regularizer, or set the optimizer's "
                "weight_decay = 0"
                + (' (or use optimizer = "adam").' if optimizer.name == "adamw" else "."),
            )
        constraint = layer.kernel_constraint
        if constraint is not None and constraint.name in MAX_NORM_CONSTRAINTS:
            yield finding(
                "TL008",
                path,
                f"{_show_l2(regularizer, l2)} together with "
                f"kernel_constraint {constraint} on the same layer: weight decay and a weight "
                "constraint serve the same purpose, and the lecture notes one is enough.",
                "remove the kernel_regularizer or the kernel_constraint (or compare the two "
                "as variants).",
            )


def _dropout(recipe: Recipe) -> Iterator[Finding]:
    """TL009: dropout after the output layer, or a rate that drops everything."""
    layers = recipe.model.layer_specs()
    output = recipe.model.output_layer()[0]
    for index, layer in enumerate(layers):
        if not isinstance(layer, DropoutLayer):
            continue
        if layer.rate >= 1:
            yield finding(
                "TL009",
                f"model.layers[{index}].rate",
                f"dropout rate={layer.rate:g} drops every input, so nothing reaches the next "
                "layer while training.",
                "use a rate below 1, e.g. rate = 0.5 as in the lecture.",
            )
        elif index > output:
            yield finding(
                "TL009",
                f"model.layers[{index}]",
                f"dropout (rate={layer.rate:g}) after the output layer model.layers[{output}] "
                "zeroes predictions while training, so the loss punishes outputs the model "
                "never made.",
                "move the dropout layer before the output Dense layer.",
            )


def _monitors(recipe: Recipe, dataset: Dataset | None) -> Iterator[Finding]:
    """TL010: early stopping / checkpoint monitors that the run does not log."""
    train = recipe.train
    if dataset is not None:
        logged = logged_names(recipe, dataset)
    else:
        metrics = (
            [m.name for m in train.metrics]
            if train.metrics is not None
            else ["accuracy", "mean_absolute_error"]  # the defaults for classes / regression
        )
        names = ["loss", *metrics]
        logged = names + [f"val_{n}" for n in names]
    checks: list[tuple[str, str, str]] = []
    if train.early_stopping is not None:
        checks.append(
            ("train.early_stopping.monitor", "early stopping", train.early_stopping.monitor)
        )
    if train.checkpoint.monitor is not None:
        checks.append(
            ("train.checkpoint.monitor", "the best-weights checkpoint", train.checkpoint.monitor)
        )
    for path, what, monitor in checks:
        if monitor in logged:
            continue
        close = difflib.get_close_matches(monitor, logged, n=1, cutoff=0.7)
        suggestion = close[0] if close else "val_loss"
        data = f" on dataset '{dataset.name}'" if dataset is not None else ""
        yield finding(
            "TL010",
            path,
            f"{what} monitors {monitor!r}, which this run does not log{data} (it logs "
            f"{', '.join(logged)}), so it can never act on it.",
            f'monitor = "{suggestion}", or add the metric to train.metrics.',
        )


def _regression_loss(recipe: Recipe, dataset: Dataset) -> Iterator[Finding]:
    """TL003: a loss for real-valued targets on class labels."""
    loss = recipe.train.loss.name
    if dataset.task == "regression" or loss not in REGRESSION_LOSSES:
        return
    fix = (
        "use binary_crossentropy with one sigmoid output unit."
        if dataset.task == "binary"
        else "use sparse_categorical_crossentropy with one softmax output unit per class."
    )
    yield finding(
        "TL003",
        "train.loss",
        f"regression loss '{loss}' on the {dataset.n_classes}-class target of dataset "
        f"'{dataset.name}': it treats the class labels as real numbers and its gradient fades "
        "where the output saturates, so it usually trains worse than a crossentropy.",
        fix,
    )


def _percentage_error(recipe: Recipe, dataset: Dataset) -> Iterator[Finding]:
    """TL004: MAPE (loss or metric) on targets that are 0."""
    name = "mean_absolute_percentage_error"
    paths = ["train.loss"] if recipe.train.loss.name == name else []
    paths += [
        f"train.metrics[{i}]" for i, m in enumerate(recipe.train.metrics or ()) if m.name == name
    ]
    if not paths:
        return
    targets = [dataset.y] + ([dataset.y_test] if dataset.y_test is not None else [])
    zeros = sum(int(np.count_nonzero(y == 0)) for y in targets)
    total = sum(len(y) for y in targets)
    if not zeros:
        return
    for path in paths:
        yield finding(
            "TL004",
            path,
            f"{name} divides by the target, and {zeros} of {total} targets of dataset "
            f"'{dataset.name}' are 0: Keras divides by a tiny epsilon there, so those rows "
            "dominate the value.",
            "use mean_absolute_error (or shift the target so that no value is 0).",
        )


def _head(recipe: Recipe, dataset: Dataset) -> Iterator[Finding]:
    """TL012: a classification head on a real-valued target, or crossentropy on raw outputs."""
    index, activation = -1, None  # a builder's output activation is unknown here
    if not recipe.model.is_builder:
        index, output = recipe.model.output_layer()
        activation = output.activation.name if output.activation is not None else "linear"
    loss = recipe.train.loss
    crossentropy = loss.name in CROSSENTROPY_LOSSES or loss.name in ONE_HOT_LOSSES
    if dataset.task == "regression":
        parts = []
        if activation in ("sigmoid", "softmax"):
            parts.append(f"a {activation} output (values in [0, 1])")
        if crossentropy:
            parts.append(f"the {loss.name} loss (for class probabilities)")
        if not parts:
            return
        yield finding(
            "TL012",
            "train.loss" if crossentropy else f"model.layers[{index}].activation",
            f"{' and '.join(parts)} on the real-valued target of dataset '{dataset.name}' "
            f"({why_regression(dataset)}): the loss is meaningless there, and training may report "
            "values like a negative crossentropy.",
            'if the target holds class labels, set task = "classification" in the dataset '
            "table; else use a linear output and mean_squared_error.",
        )
    elif (
        loss.name in CROSSENTROPY_LOSSES
        and activation is not None
        and activation not in ("sigmoid", "softmax")
        and not loss.args.get("from_logits", False)
    ):
        yield finding(
            "TL012",
            f"model.layers[{index}].activation",
            f"{loss.name} expects probabilities, but the output layer's activation is "
            f"'{activation}': its values are not in [0, 1], so the loss is clipped and wrong.",
            "use a sigmoid (one unit) or softmax (one unit per class) output, or set "
            "from_logits = true in the loss table.",
        )


def why_regression(dataset: Dataset) -> str:
    """Why the target counts as real-valued (the detection rule, when the data says it)."""
    if dataset.intake is not None:
        return dataset.intake.task_reason
    return "a real-valued target"


# -- layers beyond dense models (TL017-TL020) -----------------------------------------------------
#: Layers whose weights are learned: an augmentation after one perturbs features (TL018).
_TRAINABLE = (DenseLayer, BatchNormLayer, LayerNormLayer, EmbeddingLayer, *SOLO_ONLY_LAYERS)


def _augmentation_order(recipe: Recipe) -> Iterator[Finding]:
    """TL018: an augmentation layer after a trainable layer."""
    trained: tuple[int, str] | None = None
    for index, layer in enumerate(recipe.model.layer_specs()):
        if isinstance(layer, AUGMENTATION_LAYERS) and trained is not None:
            yield finding(
                "TL018",
                f"model.layers[{index}]",
                f"the {layer.type} layer comes after the trainable {trained[1]} layer "
                f"model.layers[{trained[0]}]: it perturbs learned features, not the input "
                "images.",
                "move the augmentation layers to the start of model.layers (after a reshape).",
            )
        elif isinstance(layer, _TRAINABLE) and not isinstance(layer, AUGMENTATION_LAYERS):
            trained = trained or (index, layer.type)


def _shapes(recipe: Recipe, dataset: Dataset) -> Iterator[Finding]:
    """TL017 (a convolution/pooling on inputs without their axes) and TL019 (a window larger
    than its input), found by walking the shapes from the dataset's input shape."""
    try:
        for _ in walk(recipe, dataset.input_shape):
            pass
    except ShapeError as exc:
        layer = recipe.model.layer_specs()[exc.index]
        path = f"model.layers[{exc.index}]"
        if exc.kind == "rank":
            axes = 2 if layer.type.endswith("2d") else 1
            yield finding(
                "TL017",
                path,
                f"{exc} (dataset '{dataset.name}' has input shape {dataset.input_shape}): it "
                "cannot build.",
                "add a reshape layer before it, e.g. "
                f'{{type = "reshape", target_shape = {_channels(dataset.input_shape, axes)}}}.',
            )
        elif exc.kind == "size":
            yield finding(
                "TL019",
                path,
                f"the {layer.type} layer cannot take its input: {exc}.",
                'use a smaller pool_size/kernel_size or strides, padding = "same", or fewer '
                "pooling layers.",
            )


def _channels(shape: tuple[int, ...], axes: int) -> list[int]:
    """A target shape with a channel axis: (28, 28) -> [28, 28, 1]; flat rows -> [n, 1]."""
    if len(shape) == axes:
        return [*shape, 1]
    return [int(np.prod(shape)), 1] if axes == 1 else [*shape, 1]


def _embedding_ids(recipe: Recipe, dataset: Dataset) -> Iterator[Finding]:
    """TL020: an embedding layer on features that are not integer ids in [0, input_dim)."""
    index = next(
        (i for i, x in enumerate(recipe.model.layer_specs()) if isinstance(x, EmbeddingLayer)), None
    )
    if index is None:
        return
    layer = recipe.model.layer_specs()[index]
    assert isinstance(layer, EmbeddingLayer)
    values = np.asarray(dataset.x, dtype=np.float64)
    if not values.size:
        return
    whole = bool(np.isfinite(values).all() and (values == np.round(values)).all())
    low, high = float(values.min()), float(values.max())
    if whole and low >= 0 and high < layer.input_dim:
        return
    found = f"values from {low:g} to {high:g}" if whole else "values that are not whole numbers"
    yield finding(
        "TL020",
        f"model.layers[{index}]",
        f"the embedding layer looks rows up by integer id in [0, {layer.input_dim}), but "
        f"dataset '{dataset.name}' has features with {found}.",
        "feed it integer ids (categorical codes) and set input_dim above the largest id, or use "
        "dense layers on real-valued features.",
    )
