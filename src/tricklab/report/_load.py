"""Reading a study's report from its store: :func:`load_report` reads, and never writes.

It reads the study index and the finished runs it lists (a run counts only when its stored key
is the one the index plans: results of removed or changed variants are left out), each variant's
resolved recipe (``spec.json`` of a finished run) and, where the store keeps them, the test-set
predictions of the variants whose ROC curves are drawn (and of every run, to see whether a
variant predicts one class or value for every row), and the reference models' fits that
``run`` stored (``references/``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from tricklab.base.errors import StoreError
from tricklab.engines.contract import RunResult
from tricklab.report._model import Report, make_report
from tricklab.stats import FailureMode, predicts_one_class, predicts_one_value
from tricklab.store import RunState, RunStore


def load_report(root: str | Path) -> Report:
    """The report of the study stored in ``root`` (``runs/<study>``), computed without writing
    any file.

    Raises :class:`StoreError` when ``root`` holds no study index or none of its runs finished.
    """
    root = Path(root)
    store = RunStore(root)
    index = store.read_index()
    results, missing = _load_runs(store)
    references = _references(store, results)
    report = make_report(root, index, results, missing, _recipes(store, results), references)
    report.constant = _constant(store, report)
    if report.facts.task == "binary":
        report.predictions = _predictions(store, report)
    return report


def _constant(store: RunStore, report: Report) -> dict[str, FailureMode]:
    """The variants whose every finished run predicts one class (classification) or one value
    (regression) for every test row, at the report's weights; a run without stored predictions
    leaves its variant unflagged."""
    if report.facts.task is None:
        return {}
    classes = report.facts.task in ("binary", "multiclass")
    mode = FailureMode.ONE_CLASS if classes else FailureMode.ONE_VALUE
    out: dict[str, FailureMode] = {}
    for variant in report.table.index:
        runs = report.runs_of(variant)
        for run in runs:  # stops at the first run that varies (or has no predictions)
            loaded = None
            with contextlib.suppress(StoreError, OSError, ValueError, KeyError):
                loaded = store.load_predictions(variant, run.seed, report.weights)
            if loaded is None:
                break
            y_true, outputs = loaded
            if not (
                predicts_one_class(outputs) if classes else predicts_one_value(outputs, y_true)
            ):
                break
        else:
            if runs:
                out[str(variant)] = mode
    return out


def _load_runs(store: RunStore) -> tuple[list[RunResult], list[dict[str, Any]]]:
    """The finished runs the index plans (matched by key), and why the others are missing."""
    results: list[RunResult] = []
    missing: list[dict[str, Any]] = []
    for status in store.indexed_runs():
        if status.result is not None:
            results.append(status.result)
            continue
        why = {
            RunState.PLANNED: status.detail or "not trained yet",
            RunState.RUNNING: f"in training ({status.detail})",
            RunState.FAILED: f"failed: {status.detail}",
            RunState.DAMAGED: f"damaged: {status.detail}",
        }[status.state]
        missing.append({"variant": status.variant, "seed": status.seed, "why": why})
    return results, missing


def _references(store: RunStore, results: list[RunResult]) -> list[RunResult]:
    """The stored reference fits of the finished runs' seeds, as results (never fit here:
    ``run`` fits them, and a report reads the store only)."""
    seeds = {r.seed for r in results}
    return [r for s in store.stored_references() if s.seed in seeds for r in s.as_results()]


def _recipes(store: RunStore, results: list[RunResult]) -> dict[str, dict[str, Any]]:
    """Each variant's resolved recipe, from the spec.json of its first finished run."""
    recipes: dict[str, dict[str, Any]] = {}
    for result in results:
        if result.variant in recipes:
            continue
        with contextlib.suppress(StoreError, OSError, ValueError):
            _, spec = store.load_run(result.variant, result.seed)
            if isinstance(spec, dict) and isinstance(spec.get("recipe"), dict):
                recipes[result.variant] = spec["recipe"]
    return recipes


def roc_variants(report: Report) -> list[str]:
    """The baseline and the best other variant on the primary metric."""
    others = [v for v in report.ranked() if v != report.baseline]
    return [report.baseline, *others[:1]]


def _predictions(store: RunStore, report: Report) -> dict[str, list[tuple[Any, Any]]]:
    """Test-set predictions (y_true, P(positive class)) of the report's weights per seed of
    :func:`roc_variants`, where the store keeps them."""
    load = getattr(store, "load_predictions", None)
    if load is None:
        return {}
    out: dict[str, list[tuple[Any, Any]]] = {}
    for variant in roc_variants(report):
        pairs = []
        for run in report.runs_of(variant):
            with contextlib.suppress(StoreError, OSError, ValueError, KeyError):
                loaded = load(variant, run.seed, report.weights)
                if loaded is not None:
                    pairs.append(loaded)
        if pairs:
            out[variant] = pairs
    return out
