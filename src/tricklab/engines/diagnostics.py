"""Training diagnostics: what the activation functions do inside the network, epoch by epoch.

With ``diagnostics = true`` in a study, every run measures, for each hidden layer, on a fixed
batch of validation samples (the same batch every epoch, inference mode, so training itself is
untouched):

``dead_fraction``
    ReLU-family layers: the share of units that output 0 for every sample of the batch (a dead
    unit gets no gradient and never recovers -- the lecture's argument for leaky ReLU).
``saturated_fraction``
    Bounded activations (sigmoid, tanh, ...): the share of units within 1 % of a bound for
    most samples (their derivative is nearly 0: the vanishing-gradient problem).
``mean_abs_activation``
    The mean absolute output of the layer.
``kernel_grad_norm``
    The L2 norm of the gradient of the data loss with respect to the layer's kernel; shrinking
    towards the first layers means vanishing gradients.

Rows are written to ``diagnostics.csv`` in the run directory: epoch 0 is the untrained model.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from tricklab.base import backend as _backend

#: Activations whose units can die (output exactly 0 for every input in a region).

RELU_FAMILY = frozenset(
    {
        "relu",
        "relu6",
        "leaky_relu",
        "elu",
        "selu",
        "gelu",
        "silu",
        "celu",
        "mish",
        "hard_silu",
        "softplus",
        "sparse_plus",
    }
)
#: Bounded activations and their bounds.
BOUNDS: dict[str, tuple[float, float]] = {
    "sigmoid": (0.0, 1.0),
    "hard_sigmoid": (0.0, 1.0),
    "sparse_sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "hard_tanh": (-1.0, 1.0),
    "softsign": (-1.0, 1.0),
}
DEAD_TOLERANCE = 1e-6
SATURATION_MARGIN = 0.01  # within 1 % of the range from a bound
COLUMNS = (
    "epoch",
    "layer",
    "activation",
    "units",
    "dead_fraction",
    "saturated_fraction",
    "mean_abs_activation",
    "kernel_grad_norm",
)


def hidden_layers(model: Any) -> list[tuple[Any, Any, str]]:
    """(Dense layer, layer whose output is its activation, activation name) for hidden layers.

    A parameterised activation (``{name = "leaky_relu", negative_slope = 0.1}``) is a layer of
    its own right after its Dense layer; its output is what the Dense layer's units emit.
    """
    keras = _backend.keras()
    layers = list(model.layers)
    dense = [i for i, layer in enumerate(layers) if isinstance(layer, keras.layers.Dense)]
    out = []
    for i in dense[:-1]:  # the last Dense layer is the output layer
        layer, emitter, name = layers[i], layers[i], _activation_name(layers[i].activation)
        if i + 1 < len(layers) and not isinstance(layers[i + 1], keras.layers.Dense):
            follower = layers[i + 1]
            follower_name = _layer_activation_name(keras, follower)
            if follower_name is not None and name == "linear":
                emitter, name = follower, follower_name
        out.append((layer, emitter, name))
    return out


def _activation_name(function: Any) -> str:
    return getattr(function, "__name__", str(function))


def _layer_activation_name(keras: Any, layer: Any) -> str | None:
    known = {
        keras.layers.LeakyReLU: "leaky_relu",
        keras.layers.ELU: "elu",
        keras.layers.ReLU: "relu",
        keras.layers.Softmax: "softmax",
    }
    for cls, name in known.items():
        if isinstance(layer, cls):
            return name
    if isinstance(layer, keras.layers.Activation):
        return _activation_name(layer.activation)
    return None


def unit_statistics(activations: np.ndarray, name: str) -> dict[str, float]:
    """Dead and saturated shares and mean |activation| of one layer's (samples, units) output."""
    values = np.asarray(activations, dtype="float64").reshape(len(activations), -1)
    dead = saturated = math.nan
    if name in RELU_FAMILY:
        dead = float(np.mean(np.all(np.abs(values) <= DEAD_TOLERANCE, axis=0)))
    if name in BOUNDS:
        low, high = BOUNDS[name]
        margin = SATURATION_MARGIN * (high - low)
        near = (values <= low + margin) | (values >= high - margin)
        saturated = float(np.mean(np.mean(near, axis=0) > 0.5))
    return {
        "dead_fraction": dead,
        "saturated_fraction": saturated,
        "mean_abs_activation": float(np.mean(np.abs(values))),
    }


def make_callback(x: np.ndarray, y: np.ndarray, every: int = 1) -> Any:
    """A Keras callback that records the diagnostics rows (``.rows``) of the model it trains."""
    keras = _backend.keras()
    callback: Any = keras.callbacks.Callback  # Keras is untyped: a base mypy accepts

    class Diagnostics(callback):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[dict[str, Any]] = []
            self.seconds = 0.0  # time spent measuring (what diagnostics cost this run)

        def on_train_begin(self, logs: Any = None) -> None:
            started = time.perf_counter()
            self._layers = hidden_layers(self.model)
            self._probe = keras.Model(
                self.model.inputs[0], [emitter.output for _, emitter, _ in self._layers]
            )
            self._gradients = kernel_gradients(self.model, [d for d, _, _ in self._layers])
            self._record(0)
            self.seconds += time.perf_counter() - started

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if (epoch + 1) % every == 0:
                started = time.perf_counter()
                self._record(epoch + 1)
                self.seconds += time.perf_counter() - started

        def _record(self, epoch: int) -> None:
            outputs = self._probe(x, training=False)
            outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
            norms = self._gradients(x, y)
            for (layer, _, name), output, norm in zip(self._layers, outputs, norms, strict=True):
                stats = unit_statistics(keras.ops.convert_to_numpy(output), name)
                self.rows.append(
                    {
                        "epoch": epoch,
                        "layer": layer.name,
                        "activation": name,
                        "units": int(layer.units),
                        **stats,
                        "kernel_grad_norm": norm,
                    }
                )

    return Diagnostics()


def kernel_gradients(model: Any, layers: list[Any]) -> Any:
    """A function (x, y) -> L2 norms of d(data loss)/d(kernel) for ``layers``, per backend."""
    keras = _backend.keras()
    backend = keras.backend.backend()
    kernels = [layer.kernel for layer in layers]
    function = model.loss if callable(model.loss) else keras.losses.get(model.loss)

    def loss(y: Any, predictions: Any) -> Any:  # a loss function gives one value per sample
        return keras.ops.mean(function(y, predictions))

    if backend == "jax":
        return _jax_gradients(model, kernels, loss)
    if backend == "tensorflow":
        return _tensorflow_gradients(model, kernels, loss)
    return _torch_gradients(model, kernels, loss)


def _jax_gradients(model: Any, kernels: list[Any], loss_fn: Any) -> Any:
    import jax
    import jax.numpy as jnp

    trainable = model.trainable_variables
    positions = [next(i for i, v in enumerate(trainable) if v is k) for k in kernels]

    @jax.jit
    def norms(values: list[Any], non_trainable: list[Any], x: Any, y: Any) -> Any:
        def loss(values: list[Any]) -> Any:
            predictions, _ = model.stateless_call(values, non_trainable, x, training=False)
            return loss_fn(y, predictions)

        grads = jax.grad(loss)(values)
        return jnp.stack([jnp.linalg.norm(grads[i]) for i in positions])

    def call(x: Any, y: Any) -> list[float]:
        values = [v.value for v in trainable]
        fixed = [v.value for v in model.non_trainable_variables]
        return [float(n) for n in np.asarray(norms(values, fixed, x, y))]

    return call


def _tensorflow_gradients(model: Any, kernels: list[Any], loss_fn: Any) -> Any:
    import tensorflow as tf

    def call(x: Any, y: Any) -> list[float]:
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=False))
        grads = tape.gradient(loss, [k.value for k in kernels])
        return [float(tf.norm(g)) if g is not None else 0.0 for g in grads]

    return call


def _torch_gradients(model: Any, kernels: list[Any], loss_fn: Any) -> Any:
    import torch

    def call(x: Any, y: Any) -> list[float]:
        model.zero_grad()
        loss = loss_fn(torch.as_tensor(y), model(x, training=False))
        grads = torch.autograd.grad(loss, [k.value for k in kernels], allow_unused=True)
        return [float(torch.linalg.norm(g)) if g is not None else 0.0 for g in grads]

    return call
