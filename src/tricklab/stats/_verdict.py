"""What a comparison concluded: one of four categories, decided by the rule of :func:`compare`.

The verdict is a category, not prose: :mod:`tricklab.report` words it (with the number of seeds
or runs behind it). Its values are short readable strings, the ones
:func:`~tricklab.stats.comparison_frame` shows.
"""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    """The verdict of one variant against the baseline."""

    #: The adjusted test rejects "no difference" and the variant improves the metric.
    BETTER = "better"
    #: The adjusted test rejects "no difference" and the variant makes the metric worse.
    WORSE = "worse"
    #: Tested, and the adjusted test does not tell the variant from the baseline.
    NO_DIFFERENCE = "no detectable difference"
    #: Fewer than two paired seeds (runs): not tested.
    TOO_FEW = "too few to test"


def decide(mean: float, p_adjusted: float | None, alpha: float, higher_is_better: bool) -> Verdict:
    """The verdict of a paired comparison whose differences (variant - baseline) average
    ``mean``: untested without an adjusted p-value, else decided when ``p_adjusted`` is below
    ``alpha`` and the mean difference is not 0, its direction read with ``higher_is_better``."""
    if p_adjusted is None:
        return Verdict.TOO_FEW
    if p_adjusted >= alpha or mean == 0:
        return Verdict.NO_DIFFERENCE
    improved = (mean > 0) == higher_is_better
    return Verdict.BETTER if improved else Verdict.WORSE
