"""The verdicts in words: each :class:`~tricklab.stats.Verdict` as a label, a word and a sentence.

:mod:`tricklab.stats` decides the category of each comparison; this module is the one place that
words it: :func:`verdict_label` for the wide table ("no detectable difference with 6 seeds;
about 20 seeds would decide it"), :func:`short_verdict` for the compact table ("unclear"),
:func:`comparison_sentence` for the line that states the whole comparison, :func:`outlook` for
what more runs would do, :func:`untested_phrase` for the headline, and :func:`interval_note` and
:func:`beats_note` for what the intervals and P(beats baseline) are, and :func:`failure_words` for
how a variant failed.
"""

from __future__ import annotations

import math

from tricklab.report._format import beside, estimate, significant
from tricklab.stats import CONFIDENCE, Comparison, FailureMode, Verdict, percent

#: The verdict cell of the baseline's row, and of a variant that could not be compared.
BASELINE = "baseline"
NOT_COMPARED = "not compared"
#: Why the runs of resplit and cv have a floor (the report's protocol and comparisons).
FLOOR_NOTE = (
    "as the runs share training rows, more runs shrink the error of a difference only down to "
    "s·sqrt(n_test/n_train): no number of runs detects a difference below that floor (shown "
    "beside the minimum detectable difference); a larger test fraction lowers it"
)
#: One word per verdict, in the compact table.
SHORT_VERDICTS = {
    Verdict.BETTER: "better",
    Verdict.WORSE: "worse",
    Verdict.NO_DIFFERENCE: "unclear",
    Verdict.TOO_FEW: "untested",
}


def verdict_label(comparison: Comparison) -> str:
    """``better``, ``worse``, ``no detectable difference with 6 seeds`` (with its
    :func:`outlook`: ``; about 20 seeds would decide it``, or ``; this protocol cannot decide
    differences below 0.21: a larger test fraction would``) or ``too few seeds to test (1)``
    (runs in place of seeds under cv: the comparison's unit)."""
    verdict, n, unit = comparison.verdict, comparison.n, comparison.unit
    if verdict is Verdict.TOO_FEW:
        return f"too few {unit} to test ({n})"
    if verdict is Verdict.NO_DIFFERENCE:
        more = outlook(comparison)
        return f"no detectable difference with {n} {unit}" + (f"; {more}" if more else "")
    return SHORT_VERDICTS[verdict]


def outlook(comparison: Comparison) -> str:
    """What more runs would do for an undecided comparison: ``about 20 runs would decide it``
    (the runs the rule needs to detect a difference this size, power 0.8), or, when the
    difference is at or below the comparison's floor (runs that share training rows: no number
    of them detects it), ``this protocol cannot decide differences below 0.21: a larger test
    fraction would``; "" otherwise (decided, untested, no spread, or enough runs already)."""
    c = comparison
    if c.verdict is not Verdict.NO_DIFFERENCE or c.ci_low == c.ci_high:
        return ""
    if c.below_floor:
        floor = beside(c.floor, c.ci_low, c.ci_high)
        return (
            f"this protocol cannot decide differences below {floor}: a larger test fraction would"
        )
    if c.seeds_needed is not None and c.seeds_needed > c.n:
        return f"about {c.seeds_needed} {c.unit} would decide it"
    return ""


#: What each failure mode says: an observation, never "did not learn".
FAILURE_WORDS = {
    FailureMode.LOSS_FLAT: "training loss never moved",
    FailureMode.ONE_CLASS: "predicts one class for every row",
    FailureMode.ONE_VALUE: "predicts one value for every row",
    FailureMode.AT_CHANCE: "not shown better than chance",
}


def failure_words(mode: FailureMode) -> str:
    """``predicts one class for every row``, ``not shown better than chance``, ..."""
    return FAILURE_WORDS[mode]


def short_verdict(verdict: Verdict) -> str:
    """One word: better, worse, unclear (no detectable difference), untested."""
    return SHORT_VERDICTS[verdict]


def untested_phrase(unit: str) -> str:
    """What the headline says of variants with too few pairs: ``too few seeds to test``."""
    return f"too few {unit} to test"


def comparison_sentence(comparison: Comparison) -> str:
    """The comparison in one line, its numbers at the precision of the tables (two significant
    digits of the interval's half-width), e.g. ``dropout vs baseline: loss -0.052, 98.33%
    interval [-0.081, -0.023], p=0.001, adjusted p=0.003 (Bonferroni across 3 comparisons,
    alpha 0.05/3): better; minimum detectable difference ±0.031; P(dropout beats baseline on a
    new seed) 1.00 [0.40, 1.00].``"""
    c = comparison
    one = c.unit[:-1]  # "seed", "run"
    label = c.metric if c.weights == "best" else f"{c.metric} (last weights)"
    head = f"{c.variant} vs {c.baseline}: {label}"
    verdict = verdict_label(c)
    if c.p is None:
        value = f" {significant(c.diff, 3, sign=True)} on 1 {one}" if c.n == 1 else ""
        return f"{head}{value}: {verdict}."
    diff, bracket = estimate(c.diff, c.ci_low, c.ci_high, sign=True)
    interval = f"{percent(c.confidence)} interval {bracket}"
    rule = ["Nadeau-Bengio corrected"] if c.correction else []
    if c.tests == 1:
        test = _p_is("p", c.p)
        rule += ["1 comparison", f"alpha {c.alpha:g}"]
    else:
        test = f"{_p_is('p', c.p)}, {_p_is('adjusted p', c.p_adjusted)}"
        rule += [f"Bonferroni across {c.tests} comparisons", f"alpha {c.alpha:g}/{c.tests}"]
    test += f" ({', '.join(rule)})"
    text = f"{head} {diff}, {interval}, {test}: {verdict}"
    if c.ci_low == c.ci_high:  # every seed gave the same difference
        text += f" (the same difference on every {one})"
    if math.isfinite(c.mde):
        text += f"; minimum detectable difference ±{beside(c.mde, c.ci_low, c.ci_high)}"
        if math.isfinite(c.floor) and c.floor > 0:
            text += f" (±{beside(c.floor, c.ci_low, c.ci_high)} with unlimited {c.unit})"
    if math.isfinite(c.p_beats_low):
        text += (
            f"; P({c.variant} beats {c.baseline} on a new {one}) {c.p_beats:.2f} "
            f"[{c.p_beats_low:.2f}, {c.p_beats_high:.2f}]"
        )
    elif c.correction and math.isfinite(c.p_beats):
        text += (
            f"; P({c.variant} beats {c.baseline} on a new {one}) {c.p_beats:.2f} (no interval: "
            f"the {c.unit} share training rows)"
        )
    return text + "."


def interval_note(correction: float) -> str:
    """What a variant's interval is: ``95% t-intervals``, or under a Nadeau-Bengio correction
    ``95% intervals, Nadeau-Bengio corrected (runs share training rows: variance s²(1/J +
    0.25) over J runs)``."""
    if not correction:
        return f"{CONFIDENCE:.0%} t-intervals"
    return (
        f"{CONFIDENCE:.0%} intervals, Nadeau-Bengio corrected (runs share training rows: "
        f"variance s²(1/J + {correction:.3g}) over J runs)"
    )


def beats_note(comparison: Comparison) -> str:
    """What P(variant beats baseline) is and why it has the interval it has (or none)."""
    c = comparison
    one = c.unit[:-1]
    share = (
        f"P(variant beats baseline on a new {one}): the share of {c.unit} on which the variant "
        "was better (ties count half)"
    )
    if c.correction:
        return (
            f"{share}, without an interval: the {c.unit} share training rows, so they are "
            "not independent trials"
        )
    return (
        f"{share}, with its exact {percent(c.confidence)} Clopper-Pearson interval (the "
        "Bonferroni-adjusted level; ties counted as losses for the low end, as wins for the high "
        "end)"
    )


def _p_is(name: str, p: float | None) -> str:
    """``p=0.12``, ``p<0.001``."""
    text = _p(p)
    return f"{name}{'' if text.startswith('<') else '='}{text}"


def _p(p: float | None) -> str:
    """A p-value with two significant digits; below 0.001 as ``<0.001``."""
    if p is None:
        return "n/a"
    return "<0.001" if 0 < p < 0.001 else f"{p:.2g}"
