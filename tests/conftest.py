"""Shared fixtures: tiny studies on the built-in Thoracic table, trained on the JAX backend."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")

# A tiny binary classifier: 16 inputs -> 8 relu -> 1 sigmoid; 2 epochs take about a second.
TINY: dict[str, Any] = {
    "name": "tiny",
    "dataset": "thoracic",
    "seeds": [0],
    "model": {
        "layers": [
            {"type": "dense", "units": 8, "activation": "relu"},
            {"type": "dense", "units": 1, "activation": "sigmoid"},
        ]
    },
    "train": {"loss": "binary_crossentropy", "batch_size": 32, "epochs": 2},
}


@pytest.fixture
def tiny() -> dict[str, Any]:
    """A fresh copy of the tiny study, to modify in a test."""
    return copy.deepcopy(TINY)


# 3 variants x 4 seeds = 12 runs of a tiny model; dropout makes every random stream matter.
DROPOUT_STUDY: dict[str, Any] = {
    "name": "store",
    "dataset": "thoracic",
    "seeds": 4,
    "model": {
        "layers": [
            {"type": "dense", "units": 8, "activation": "relu"},
            {"type": "dropout", "rate": 0.3},
            {"type": "dense", "units": 1, "activation": "sigmoid"},
        ]
    },
    "train": {
        "loss": "binary_crossentropy",
        "batch_size": 32,
        "epochs": 4,
        "early_stopping": {"patience": 1, "restore_best_weights": True},
    },
    "variants": {
        "bce": {},
        "mse": {"train.loss": "mean_squared_error"},
        "fast": {"train.optimizer": {"name": "adam", "learning_rate": 0.01}},
    },
}


def study_toml(table: dict[str, Any]) -> str:
    """A study table as TOML text (JSON values are valid TOML inline values for these tables)."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in table.items() if not isinstance(v, dict)]
    for name in ("model", "train"):
        lines.append(f"[{name}]")
        lines += [f"{k} = {_toml(v)}" for k, v in table[name].items()]
    for variant, overrides in table.get("variants", {}).items():
        lines.append(f"[variants.{variant}]")
        lines += [f"{json.dumps(k)} = {_toml(v)}" for k, v in overrides.items()]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


#: The tiny study as a study file.
TINY_TOML = study_toml(TINY)


def write_toml(path: Path, table: dict[str, Any]) -> Path:
    """The study ``table`` written as a TOML study file at ``path``."""
    path.write_text(study_toml(table), encoding="utf-8")
    return path


#: What differs between two trainings of the same runs: how long they took, and when.
TIMING = ("seconds_per_epoch", "first_epoch_seconds", "seconds_total", "finished_at")


def comparable(root: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """Every stored result of a study (test scores, history, ...) without its timing fields."""
    from tricklab.store import RunStore

    out = {}
    for result in RunStore(root).results():
        data = {k: v for k, v in result.to_json().items() if k not in TIMING}
        out[(result.variant, result.seed)] = {**data, "history": result.history}
    return out


def write_study(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def train_tiny(study: dict[str, Any], variant: str | None = None, seed: int = 0) -> tuple[Any, Any]:
    """Train one run of ``study`` with the solo engine; return (RunResult, the trained model)."""
    from tricklab.base import backend as _backend
    from tricklab.data import resolve
    from tricklab.engines.solo import train_run
    from tricklab.spec import StudySpec
    from tricklab.study import make_plan

    keras = _backend.keras()
    spec = StudySpec.from_dict(study)
    variant = variant or spec.baseline_variant
    study = resolve(spec)
    dataset, splits = study.dataset, study.splits(seed)
    plan = make_plan(study, variant, seed)

    class Capture(keras.callbacks.Callback):
        def on_train_end(self, logs: Any = None) -> None:
            captured.append(self.model)

    captured: list[Any] = []
    result, *_ = train_run(plan, dataset, splits, callbacks=[Capture()])
    return result, captured[0]


@pytest.fixture
def engine_tasks(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every ``RunTask`` handed to an engine while the test runs, in order (the plan and the
    rows its run trains, validates and tests on, as the engine receives them)."""
    from tricklab import engines

    seen: list[Any] = []
    real = engines.get

    def spying(name: str) -> Any:
        engine = real(name)
        run = engine.run

        def record(tasks: Any, *args: Any, **kwargs: Any) -> Any:
            seen.extend(tasks)
            return run(tasks, *args, **kwargs)

        engine.run = record
        return engine

    monkeypatch.setattr(engines, "get", spying)
    return seen


def write_finished_run(
    root: Path,
    result: Any,
    recipe: dict[str, Any] | None = None,
    input_shape: tuple[int, ...] = (4,),
    predictions: Any = None,
) -> Any:
    """Commit ``result`` (a RunResult) as a finished run of the study at ``root`` without
    training, through the store's own writer: the run is claimed, then saved under the claim
    (spec.json with ``recipe``, by default the tiny study's; history.csv; the weights; test
    predictions; the split's labels; result.json last). The weights are zeros for the recipe's
    model on ``input_shape`` inputs (placed as the engines place them), the predictions made-up
    scores (or ``predictions``), the labels alternate between the classes. Returns the result
    as stored: its key is the run plan's, its params and input shape the model's."""
    import dataclasses

    import numpy as np

    from tricklab.engines import weights_layout
    from tricklab.engines.contract import RunPlan
    from tricklab.spec import Recipe
    from tricklab.store import RunStore

    plan = RunPlan(
        study=result.study,
        variant=result.variant,
        seed=result.seed,
        recipe=Recipe.model_validate(recipe or {k: TINY[k] for k in ("model", "train")}),
        dataset={"name": "made-up"},
        data_fingerprint="made-up",
        validation="test" if result.validated_on == "test set" else 0.1,
        split_seed=result.seed,
        backend=result.backend,
        engine=result.engine,
    )
    layout = weights_layout(plan.recipe, input_shape)
    weights = layout.file([np.zeros(shape, dtype) for shape, dtype in layout.weights])
    result = dataclasses.replace(
        result, key=plan.key, params=weights.size, input_shape=list(input_shape)
    )
    tested = result.split_sizes["test"]
    scores = np.random.default_rng(result.seed).uniform(size=tested).astype("float32")
    if predictions is not None:
        scores = np.asarray(predictions, dtype="float32")
    store = RunStore(root)
    try:
        assert store.claim([plan]) == [plan], f"{plan.variant} seed {plan.seed}: not free"
        commit = store.save(plan, result, weights, predictions=scores, labels=np.arange(tested) % 2)
    finally:
        store.close()
    assert commit.committed, f"{plan.variant} seed {plan.seed}: not committed ({commit.holder})"
    return result


def made_up_result(
    variant: str,
    seed: int,
    best: dict[str, float],
    history: dict[str, list[float]],
    **fields: Any,
) -> Any:
    """A finished run with made-up numbers (for the report and its statistics): test scores
    ``best`` (the last weights score the same), ``history``, and any other field of RunResult."""
    from tricklab.engines.contract import RunResult

    values: dict[str, Any] = {
        "key": f"{variant}-{seed}",
        "study": "made-up",
        "status": "ok",
        "epochs_run": len(history["loss"]),
        "best_epoch": len(history["loss"]),
        "monitor": "val_loss",
        "best_monitor_value": history["val_loss"][-1],
        "params": 10,
        "seconds_per_epoch": 0.01,
        "first_epoch_seconds": 0.1,
        "seconds_total": 0.1,
        "backend": "jax",
        "engine": "solo",
        "versions": {"keras": "3"},
        "validated_on": "validation split",
        "split_sizes": {"train": 300, "validation": 40, "test": 90},
        **fields,
    }
    return RunResult(
        variant=variant,
        seed=seed,
        test={"best": dict(best), "last": dict(best)},
        history=history,
        **values,
    )
