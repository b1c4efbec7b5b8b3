"""The reference models in a report: their table, and the Reference line of the opening.

``run`` fits scikit-learn reference models on every run's rows of a table
(:mod:`tricklab.engines.references`); the report reads them from the store
(:attr:`Report.references <tricklab.report.Report>`, one :class:`RunResult` per model x run
seed) and never fits them. They are rows, not variants: no verdict, not in the Bonferroni family.
The Reference line compares the best variant with the linear reference (logistic regression, or
ridge regression for regression) paired by run, with the statistics code of the comparisons
(:func:`tricklab.stats.compare`, Nadeau-Bengio corrected under resplit and cv) at alpha 0.05.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from tricklab.engines.references import CLASSIFIERS, REGRESSORS, linear_model, takes_references
from tricklab.report._format import DASH, estimate, significant
from tricklab.report._model import metric_names
from tricklab.stats import Comparison, compare, percent, variant_table

if TYPE_CHECKING:
    from tricklab.report._model import Report

#: The Reference line is one test at this level, outside the comparisons' Bonferroni family.
ALPHA = 0.05
#: The verdict cell of a reference model's rows.
REFERENCE = "reference"


def references_wanted(report: Report) -> bool:
    """Whether the study has reference models: a table (a flat feature vector per row) whose
    study file does not say ``references = false``."""
    spec = report.index.spec if report.index is not None else {}
    shape = report.facts.dataset.get("input_shape") or ()  # not recorded: not known to be one
    return bool(spec.get("references", True)) and bool(shape) and takes_references(shape)


def reference_names(report: Report) -> list[str]:
    """The reference models with a fit in the report, in their fixed order."""
    if not references_wanted(report):
        return []
    fitted = {r.variant for r in report.references}
    order = REGRESSORS if report.facts.task == "regression" else CLASSIFIERS
    return [name for name in dict.fromkeys([*order, *sorted(fitted)]) if name in fitted]


def reference_table(report: Report) -> pd.DataFrame:
    """:func:`tricklab.stats.variant_table` of the reference models (index: their names;
    ``seconds_*``: the fit time)."""
    names = reference_names(report)
    metrics = metric_names(report.results, report.primary_metric)
    references = report.references if names else []
    return variant_table(references, names, metrics, correction=report.facts.correction)


def reference_seconds(report: Report, model: str) -> str:
    """The mean fit time of ``model`` over the runs, e.g. ``0.0041``."""
    seconds = [r.seconds_total for r in report.references if r.variant == model]
    return significant(sum(seconds) / len(seconds), 2) if seconds else DASH


def reference_comparison(report: Report) -> Comparison | None:
    """The best variant (primary metric, the report's weights) against the linear reference,
    paired by run: a single test at alpha 0.05, corrected like the comparisons; None without
    both."""
    ranked = report.ranked()
    linear = linear_model(report.facts.task)
    if not ranked or linear not in reference_names(report):
        return None
    best = ranked[0]
    runs = [*report.runs_of(best), *(r for r in report.references if r.variant == linear)]
    return compare(
        runs,
        linear,
        report.primary_metric,
        report.weights,  # a reference's scores are the same for best and last weights
        alpha=ALPHA,
        variants=[best],
        correction=report.facts.correction,
        unit=report.facts.unit,
    )[0]


def reference_line(report: Report) -> str | None:
    """``Reference: <best> <ties|beats|loses to> logistic regression: delta auc <v> [<lo>, <hi>]``
    with how it was tested and the fit time; None when the study has no references (images,
    ``references = false``)."""
    if not references_wanted(report):
        return None
    linear = linear_model(report.facts.task)
    metric = report.primary_metric
    if not report.references:
        return (
            "Reference: references not computed yet (`tricklab run` fits them after training: "
            f"{linear} and other scikit-learn models on every run's rows)."
        )
    comparison = reference_comparison(report)
    if comparison is None or comparison.n == 0:
        return (
            f"Reference: {linear} has no test {metric} paired with the best variant's runs "
            "(the references record the scores that they compute as the runs do)."
        )
    low, high = comparison.ci_low, comparison.ci_high
    word = "ties"
    if math.isfinite(low) and math.isfinite(high) and not low <= 0 <= high:
        better = (comparison.diff > 0) == report.direction.higher_is_better
        word = "beats" if better else "loses to"
    diff, interval = estimate(comparison.diff, low, high)  # a plain number: 0.012, -0.03
    interval = interval or f"[{DASH}, {DASH}]"
    unit = report.facts.unit[:-1]
    how = (
        f"{percent(comparison.confidence)} interval, paired by run"
        + (", Nadeau-Bengio corrected" if comparison.correction else "")
        + f", one test at alpha {ALPHA:g}, outside the Bonferroni family"
        if comparison.n >= 2
        else f"one paired {unit}: too few to test"
    )
    return (
        f"Reference: {comparison.variant} {word} {linear}: delta {metric} {diff} {interval} "
        f"(Δ = {comparison.variant} − {linear} over {comparison.n} {report.facts.unit}; {how}); "
        f"{linear} fits in {reference_seconds(report, linear)} s per run."
    )
