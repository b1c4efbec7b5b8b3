"""Activation functions and their derivatives, as the lecture's extra part draws them.

The lecture compares sigmoid, tanh, ReLU, Leaky ReLU and softmax by the shape of the function
and of its derivative: sigmoid's derivative is at most 0.25 and vanishes away from 0, tanh's
reaches 1 at 0, ReLU's is 0 for every negative input (a "dead" neuron stops learning) and Leaky
ReLU keeps a small slope there. :func:`plot_activations` draws those and the newer ELU, SELU,
GELU and swish (SiLU), plus softmax on an example vector.

Values come from ``keras.activations`` and derivatives from automatic differentiation on the
active Keras backend (``jax.grad``, ``tf.GradientTape`` or ``torch.autograd``), so the plot
shows what Keras computes, not formulas typed in again. Keras and matplotlib are imported when
a function is called, not when this module is imported.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tricklab.base import backend as _backend
from tricklab.base.errors import TricklabError

#: The element-wise activations :func:`plot_activations` draws, in panel order.
PLOTTED = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "swish")
#: The example vector of the softmax panel.
SOFTMAX_EXAMPLE = (2.0, 1.0, 0.1, -1.0)
X_RANGE = (-5.0, 5.0)
FILENAME = "activations.png"

_ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}
#: Activations that are not element-wise: no curve (softmax has its own panel).
_NOT_ELEMENTWISE = frozenset({"softmax", "log_softmax", "sparsemax", "glu"})


def activation_curves(
    names: Sequence[str], x: Any, negative_slope: float = 0.2
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (f(x), f'(x))}`` for element-wise Keras activations, as float64 arrays.

    ``names`` are ``keras.activations`` names (``"swish"`` is ``silu``); ``negative_slope`` is
    Leaky ReLU's slope for ``x < 0``. ``f`` is the Keras function and ``f'`` its derivative by
    automatic differentiation on the active backend. At a kink (ReLU at 0) the derivative is
    whatever the backend defines there.
    """
    _check_slope(negative_slope)
    keras = _backend.keras()
    points = np.asarray(x, dtype="float32").reshape(-1)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in names:
        function = _function(keras, name, negative_slope)
        values, derivatives = _value_and_derivative(function, points)
        out[name] = (values.astype("float64"), derivatives.astype("float64"))
    return out


def softmax_example(values: Sequence[float] = SOFTMAX_EXAMPLE) -> np.ndarray:
    """``keras.activations.softmax`` of ``values`` (probabilities that sum to 1)."""
    keras = _backend.keras()
    row = keras.ops.convert_to_tensor(np.asarray([values], dtype="float32"))
    softmax = keras.activations.softmax(row)
    first_row: np.ndarray = np.asarray(keras.ops.convert_to_numpy(softmax))[0]
    return first_row.astype("float64")


def plot_activations(out_dir: Path, negative_slope: float = 0.2) -> Path:
    """Write ``activations.png`` to ``out_dir`` (created if needed) and return its path.

    One figure: a panel per activation in :data:`PLOTTED` with the function and its derivative
    over ``x`` in [-5, 5], and a softmax panel (inputs and output probabilities of
    :data:`SOFTMAX_EXAMPLE`).
    """
    _check_slope(negative_slope)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x = np.linspace(*X_RANGE, 401)
    curves = activation_curves(PLOTTED, x, negative_slope)
    probabilities = softmax_example()

    figure = Figure(figsize=(13, 11), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)  # Agg: renders to files, never to a display
    axes = figure.subplots(3, 3).ravel()
    for ax, name in zip(axes, PLOTTED, strict=False):
        values, derivatives = curves[name]
        ax.axhline(0, color="0.75", linewidth=0.8)
        ax.axvline(0, color="0.75", linewidth=0.8)
        ax.plot(x, values, color="tab:blue", linewidth=2, label=f"{name}(x)")
        ax.plot(
            x, derivatives, color="tab:orange", linewidth=2, linestyle="--",
            label=f"derivative (max {np.max(derivatives):.3g})",
        )  # fmt: skip
        ax.set_title(_title(name, negative_slope))
        ax.set_xlim(*X_RANGE)
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")
    _softmax_panel(axes[len(PLOTTED)], probabilities)
    for ax in axes[len(PLOTTED) + 1 :]:
        ax.set_visible(False)
    figure.suptitle(
        "Activation functions and their derivatives "
        f"(keras.activations, autodiff on {_backend.name()})"
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / FILENAME
    figure.savefig(path)
    return path


def _softmax_panel(ax: Any, probabilities: np.ndarray) -> None:
    inputs = np.asarray(SOFTMAX_EXAMPLE)
    positions = np.arange(len(inputs))
    width = 0.38
    ax.bar(positions - width / 2, inputs, width, color="tab:blue", label="input (logit)")
    bars = ax.bar(
        positions + width / 2, probabilities, width, color="tab:orange", label="softmax output"
    )
    for bar, p in zip(bars, probabilities, strict=True):
        ax.annotate(
            f"{p:.2f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center", va="bottom", fontsize="small",
        )  # fmt: skip
    ax.axhline(0, color="0.75", linewidth=0.8)
    ax.set_xticks(positions, [f"{v:g}" for v in inputs])
    ax.set_xlabel("input")
    ax.set_title(f"softmax: probabilities sum to {probabilities.sum():.2f}")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper right", fontsize="small")


def _title(name: str, negative_slope: float) -> str:
    if name == "leaky_relu":
        return f"leaky_relu (negative_slope={negative_slope:g})"
    if name in _ALIASES:
        return f"{name} ({_ALIASES[name]})"
    return name


def _check_slope(negative_slope: float) -> None:
    if (
        isinstance(negative_slope, bool)
        or not isinstance(negative_slope, int | float)
        or not math.isfinite(negative_slope)
        or negative_slope < 0
    ):
        raise TricklabError(
            f"negative_slope must be a number >= 0. Received: negative_slope={negative_slope!r}."
        )


def _function(keras: Any, name: str, negative_slope: float) -> Callable[[Any], Any]:
    canonical = _ALIASES.get(name, name)
    function: Callable[..., Any] | None = getattr(keras.activations, canonical, None)
    if canonical in _NOT_ELEMENTWISE or not callable(function) or canonical.startswith("_"):
        raise TricklabError(
            f"'{name}' is not an element-wise keras activation; it has no curve to draw."
        )
    if canonical == "leaky_relu":
        return lambda t: function(t, negative_slope=negative_slope)
    return function


def _value_and_derivative(
    function: Callable[[Any], Any], x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``f(x)`` and ``f'(x)`` element by element, differentiated by the active backend."""
    backend = _backend.name()
    if backend == "jax":
        import jax

        values = function(x)
        derivatives = jax.vmap(jax.grad(lambda t: function(t)))(x)
    elif backend == "tensorflow":
        import tensorflow as tf

        points = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(points)
            values = function(points)
        # Element-wise f: the gradient of sum(f(x)) is f'(x) at every point.
        derivatives = tape.gradient(values, points)
    elif backend == "torch":
        import torch

        points = torch.tensor(x, requires_grad=True)
        values = function(points)
        (derivatives,) = torch.autograd.grad(values.sum(), points)
        values = values.detach()
    else:  # pragma: no cover - _backend only selects the three above
        raise TricklabError(f"no automatic differentiation for backend '{backend}'.")
    return _numpy(values), _numpy(derivatives)


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch
        value = value.detach().cpu()
    return np.asarray(value)
