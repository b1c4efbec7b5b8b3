"""A model builder for tricklab (``examples/own-model.toml``): any Keras model, not only the
layers a study file can list.

tricklab imports this file and calls ``build(input_shape, outputs, **args)`` after seeding the
run, where ``input_shape`` is one row's shape (no batch axis), ``outputs`` the output units the
data needs (1 for a binary or regression target, the class count for a multiclass one) and
``args`` the study's ``[model] args`` table (variants may change it). It returns an uncompiled
``keras.Model`` with output shape ``(None, outputs)``; the study's ``[train]`` compiles and trains
it. tricklab adds no output activation: the model carries its own.

A builder does not know the loss, so this one picks its output activation from ``outputs`` and
the ``task`` argument: one output is a sigmoid probability (binary) unless ``task =
"regression"`` (linear), several outputs a softmax over the classes.
"""

from __future__ import annotations

import keras


def build(
    input_shape: tuple[int, ...],
    outputs: int,
    *,
    width: int = 32,
    depth: int = 2,
    dropout: float = 0.0,
    residual: bool = False,
    task: str = "classification",
) -> keras.Model:
    """An MLP of ``depth`` blocks of ``width`` ReLU units, with ``dropout`` after each block
    and, with ``residual = true``, skip connections around the blocks after the first."""
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
    for block in range(depth):
        h = keras.layers.Dense(width, activation="relu", name=f"block{block}")(x)
        if dropout:
            h = keras.layers.Dropout(dropout)(h)
        x = keras.layers.Add()([x, h]) if residual and block else h
    activation = "sigmoid" if outputs == 1 else "softmax"
    if task == "regression":  # one real value: no squashing
        activation = "linear"
    y = keras.layers.Dense(outputs, activation=activation, name="output")(x)
    return keras.Model(inputs, y, name="mlp")
