"""Statistics over seeds: what a study's numbers say, and how sure they are.

A study trains every variant with the same seeds, so variants are compared *paired by seed*: the
seed fixes the initial weights, dropout masks and batch order, and pairing removes that shared
noise from the comparison. Everything here reads
:class:`~tricklab.engines.contract.RunResult` objects only (no Keras), and every figure comes
with the number of seeds behind it.

* :func:`summarize` -- mean, spread and 95% interval of one quantity over seeds (Nadeau-Bengio
  corrected when the runs' training sets overlap: resplit, cross-validation).
* :func:`variant_table` -- one row per variant: test metrics, best validation value, best epoch,
  overfitting gap and time, each as mean/std (and interval) over seeds.
* :func:`compare` -- each variant against a baseline, decided by one rule: a paired t-test,
  Bonferroni-adjusted across the m comparisons (alpha/m each), shown with the matching adjusted
  interval (confidence 1 - alpha/m) -- it excludes 0 exactly when the verdict is better/worse.
  Beside it, for information: P(variant beats baseline on a new seed) with an exact interval
  (none when runs share training rows), the minimum detectable difference, the seeds a
  difference this size would need, and the floor no number of runs goes below
  (:func:`detectable_floor`).
* :class:`FailureMode` -- how a variant failed, by what was seen: its loss never moved, it
  predicts one class (value) for every row, or it is not shown better than chance.
* :class:`Verdict` -- what a comparison concluded (better, worse, no detectable difference, too
  few to test): a category, which :mod:`tricklab.report` puts in words.
"""

from __future__ import annotations

from tricklab.stats._compare import (
    Comparison,
    compare,
    comparison_frame,
    decision_rule,
    percent,
)
from tricklab.stats._diagnostics import diagnostics_frame, diagnostics_table
from tricklab.stats._failures import (
    FailureMode,
    loss_stalled,
    predicts_one_class,
    predicts_one_value,
)
from tricklab.stats._power import detectable_floor, minimum_detectable_difference, seeds_needed
from tricklab.stats._summary import (
    CONFIDENCE,
    COUNTED_STATUSES,
    POWER,
    WEIGHTS,
    Summary,
    generalization_gap,
    higher_is_better,
    summarize,
    variant_table,
)
from tricklab.stats._verdict import Verdict

__all__ = [
    "CONFIDENCE",
    "COUNTED_STATUSES",
    "POWER",
    "WEIGHTS",
    "Comparison",
    "FailureMode",
    "Summary",
    "Verdict",
    "compare",
    "comparison_frame",
    "decision_rule",
    "detectable_floor",
    "diagnostics_frame",
    "diagnostics_table",
    "generalization_gap",
    "higher_is_better",
    "loss_stalled",
    "minimum_detectable_difference",
    "percent",
    "predicts_one_class",
    "predicts_one_value",
    "seeds_needed",
    "summarize",
    "variant_table",
]
