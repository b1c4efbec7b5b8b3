"""How a variant failed, named by what was seen rather than by what was not.

"Did not learn" used to mean both "its loss never moved" and "its interval reaches chance"; the
second is absence of evidence, and a variant can learn a constant (MAE on a binary target learns
to output one value for every patient). Each mode here is one observation:

* :attr:`FailureMode.LOSS_FLAT`: the training loss of every run never fell 1 % below its first
  epoch's (:func:`loss_stalled`).
* :attr:`FailureMode.ONE_CLASS`: in every run, every test row gets the same class (threshold 0.5
  for one output, argmax for several).
* :attr:`FailureMode.ONE_VALUE`: regression; in every run the test predictions' standard
  deviation is below 1e-3 of the test targets'.
* :attr:`FailureMode.AT_CHANCE`: the variant's (corrected) interval of the primary metric
  reaches its chance level: not shown better than chance, which is not the same as "at chance".
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

import numpy as np

#: A training loss that never falls this fraction below its first epoch's has not moved.
STALL_FRACTION = 0.01
#: Regression predictions spread less than this fraction of the targets' are one value.
ONE_VALUE_RATIO = 1e-3


class FailureMode(enum.StrEnum):
    LOSS_FLAT = "loss_flat"
    ONE_CLASS = "one_class"
    ONE_VALUE = "one_value"
    AT_CHANCE = "at_chance"


def loss_stalled(history: Mapping[str, Sequence[float]]) -> bool:
    """Whether the training loss never fell more than 1 % below its first epoch's value."""
    losses = np.asarray(history.get("loss", []), dtype=float)
    losses = losses[np.isfinite(losses)]
    if losses.size < 2:
        return False
    first = float(losses[0])
    return bool(losses[1:].min() >= first - STALL_FRACTION * abs(first))


def predicted_classes(outputs: np.ndarray) -> np.ndarray:
    """The class each row is given: output >= 0.5 for one output, else the argmax."""
    outputs = np.asarray(outputs, dtype=float)
    if outputs.ndim == 1 or outputs.shape[-1] == 1:
        return (outputs.reshape(len(outputs)) >= 0.5).astype(int)
    return np.asarray(np.argmax(outputs, axis=-1))


def predicts_one_class(outputs: np.ndarray) -> bool:
    """Whether every row of ``outputs`` gets the same class."""
    return len(outputs) > 0 and np.unique(predicted_classes(outputs)).size == 1


def predicts_one_value(predictions: np.ndarray, targets: np.ndarray) -> bool:
    """Whether the predictions' spread is below 1e-3 of the targets' (regression)."""
    predictions = np.asarray(predictions, dtype=float).reshape(len(predictions))
    spread = float(np.std(np.asarray(targets, dtype=float)))
    return len(predictions) > 0 and float(np.std(predictions)) < ONE_VALUE_RATIO * spread
