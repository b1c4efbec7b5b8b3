"""The LR range test: suggestion logic, loss recording, and runs on real data."""

from __future__ import annotations

import inspect
import math
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tricklab.base import backend as _backend
from tricklab.base.errors import SpecError, TricklabError
from tricklab.cli import main
from tricklab.spec import StudySpec
from tricklab.tools import lrfind
from tricklab.tools.lrfind import (
    DEFAULT_MAX_LR,
    DEFAULT_MIN_LR,
    DEFAULT_SEED,
    DEFAULT_STEPS,
    DEFAULT_STOP_FACTOR,
    RULE,
    LRFindResult,
    _recipe,
    _recorder,
    _smoothed_finite,
    exponential_lrs,
    lr_find,
    lr_find_command,
    smooth,
    suggest_lr,
)

ROOT = Path(__file__).resolve().parents[1]
#: The study `make demo` runs (the Makefile's STUDY).
DEMO_STUDY = ROOT / "studies" / "thoracic-losses.toml"

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


#: A CSV study: scikit-learn's breast cancer table (569 rows, 30 features, 2 classes).
BREAST_CANCER_STUDY = """\
name = "breast-cancer"
dataset = {csv = "breast_cancer.csv", target = "target"}

[model]
layers = [
  {type = "dense", units = 16, activation = "relu"},
  {type = "dense", units = 1, activation = "sigmoid"},
]

[train]
loss = "binary_crossentropy"
optimizer = "adam"
batch_size = 32
"""


@pytest.fixture(scope="module")
def study_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("study") / "tiny-thoracic.toml"
    path.write_text(STUDY, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def spec(study_file: Path) -> StudySpec:
    return StudySpec.from_file(study_file)


@pytest.fixture(scope="module")
def breast_cancer_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.datasets import load_breast_cancer

    folder = tmp_path_factory.mktemp("breast-cancer")
    load_breast_cancer(as_frame=True).frame.to_csv(folder / "breast_cancer.csv", index=False)
    path = folder / "breast-cancer.toml"
    path.write_text(BREAST_CANCER_STUDY, encoding="utf-8")
    return path


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


def descent_region(lrs: np.ndarray, smoothed: np.ndarray) -> tuple[float, float]:
    """Where a curve descends: from the first rate at which the smoothed loss lies 5 % below
    its start to the rate of its minimum (computed here, not by the code under test)."""
    lowest = int(np.nanargmin(smoothed))
    below = np.flatnonzero(smoothed[: lowest + 1] <= 0.95 * smoothed[0])
    assert below.size, "the curve never falls 5 % below its start"
    return float(lrs[below[0]]), float(lrs[lowest])


def in_descent(result: LRFindResult) -> bool:
    low, high = descent_region(result.lrs, result.smoothed)
    return result.suggestion is not None and low <= result.suggestion <= high


def test_suggestion_is_the_steepest_descent() -> None:
    lrs, loss = synthetic()
    suggestion = suggest_lr(lrs, loss)
    assert suggestion is not None
    assert math.log10(suggestion) == pytest.approx(-3, abs=0.051)


def test_suggestion_ignores_the_start_and_the_diverged_tail() -> None:
    lrs, loss = synthetic()
    noisy = loss.copy()
    noisy[1] = noisy[0] - 5  # a plunge among the first points (the average still settling)
    noisy[-20:-10] = 50.0  # the diverging tail, after the minimum
    noisy[-10:] = np.nan  # ... and what follows a non-finite loss
    noisy[-3] = -100.0
    assert math.log10(suggest_lr(lrs, noisy) or 0) == pytest.approx(-3, abs=0.051)
    noisy[-5:] = np.inf
    assert math.log10(suggest_lr(lrs, noisy) or 0) == pytest.approx(-3, abs=0.051)


def noisy_descent(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-batch losses of a sweep like `tricklab lr-find`'s: 10 % noise on a loss that falls
    from 1.0 to 0.4 around lr = 3e-3, and a wild start (what the old rule took for a descent)."""
    lrs = exponential_lrs(DEFAULT_STEPS, DEFAULT_MIN_LR, DEFAULT_MAX_LR)
    clean = 0.7 - 0.3 * np.tanh(1.5 * (np.log10(lrs) + 2.5))
    losses = clean * (1 + 0.1 * np.random.default_rng(seed).normal(size=lrs.size))
    losses[:8] += [0.0, 0.6, -0.3, 0.8, -0.4, 0.5, -0.2, 0.4]
    return lrs, losses


def test_a_noisy_start_is_not_the_descent() -> None:
    # The old rule (steepest neighbour-to-neighbour slope after 5 points) suggested 1.6e-7 here.
    lrs, losses = noisy_descent()
    smoothed = smooth(losses)
    suggestion = suggest_lr(lrs, smoothed, losses)
    assert suggestion is not None and suggestion >= lrs[DEFAULT_STEPS // 10]
    assert 1e-3 <= suggestion <= 1e-1  # the descent, seen through the lagging average
    low, high = descent_region(lrs, smoothed)
    assert low <= suggestion <= high
    assert suggest_lr(lrs, smoothed) == suggestion  # the noise test passes: no effect


def test_a_diverging_curve_is_suggested_below_the_divergence() -> None:
    lrs, losses = noisy_descent(seed=1)
    losses[150:] = 0.4 * np.exp(np.arange(50) / 4)  # from lr = 1e-1 on, the loss blows up
    losses[175:] = np.inf  # ... until it is not finite
    smoothed = _smoothed_finite(losses)
    assert np.isnan(smoothed[175:]).all()
    suggestion = suggest_lr(lrs, smoothed, losses)
    assert suggestion is not None
    low, high = descent_region(lrs, smoothed)
    assert low <= suggestion <= high < lrs[175]
    assert 1e-3 <= suggestion < 1e-1


def test_a_flat_noisy_curve_has_no_suggestion() -> None:
    lrs = exponential_lrs(DEFAULT_STEPS, DEFAULT_MIN_LR, DEFAULT_MAX_LR)
    rng = np.random.default_rng(0)
    flat = 1.0 + 0.1 * rng.normal(size=lrs.size)  # 10 % batch noise, no trend
    assert suggest_lr(lrs, smooth(flat), flat) is None
    assert suggest_lr(lrs, smooth(flat)) is None
    assert suggest_lr(lrs, np.full(lrs.size, 0.7)) is None  # exactly flat
    shallow = 1.0 - 0.015 * np.tanh(np.log10(lrs) + 3)  # falls 3 %, then stays
    assert suggest_lr(lrs, shallow) is None
    assert suggest_lr(lrs, 1.0 - 0.05 * np.tanh(np.log10(lrs) + 3)) is not None  # falls 10 %


def test_a_fall_within_the_noise_is_no_descent() -> None:
    # Batch noise of 50 % (batches of a few samples): the moving average wanders by more than
    # 5 % on a flat curve; the raw losses show that this is noise.
    lrs = exponential_lrs(DEFAULT_STEPS, DEFAULT_MIN_LR, DEFAULT_MAX_LR)
    rng = np.random.default_rng(1)
    flat = 1.0 + 0.5 * rng.normal(size=lrs.size)
    assert suggest_lr(lrs, smooth(flat)) is not None  # the 5 % test alone is fooled
    assert suggest_lr(lrs, smooth(flat), flat) is None
    # A real descent under the same noise is still found.
    descent = flat - 0.8 * (1 + np.tanh(1.5 * (np.log10(lrs) + 3))) / 2
    suggestion = suggest_lr(lrs, smooth(descent), descent)
    assert suggestion is not None and 1e-4 <= suggestion <= 1e-1


def test_no_suggestion_without_a_curve() -> None:
    lrs = np.geomspace(1e-6, 1.0, 20)
    rising = np.linspace(1.0, 3.0, 20)
    assert suggest_lr(lrs, rising) is None
    assert suggest_lr(lrs[:2], rising[:2]) is None
    assert suggest_lr(lrs, np.full(20, np.nan)) is None
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
    # It diverged and stopped early. 42 batches of 16 rows are noisy: a suggestion, if the
    # smoothed loss falls clearly beyond that noise, lies in its descent, below the divergence.
    assert result.diverged_lr is not None and n < 60
    assert result.diverged_lr == result.lrs[-1]
    assert result.rule == RULE
    if result.suggestion is not None:
        assert in_descent(result) and result.suggestion < result.diverged_lr
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
    assert result.suggestion is None or 1e-3 <= result.suggestion <= 1.0


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


def test_defaults_have_one_home(capsys: pytest.CaptureFixture[str]) -> None:
    from tricklab.cli._main import _parser

    defaults = {
        "steps": DEFAULT_STEPS,
        "min_lr": DEFAULT_MIN_LR,
        "max_lr": DEFAULT_MAX_LR,
        "seed": DEFAULT_SEED,
        "stop_factor": DEFAULT_STOP_FACTOR,
    }
    for function in (lr_find, lr_find_command):
        parameters = inspect.signature(function).parameters
        assert {name: parameters[name].default for name in defaults} == defaults
    args = _parser().parse_args(["lr-find", "study.toml"])
    assert {name: getattr(args, name) for name in defaults} == defaults
    with pytest.raises(SystemExit):
        main(["lr-find", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for default in (DEFAULT_STEPS, f"{DEFAULT_MIN_LR:g}", f"{DEFAULT_MAX_LR:g}", DEFAULT_SEED):
        assert f"(default: {default})" in help_text


# -- real curves ------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("which", ["demo", "breast_cancer"])
def test_suggestion_lies_in_the_descent_of_real_curves(
    which: str,
    breast_cancer_study: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`tricklab lr-find STUDY` with the defaults (200 batches, 1e-7 to 10) on the baseline
    variant of the demo study and of a CSV study: the suggestion lies where the curve falls."""
    study = DEMO_STUDY if which == "demo" else breast_cancer_study
    results: list[LRFindResult] = []
    run = lrfind.lr_find_command

    def keep(*args: Any, **kwargs: Any) -> tuple[LRFindResult, Path]:
        result, png = run(*args, **kwargs)
        results.append(result)
        return result, png

    monkeypatch.setattr(lrfind, "lr_find_command", keep)
    assert main(["lr-find", str(study), "--out", str(tmp_path)]) == 0
    [result] = results
    assert result.steps == DEFAULT_STEPS and result.lrs[0] == DEFAULT_MIN_LR
    low, high = descent_region(result.lrs, result.smoothed)
    assert result.suggestion is not None, "no suggestion on a curve that descends"
    assert low <= result.suggestion <= high, (low, result.suggestion, high)
    out = capsys.readouterr().out
    line = f"variant {result.variant}: suggested learning rate {result.suggestion:.3g} ({RULE})"
    assert line in out.splitlines()


def test_cli_says_when_there_is_no_clear_descent(
    study_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Rates of 1e-9 to 1e-8 move no weight: the loss stays flat, with batch noise.
    args = ["--steps", "60", "--min-lr", "1e-9", "--max-lr", "1e-8", "--out", str(tmp_path)]
    assert main(["lr-find", str(study_file), *args]) == 0
    out = capsys.readouterr().out
    assert "no clear descent" in out and "suggested learning rate" not in out
    assert re.search(r"^variant base: no clear descent in the loss between 1e-09 and 1e-08; ", out,
                     re.MULTILINE)  # fmt: skip
    assert "the loss did not diverge" in out
    assert (tmp_path / "tiny-thoracic.base.lr_find.png").stat().st_size > 10_000
