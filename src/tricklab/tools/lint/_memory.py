"""TL015: a run that cannot fit in memory, found before Keras starts.

The estimate of one run: float32 weights, their gradients and the optimizer's slots (Adam keeps
two per weight), plus the activations of one batch kept for the backward pass (each layer's
output, and its gradient). It is a lower bound of what XLA allocates; above the machine's
available memory the run cannot train (an error), above half of it the machine will swap or a
second worker will not fit (a warning).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from tricklab.spec import (
    AUGMENTATION_LAYERS,
    CONV_LAYERS,
    GLOBAL_POOLING_LAYERS,
    POOLING_LAYERS,
    ActivationLayer,
    BatchNormLayer,
    BidirectionalLayer,
    DenseLayer,
    DropoutLayer,
    EmbeddingLayer,
    FlattenLayer,
    GaussianNoiseLayer,
    GRULayer,
    LayerNormLayer,
    LSTMLayer,
    Recipe,
    ReshapeLayer,
    SeparableConv2DLayer,
)
from tricklab.tools.lint._findings import Finding, finding

BYTES = 4  # float32
#: Optimizer slots per weight (the rest keep one or none: momentum, or plain sgd's none).
SLOTS = {"adam": 2, "adamw": 2, "adamax": 2, "nadam": 2, "lamb": 2, "lion": 1, "sgd": 1}


@dataclass(frozen=True)
class MemoryEstimate:
    """One run's parameters and the bytes its training needs at least."""

    params: int
    activations: int  # floats of one batch's layer outputs
    bytes: int


class ShapeError(ValueError):
    """A layer that cannot take its input: ``index`` of the layer, ``kind`` "rank" (too few
    axes: a convolution on flat rows) or "size" (a window larger than its input)."""

    def __init__(self, index: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.index, self.kind = index, kind


def walk(
    recipe: Recipe, input_shape: tuple[int, ...]
) -> Iterator[tuple[int, tuple[int, ...], int]]:
    """(layer index, output shape, parameters) of every layer copy, without Keras; raises
    :class:`ShapeError` at the first layer that cannot take its input."""
    shape = tuple(input_shape)
    for index, spec in enumerate(recipe.model.layer_specs()):
        for _ in range(spec.repeat):
            shape, params = _layer(spec, shape, index)
            yield index, shape, params


def _layer(spec: Any, shape: tuple[int, ...], index: int) -> tuple[tuple[int, ...], int]:
    """One layer's output shape and parameter count (Keras's ``count_params()``)."""
    if isinstance(spec, DenseLayer):
        return (*shape[:-1], spec.units), shape[-1] * spec.units + (
            spec.units if spec.use_bias else 0
        )
    if isinstance(spec, FlattenLayer):
        return (math.prod(shape),), 0
    if isinstance(spec, BatchNormLayer):
        return shape, shape[-1] * 4  # gamma, beta and the two moving statistics
    if isinstance(spec, LayerNormLayer):
        return shape, shape[-1] * (int(spec.center) + int(spec.scale))
    if isinstance(spec, ReshapeLayer):
        if math.prod(spec.target_shape) != math.prod(shape):
            raise ShapeError(index, "size", f"cannot reshape {shape} into {spec.target_shape}")
        return tuple(spec.target_shape), 0
    if isinstance(spec, EmbeddingLayer):
        return (*shape, spec.output_dim), spec.input_dim * spec.output_dim
    if isinstance(spec, LSTMLayer | GRULayer):
        return _recurrent(spec, _need(spec, shape, 2, index))
    if isinstance(spec, BidirectionalLayer):
        out, params = _recurrent(spec.layer, _need(spec, shape, 2, index))
        width = out[-1] * (2 if spec.merge_mode == "concat" else 1)
        return (*out[:-1], width), 2 * params
    if isinstance(spec, CONV_LAYERS):
        return _conv(spec, shape, index)
    if isinstance(spec, POOLING_LAYERS):
        axes = 1 if spec.type.endswith("1d") else 2
        _need(spec, shape, axes + 1, index)
        strides = spec.pool_size if spec.strides is None else spec.strides
        return _windows(spec, shape, spec.pool_size, strides, 1, index), 0
    if isinstance(spec, GLOBAL_POOLING_LAYERS):
        return (_need(spec, shape, 3 if spec.type.endswith("2d") else 2, index)[-1],), 0
    if isinstance(spec, (DropoutLayer, GaussianNoiseLayer, ActivationLayer, *AUGMENTATION_LAYERS)):
        return shape, 0
    raise TypeError(f"no memory estimate for layer {type(spec).__name__}")


def _need(spec: Any, shape: tuple[int, ...], rank: int, index: int) -> tuple[int, ...]:
    if len(shape) != rank:
        raise ShapeError(
            index, "rank", f"a {spec.type} layer takes inputs of {rank} axes, got {shape}"
        )
    return shape


def _recurrent(spec: Any, shape: tuple[int, ...]) -> tuple[tuple[int, ...], int]:
    units, features = spec.units, shape[-1]
    if isinstance(spec, LSTMLayer):
        params = 4 * (units * (features + units) + (units if spec.use_bias else 0))
    else:  # GRU: 3 gates; reset_after keeps a second (recurrent) bias
        bias = units * (2 if spec.reset_after else 1) if spec.use_bias else 0
        params = 3 * (units * (features + units) + bias)
    return ((shape[0], units) if spec.return_sequences else (units,)), params


def _conv(spec: Any, shape: tuple[int, ...], index: int) -> tuple[tuple[int, ...], int]:
    axes = 1 if spec.type == "conv1d" else 2
    _need(spec, shape, axes + 1, index)
    channels = shape[-1]
    kernel = math.prod(_per_axis(spec.kernel_size, axes, index))
    out = _windows(spec, shape, spec.kernel_size, spec.strides, spec.dilation_rate, index)
    bias = spec.filters if spec.use_bias else 0
    if isinstance(spec, SeparableConv2DLayer):
        depth = channels * spec.depth_multiplier
        params = kernel * depth + depth * spec.filters + bias
    else:
        params = kernel * channels * spec.filters + bias
    return (*out[:-1], spec.filters), params


def _per_axis(size: int | tuple[int, ...], axes: int, index: int) -> tuple[int, ...]:
    """One value per spatial axis (Keras repeats a single one)."""
    values = (size,) if isinstance(size, int) else tuple(size)
    if len(values) not in (1, axes):
        raise ShapeError(index, "size", f"{list(values)} gives {len(values)} sizes for {axes} axes")
    return values * axes if len(values) == 1 else values


def _windows(
    spec: Any, shape: tuple[int, ...], size: Any, strides: Any, dilation: Any, index: int
) -> tuple[int, ...]:
    """The spatial axes after sliding a window (Keras's "valid"/"same" padding)."""
    axes = len(shape) - 1
    out = []
    for n, k, s, d in zip(
        shape[:-1],
        _per_axis(size, axes, index),
        _per_axis(strides, axes, index),
        _per_axis(dilation, axes, index),
        strict=True,
    ):
        span = d * (k - 1) + 1
        length = -(-n // s) if spec.padding == "same" else (n - span) // s + 1
        if length < 1:
            raise ShapeError(
                index,
                "size",
                f"its window of {span} on an axis of {n} leaves {max(length, 0)} positions",
            )
        out.append(length)
    return (*out, shape[-1])


def estimate(recipe: Recipe, input_shape: tuple[int, ...]) -> MemoryEstimate:
    """Parameters and training memory of ``recipe`` on inputs of ``input_shape``, without Keras.

    Raises :class:`ShapeError` when a layer cannot take its input (lint reports that itself)."""
    params, outputs = 0, 0
    for _, shape, count in walk(recipe, input_shape):
        params += count
        outputs += math.prod(shape)
    slots = SLOTS.get(recipe.train.optimizer.name, 2)
    activations = outputs * recipe.train.batch_size
    # weights + gradients + slots, and each activation with its gradient
    total = BYTES * (params * (2 + slots) + 2 * activations)
    return MemoryEstimate(params=params, activations=activations, bytes=total)


def available_memory() -> int:
    """Bytes the machine can give a new process now (psutil: free plus reclaimable cache)."""
    import psutil

    return int(psutil.virtual_memory().available)


def memory_finding(recipe: Recipe, input_shape: tuple[int, ...], available: int) -> Finding | None:
    """TL015 for one recipe: an error above ``available`` bytes, a warning above half of them.
    None for a builder model: its layers are known only by running the builder."""
    if recipe.model.is_builder:
        return None
    try:
        need = estimate(recipe, input_shape)
    except ShapeError:
        return None  # TL017 / TL019 name the layer
    if need.bytes <= available / 2:
        return None
    error = need.bytes > available
    found = finding(
        "TL015",
        "model.layers",
        f"one run needs at least {_size(need.bytes)} ({need.params:,} parameters with their "
        f"gradients and optimizer slots, {need.activations:,} activation values per batch of "
        f"{recipe.train.batch_size}): {'more than' if error else 'over half of'} the "
        f"{_size(available)} of memory available on this machine.",
        "use fewer or smaller layers, or a smaller batch_size.",
    )
    return found if error else replace(found, severity="warning")


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover
