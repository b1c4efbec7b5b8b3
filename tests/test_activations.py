"""Activation curves (keras.activations + autodiff) and the activations figure."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tricklab.base.errors import TricklabError
from tricklab.tools.activations import (
    PLOTTED,
    SOFTMAX_EXAMPLE,
    activation_curves,
    plot_activations,
    softmax_example,
)


def at(name: str, x: float, slope: float = 0.2) -> tuple[float, float]:
    values, derivatives = activation_curves([name], [x], slope)[name]
    return float(values[0]), float(derivatives[0])


@pytest.mark.parametrize(
    ("name", "x", "value", "derivative"),
    [
        ("sigmoid", 0.0, 0.5, 0.25),
        ("sigmoid", 2.0, 1 / (1 + math.exp(-2)), math.exp(-2) / (1 + math.exp(-2)) ** 2),
        ("tanh", 0.0, 0.0, 1.0),
        ("tanh", 1.0, math.tanh(1), 1 - math.tanh(1) ** 2),
        ("relu", -1.0, 0.0, 0.0),
        ("relu", 2.0, 2.0, 1.0),
        ("elu", -1.0, math.exp(-1) - 1, math.exp(-1)),
        ("elu", 3.0, 3.0, 1.0),
        ("selu", 1.0, 1.0507009873554805, 1.0507009873554805),
        ("swish", 0.0, 0.0, 0.5),
        ("silu", 1.0, 1 / (1 + math.exp(-1)), None),
        ("gelu", 0.0, 0.0, 0.5),
    ],
)
def test_curves_match_known_values(
    name: str, x: float, value: float, derivative: float | None
) -> None:
    got_value, got_derivative = at(name, x)
    assert got_value == pytest.approx(value, abs=1e-5)
    if derivative is not None:
        assert got_derivative == pytest.approx(derivative, abs=1e-5)


@pytest.mark.parametrize("slope", [0.2, 0.01, 0.5])
def test_leaky_relu_slope_is_configurable(slope: float) -> None:
    value, derivative = at("leaky_relu", -1.0, slope)
    assert value == pytest.approx(-slope)
    assert derivative == pytest.approx(slope)
    assert at("leaky_relu", 2.0, slope) == pytest.approx((2.0, 1.0))


def test_derivatives_are_the_slopes_of_the_values() -> None:
    """Autodiff agrees with central differences of the plotted values (away from kinks)."""
    x = np.linspace(-4.9, 4.9, 50)  # never 0
    h = 1e-2
    curves = activation_curves(PLOTTED, x, 0.2)
    ahead = activation_curves(PLOTTED, x + h, 0.2)
    behind = activation_curves(PLOTTED, x - h, 0.2)
    for name in PLOTTED:
        numeric = (ahead[name][0] - behind[name][0]) / (2 * h)
        np.testing.assert_allclose(curves[name][1], numeric, atol=2e-3, err_msg=name)
        assert curves[name][0].dtype == np.float64
        assert curves[name][0].shape == x.shape


def test_softmax_example_is_a_probability_vector() -> None:
    p = softmax_example()
    logits = np.asarray(SOFTMAX_EXAMPLE)
    expected = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(p, expected, rtol=1e-5)
    assert p.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["softmax", "no_such_activation"])
def test_names_without_a_curve_are_rejected(name: str) -> None:
    with pytest.raises(TricklabError, match=name):
        activation_curves([name], [0.0])


@pytest.mark.parametrize("slope", [-0.1, float("nan"), "0.2"])
def test_bad_negative_slope(slope: object, tmp_path: Path) -> None:
    with pytest.raises(TricklabError, match="negative_slope must be a number >= 0"):
        activation_curves(["relu"], [0.0], slope)  # type: ignore[arg-type]
    with pytest.raises(TricklabError, match="negative_slope"):
        plot_activations(tmp_path, slope)  # type: ignore[arg-type]
    assert not (tmp_path / "activations.png").exists()


def test_plot_writes_a_png(tmp_path: Path) -> None:
    from matplotlib.image import imread

    path = plot_activations(tmp_path / "figures", negative_slope=0.1)
    assert path == tmp_path / "figures" / "activations.png"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 50_000  # nine drawn panels, not an empty canvas
    image = imread(path)
    assert image.shape[:2] == (1100, 1300)
    assert image.std() > 0.05  # not a blank image


# The tensorflow backend (tf.GradientTape) is checked in test_schedules.py, in the same
# subprocess as momentum cycling: starting TensorFlow costs seconds.
