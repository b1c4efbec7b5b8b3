"""The LR range test: suggestion logic, loss recording, and a run on the thoracic data."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tricklab.base import backend as _backend
from tricklab.base.errors import SpecError, TricklabError
from tricklab.spec import StudySpec
from tricklab.tools.lrfind import (
    LRFindResult,
    _recipe,
    _recorder,
    exponential_lrs,
    lr_find,
    lr_find_command,
    smooth,
    suggest_lr,
)

STUDY = """\
name = "tiny-thoracic"
dataset = "thoracic"
seeds = 1

[model]
layers = [
  {type = "dense", units = 8, activation = "relu"},
  {type = "dense", units = 1, activation = "sigmoid"},
]

[train]
loss = "binary_crossentropy"
optimizer = {name = "adam", beta_1 = 0.8}
batch_size = 16

[variants]
base = {}
sgd = {"train.optimizer" = "sgd"}
"""


@pytest.fixture(scope="module")
def study_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("study") / "tiny-thoracic.toml"
    path.write_text(STUDY, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def spec(study_file: Path) -> StudySpec:
    return StudySpec.from_file(study_file)


# -- the numbers ---------------------------------------------------------------------------------
def test_smooth_is_fastai_bias_corrected_ema() -> None:
    losses = [1.0, 2.0, 3.0]
    beta = 0.98
    a1 = (1 - beta) * 1.0
    a2 = beta * a1 + (1 - beta) * 2.0
    a3 = beta * a2 + (1 - beta) * 3.0
    expected = [a1 / (1 - beta), a2 / (1 - beta**2), a3 / (1 - beta**3)]
    np.testing.assert_allclose(smooth(losses), expected)
    assert smooth([5.0] * 10) == pytest.approx([5.0] * 10)  # a constant stays constant


def test_exponential_lrs_are_keras_exponential_decay() -> None:
    keras = _backend.keras()
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-7, 60, 1e8)
    lrs = exponential_lrs(60, 1e-7, 10.0)
    for step in (0, 1, 30, 59):
        keras_lr = float(keras.ops.convert_to_numpy(schedule(step)))
        assert keras_lr == pytest.approx(lrs[step], rel=1e-4)
    assert exponential_lrs(60, 1e-7, 10.0, count=61)[-1] == pytest.approx(10.0)


def synthetic(n: int = 161) -> tuple[np.ndarray, np.ndarray]:
    """A loss that falls fastest at lr = 1e-3, bottoms out, then blows up."""
    x = np.linspace(-7, 1, n)  # log10(lr), 0.05 apart
    loss = 1.5 - np.tanh(1.5 * (x + 3)) + np.exp(4 * (x - 0.5))
    return 10.0**x, loss


def test_suggestion_is_the_steepest_descent() -> None:
    lrs, loss = synthetic()
    assert math.log10(suggest_lr(lrs, loss)) == pytest.approx(-3, abs=0.051)


def test_suggestion_ignores_the_start_and_the_diverged_tail() -> None:
    lrs, loss = synthetic()
    noisy = loss.copy()
    noisy[1] = noisy[0] - 5  # a plunge among the first points (the average still settling)
    noisy[-20:-10] = 50.0  # the diverging tail, after the minimum
    noisy[-10:] = np.nan  # ... and what follows a non-finite loss
    noisy[-3] = -100.0
    assert math.log10(suggest_lr(lrs, noisy)) == pytest.approx(-3, abs=0.051)
    noisy[-5:] = np.inf
    assert math.log10(suggest_lr(lrs, noisy)) == pytest.approx(-3, abs=0.051)


def test_suggestion_fallbacks() -> None:
    lrs = np.geomspace(1e-6, 1.0, 20)
    rising = np.linspace(1.0, 3.0, 20)  # the loss only rises: a tenth of the lowest point's lr
    assert suggest_lr(lrs, rising) == pytest.approx(lrs[5] / 10)
    assert suggest_lr(lrs[:2], rising[:2]) == pytest.approx(lrs[0])
    assert suggest_lr(lrs, np.full(20, np.nan)) == lrs[0]
    with pytest.raises(ValueError):
        suggest_lr(lrs, rising[:5])


# -- recording ------------------------------------------------------------------------------------
def test_recorder_recovers_each_batch_loss() -> None:
    """Keras logs the running mean of the epoch; the recorder gets the loss of each batch."""
    keras = _backend.keras()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(70, 4)).astype("float32")  # 16, 16, 16, 16, 6 per epoch
    y = (x.sum(axis=1) > 0).astype("float32")[:, None]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.SGD(learning_rate=0.0), "binary_crossentropy",
                  steps_per_execution=1)  # fmt: skip
    recorder = _recorder(keras)(steps=12, n_train=70, batch_size=16, stop_factor=4.0)
    model.fit(x, y, batch_size=16, epochs=5, shuffle=False, verbose=0, callbacks=[recorder])
    bce = keras.losses.BinaryCrossentropy()
    p = model.predict(x, verbose=0)
    per_batch = [float(bce(y[i : i + 16], p[i : i + 16])) for i in range(0, 70, 16)]
    assert len(recorder.losses) == 12  # stopped after `steps` batches, mid-epoch
    np.testing.assert_allclose(recorder.losses, (per_batch * 3)[:12], rtol=1e-4)
    assert not recorder.diverged


def test_recorder_stops_when_the_smoothed_loss_diverges() -> None:
    keras = _backend.keras()
    recorder = _recorder(keras)(steps=100, n_train=1000, batch_size=10, stop_factor=4.0)
    recorder.set_model(SimpleNamespace(stop_training=False))
    recorder.on_epoch_begin(0)
    losses = [1.0] * 10 + [0.5] * 20 + [50.0] * 20
    total = 0.0
    for i, loss in enumerate(losses):
        total += loss * 10
        recorder.on_train_batch_end(i, {"loss": total / (10 * (i + 1))})
        if recorder.model.stop_training:
            break
    assert recorder.diverged
    np.testing.assert_allclose(recorder.losses, losses[: len(recorder.losses)], rtol=1e-9)
    stop = len(recorder.losses)
    smoothed = smooth(recorder.losses)
    assert smoothed[-1] > 4 * smoothed.min()
    assert smoothed[-2] <= 4 * smoothed[: stop - 1].min()  # it stopped at the first such batch


# -- a real run ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def result(spec: StudySpec) -> LRFindResult:
    # BCE after a sigmoid is bounded (Keras clips at 1e-7): a wide range and a low stop_factor
    # make this small model diverge within 60 steps.
    return lr_find(spec, "base", steps=60, min_lr=1e-4, max_lr=1e4, stop_factor=2.0)


def test_lr_find_on_thoracic(result: LRFindResult, tmp_path: Path) -> None:
    n = len(result.lrs)
    assert result.study == "tiny-thoracic" and result.variant == "base"
    assert len(result.losses) == len(result.smoothed) == n
    # Geometric from min_lr: every step multiplies the rate by (max/min) ** (1/steps).
    assert result.lrs[0] == pytest.approx(1e-4)
    np.testing.assert_allclose(result.lrs[1:] / result.lrs[:-1], 1e8 ** (1 / 60), rtol=1e-9)
    # It diverged, stopped early, and suggests a rate below the divergence.
    assert result.diverged_lr is not None and n < 60
    assert result.diverged_lr == result.lrs[-1]
    assert 1e-4 <= result.suggestion <= 1e4
    assert result.suggestion < result.diverged_lr
    assert result.suggestion in result.lrs
    assert np.isfinite(result.losses[:10]).all()
    assert result.losses[0] == pytest.approx(0.69, abs=0.15)  # about log(2) at the start
    path = result.plot(tmp_path / "plots" / "lr.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 20_000


def test_lr_find_keeps_the_variant_optimizer(spec: StudySpec) -> None:
    recipe = _recipe(spec, "base", steps=60, min_lr=1e-7, max_lr=10.0)
    optimizer = recipe.train.optimizer
    assert optimizer.name == "adam" and optimizer.args["beta_1"] == 0.8
    schedule = optimizer.args["learning_rate"]
    assert schedule.name == "exponential_decay"
    assert schedule.args == {
        "initial_learning_rate": 1e-7,
        "decay_steps": 60,
        "decay_rate": pytest.approx(1e8),
    }
    assert recipe.train.steps_per_execution == 1
    assert recipe.model == spec.variants["base"].model
    assert _recipe(spec, "sgd", steps=5, min_lr=1e-3, max_lr=1.0).train.optimizer.name == "sgd"


def test_lr_find_command_writes_the_plot(study_file: Path, tmp_path: Path) -> None:
    result, png = lr_find_command(study_file, "sgd", tmp_path / "out", 12, 1e-3, 1.0)
    assert png == tmp_path / "out" / "tiny-thoracic.sgd.lr_find.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.variant == "sgd" and len(result.lrs) == 12
    assert 1e-3 <= result.suggestion <= 1.0


def test_bad_arguments(spec: StudySpec) -> None:
    with pytest.raises(SpecError, match=r"no variant named 'bsae'.*Did you mean 'base'"):
        lr_find(spec, "bsae")
    with pytest.raises(SpecError, match=r"no variant named 'x'.*Expected one of: base, sgd\."):
        lr_find(spec, "x")
    bad: list[tuple[dict[str, Any], str]] = [
        ({"steps": 1}, "steps must be an int >= 2"),
        ({"min_lr": 0.0}, "min_lr must be a number > 0"),
        ({"min_lr": 1.0, "max_lr": 0.5}, "max_lr must be a number > min_lr"),
        ({"stop_factor": 1.0}, "stop_factor must be a number > 1"),
    ]
    for kwargs, message in bad:
        with pytest.raises(TricklabError, match=message):
            lr_find(spec, "base", **kwargs)
