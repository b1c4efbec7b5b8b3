"""TL015: a run that cannot fit in memory, found before Keras starts.

The estimate of one run: float32 weights, their gradients and the optimizer's slots (Adam keeps
two per weight), plus the activations of one batch kept for the backward pass (each layer's
output, and its gradient). It is a lower bound of what XLA allocates; above the machine's
available memory the run cannot train (an error), above half of it the machine will swap or a
second worker will not fit (a warning).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from tricklab.spec import (
    ActivationLayer,
    BatchNormLayer,
    DenseLayer,
    DropoutLayer,
    FlattenLayer,
    GaussianNoiseLayer,
    Recipe,
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


def estimate(recipe: Recipe, input_shape: tuple[int, ...]) -> MemoryEstimate:
    """Parameters and training memory of ``recipe`` on inputs of ``input_shape``, without Keras."""
    shape, params, outputs = tuple(input_shape), 0, 0
    for spec in recipe.model.layers:
        for _ in range(spec.repeat):
            if isinstance(spec, DenseLayer):
                params += shape[-1] * spec.units + (spec.units if spec.use_bias else 0)
                shape = (*shape[:-1], spec.units)
            elif isinstance(spec, FlattenLayer):
                shape = (math.prod(shape),)
            elif isinstance(spec, BatchNormLayer):
                params += shape[-1] * 4  # gamma, beta and the two moving statistics
            elif not isinstance(spec, DropoutLayer | GaussianNoiseLayer | ActivationLayer):
                raise TypeError(f"no memory estimate for layer {type(spec).__name__}")
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
    """TL015 for one recipe: an error above ``available`` bytes, a warning above half of them."""
    need = estimate(recipe, input_shape)
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
