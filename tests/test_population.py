"""The population engine: each member reproduces its solo run; members never mix."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import write_study

from tricklab.api import run_study
from tricklab.cli import main
from tricklab.data import resolve
from tricklab.engines import RunDone, RunTask, assign, get
from tricklab.spec import StudySpec
from tricklab.study import make_plan

# 338 training rows in batches of 34: one epoch is 10 steps (9 full batches and one of 32).
BASE: dict[str, Any] = {
    "name": "pop",
    "dataset": "thoracic",
    "seeds": [0, 1],
    "model": {
        "layers": [
            {"type": "dense", "units": 8, "activation": "relu"},
            {"type": "dense", "units": 8, "activation": "relu"},
            {"type": "dense", "units": 1, "activation": "sigmoid"},
        ]
    },
    "train": {"loss": "binary_crossentropy", "batch_size": 34, "epochs": 1},
}

# Members that differ in regularizers, constraints, activations, losses and learning rates.
MIXED = {
    "plain": {},
    "l2_l1": {
        "model.layers[0].kernel_regularizer": {"name": "l2", "l2": 0.01},
        "model.layers[0].activity_regularizer": {"name": "l1", "l1": 0.01},
    },
    "max_norm": {"model.layers[1].kernel_constraint": {"name": "max_norm", "max_value": 0.3}},
    "tanh": {"model.layers[0].activation": "tanh"},
    "mse": {"train.loss": "mean_squared_error"},
    "fast": {"train.optimizer": {"name": "adam", "learning_rate": 0.02}},
    "sgd": {"train.optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}},
}


def study(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(BASE)
    for key, value in changes.items():
        out[key] = value
    return out


def both_engines(table: dict[str, Any]) -> dict[str, dict[tuple[str, int], RunDone]]:
    """Every run of the study through each engine, without a store: outcomes by (variant, seed)."""
    study = resolve(StudySpec.from_dict(table))
    dataset = study.dataset
    tasks = []
    for variant in study.spec.variants:
        for seed in study.spec.seeds:
            tasks.append(RunTask(make_plan(study, variant, seed), study.splits(seed)))
    out = {}
    for name in ("solo", "population"):
        outcomes = list(get(name).run(tasks, dataset))
        assert all(isinstance(o, RunDone) for o in outcomes), outcomes
        out[name] = {(o.result.variant, o.result.seed): o for o in outcomes}
    return out


def assert_same_run(member: RunDone, solo: RunDone, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    for a, b in zip(member.weights, solo.weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    assert member.result.history.keys() == solo.result.history.keys()
    for name, values in solo.result.history.items():
        np.testing.assert_allclose(member.result.history[name], values, rtol=rtol, atol=atol)
    assert member.result.epochs_run == solo.result.epochs_run
    assert member.result.best_epoch == solo.result.best_epoch
    for weights in ("best", "last"):
        for metric, value in solo.result.test[weights].items():
            assert member.result.test[weights][metric] == pytest.approx(value, rel=1e-4, abs=1e-6)
    # The test predictions the store keeps (ROC curves): the best weights' outputs, as in solo.
    assert member.predictions.dtype == solo.predictions.dtype == np.float32
    assert member.predictions.shape == solo.predictions.shape
    assert len(solo.predictions) == solo.result.split_sizes["test"]
    np.testing.assert_allclose(member.predictions, solo.predictions, rtol=rtol, atol=atol)


def test_members_with_different_tricks_reproduce_their_solo_runs_after_ten_steps() -> None:
    outcomes = both_engines(study(variants=MIXED))
    assert len(outcomes["population"]) == 14
    for key, solo in outcomes["solo"].items():
        member = outcomes["population"][key]
        assert member.result.engine == "population" and solo.result.engine == "solo"
        assert_same_run(member, solo)
    # The members really differ: the same seed trains to other weights under another trick.
    plain, sgd = outcomes["population"][("plain", 0)], outcomes["population"][("sgd", 0)]
    assert not np.allclose(plain.weights[0], sgd.weights[0])


def test_dropout_masks_match_the_solo_runs() -> None:
    layers = copy.deepcopy(BASE["model"]["layers"])
    layers.insert(1, {"type": "dropout", "rate": 0.5})
    table = study(
        model={"layers": layers},
        train={**BASE["train"], "epochs": 3},
        variants={"dropout": {}, "less": {"model.layers[1].rate": 0.2}},
    )
    outcomes = both_engines(table)
    for key, solo in outcomes["solo"].items():
        assert_same_run(outcomes["population"][key], solo)


def test_per_member_early_stopping_stops_at_the_solo_epoch() -> None:
    train = {
        **BASE["train"],
        "epochs": 12,
        "optimizer": {"name": "adam", "learning_rate": 0.05},
        "early_stopping": {"monitor": "val_loss", "patience": 1},
    }
    variants = {
        "patience1": {},
        "patience3": {"train.early_stopping.patience": 3},
        "restore": {"train.early_stopping": {"patience": 2, "restore_best_weights": True}},
        "min_delta": {"train.early_stopping": {"patience": 1, "min_delta": 0.01}},
    }
    outcomes = both_engines(study(seeds=[0, 1, 2], train=train, variants=variants))
    epochs = set()
    for key, solo in outcomes["solo"].items():
        assert_same_run(outcomes["population"][key], solo, rtol=1e-4, atol=1e-5)
        epochs.add(solo.result.epochs_run)
    assert len(epochs) > 1 and min(epochs) < 12  # members stopped at different epochs


def test_a_diverging_member_is_recorded_and_leaves_the_others_unchanged() -> None:
    train = {**BASE["train"], "epochs": 3, "loss": "mean_squared_error"}
    layers = copy.deepcopy(BASE["model"]["layers"])
    layers[-1] = {"type": "dense", "units": 1}  # linear output: nothing saturates
    calm = {"calm": {}, "tanh": {"model.layers[0].activation": "tanh"}}
    wild = {**calm, "wild": {"train.optimizer": {"name": "sgd", "learning_rate": 100.0}}}
    alone = both_engines(study(model={"layers": layers}, train=train, variants=calm))
    mixed = both_engines(study(model={"layers": layers}, train=train, variants=wild))
    for seed in (0, 1):
        diverged = mixed["population"][("wild", seed)].result
        assert diverged.status == "diverged" and diverged.epochs_run == 1
        assert not np.isfinite(diverged.history["loss"][-1])
    for key, run in alone["population"].items():
        other = mixed["population"][key]
        assert other.result.status == "ok"
        assert other.result.history == run.result.history
        for a, b in zip(other.weights, run.weights, strict=True):
            np.testing.assert_array_equal(a, b)


def test_same_seed_same_engine_twice_gives_the_same_history(tmp_path: Path) -> None:
    layers = copy.deepcopy(BASE["model"]["layers"])
    layers.insert(1, {"type": "dropout", "rate": 0.3})
    table = study(model={"layers": layers}, train={**BASE["train"], "epochs": 2})
    table["variants"] = {"a": {}, "b": {"train.loss": "mean_squared_error"}}
    first = run_study(StudySpec.from_dict(table), out=tmp_path / "1", engine="population")
    again = run_study(StudySpec.from_dict(table), out=tmp_path / "2", engine="population")
    assert [r.history for r in first.results] == [r.history for r in again.results]
    assert [r.test for r in first.results] == [r.test for r in again.results]


def test_auto_assigns_populations_by_shape_and_says_why_it_falls_back() -> None:
    table = study(
        variants={
            "a": {},
            "b": {"train.loss": "mean_squared_error"},
            "wide": {"model.layers[0].units": 16},  # other shapes: a population of its own
        },
        seeds=[0],
    )
    recipes = list(StudySpec.from_dict(table).variants.values())
    auto = assign(recipes, choice="auto", backend="jax", diagnostics=False)
    assert [a.engine for a in auto] == ["population", "population", "solo"]
    assert auto[0].group == auto[1].group
    assert "no other run" in (auto[2].reason or "")
    torch = assign(recipes, choice="auto", backend="torch", diagnostics=False)
    assert {a.engine for a in torch} == {"solo"}
    assert all("torch backend" in (a.reason or "") for a in torch)
    measured = assign(recipes, choice="population", backend="jax", diagnostics=True)
    assert all(a.engine == "solo" and "diagnostics" in (a.reason or "") for a in measured)
    assert {a.reason for a in assign(recipes, choice="solo", backend="jax", diagnostics=False)} == {
        None
    }


def test_run_prints_each_fallback_and_the_report_names_the_engines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(
        tmp_path / "mixed.toml",
        """
name = "mixed"
dataset = "thoracic"
seeds = [0, 1]
[model]
layers = [{type = "dense", units = 8, activation = "relu"},
          {type = "dense", units = 1, activation = "sigmoid"}]
[train]
loss = "binary_crossentropy"
epochs = 1
[variants.small]
[variants.wide]
"model.layers[0].units" = 16
train.epochs = 2
[variants.single]
"model.layers[0].units" = 4
""",
    )
    out = tmp_path / "runs"
    code = main(["run", str(path), "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    # every variant has 2 seeds; a population's line never shows a best across its members
    assert "population of 2 members, epoch 1/2, 2 still training" in printed
    assert "best val_loss" not in printed
    assert "solo engine" not in printed
    assert "engine population" in (out / "mixed" / "report.md").read_text()
    # --seeds 1 keeps each run's engine (assigned over the whole study, so keys stay put) ...
    code = main(["run", str(path), "--out", str(out), "--seeds", "1", "--quiet"])
    assert code == 0 and "trained 0 runs, reused 3" in capsys.readouterr().out
    # ... while a study of one seed has each variant alone with its shapes and epochs.
    one = write_study(tmp_path / "one.toml", path.read_text().replace("[0, 1]", "[0]"))
    code = main(["run", str(one), "--out", str(tmp_path / "one"), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    assert printed.count("seed 0: solo engine (no other run has its layer shapes") == 3


@pytest.mark.slow
def test_fashion_members_match_solo_after_one_epoch() -> None:
    """Real images: relative Frobenius norm per weight < 1e-4, test accuracy within 0.3 points."""
    table = {
        "name": "fashion-pop",
        "dataset": {"name": "fashion_mnist", "limit": 3000},
        "seeds": [0, 1],
        "model": {
            "layers": [
                {"type": "flatten"},
                {"type": "dense", "units": 64, "activation": "relu"},
                {"type": "dropout", "rate": 0.5},
                {"type": "dense", "units": 10, "activation": "softmax"},
            ]
        },
        "train": {"loss": "sparse_categorical_crossentropy", "batch_size": 30, "epochs": 1},
        "variants": {
            "dropout": {},
            "lecture": {
                "model.layers[1].activation": "linear",
                "model.layers[1].kernel_regularizer": {"name": "l2", "l2": 0.01},
                "model.layers[1].activity_regularizer": {"name": "l1", "l1": 0.01},
                "model.layers[1].kernel_constraint": {"name": "max_norm", "max_value": 2.0},
            },
            "no_dropout": {"model.layers[2].rate": 0.0},
        },
    }
    outcomes = both_engines(table)
    for key, solo in outcomes["solo"].items():
        member = outcomes["population"][key]
        for a, b in zip(member.weights, solo.weights, strict=True):
            assert np.linalg.norm(a - b) <= 1e-4 * np.linalg.norm(b)
        accuracy = member.result.test["last"]["accuracy"], solo.result.test["last"]["accuracy"]
        assert abs(accuracy[0] - accuracy[1]) < 0.003
