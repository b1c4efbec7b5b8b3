"""A report's numbers as flat tables (``tricklab report --csv``): one row per run, one per variant.

Both tables hold the study's variants and, below them, the reference models (``kind`` column:
"variant" or "reference"), with the numbers the report shows and nothing reworded: test scores
at both checkpoints, the intervals as :func:`tricklab.stats.variant_table` computes them
(corrected where runs share training rows), and each variant's comparison with the baseline.
Verdicts and failure modes are the enums' values; no prose.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import TYPE_CHECKING, Any

import pandas as pd

from tricklab.report._model import metric_names
from tricklab.report._references import reference_table

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tricklab.engines.contract import RunResult
    from tricklab.report._model import Report

VARIANT, REFERENCE = "variant", "reference"
WEIGHTS = ("best", "last")
#: The comparison fields of each variant's row (:class:`tricklab.stats.Comparison`), in order.
COMPARISON = (
    "n",
    "diff",
    "ci_low",
    "ci_high",
    "p",
    "p_adjusted",
    "tests",
    "verdict",
    "p_beats",
    "p_beats_low",
    "p_beats_high",
    "mde",
    "seeds_needed",
)


def runs_frame(report: Report) -> pd.DataFrame:
    """One row per finished run (variants first, in the study's order, then the reference
    models): who, how it ended, and each test metric at both checkpoints (``<metric>_best``,
    ``<metric>_last``); ``checkpoint`` says which one the study compares."""
    metrics = metric_names(report.results, report.primary_metric)
    order = {name: i for i, name in enumerate(report.table.index)}
    variants = sorted(report.results, key=lambda r: (order.get(r.variant, len(order)), r.seed))
    rows = [
        *_run_rows(variants, VARIANT, report, metrics),
        *_run_rows(report.references, REFERENCE, report, metrics),
    ]
    columns = [
        "kind",
        "variant",
        "seed",
        "key",
        "status",
        "engine",
        "checkpoint",
        "epochs_run",
        "best_epoch",
        "seconds_total",
        *(f"{m}_{w}" for m in metrics for w in WEIGHTS),
    ]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({"best_epoch": "Int64"})  # None where no epoch was best


def _run_rows(
    results: Iterable[RunResult], kind: str, report: Report, metrics: list[str]
) -> list[dict[str, Any]]:
    rows = []
    for run in results:
        row: dict[str, Any] = {
            "kind": kind,
            "variant": run.variant,
            "seed": run.seed,
            "key": run.key,
            "status": run.status.value,
            "engine": run.engine,
            "checkpoint": report.weights,
            "epochs_run": run.epochs_run,
            "best_epoch": run.best_epoch,
            "seconds_total": run.seconds_total,
        }
        for metric in metrics:
            for weights in WEIGHTS:
                row[f"{metric}_{weights}"] = run.test.get(weights, {}).get(metric)
        rows.append(row)
    return rows


def variants_frame(report: Report) -> pd.DataFrame:
    """One row per variant, then per reference model: :func:`tricklab.stats.variant_table`'s
    columns (``<metric>_<best|last>_n/mean/std/low/high``, ...), the comparison with the
    baseline on the primary metric at the study's checkpoint (``compared``, ``baseline`` and
    :data:`COMPARISON`; empty for the baseline and the references) and the failure mode."""
    comparisons = {c.variant: c for c in report.comparisons}
    failed = report.failures()
    table = report.table.reset_index()
    table.insert(0, "kind", VARIANT)
    extra: list[dict[str, Any]] = []
    for variant in table["variant"]:
        comparison = comparisons.get(variant)
        row: dict[str, Any] = {
            "baseline": report.baseline,
            "compared": f"{report.primary_metric}_{report.weights}" if comparison else None,
        }
        for name in COMPARISON:
            value = getattr(comparison, name) if comparison is not None else None
            row[name] = value.value if isinstance(value, Enum) else _number(value)
        row["failure"] = failed[variant].mode.value if variant in failed else None
        extra.append(row)
    variants = pd.concat([table, pd.DataFrame(extra, index=table.index)], axis=1)
    references = reference_table(report).reset_index()
    if references.empty:
        return variants
    references.insert(0, "kind", REFERENCE)
    return pd.concat([variants, references], ignore_index=True)[variants.columns]


def _number(value: Any) -> Any:
    """NaN for a missing float (a CSV shows it as an empty cell either way)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
