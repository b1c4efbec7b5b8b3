"""The figures of a report, with their titles and captions.

:func:`report_figures` draws, for a :class:`~tricklab.report.Report`: the learning curves, the
primary metric per variant (and accuracy beside the majority class), the ROC curves of the
baseline and the best variant (binary tasks, where the store keeps test-set predictions), the
confusion matrix of the best variant and the training diagnostics. Nothing is written here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from tricklab.report import _diagnostic_plots, _plots
from tricklab.report._model import chance_level
from tricklab.report._notes import MEAN_PREDICTOR, runs_behind
from tricklab.report._references import reference_names, reference_table
from tricklab.report._tables import primary_caption
from tricklab.spec import METRIC_CATALOGUE, Chance
from tricklab.stats import diagnostics_frame

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from tricklab.report._model import Report

#: ``{weights}``: the report's checkpoint; ``{runs}``: how many runs the numbers rest on ("6
#: seeds", "47 of 50 planned runs"); ``{unit}``/``{one}``: "seeds"/"seed" ("runs"/"run" under cv).
CAPTIONS = {
    "learning_curves": "Training (dashed) and validation (solid) loss per epoch, one panel per "
    "variant on its own scale (losses differ in scale): the mean over {runs}, with a band from "
    "the lowest to the highest {one}; runs stopped early leave the mean at the epoch they "
    "stopped. The last panel puts every variant's validation curve on one axis.",
    "accuracy_intervals": "Test accuracy ({weights} weights): the mean over {runs}, its 95% "
    "interval and each {one} (dots). The dashed line is the accuracy of always answering the "
    "majority class: a model on it has learned nothing accuracy can show.",
    "roc_curves": "ROC curves on the test rows ({weights} weights) of the baseline and the best "
    "other variant: each {one} thin, all {unit}' predictions pooled bold.",
    "confusion_matrix": "Rows are the true classes of the test rows, columns the predictions; "
    "each cell gives the count and its share of the row.",
    "diagnostics_kernel_grad_norm": "Norm of the gradient of the data loss with respect to "
    "each hidden layer's kernel, on a fixed validation batch. Darker first layers than last "
    "ones mean vanishing gradients: the layers near the input learn slowest.",
    "diagnostics_saturated_fraction": "Share of units within 1% of a bound of their activation "
    "(sigmoid, tanh) for most samples: their derivative is nearly 0.",
    "diagnostics_dead_fraction": "Share of units of a ReLU-family activation that output 0 for "
    "every sample of the batch: dead units get no gradient.",
    "diagnostics_mean_abs_activation": "Mean absolute output of each hidden layer.",
}
#: Figures of test results (besides ``<metric>_intervals``): their captions name the checkpoint.
RESULTS = ("roc_curves", "confusion_matrix")
TITLES = {
    "learning_curves": "Learning curves",
    "roc_curves": "ROC curves",
    "confusion_matrix": "Confusion matrix",
    "diagnostics_kernel_grad_norm": "Diagnostics: kernel gradient norms",
    "diagnostics_saturated_fraction": "Diagnostics: saturated units",
    "diagnostics_dead_fraction": "Diagnostics: dead units",
    "diagnostics_mean_abs_activation": "Diagnostics: activation size",
}


#: The chance rules drawn as a dashed line, and the line's name: scores of the data's own.
CHANCE_LINES = {Chance.MAJORITY: "majority class", Chance.MEAN_MSE: MEAN_PREDICTOR}


def _chance_line(report: Report, metric: str) -> float | None:
    """Where the dashed chance line of ``metric``'s figure goes: its chance level, for the
    metrics whose chance is a score of the data's (:data:`CHANCE_LINES`: always answering the
    majority class, always predicting the training mean; :func:`chance_level`)."""
    if METRIC_CATALOGUE.get(metric).chance not in CHANCE_LINES:
        return None
    chance = chance_level(report, metric)
    return chance[0] if chance is not None else None


def _intervals(report: Report, table: pd.DataFrame, metric: str) -> Figure:
    """``metric`` per variant (and reference model): mean, interval, each run, the chance line."""
    return _plots.metric_intervals(
        table,
        metric,
        report.weights,
        report.baseline,
        _chance_line(report, metric),
        _seed_values(report, metric),
        unit=report.facts.unit,
        chance=CHANCE_LINES.get(METRIC_CATALOGUE.get(metric).chance, ""),
    )


def _best_variant_matrix(report: Report) -> tuple[str, list[list[int]], int] | None:
    """The best variant (primary metric) with confusion matrices of the report's weights, their
    sum and their count."""
    last = report.weights == "last"
    for variant in report.ranked():
        runs = report.runs_of(variant)
        matrices = [
            m for m in (r.confusion_matrix_last if last else r.confusion_matrix for r in runs) if m
        ]
        if matrices:
            total = [
                [sum(m[i][j] for m in matrices) for j in range(len(matrices[0]))]
                for i in range(len(matrices[0]))
            ]
            return variant, total, len(matrices)
    return None


def _seed_values(report: Report, metric: str) -> dict[str, list[float]]:
    values = {
        variant: [
            float(v)
            for r in report.runs_of(variant)
            if (v := r.test.get(report.weights, {}).get(metric)) is not None
        ]
        for variant in report.table.index
    }
    for r in report.references if reference_names(report) else []:
        if (v := r.test.get("best", {}).get(metric)) is not None:
            values.setdefault(r.variant, []).append(float(v))
    return values


def _with_references(report: Report, table: pd.DataFrame) -> pd.DataFrame:
    """The variants' rows, then the reference models' (drawn below them)."""
    references = reference_table(report)
    return table if references.empty else pd.concat([table, references])


def _mark_references(report: Report, figure: Figure) -> Figure:
    """The reference models' labels in grey italics: rows, not variants."""
    names = set(reference_names(report))
    for ax in figure.axes:
        for tick in ax.get_yticklabels():
            if tick.get_text() in names:
                tick.set_color("#7f8c8d")
                tick.set_fontstyle("italic")
    return figure


def report_figures(report: Report) -> dict[str, Figure]:
    """The report's figures by name (the order the documents show them in)."""
    order = report.ranked()
    metric, weights = report.primary_metric, report.weights
    classification = report.facts.classification
    table = _with_references(report, report.table.loc[order])
    unit = report.facts.unit
    figures: dict[str, Figure] = {
        "learning_curves": _plots.learning_curves(
            report.results, list(report.table.index), metric, unit
        ),
        f"{metric}_intervals": _intervals(report, table, metric),
    }
    if classification and metric != "accuracy" and f"accuracy_{weights}_mean" in table.columns:
        figures["accuracy_intervals"] = _intervals(report, table, "accuracy")
    if report.predictions:
        figures["roc_curves"] = _plots.roc_curves(report.predictions, unit)
    if classification:
        best = _best_variant_matrix(report)
        if best is not None:
            variant, matrix, n = best
            title = (
                f"Confusion matrix of {variant} (best {metric})\n"
                f"test rows, {weights} weights, summed over {n} {unit if n != 1 else unit[:-1]}"
            )
            figures["confusion_matrix"] = _plots.confusion_matrix(
                matrix, list(report.facts.classes), title
            )
    frame = diagnostics_frame(report.results)
    if not frame.empty:
        for quantity in _diagnostic_plots.DIAGNOSTIC_QUANTITIES:
            figures[f"diagnostics_{quantity}"] = _diagnostic_plots.diagnostics_grid(
                frame, list(report.table.index), quantity, unit
            )
    for name in (f"{metric}_intervals", "accuracy_intervals"):
        if name in figures:
            _mark_references(report, figures[name])
    return figures


def title_and_caption(report: Report, name: str) -> tuple[str, str]:
    """A figure's section title and caption; the captions of test results begin with the
    primary metric and its weights (``Primary metric: test auc, last weights; ...``)."""
    metric, unit = report.primary_metric, report.facts.unit
    words = {"weights": report.weights, "runs": runs_behind(report), "unit": unit, "one": unit[:-1]}
    caption = CAPTIONS.get(name, "").format(**words)
    if name == f"{metric}_intervals":
        caption = (
            f"Test {metric} ({report.weights} weights, the primary metric): the mean over "
            f"{words['runs']}, its 95% interval and each {words['one']} (dots), best first; the "
            f"baseline variant ({report.baseline}) is in red. The axis is zoomed on the "
            "variants; intervals are clipped to the metric's range (a triangle marks a clipped "
            "end)."
        )
        chance = METRIC_CATALOGUE.get(metric).chance
        if _chance_line(report, metric) is not None and chance is Chance.MEAN_MSE:
            caption += f" The dashed line: the {MEAN_PREDICTOR}, always the training mean."
        elif _chance_line(report, metric) is not None:
            caption += " The dashed line: always answering the majority class."
        if reference_names(report):
            caption += (
                " Below the variants, in grey italics: the reference models (scikit-learn), "
                "fit on the same runs' rows."
            )
    title = TITLES.get(name, f"Test {name.removesuffix('_intervals')} per variant")
    if name in RESULTS or name.endswith("_intervals"):
        caption = f"{primary_caption(report)}. {caption}"
    return title, caption
