"""The run store: every run of a study kept on disk, reused when nothing changed.

Layout (``runs/<study>/``)::

    study.json                     the study index: spec, variants, seeds, protocol, runs
    <variant>/seed-<n>/spec.json   the resolved run spec (what determines the numbers)
    <variant>/seed-<n>/history.csv one row per epoch: epoch, loss, val_loss and every metric
    <variant>/seed-<n>/best.weights.h5
    <variant>/seed-<n>/diagnostics.csv  per hidden layer and epoch, when the study asks for it
    <variant>/seed-<n>/result.json written last: a run is finished when it exists with its key

A finished run is written in ``<run dir>/.partial/`` and moved into place, ``result.json`` last, so
a crash never leaves a half-written run that looks finished. The store reads and writes every
file; it never trains (engines return results and weights as arrays).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tricklab.errors import StoreError
from tricklab.result import RESULT_SCHEMA, RunPlan, RunResult

WEIGHTS = "best.weights.h5"
DIAGNOSTICS = "diagnostics.csv"
INDEX = "study.json"


class RunStore:
    """The runs of one study under ``root`` (``runs/<study>``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- paths ----------------------------------------------------------------------------
    def run_dir(self, variant: str, seed: int) -> Path:
        return self.root / variant / f"seed-{seed}"

    def staging_dir(self, variant: str, seed: int) -> Path:
        """Where a run in progress writes; emptied before each attempt."""
        staging = self.run_dir(variant, seed) / ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        return staging

    # -- reading --------------------------------------------------------------------------
    def finished(self, plan: RunPlan) -> RunResult | None:
        """The stored result of this exact run, or None if it must be (re)trained."""
        result = load_result(self.run_dir(plan.variant, plan.seed))
        if result is None or result.key != plan.key or result.schema != RESULT_SCHEMA:
            return None
        return result

    def results(self) -> Iterator[RunResult]:
        """Every finished run under this study directory."""
        for path in sorted(self.root.glob("*/seed-*/result.json")):
            result = load_result(path.parent)
            if result is not None:
                yield result

    # -- writing --------------------------------------------------------------------------
    def save(self, plan: RunPlan, result: RunResult, weights: list[Any]) -> Path:
        """Write a finished run (its best ``weights`` as ``best.weights.h5``); result.json last."""
        from tricklab.engines._scoring import write_weights  # imports Keras

        staging = self.staging_dir(plan.variant, plan.seed)
        write_weights(staging / WEIGHTS, plan.recipe, tuple(result.input_shape), weights)
        run_dir = self.run_dir(plan.variant, plan.seed)
        for stale in (
            "result.json",
            "spec.json",
            "history.csv",
            WEIGHTS,
            DIAGNOSTICS,
            "failed.json",
        ):
            (run_dir / stale).unlink(missing_ok=True)
        _write_json(staging / "spec.json", plan.resolved())
        write_history(staging / "history.csv", result.history)
        if result.diagnostics:
            write_rows(staging / DIAGNOSTICS, result.diagnostics)
        for name in ("spec.json", "history.csv", WEIGHTS, DIAGNOSTICS):
            if (staging / name).exists():
                os.replace(staging / name, run_dir / name)
        _write_json(run_dir / "result.json", result.to_json())
        shutil.rmtree(staging, ignore_errors=True)
        return run_dir

    def save_failure(self, plan: RunPlan, error: str) -> Path:
        """Record why a run failed; it is retried next time."""
        run_dir = self.run_dir(plan.variant, plan.seed)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "result.json").unlink(missing_ok=True)
        _write_json(run_dir / "failed.json", {"key": plan.key, "error": error})
        return run_dir

    def clear(self) -> None:
        """Delete every run of this study (``--fresh``)."""
        if self.root.exists():
            shutil.rmtree(self.root)

    def write_index(self, index: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json(self.root / INDEX, index)

    def read_index(self) -> dict[str, Any]:
        path = self.root / INDEX
        if not path.exists():
            raise StoreError(
                f"{self.root}: not a tricklab study directory (no {INDEX}). "
                "Run `tricklab run STUDY.toml` first; studies are stored under runs/<study>/."
            )
        return _read_json(path)


def load_result(run_dir: Path) -> RunResult | None:
    """A run directory's result, or None if it has not finished."""
    path = run_dir / "result.json"
    if not path.exists():
        return None
    data = _read_json(path)
    history_path = run_dir / "history.csv"
    history = read_history(history_path) if history_path.exists() else {}
    diagnostics_path = run_dir / DIAGNOSTICS
    diagnostics = read_rows(diagnostics_path) if diagnostics_path.exists() else []
    return RunResult.from_json(data, history, diagnostics)


def write_history(path: Path, history: dict[str, list[float]]) -> None:
    columns = ["loss", "val_loss", *sorted(k for k in history if k not in ("loss", "val_loss"))]
    columns = [c for c in columns if c in history]
    epochs = len(history.get("loss", []))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", *columns])
        for epoch in range(epochs):
            writer.writerow([epoch + 1, *(repr(float(history[c][epoch])) for c in columns)])


def read_history(path: Path) -> dict[str, list[float]]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {}
    return {c: [float(r[c]) for r in rows] for c in rows[0] if c != "epoch"}


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV with numbers parsed (text columns stay text)."""
    with path.open(newline="") as handle:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _number(text: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def _write_json(path: Path, data: Any) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(f"{path}: unreadable ({exc}). Delete it to retrain that run.") from None
