"""What the report says beside its numbers: how many finished runs they rest on, what the primary
metric scores without learning (the mean predictor, for mse), and whose seconds are a share.

Each is a pure function of a :class:`~tricklab.report.Report`, read by the tables, the headline,
the figures' captions and the documents alike, so they say it in the same words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tricklab.report._format import beside
from tricklab.report._model import chance_level
from tricklab.spec import METRIC_CATALOGUE, Chance

if TYPE_CHECKING:
    from tricklab.report._model import Report

#: The engine whose members share its time (``RunResult.engine``).
POPULATION = "population"
#: What the training table's seconds are when some runs trained in a population.
SHARED_SECONDS = (
    "seconds: a population's members share its time equally; per-trick cost is not measured "
    'there; use --engine solo (engine="solo" in run_study) to time a trick'
)
#: The row and column of the score of learning nothing, for a metric whose chance is it (mse).
MEAN_PREDICTOR = "mean predictor"


def runs_behind(report: Report) -> str:
    """How many finished runs each variant's numbers rest on, in the study's unit (runs under
    cross-validation, else seeds), never the planned count as if all had finished: ``6 seeds``,
    ``47 of 50 planned runs``, ``4–6 seeds per variant (6 planned)``."""
    unit = report.facts.unit
    finished = sorted({int(n) for n in report.table["seeds"]})
    planned = sorted({report.facts.planned.get(str(v), 0) for v in report.table.index} - {0})
    low, high = finished[0], finished[-1]
    words = unit if high != 1 else unit[:-1]
    if low == high and planned in ([], [low]):
        return f"{low} {words}"
    if low == high and len(planned) == 1:
        return f"{low} of {planned[0]} planned {unit}"
    count = str(low) if low == high else f"{low}–{high}"
    plan = str(planned[0]) if len(planned) == 1 else f"{planned[0]}–{planned[-1]}"
    return f"{count} {words} per variant" + (f" ({plan} planned)" if planned else "")


def mean_predictor(report: Report) -> str:
    """The primary metric's score of always predicting the training mean (:func:`chance_level`),
    at the precision of the baseline's interval, where the metric's chance level is that score
    (mse: the metric catalogue's rule); "" otherwise (r2's is 0 by definition, not shown)."""
    metric = report.primary_metric
    if metric not in METRIC_CATALOGUE or METRIC_CATALOGUE.get(metric).chance != Chance.MEAN_MSE:
        return ""
    chance = chance_level(report)
    if chance is None:
        return ""
    prefix = f"{metric}_{report.weights}"
    row = report.table.loc[report.baseline] if report.baseline in report.table.index else None
    if row is None:
        return beside(chance[0], None, None)
    return beside(chance[0], row.get(f"{prefix}_low"), row.get(f"{prefix}_high"))


def mean_predictor_note(report: Report) -> str:
    """What the mean predictor column and row are (for a caption)."""
    return (
        f"{MEAN_PREDICTOR} = the test {report.primary_metric} of always predicting the training "
        "mean (no learning)"
    )


def seconds_note(report: Report) -> str:
    """:data:`SHARED_SECONDS` when some counted run trained in a population, else ""."""
    counted = (r for v in report.table.index for r in report.runs_of(str(v)))
    return SHARED_SECONDS if any(r.engine == POPULATION for r in counted) else ""


def seconds_share(report: Report, variant: str) -> str:
    """What a variant's seconds are: "" when its runs trained solo (their own time), else that
    they are a population's share (see :data:`SHARED_SECONDS`)."""
    runs = report.runs_of(variant)
    shared = sum(r.engine == POPULATION for r in runs)
    if not shared:
        return ""
    if shared == len(runs):
        return "(population share)"
    return f"({shared} of {len(runs)} runs: population share)"
