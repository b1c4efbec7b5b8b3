"""Studies and the run store: every run kept, nothing retrained needlessly, failures isolated."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tricklab.api import run_study
from tricklab.engines import solo
from tricklab.executors import RunEvent
from tricklab.spec import StudySpec


@pytest.fixture
def study(tiny: dict) -> dict:
    tiny["seeds"] = 2
    tiny["train"]["epochs"] = 1
    tiny["variants"] = {"bce": {}, "mse": {"train.loss": "mean_squared_error"}}
    return tiny


def trained(events: list[RunEvent]) -> list[tuple[str, int]]:
    return [(e.plan.variant, e.plan.seed) for e in events if e.kind == "done"]


def test_rerun_reuses_changed_variant_and_deleted_run_retrain(study: dict, tmp_path: Path) -> None:
    events: list[RunEvent] = []
    first = run_study(StudySpec.from_dict(study), out=tmp_path, listener=events.append)
    assert (first.trained, first.reused) == (4, 0)
    assert trained(events) == [("bce", 0), ("bce", 1), ("mse", 0), ("mse", 1)]

    events.clear()
    again = run_study(StudySpec.from_dict(study), out=tmp_path, listener=events.append)
    assert (again.trained, again.reused) == (0, 4)
    assert [r.history for r in again.results] == [r.history for r in first.results]

    study["variants"]["mse"]["train.epochs"] = 2  # a changed variant retrains only itself
    events.clear()
    changed = run_study(StudySpec.from_dict(study), out=tmp_path, listener=events.append)
    assert trained(events) == [("mse", 0), ("mse", 1)]
    assert changed.reused == 2

    shutil.rmtree(tmp_path / "tiny" / "bce" / "seed-1")  # a deleted run is retrained
    events.clear()
    run_study(StudySpec.from_dict(study), out=tmp_path, listener=events.append)
    assert trained(events) == [("bce", 1)]

    events.clear()
    run_study(StudySpec.from_dict(study), out=tmp_path, fresh=True, listener=events.append)
    assert len(trained(events)) == 4


def test_run_directory_files(study: dict, tmp_path: Path) -> None:
    outcome = run_study(StudySpec.from_dict(study).select(["bce"], seeds=1), out=tmp_path)
    run_dir = tmp_path / "tiny" / "bce" / "seed-0"
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "best.weights.h5",
        "history.csv",
        "last.predictions.npy",
        "last.weights.h5",
        "predictions.npy",
        "result.json",
        "spec.json",
    ]
    result = json.loads((run_dir / "result.json").read_text())
    assert set(result["test"]) == {"best", "last"}
    for key in ("loss", "accuracy", "auc", "balanced_accuracy", "majority_baseline"):
        assert key in result["test"]["best"]
    for key in (
        "epochs_run",
        "best_epoch",
        "params",
        "seconds_per_epoch",
        "backend",
        "engine",
        "versions",
        "status",
    ):
        assert key in result
    with (run_dir / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["epoch", "loss", "val_loss", "accuracy", "val_accuracy"]
    assert len(rows) == result["epochs_run"]
    spec = json.loads((run_dir / "spec.json").read_text())
    assert spec["recipe"]["train"]["loss"] == "binary_crossentropy"
    assert spec["seed"] == 0 and spec["backend"] == "jax"
    index = json.loads((tmp_path / "tiny" / "study.json").read_text())
    assert index["resolved"]["protocol"]["validated_on"] == "validation split"
    assert index["runs"][0]["key"] == outcome.results[0].key


@pytest.mark.parametrize("engine", ["solo", "population"])
def test_a_failing_run_keeps_the_others_and_is_retried(
    study: dict, tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine == "solo":
        real = solo.train_run

        def flaky(plan: Any, *args: Any, **kwargs: Any) -> Any:
            if plan.variant == "mse" and plan.seed == 1:
                raise RuntimeError("out of memory (simulated)")
            return real(plan, *args, **kwargs)

        monkeypatch.setattr(solo, "train_run", flaky)
        failing = [("mse", 1)]
    else:  # a population that fails fails all its members; the next run retries them
        from tricklab.engines import population

        def broken(self: Any) -> None:
            raise RuntimeError("out of memory (simulated)")

        monkeypatch.setattr(population.Population, "_build", broken)
        failing = [("bce", 0), ("bce", 1), ("mse", 0), ("mse", 1)]
    outcome = run_study(StudySpec.from_dict(study), out=tmp_path, engine=engine)
    assert outcome.trained == 4 - len(failing)
    assert [(p.variant, p.seed) for p, _ in outcome.failed] == failing
    assert "out of memory" in outcome.failed[0][1]
    assert (tmp_path / "tiny" / "mse" / "seed-1" / "failed.json").exists()
    monkeypatch.undo()
    events: list[RunEvent] = []
    retry = run_study(
        StudySpec.from_dict(study), out=tmp_path, listener=events.append, engine=engine
    )
    assert trained(events) == failing
    assert retry.reused == 4 - len(failing) and not retry.failed
    assert not (tmp_path / "tiny" / "mse" / "seed-1" / "failed.json").exists()


def test_the_engine_joins_the_run_key(study: dict, tmp_path: Path) -> None:
    spec = StudySpec.from_dict(study).select(["bce"])
    first = run_study(spec, out=tmp_path, engine="solo")
    assert [r.engine for r in first.results] == ["solo", "solo"]
    assert run_study(spec, out=tmp_path, engine="solo").reused == 2
    other = run_study(spec, out=tmp_path, engine="population")
    assert (other.trained, other.reused) == (2, 0)
    assert [r.engine for r in other.results] == ["population", "population"]
    index = json.loads((tmp_path / "tiny" / "study.json").read_text())
    assert index["engines"] == ["population"]


@pytest.mark.parametrize("engine", ["solo", "population"])
def test_split_is_fixed_per_study_unless_resplit(
    study: dict, tmp_path: Path, engine: str, engine_tasks: list[Any]
) -> None:
    """The rows each run actually trains, validates and tests on, as the engine receives them."""
    seen: dict[tuple[str, str, int], dict[str, tuple[int, ...]]] = {}
    for out_name, resplit in (("fixed", False), ("resplit", True)):
        study["resplit"] = resplit
        run_study(StudySpec.from_dict(study), out=tmp_path / out_name, engine=engine)
        for task in engine_tasks:
            rows = {part: tuple(r.tolist()) for part, r in task.splits.rows.items()}
            seen[(out_name, task.plan.variant, task.plan.seed)] = rows
        engine_tasks.clear()
    assert len(seen) == 8
    fixed = {key[1:]: rows for key, rows in seen.items() if key[0] == "fixed"}
    drawn = {key[1:]: rows for key, rows in seen.items() if key[0] == "resplit"}
    assert len({str(rows) for rows in fixed.values()}) == 1  # one split for every run
    for variant_seed, rows in fixed.items():
        train, val, test = (set(rows[p]) for p in ("train", "validation", "test"))
        assert not (train & val or train & test or val & test), variant_seed
    # resplit: each seed its own split, the same for every variant (paired comparisons)
    assert drawn[("bce", 0)] == drawn[("mse", 0)] and drawn[("bce", 1)] == drawn[("mse", 1)]
    assert drawn[("bce", 0)]["test"] != drawn[("bce", 1)]["test"]
    assert drawn[("bce", 0)] == fixed[("bce", 0)]  # seed 0 draws the study's split_seed 0
