"""The one_cycle schedule: closed form, serialisation, momentum cycling under jit, study files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tricklab.base import backend as _backend
from tricklab.base.errors import SpecError
from tricklab.spec import StudySpec, components

keras = _backend.keras()

from tricklab.engines.schedules import (  # noqa: E402  (imports Keras: after the backend choice)
    OneCycle,
    OneCycleAdam,
    OneCycleAdamW,
    OneCycleSGD,
    apply_momentum_cycle,
    cosine_between,
)

SRC = Path(__file__).resolve().parents[1] / "src"
MAX, TOTAL, PCT, DIV, FINAL = 0.01, 5000, 0.25, 25.0, 1e4


def value(tensor: Any) -> float:
    return float(keras.ops.convert_to_numpy(tensor))


# -- the schedule --------------------------------------------------------------------------------
def test_learning_rate_closed_form() -> None:
    s = OneCycle(MAX, TOTAL, pct_start=PCT, div_factor=DIV, final_div_factor=FINAL)
    start, end = MAX / DIV, MAX / (DIV * FINAL)
    assert (s.initial_learning_rate, s.final_learning_rate, s.peak_step) == (start, end, 1250)
    expected = {
        0: start,
        625: cosine_between(start, MAX, 0.5),  # half way up: the mean of start and peak
        1250: MAX,  # the peak
        3125: (MAX + end) / 2,  # half way down
        5000: end,
        9999: end,  # stays at the end
    }
    for step, lr in expected.items():
        assert value(s(step)) == pytest.approx(lr, rel=1e-5), step
    assert value(s(1)) > start and value(s(1251)) < MAX
    # Half-cosine, not linear: a quarter of the way up is below the linear value.
    assert value(s(312)) < start + (MAX - start) * 312 / 1250


def test_momentum_closed_form() -> None:
    s = OneCycle(MAX, TOTAL, pct_start=PCT, base_momentum=0.85, max_momentum=0.95)
    for step, momentum in {0: 0.95, 625: 0.90, 1250: 0.85, 3125: 0.90, 5000: 0.95}.items():
        assert value(s.momentum(step)) == pytest.approx(momentum, abs=1e-6), step


def test_no_warm_up_starts_at_the_peak() -> None:
    s = OneCycle(0.1, 100, pct_start=0.0)
    assert value(s(0)) == pytest.approx(0.1)
    assert value(s(100)) == pytest.approx(0.1 / 25 / 1e4)
    assert value(s.momentum(0)) == pytest.approx(0.85)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"max_learning_rate": 0.0}, "max_learning_rate"),
        ({"total_steps": 0}, "total_steps"),
        ({"pct_start": 1.0}, "pct_start"),
        ({"div_factor": -1.0}, "div_factor"),
        ({"max_momentum": 1.0}, "max_momentum"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ValueError, match=f"`{argument}`"):
        OneCycle(**{"max_learning_rate": 0.01, "total_steps": 10, **kwargs})


def test_schedule_config_round_trip() -> None:
    s = OneCycle(0.02, 300, pct_start=0.3, div_factor=10, final_div_factor=100,
                 base_momentum=0.8, max_momentum=0.9, cycle_momentum=False)  # fmt: skip
    assert OneCycle.from_config(s.get_config()).get_config() == s.get_config()
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(s))
    assert isinstance(again, OneCycle)
    assert again.get_config() == s.get_config()
    assert value(again(90)) == pytest.approx(0.02)


# -- in a model ----------------------------------------------------------------------------------
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    return x, (x[:, :2].sum(axis=1) > 0).astype("float32")[:, None]


def model(seed: int = 1) -> Any:
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(3, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )


def weights(m: Any) -> np.ndarray:
    return np.concatenate([np.ravel(w) for w in m.get_weights()])


def test_model_with_one_cycle_saves_and_loads(tmp_path: Path) -> None:
    table = {"name": "adam", "learning_rate": {"name": "one_cycle", "max_learning_rate": 0.05,
                                              "total_steps": 16, "pct_start": 0.5}}  # fmt: skip
    optimizer = apply_momentum_cycle(components.OPTIMIZERS.get(table))
    assert isinstance(optimizer, OneCycleAdam)
    x, y = data()
    m = model()
    m.compile(optimizer=optimizer, loss="binary_crossentropy")
    m.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    m.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer) is OneCycleAdam
    assert isinstance(loaded.optimizer._learning_rate, OneCycle)
    assert loaded.optimizer._learning_rate.get_config() == optimizer._learning_rate.get_config()
    assert loaded.optimizer.one_cycle.get_config() == optimizer.one_cycle.get_config()
    assert value(loaded.optimizer.iterations) == 8
    assert value(loaded.optimizer.cycled_momentum) == pytest.approx(
        value(optimizer.cycled_momentum)
    )
    np.testing.assert_allclose(loaded.predict(x, verbose=0), m.predict(x, verbose=0), rtol=1e-6)
    # Training goes on from the saved step (8 of 16): the second half of the cycle.
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert value(loaded.optimizer.cycled_momentum) == pytest.approx(
        value(optimizer.one_cycle.momentum(15)), abs=1e-6
    )


def test_plain_optimizer_with_one_cycle_saves_and_loads(tmp_path: Path) -> None:
    schedule = OneCycle(0.05, 16, cycle_momentum=False)
    optimizer = apply_momentum_cycle(keras.optimizers.Adam(learning_rate=schedule))
    assert type(optimizer) is keras.optimizers.Adam  # nothing to cycle
    m = model()
    m.compile(optimizer=optimizer, loss="binary_crossentropy")
    m.fit(*data(), batch_size=8, epochs=1, verbose=0)
    m.save(tmp_path / "plain.keras")
    loaded = keras.saving.load_model(tmp_path / "plain.keras")
    assert loaded.optimizer._learning_rate.get_config() == schedule.get_config()


class SetMomentumEachBatch(keras.callbacks.Callback):
    """The reference: assign the scheduled momentum before each step of an *eager* run."""

    def __init__(self, schedule: OneCycle, attribute: str) -> None:
        super().__init__()
        self.schedule, self.attribute, self.step = schedule, attribute, 0

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        setattr(self.model.optimizer, self.attribute, value(self.schedule.momentum(self.step)))
        self.step += 1


@pytest.mark.parametrize(
    ("optimizer", "attribute", "cycled_class"),
    [(keras.optimizers.Adam, "beta_1", OneCycleAdam), (keras.optimizers.SGD, "momentum",
                                                       OneCycleSGD)],
)  # fmt: skip
def test_momentum_cycles_inside_the_compiled_step(
    optimizer: Any, attribute: str, cycled_class: type
) -> None:
    """Under jit (4 steps per call) the cycled optimizer trains exactly like an eager run whose
    momentum is set before every step, and unlike a run with constant momentum."""
    x, y = data()

    def fit(cycle: bool, eager: bool) -> tuple[np.ndarray, Any]:
        schedule = OneCycle(0.05, total_steps=8, pct_start=0.5, cycle_momentum=cycle)
        opt = apply_momentum_cycle(optimizer(learning_rate=schedule, **{attribute: 0.95}))
        m = model()
        m.compile(opt, "binary_crossentropy", steps_per_execution=1 if eager else 4,
                  run_eagerly=eager)  # fmt: skip
        callbacks = [SetMomentumEachBatch(schedule, attribute)] if eager else []
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)
        return weights(m), opt

    cycled, opt = fit(cycle=True, eager=False)
    reference, _ = fit(cycle=False, eager=True)
    constant, plain = fit(cycle=False, eager=False)
    assert type(opt) is cycled_class and type(plain) is optimizer
    # The value the last (8th) step used, read back from the optimizer variable.
    assert value(opt.cycled_momentum) == pytest.approx(value(opt.one_cycle.momentum(7)))
    assert value(opt.cycled_momentum) != pytest.approx(0.95, abs=1e-3)
    assert getattr(opt, attribute) == 0.95  # the attribute itself is restored after each step
    np.testing.assert_allclose(cycled, reference, atol=1e-5)
    assert np.abs(cycled - constant).max() > 1e-3


def test_apply_momentum_cycle_choices() -> None:
    schedule = OneCycle(0.01, 100)
    plain = keras.optimizers.Adam(learning_rate=0.001)
    assert apply_momentum_cycle(plain) is plain  # no OneCycle
    adagrad = keras.optimizers.Adagrad(learning_rate=schedule)
    assert apply_momentum_cycle(adagrad) is adagrad  # no momentum to cycle
    adamw = apply_momentum_cycle(keras.optimizers.AdamW(learning_rate=schedule, weight_decay=0.1))
    assert type(adamw) is OneCycleAdamW and adamw.weight_decay == 0.1
    assert apply_momentum_cycle(adamw) is adamw
    sgd = apply_momentum_cycle(keras.optimizers.SGD(learning_rate=schedule))  # momentum 0.0
    assert type(sgd) is OneCycleSGD and sgd.momentum == schedule.max_momentum
    explicit = apply_momentum_cycle(keras.optimizers.Adam(learning_rate=0.001), schedule)
    assert type(explicit) is OneCycleAdam and explicit.one_cycle is schedule
    config = explicit.get_config()
    assert OneCycleAdam.from_config(config).one_cycle.get_config() == schedule.get_config()


# -- study files ---------------------------------------------------------------------------------
def study(learning_rate: Any, variants: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": "one-cycle",
        "dataset": "thoracic",
        "model": {"layers": [{"type": "dense", "units": 8, "activation": "relu"},
                             {"type": "dense", "units": 1, "activation": "sigmoid"}]},
        "train": {"loss": "binary_crossentropy",
                  "optimizer": {"name": "sgd", "learning_rate": learning_rate}},
        "variants": variants or {},
    }  # fmt: skip


ONE_CYCLE = {"name": "one_cycle", "max_learning_rate": 0.01, "total_steps": 5000,
             "pct_start": 0.25, "div_factor": 25.0, "final_div_factor": 1e4}  # fmt: skip


def test_study_with_one_cycle_validates_and_builds() -> None:
    spec = StudySpec.from_dict(study(ONE_CYCLE, {"baseline": {}, "no-momentum": {
        "train.optimizer.learning_rate.cycle_momentum": False}}))  # fmt: skip
    component = spec.variants["baseline"].train.optimizer.args["learning_rate"]
    assert component.name == "one_cycle" and component.args["total_steps"] == 5000
    optimizer = components.OPTIMIZERS.build(spec.variants["baseline"].train.optimizer)
    assert isinstance(optimizer._learning_rate, OneCycle)
    assert optimizer._learning_rate.get_config()["max_learning_rate"] == 0.01
    assert type(apply_momentum_cycle(optimizer)) is OneCycleSGD
    other = components.OPTIMIZERS.build(spec.variants["no-momentum"].train.optimizer)
    assert type(apply_momentum_cycle(other)) is keras.optimizers.SGD


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"total_steps": None}, "train.optimizer.learning_rate.total_steps: schedule 'one_cycle' "
                                "needs total_steps"),
        ({"pct_start": 1.5}, "train.optimizer.learning_rate.pct_start: must be a float in [0, 1)"),
        ({"max_momentun": 0.9}, "train.optimizer.learning_rate.max_momentun: unknown argument "
                                "'max_momentun' for schedule 'one_cycle'. Did you mean "
                                "'max_momentum'?"),
        ({"total_steps": 0}, "train.optimizer.learning_rate.total_steps: must be an int >= 1"),
    ],
)  # fmt: skip
def test_bad_one_cycle_gives_a_located_error(change: dict[str, Any], message: str) -> None:
    table = {k: v for k, v in {**ONE_CYCLE, **change}.items() if v is not None}
    with pytest.raises(SpecError) as caught:
        StudySpec.from_dict(study(table))
    assert message in str(caught.value)


def test_bad_one_cycle_in_a_variant_names_the_variant() -> None:
    with pytest.raises(SpecError) as caught:
        StudySpec.from_dict(study(ONE_CYCLE, {"fast": {
            "train.optimizer.learning_rate.div_factor": -1.0}}))  # fmt: skip
    assert "variants.fast: train.optimizer.learning_rate.div_factor: must be a float > 0" in str(
        caught.value
    )


# -- TensorFlow ----------------------------------------------------------------------------------
@pytest.mark.skipif(find_spec("tensorflow") is None, reason="tensorflow is not installed")
def test_tensorflow_backend() -> None:
    """On tensorflow: momentum cycles inside the compiled tf.function train step, and the
    activation curves are differentiated with tf.GradientTape (one process: TF starts slowly)."""
    script = textwrap.dedent(
        """
        import numpy as np
        from tricklab.base import backend as _backend
        keras = _backend.keras()
        assert keras.backend.backend() == "tensorflow"
        from tricklab.engines.schedules import OneCycle, OneCycleAdam, apply_momentum_cycle
        rng = np.random.default_rng(0)
        x = rng.normal(size=(64, 4)).astype("float32")
        y = (x[:, :2].sum(axis=1) > 0).astype("float32")[:, None]
        def fit(cycle):
            keras.utils.set_random_seed(1)
            m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"),
                                  keras.layers.Dense(1, activation="sigmoid")])
            s = OneCycle(0.05, total_steps=16, pct_start=0.5, cycle_momentum=cycle)
            opt = apply_momentum_cycle(keras.optimizers.Adam(learning_rate=s, beta_1=0.95))
            m.compile(opt, "binary_crossentropy", steps_per_execution=4)
            m.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
            return np.concatenate([np.ravel(w) for w in m.get_weights()]), opt
        cycled, opt = fit(True)
        constant, _ = fit(False)
        assert type(opt) is OneCycleAdam
        used = float(opt.cycled_momentum.numpy())
        assert abs(used - float(opt.one_cycle.momentum(15))) < 1e-6, used
        assert abs(used - 0.95) > 1e-3, used
        assert np.abs(cycled - constant).max() > 1e-3
        import math
        from tricklab.tools.activations import activation_curves
        c = activation_curves(["sigmoid", "leaky_relu", "elu"], [-1.0, 0.0], 0.3)
        assert abs(c["sigmoid"][1][1] - 0.25) < 1e-6, c
        assert abs(c["leaky_relu"][1][0] - 0.3) < 1e-6, c
        assert abs(c["elu"][1][0] - math.exp(-1)) < 1e-6, c
        print("ok")
        """
    )
    path = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
