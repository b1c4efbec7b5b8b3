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


def write_study(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def train_tiny(study: dict[str, Any], variant: str | None = None, seed: int = 0) -> tuple[Any, Any]:
    """Train one run of ``study`` with the solo engine; return (RunResult, the trained model)."""
    from tricklab.base import backend as _backend
    from tricklab.engines.solo import train_run
    from tricklab.spec import StudySpec
    from tricklab.study import make_plan, resolve

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
    result, _, _ = train_run(plan, dataset, splits, callbacks=[Capture()])
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


def write_finished_run(root: Path, result: Any, recipe: dict[str, Any] | None = None) -> Path:
    """Store ``result`` (a RunResult) as a finished run of the study at ``root`` without
    training: every file whole, as the store checks them (spec.json with a recipe and a split,
    history.csv, HDF5 weights holding ``result.params`` numbers, test predictions, the split's
    labels). The predictions are made-up scores; the labels alternate between the classes."""
    import h5py
    import numpy as np

    from tricklab.store import HISTORY, PREDICTIONS, RESULT, SPEC, WEIGHTS, history_csv
    from tricklab.store._files import npy_bytes

    run_dir = root / result.variant / f"seed-{result.seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = {"recipe": recipe or {}, "split_seed": result.seed, "data_fingerprint": "made-up"}
    (run_dir / SPEC).write_text(json.dumps(spec))
    with h5py.File(run_dir / WEIGHTS, "w") as weights:
        weights.create_dataset("layers/dense/vars/0", data=np.zeros(result.params, "float32"))
    (run_dir / HISTORY).write_text(history_csv(result.history))
    tested = result.split_sizes["test"]
    scores = np.random.default_rng(result.seed).uniform(size=tested).astype("float32")
    (run_dir / PREDICTIONS).write_bytes(npy_bytes(scores))
    labels = root / "splits" / f"split-{result.seed}-made-up.labels.npy"
    labels.parent.mkdir(exist_ok=True)
    labels.write_bytes(npy_bytes(np.arange(tested) % 2))
    (run_dir / RESULT).write_text(json.dumps(result.to_json()))
    return run_dir
