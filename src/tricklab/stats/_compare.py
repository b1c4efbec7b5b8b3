"""Each variant against the baseline: one deciding rule, and what goes beside it."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats
from statsmodels.stats.multitest import multipletests

if TYPE_CHECKING:
    from tricklab.engines.contract import RunResult
from tricklab.stats._power import (
    detectable_floor,
    minimum_detectable_difference,
    seeds_needed,
)
from tricklab.stats._summary import (
    WEIGHTS,
    Summary,
    group_runs,
    higher_is_better,
    summarize,
)
from tricklab.stats._verdict import Verdict, decide


# -- comparisons against a baseline --------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """One variant against the baseline on one test metric, paired by seed.

    The deciding rule: a paired t-test, Bonferroni-adjusted across the ``tests`` comparisons of
    the call that could be tested (those with at least two paired seeds). ``p`` is the paired
    t-test, ``p_adjusted`` = min(1, ``tests`` x ``p``), and ``verdict`` is
    :attr:`Verdict.BETTER`/:attr:`Verdict.WORSE` only when ``p_adjusted`` is below ``alpha``
    (i.e. ``p`` below ``alpha / tests``); :mod:`tricklab.report` words it.

    ``diff`` is variant minus baseline (sign as the metric: for a loss, negative is an
    improvement) over the ``n`` paired seeds, and ``[ci_low, ci_high]`` the matching adjusted
    interval: the paired t-interval at confidence ``1 - alpha / tests`` (:attr:`confidence`). It
    excludes 0 exactly when the verdict is better or worse.

    For information, beside the rule: ``p_beats`` is the share of seeds on which the variant beat
    the baseline (a tie counts half), an estimate of P(variant beats baseline on a new seed),
    with ``[p_beats_low, p_beats_high]`` its exact (Clopper-Pearson) interval at the adjusted
    confidence :attr:`confidence` under one split, and NaN (no interval) when the runs' training
    sets overlap (``correction`` > 0: runs are not independent trials); ``mde`` is the minimum
    detectable difference: the smallest |difference| the rule detects with power 0.8 at ``n``
    seeds and the observed spread of the differences; ``seeds_needed`` is how many seeds the
    rule would need to detect a difference the size of ``diff`` (power 0.8), a planning figure
    that takes the observed values at face value; ``floor`` is what ``mde`` tends to with
    unlimited seeds: 0 for a plain t-test, and under the correction the smallest |difference|
    any number of runs detects with power 0.8 (``seeds_needed`` is None when ``|diff|`` is at
    or below it, :attr:`below_floor`).
    """

    variant: str
    baseline: str
    metric: str
    weights: str
    n: int
    diff: float
    ci_low: float
    ci_high: float
    p: float | None
    p_adjusted: float | None
    tests: int
    alpha: float
    verdict: Verdict
    mde: float
    seeds_needed: int | None
    p_beats: float
    p_beats_low: float
    p_beats_high: float
    #: Nadeau-Bengio's n_test/n_train when the runs' training sets overlap (resplit, cv): the
    #: t-test's variance is s^2 (1/n + correction) instead of s^2/n. 0: a plain paired t-test.
    correction: float = 0.0
    #: What the paired runs are counted in: "seeds", or "runs" under cross-validation.
    unit: str = "seeds"
    #: :func:`detectable_floor`: the smallest |difference| the rule detects (power 0.8) with any
    #: number of runs; 0 for a plain paired t-test, NaN where untested or without spread.
    floor: float = 0.0

    @property
    def below_floor(self) -> bool:
        """Whether ``|diff|`` is at or below a positive :attr:`floor`: no number of runs of
        this protocol detects a difference this size (a larger test fraction would)."""
        return self.floor > 0 and abs(self.diff) <= self.floor

    @property
    def alpha_adjusted(self) -> float:
        """The per-comparison level of the rule: ``alpha / tests``."""
        return self.alpha / max(self.tests, 1)

    @property
    def confidence(self) -> float:
        """Confidence of the adjusted interval ``[ci_low, ci_high]``: ``1 - alpha / tests``."""
        return 1 - self.alpha_adjusted


def decision_rule(tests: int, alpha: float = 0.05, correction: float = 0.0) -> str:
    """The deciding rule in words, e.g. for 3 comparisons: ``verdicts: paired t-test,
    Bonferroni-adjusted across the 3 comparisons (alpha 0.05/3); intervals are the matching
    adjusted intervals (98.33%)``; with a ``correction``, the test is Nadeau-Bengio's
    corrected resampled t-test."""
    m = max(tests, 1)
    comparisons = "comparison" if m == 1 else "comparisons"
    test = (
        f"Nadeau-Bengio corrected paired t-test (variance x (1/n + {correction:.3g}), as "
        "the runs' training sets overlap)"
        if correction
        else "paired t-test"
    )
    return (
        f"verdicts: {test}, Bonferroni-adjusted across the {m} {comparisons} "
        f"(alpha {alpha:g}/{m}); intervals are the matching adjusted intervals "
        f"({percent(1 - alpha / m)})"
    )


def percent(confidence: float) -> str:
    """A confidence level as a percentage with at most two decimals: 95%, 98.33%, 99.5%."""
    return f"{100 * confidence:.2f}".rstrip("0").rstrip(".") + "%"


def compare(
    results: Sequence[RunResult],
    baseline: str,
    metric: str,
    weights: str = "best",
    alpha: float = 0.05,
    variants: Sequence[str] | None = None,
    correction: float = 0.0,
    unit: str = "seeds",
) -> list[Comparison]:
    """Every variant (``variants``, else all in first-seen order) except ``baseline`` against it.

    ``correction`` (the protocol's n_test/n_train, :class:`tricklab.data.Protocol`): when runs
    train on overlapping rows (resplit, cross-validation) their differences are correlated and
    a plain paired t-test is too confident; Nadeau and Bengio's corrected resampled t-test
    (Machine Learning 52, 2003) uses the variance s^2 (1/n + correction) in place of s^2/n, in
    the p-value, the interval and the power figures alike. 0 (one fixed split): plain test.
    ``unit`` names what the pairs are counted in, for the report's words ("runs" under cv).

    Seeds are paired: a seed counts only when both runs have a finite ``metric`` (a None value,
    e.g. auc on a one-class test set, drops that seed from the pair). A comparison with fewer than
    two pairs is not tested (:attr:`Verdict.TOO_FEW`); the others, m of them, are paired t-tests
    Bonferroni-adjusted together: the verdict is better/worse (direction from
    :func:`higher_is_better`) only when m x p is below ``alpha``, and the interval shown is the
    paired t-interval at confidence 1 - alpha/m, which excludes 0 exactly then.

    When every paired difference is exactly identical the t-test is undefined (zero spread):
    then p is 1.0 if the difference is zero (the variant changed nothing; the interval is
    [0, 0]), and 0.0 otherwise (a deterministic difference, reproduced by every seed; the
    interval is that difference, excluding 0); ``mde`` and ``floor`` are NaN and
    ``seeds_needed`` None in both. P(beats baseline)'s interval is at the same adjusted level,
    exact under one split and left out under a ``correction`` (see :func:`_beats`).
    """
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be 'best' or 'last', not {weights!r}")
    groups = group_runs(results)
    if baseline not in groups:
        raise ValueError(f"baseline variant {baseline!r} has no results")
    names = [v for v in (variants if variants is not None else groups) if v != baseline]
    base = _values_by_seed(groups[baseline], metric, weights)
    paired = [_paired(_values_by_seed(groups.get(v, []), metric, weights), base) for v in names]
    if not (math.isfinite(correction) and correction >= 0):
        raise ValueError(f"correction must be a finite number >= 0, not {correction!r}")
    tests = [_paired_test(variant, reference, correction) for variant, reference in paired]
    adjusted = _bonferroni([p for _, p, _ in tests])
    m = sum(p is not None for _, p, _ in tests)
    alpha_adjusted = alpha / m if m else alpha
    higher = higher_is_better(metric)
    comparisons = []
    for name, (variant, reference), (summary, p, result), p_adjusted in zip(
        names, paired, tests, adjusted, strict=True
    ):
        low, high = _adjusted_interval(summary, result, 1 - alpha_adjusted)
        tested = result is not None  # a t-test with spread: power figures apply
        beats, beats_low, beats_high = _beats(
            variant - reference, higher, 1 - alpha_adjusted, correction
        )
        comparisons.append(
            Comparison(
                variant=name,
                baseline=baseline,
                metric=metric,
                weights=weights,
                n=summary.n,
                diff=summary.mean,
                ci_low=low,
                ci_high=high,
                p=p,
                p_adjusted=p_adjusted,
                tests=m,
                alpha=alpha,
                verdict=decide(summary.mean, p_adjusted, alpha, higher),
                mde=(
                    minimum_detectable_difference(
                        summary.std, summary.n, alpha_adjusted, correction=correction
                    )
                    if tested
                    else math.nan
                ),
                seeds_needed=(
                    seeds_needed(summary.mean, summary.std, alpha_adjusted, correction=correction)
                    if tested
                    else None
                ),
                p_beats=beats,
                p_beats_low=beats_low,
                p_beats_high=beats_high,
                correction=correction,
                unit=unit,
                floor=(
                    detectable_floor(summary.std, alpha_adjusted, correction=correction)
                    if tested
                    else math.nan
                ),
            )
        )
    return comparisons


def comparison_frame(comparisons: Sequence[Comparison]) -> pd.DataFrame:
    """The comparisons as a table, one row each (p and p_adjusted NaN where untested; the
    verdict as its value string, e.g. "better", "no detectable difference")."""
    columns = list(Comparison.__dataclass_fields__)
    rows = [{**asdict(c), "verdict": c.verdict.value} for c in comparisons]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("p", "p_adjusted", "mde", "p_beats", "p_beats_low", "p_beats_high", "floor"):
        frame[column] = frame[column].astype(float)
    frame["seeds_needed"] = frame["seeds_needed"].astype("Int64")
    return frame


def _values_by_seed(runs: Sequence[RunResult], metric: str, weights: str) -> dict[int, float]:
    """Finite values of a test metric by seed."""
    out: dict[int, float] = {}
    for run in runs:
        value = run.test.get(weights, {}).get(metric)
        if value is not None and math.isfinite(value):
            out[run.seed] = float(value)
    return out


def _paired(variant: dict[int, float], baseline: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    seeds = sorted(set(variant) & set(baseline))
    return (
        np.array([variant[s] for s in seeds], dtype=float),
        np.array([baseline[s] for s in seeds], dtype=float),
    )


def _paired_test(
    variant: np.ndarray, baseline: np.ndarray, correction: float = 0.0
) -> tuple[Summary, float | None, Any]:
    """Summary of the paired differences, the test's p-value and its result (scipy's paired
    t-test, or :class:`_CorrectedTest` with a ``correction``).

    p is None with fewer than two pairs; with identical differences (no spread) it is 1.0 or
    0.0 (see :func:`compare`) and there is no test result.
    """
    summary = summarize(variant - baseline)
    if summary.n < 2:
        return summary, None, None
    if summary.std == 0:  # identical differences: no spread, the t statistic is undefined
        return summary, 1.0 if summary.mean == 0 else 0.0, None
    if correction:
        corrected = _CorrectedTest(
            summary.mean, summary.std * math.sqrt(1 / summary.n + correction), summary.n - 1
        )
        return summary, corrected.pvalue, corrected
    result = _scipy_stats.ttest_rel(variant, baseline)
    return summary, float(result.pvalue), result


@dataclass(frozen=True)
class _Interval:
    low: float
    high: float


@dataclass(frozen=True)
class _CorrectedTest:
    """Nadeau-Bengio's corrected resampled t-test: t = mean / se with se = s sqrt(1/n + c),
    n - 1 degrees of freedom; it answers like scipy's test result (``pvalue``,
    ``confidence_interval``), so p and interval come from one statistic."""

    mean: float
    se: float
    df: int

    @property
    def pvalue(self) -> float:
        return float(2 * _scipy_stats.t.sf(abs(self.mean / self.se), self.df))

    def confidence_interval(self, confidence_level: float) -> _Interval:
        half = float(_scipy_stats.t.ppf(0.5 + confidence_level / 2, self.df)) * self.se
        return _Interval(self.mean - half, self.mean + half)


def _adjusted_interval(summary: Summary, result: Any, confidence: float) -> tuple[float, float]:
    """The paired t-interval of the mean difference at ``confidence`` (1 - alpha/m).

    It is the interval of the same scipy test that gave p: mean +- t_{1-alpha/2m, n-1} sd/sqrt(n),
    so it excludes 0 exactly when p < alpha/m. No spread: the difference itself; n < 2: NaN.
    """
    if summary.n < 2:
        return math.nan, math.nan
    if result is None:  # identical differences
        return summary.mean, summary.mean
    interval = result.confidence_interval(confidence_level=confidence)
    return float(interval.low), float(interval.high)


def _bonferroni(p_values: Sequence[float | None]) -> list[float | None]:
    """Bonferroni-adjusted p-values (min(1, m p)) over the m tested comparisons, None where
    untested."""
    tested = [p for p in p_values if p is not None]
    if not tested:
        return [None] * len(p_values)
    # cast: statsmodels is unannotated; this returns (reject, corrected p-values, alphas).
    bonferroni = cast(Callable[..., tuple[np.ndarray, np.ndarray, float, float]], multipletests)
    adjusted = iter(bonferroni(tested, method="bonferroni")[1].tolist())
    return [None if p is None else float(next(adjusted)) for p in p_values]


def _beats(
    differences: np.ndarray, higher: bool, confidence: float, correction: float = 0.0
) -> tuple[float, float, float]:
    """P(variant beats baseline on a new seed) and its exact interval at ``confidence``.

    Each seed scores 1 when the variant is better, 0.5 on a tie and 0 when it is worse; the
    estimate is the mean score. Under one split (``correction`` 0) the seeds are independent
    trials, and the interval is Clopper-Pearson's (scipy's ``binomtest(k, n).proportion_ci``,
    ``method="exact"``) at ``confidence``, the comparisons' Bonferroni-adjusted level: its low
    end for k = the wins (ties counted as losses), its high end for k = wins + ties (ties
    counted as wins); with no tie, the Clopper-Pearson interval of the wins (5 wins of 5 at
    95%: [0.478, 1]). When the runs' training sets overlap (``correction`` > 0) the runs are
    not independent trials and no interval is given (NaN). NaN without seeds; the interval is
    NaN with a single seed.
    """
    if len(differences) == 0:
        return math.nan, math.nan, math.nan
    oriented = differences if higher else -differences
    scores = np.where(oriented > 0, 1.0, np.where(oriented == 0, 0.5, 0.0))
    estimate = float(scores.mean())
    if len(scores) < 2 or correction > 0:
        return estimate, math.nan, math.nan
    n, wins, ties = len(scores), int((oriented > 0).sum()), int((oriented == 0).sum())
    low = _scipy_stats.binomtest(wins, n).proportion_ci(confidence, method="exact").low
    high = _scipy_stats.binomtest(wins + ties, n).proportion_ci(confidence, method="exact").high
    return estimate, float(low), float(high)
