"""The verdicts in words: each :class:`~tricklab.stats.Verdict` as a label, a word and a sentence.

:mod:`tricklab.stats` decides the category of each comparison; this module is the one place that
words it: :func:`verdict_label` for the wide table ("no detectable difference with 6 seeds"),
:func:`short_verdict` for the compact table ("unclear"), :func:`comparison_sentence` for the line
that states the whole comparison, and :func:`untested_phrase` for the headline.
"""

from __future__ import annotations

import math

from tricklab.stats import Comparison, Verdict, percent

#: The verdict cell of the baseline's row, and of a variant that could not be compared.
BASELINE = "baseline"
NOT_COMPARED = "not compared"
#: One word per verdict, in the compact table.
SHORT_VERDICTS = {
    Verdict.BETTER: "better",
    Verdict.WORSE: "worse",
    Verdict.NO_DIFFERENCE: "unclear",
    Verdict.TOO_FEW: "untested",
}


def verdict_label(comparison: Comparison) -> str:
    """``better``, ``worse``, ``no detectable difference with 6 seeds`` or ``too few seeds to
    test (1)`` (runs in place of seeds under cv: the comparison's unit)."""
    verdict, n, unit = comparison.verdict, comparison.n, comparison.unit
    if verdict is Verdict.TOO_FEW:
        return f"too few {unit} to test ({n})"
    if verdict is Verdict.NO_DIFFERENCE:
        return f"no detectable difference with {n} {unit}"
    return SHORT_VERDICTS[verdict]


def short_verdict(verdict: Verdict) -> str:
    """One word: better, worse, unclear (no detectable difference), untested."""
    return SHORT_VERDICTS[verdict]


def untested_phrase(unit: str) -> str:
    """What the headline says of variants with too few pairs: ``too few seeds to test``."""
    return f"too few {unit} to test"


def comparison_sentence(comparison: Comparison) -> str:
    """The comparison in one line, e.g. ``dropout vs baseline: loss -0.052, 98.33% interval
    [-0.081, -0.023], p=0.001, adjusted p=0.003 (Bonferroni across 3 comparisons, alpha
    0.05/3): better; minimum detectable difference ±0.031; P(dropout beats baseline on a new
    seed) 0.90 [0.75, 1.00].``"""
    c = comparison
    one = c.unit[:-1]  # "seed", "run"
    label = c.metric if c.weights == "best" else f"{c.metric} (last weights)"
    head = f"{c.variant} vs {c.baseline}: {label}"
    verdict = verdict_label(c)
    if c.p is None:
        value = f" {_number(c.diff, c.diff)} on 1 {one}" if c.n == 1 else ""
        return f"{head}{value}: {verdict}."
    scale = max(abs(c.diff), abs(c.ci_low), abs(c.ci_high))
    low = _number(c.ci_low, scale, sign=False)
    high = _number(c.ci_high, scale, sign=False)
    interval = f"{percent(c.confidence)} interval [{low}, {high}]"
    rule = ["Nadeau-Bengio corrected"] if c.correction else []
    if c.tests == 1:
        test = _p_is("p", c.p)
        rule += ["1 comparison", f"alpha {c.alpha:g}"]
    else:
        test = f"{_p_is('p', c.p)}, {_p_is('adjusted p', c.p_adjusted)}"
        rule += [f"Bonferroni across {c.tests} comparisons", f"alpha {c.alpha:g}/{c.tests}"]
    test += f" ({', '.join(rule)})"
    text = f"{head} {_number(c.diff, scale)}, {interval}, {test}: {verdict}"
    if c.ci_low == c.ci_high:  # every seed gave the same difference
        text += f" (the same difference on every {one})"
    elif c.verdict is Verdict.NO_DIFFERENCE and (c.seeds_needed or 0) > c.n:
        text += f"; about {c.seeds_needed} {c.unit} would detect a difference this size"
    if math.isfinite(c.mde):
        text += f"; minimum detectable difference ±{_number(c.mde, c.mde, sign=False)}"
    if math.isfinite(c.p_beats_low):
        text += (
            f"; P({c.variant} beats {c.baseline} on a new {one}) {c.p_beats:.2f} "
            f"[{c.p_beats_low:.2f}, {c.p_beats_high:.2f}]"
        )
    return text + "."


def _number(value: float, scale: float, *, sign: bool = True) -> str:
    """A value with enough decimals for its scale: at least 3, two significant digits."""
    digits = 3
    if math.isfinite(scale) and 0 < abs(scale) < 0.01:
        digits = min(12, 1 - math.floor(math.log10(abs(scale))))
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _p_is(name: str, p: float | None) -> str:
    """``p=0.12``, ``p<0.001``."""
    text = _p(p)
    return f"{name}{'' if text.startswith('<') else '='}{text}"


def _p(p: float | None) -> str:
    """A p-value with two significant digits; below 0.001 as ``<0.001``."""
    if p is None:
        return "n/a"
    return "<0.001" if 0 < p < 0.001 else f"{p:.2g}"
