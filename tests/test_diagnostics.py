"""Training diagnostics: dead and saturated units, activation size, kernel gradient norms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import train_tiny

from tricklab.engines.diagnostics import unit_statistics


def test_unit_statistics_by_hand() -> None:
    relu = np.array([[0.0, 1.0, 0.0], [0.0, 2.0, 0.5]])  # unit 0 is 0 for every sample
    stats = unit_statistics(relu, "relu")
    assert stats["dead_fraction"] == pytest.approx(1 / 3)
    assert math.isnan(stats["saturated_fraction"])
    assert stats["mean_abs_activation"] == pytest.approx(3.5 / 6)
    # sigmoid: unit 0 near 1 for both samples, unit 1 near 0 for one of two (not most), unit 2 mid
    sigmoid = np.array([[0.995, 0.001, 0.5], [0.999, 0.5, 0.4]])
    stats = unit_statistics(sigmoid, "sigmoid")
    assert stats["saturated_fraction"] == pytest.approx(1 / 3)
    assert math.isnan(stats["dead_fraction"])
    tanh = np.array([[-0.995, 0.0], [-0.999, 0.0], [0.2, 0.0]])  # unit 0: 2 of 3 near -1
    assert unit_statistics(tanh, "tanh")["saturated_fraction"] == pytest.approx(1 / 2)


def test_diagnostics_rows_and_training_is_untouched(tiny: dict) -> None:
    tiny["model"]["layers"] = [
        {"type": "dense", "units": 6, "activation": "sigmoid"},
        {"type": "dense", "units": 6, "activation": {"name": "leaky_relu", "negative_slope": 0.1}},
        {"type": "dropout", "rate": 0.2},
        {"type": "dense", "units": 1, "activation": "sigmoid"},
    ]
    tiny["train"]["epochs"] = 3
    plain, _ = train_tiny(tiny)
    tiny["diagnostics"] = {"batch_size": 32}
    measured, _ = train_tiny(tiny)
    assert measured.history == plain.history  # inference-mode probe: no RNG, no updates
    rows = measured.diagnostics
    assert [(r["epoch"], r["layer"], r["activation"]) for r in rows[:2]] == [
        (0, "dense_0", "sigmoid"),
        (0, "dense_1", "leaky_relu"),
    ]
    assert len(rows) == 2 * 4  # two hidden layers, epoch 0 (untrained) + 3 epochs
    for row in rows:
        assert row["units"] == 6
        assert row["kernel_grad_norm"] > 0
        assert row["mean_abs_activation"] > 0
    assert all(r["dead_fraction"] == 0.0 for r in rows if r["activation"] == "leaky_relu")


def test_deep_sigmoid_gradients_vanish_towards_the_input(tiny: dict) -> None:
    layers = [{"type": "dense", "units": 16, "activation": "sigmoid"} for _ in range(5)]
    tiny["model"]["layers"] = [*layers, {"type": "dense", "units": 1, "activation": "sigmoid"}]
    tiny["diagnostics"] = True
    tiny["train"]["epochs"] = 1
    result, _ = train_tiny(tiny)
    first = [r for r in result.diagnostics if r["epoch"] == 0]
    norms = [r["kernel_grad_norm"] for r in first]
    assert norms[0] < norms[-1] / 10  # each sigmoid layer scales the gradient by <= 1/4
