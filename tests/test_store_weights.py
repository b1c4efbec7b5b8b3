"""The store writes best.weights.h5 without Keras, as Keras writes it; a population's runs are
committed in one batch, each run under its own claim. (That importing the store imports neither
Keras nor JAX is checked in test_architecture.py.)"""

from __future__ import annotations

import copy
import errno
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TINY

from tricklab.engines import RunDone, RunTask, get, weights_layout
from tricklab.engines.build import build_model
from tricklab.spec import StudySpec
from tricklab.store import Finished, RunState, RunStore
from tricklab.store import _commits as commits_module
from tricklab.store._files import weights_bytes

# Every kind of layer tricklab builds: repeated layers, layers without variables, an activation
# that is a layer of its own, batch norm with and without its trainable variables.
LAYERS: list[dict[str, Any]] = [
    {"type": "dense", "units": 6, "activation": "relu", "repeat": 2},
    {"type": "batch_norm"},
    {"type": "dropout", "rate": 0.2},
    {"type": "gaussian_noise", "stddev": 0.1},
    {"type": "dense", "units": 5, "activation": {"name": "leaky_relu", "negative_slope": 0.1}},
    {"type": "batch_norm", "center": False, "scale": False},
    {"type": "activation", "activation": {"name": "elu", "alpha": 0.5}},
    {"type": "dense", "units": 1, "activation": "sigmoid", "use_bias": False},
]


def _spec(**changes: Any) -> StudySpec:
    table = copy.deepcopy(TINY)
    table.update(changes)
    return StudySpec.from_dict(table)


def _resolved(spec: StudySpec) -> Any:
    from tricklab.data import resolve

    return resolve(spec)


def _h5_tree(data: bytes | Path) -> dict[str, Any]:
    """Every object of an HDF5 file: groups with their attributes, datasets with their
    attributes, dtype and values."""
    import io

    import h5py

    tree: dict[str, Any] = {}

    def visit(name: str, item: Any) -> None:
        attrs = {k: str(v) for k, v in item.attrs.items()}
        if isinstance(item, h5py.Group):
            tree[name] = ("group", attrs)
        else:
            tree[name] = ("dataset", attrs, str(item.dtype), item[()])

    source = io.BytesIO(data) if isinstance(data, bytes) else data
    with h5py.File(source, "r") as h5:
        assert not h5.attrs
        h5.visititems(visit)
    return tree


def test_the_store_writes_the_weights_file_keras_writes(tmp_path: Path) -> None:
    from tricklab.study import make_plan

    spec = _spec(model={"layers": LAYERS})
    plan = make_plan(_resolved(spec), "baseline", 0)
    model = build_model(plan.recipe, (16,))
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=w.shape).astype(w.dtype) for w in model.get_weights()]
    model.set_weights(weights)
    keras_file = tmp_path / "keras.weights.h5"
    model.save_weights(str(keras_file))

    layout = weights_layout(plan.recipe, (16,))
    assert weights_layout(plan.recipe, (16,)) is layout  # found once per model structure
    ours = layout.file(weights)
    assert ours.size == model.count_params()
    data = weights_bytes(ours)
    expected, found = _h5_tree(keras_file), _h5_tree(data)
    assert list(found) == list(expected)  # the same groups and datasets, in the same order
    for name, item in expected.items():
        assert found[name][:3] == item[:3], name  # kind, attributes (layer names), dtype
        if item[0] == "dataset":
            np.testing.assert_array_equal(found[name][3], item[3])
    assert expected["layers/dense/vars"][1] == {"name": "dense_0"}
    assert expected["layers/dropout/vars"] == ("group", {"name": "dropout_2"})

    # Keras loads the store's file into a fresh model, which then predicts as the original.
    path = tmp_path / "best.weights.h5"
    path.write_bytes(data)
    fresh = build_model(plan.recipe, (16,))
    fresh.load_weights(str(path))
    x = rng.normal(size=(7, 16)).astype("float32")
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_layout_refuses_weights_of_another_model() -> None:
    from tricklab.study import make_plan

    plan = make_plan(_resolved(_spec()), "baseline", 0)
    layout = weights_layout(plan.recipe, (16,))
    weights = build_model(plan.recipe, (16,)).get_weights()
    with pytest.raises(ValueError, match="3 weights for a model that has 4"):
        layout.file(weights[:3])
    with pytest.raises(ValueError, match="weight 0 has shape"):
        layout.file([weights[0].T, *weights[1:]])


def _outcomes(engine: str, spec: StudySpec) -> tuple[Any, list[RunTask], list[RunDone]]:
    """Every run of ``spec`` trained by ``engine``, without a store."""
    from tricklab.study import make_plan

    study = _resolved(spec)
    tasks = [
        RunTask(make_plan(study, variant, seed, engine), study.splits(seed))
        for variant in spec.variants
        for seed in spec.seeds
    ]
    outcomes = list(get(engine).run(tasks, study.dataset))
    assert all(isinstance(o, RunDone) for o in outcomes), outcomes
    return study, tasks, [o for o in outcomes if isinstance(o, RunDone)]


def _finished(tasks: list[RunTask], outcomes: list[RunDone]) -> list[Finished]:
    by_key = {task.plan.key: task for task in tasks}
    return [
        Finished(
            by_key[o.key].plan,
            o.result,
            o.weights_file,
            o.predictions,
            by_key[o.key].splits.y_test,
        )
        for o in outcomes
    ]


POPULATION = {
    "seeds": [0, 1],
    "variants": {"bce": {}, "fast": {"train.optimizer": {"name": "adam", "learning_rate": 0.05}}},
}


@pytest.mark.parametrize("engine", ["solo", "population"])
def test_stored_best_weights_load_in_keras_and_predict_as_the_run_did(
    tmp_path: Path, engine: str
) -> None:
    spec = _spec(**{**POPULATION, "seeds": [0, 1] if engine == "population" else [0]})
    _, tasks, outcomes = _outcomes(engine, spec)
    store = RunStore(tmp_path / "store")
    assert store.claim([t.plan for t in tasks]) == [t.plan for t in tasks]
    commits = store.save_many(_finished(tasks, outcomes))
    assert [c.committed for c in commits] == [True] * len(tasks)
    done = {o.key: o for o in outcomes}
    for task in tasks:
        plan, outcome = task.plan, done[task.plan.key]
        assert store.status(plan.variant, plan.seed, plan.key).state == RunState.DONE
        model = build_model(plan.recipe, task.splits.x_train.shape[1:])
        model.load_weights(str(store.weights_path(plan.variant, plan.seed)))
        for loaded, best in zip(model.get_weights(), outcome.weights, strict=True):
            np.testing.assert_array_equal(loaded, best)
        predicted = model.predict(task.splits.x_test, verbose=0)[:, 0]
        np.testing.assert_allclose(predicted, outcome.predictions, rtol=1e-5, atol=1e-6)


def test_a_batch_commits_each_run_under_its_own_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In one batch: a run whose claim another worker took is left to it; a run that meets a
    full disk while it holds its claim raises, after the others are committed."""
    spec = _spec(**POPULATION)
    _, tasks, outcomes = _outcomes("population", spec)
    runs = _finished(tasks, outcomes)
    plans = [run.plan for run in runs]
    a = RunStore(tmp_path / "store")
    assert a.claim(plans) == plans
    taken, full = plans[1], plans[2]
    a.release([taken])  # as if A's lease on it lapsed
    b = RunStore(tmp_path / "store")
    assert b.claim([taken]) == [taken]
    real = commits_module._stage_bytes

    def fill(path: Path, data: bytes) -> None:
        if f"{full.variant}/seed-{full.seed}/.partial-" in path.as_posix():
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(commits_module, "_stage_bytes", fill)
    with pytest.raises(OSError, match="No space left"):
        a.save_many(runs)
    states = {(p.variant, p.seed): a.status(p.variant, p.seed, p.key).state for p in plans}
    assert states[(taken.variant, taken.seed)] == RunState.RUNNING  # B's, untouched
    assert states[(full.variant, full.seed)] == RunState.RUNNING  # A still holds it
    assert [states[(p.variant, p.seed)] for p in (plans[0], plans[3])] == [RunState.DONE] * 2
    assert not list((tmp_path / "store").glob("*/seed-*/.partial-*"))

    monkeypatch.setattr(commits_module, "_stage_bytes", real)
    commits = a.save_many([runs[1], runs[2]])
    assert not commits[0].committed and "pid" in commits[0].holder  # B holds it
    assert commits[1].committed
    # Committed once: the run of the same key already whole is never replaced.
    again = a.save_many([runs[0]])
    assert not again[0].committed
