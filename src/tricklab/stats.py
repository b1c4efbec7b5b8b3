"""Statistics over seeds: what a study's numbers say, and how sure they are.

A study trains every variant with the same seeds, so variants are compared *paired by seed*: the
seed fixes the initial weights, dropout masks and batch order, and pairing removes that shared
noise from the comparison. Everything here reads :class:`~tricklab.result.RunResult` objects only
(no Keras), and every figure comes with the number of seeds behind it.

* :func:`summarize` -- mean, spread and 95% interval of one quantity over seeds.
* :func:`variant_table` -- one row per variant: test metrics, best validation value, best epoch,
  overfitting gap and time, each as mean/std (and interval) over seeds.
* :func:`compare` -- each variant against a baseline, decided by one rule: a paired t-test,
  Bonferroni-adjusted across the m comparisons (alpha/m each), shown with the matching adjusted
  interval (confidence 1 - alpha/m) -- it excludes 0 exactly when the verdict is better/worse.
  Beside it, for information: P(variant beats baseline on a new seed) with a bootstrap interval,
  the minimum detectable difference and the seeds a difference this size would need.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats
from scipy.optimize import brentq
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.tools.sm_exceptions import ConvergenceWarning

if TYPE_CHECKING:
    from tricklab.result import RunResult

#: Confidence level of every interval reported here.
CONFIDENCE = 0.95
#: Power that :attr:`Comparison.mde` and :attr:`Comparison.seeds_needed` are computed for.
POWER = 0.8
#: Resamples of the bootstrap interval of :attr:`Comparison.p_beats`, and the generator's seed.
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
#: Statuses of runs that count as trained seeds (a diverged run is a result, not a failure).
COUNTED_STATUSES = frozenset({"ok", "diverged"})
WEIGHTS = ("best", "last")

#: Metrics where a smaller value is better (Keras names and their short aliases).
LOWER_IS_BETTER: frozenset[str] = frozenset(
    {
        "loss",
        "mean_squared_error",
        "mean_absolute_error",
        "mean_absolute_percentage_error",
        "mean_squared_logarithmic_error",
        "root_mean_squared_error",
        "mse",
        "mae",
        "mape",
        "msle",
        "rmse",
        "poisson",
        "log_cosh",
        "logcosh",
        "log_cosh_error",
        "huber",
        "binary_crossentropy",
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
        "binary_focal_crossentropy",
        "categorical_focal_crossentropy",
        "kl_divergence",
        "kullback_leibler_divergence",
        "hinge",
        "squared_hinge",
        "categorical_hinge",
        "false_positives",
        "false_negatives",
    }
)
_LOWER_SUFFIXES = ("loss", "error", "crossentropy", "divergence", "hinge")


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is an improvement (``val_`` prefixes are ignored).

    Losses and errors (any name in :data:`LOWER_IS_BETTER`, or ending in ``loss``, ``error``,
    ``crossentropy``, ``divergence`` or ``hinge``) are lower-is-better; everything else
    (accuracy, auc, precision, ...) is higher-is-better.
    """
    name = metric.removeprefix("val_")
    return not (name in LOWER_IS_BETTER or name.endswith(_LOWER_SUFFIXES))


# -- one quantity over seeds ---------------------------------------------------------------------
@dataclass(frozen=True)
class Summary:
    """One quantity over seeds: ``mean`` and its 95% t-interval ``[low, high]``.

    ``n`` counts the seeds that gave a finite value; ``std`` is the sample standard deviation
    (ddof=1). With fewer than two values there is no spread, so ``std``, ``low`` and ``high`` are
    NaN (and ``mean`` is NaN with no values at all).
    """

    n: int
    mean: float
    std: float
    low: float
    high: float


def summarize(values: Iterable[float | None]) -> Summary:
    """Mean, sample std and 95% t-interval of the mean, ignoring None, NaN and inf values."""
    finite = _finite_array(values)
    n = len(finite)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(finite.mean())
    if n < 2:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    if np.ptp(finite) == 0:  # identical values: exactly no spread (no rounding residue)
        return Summary(n, float(finite[0]), 0.0, float(finite[0]), float(finite[0]))
    std = float(finite.std(ddof=1))
    half = _t_quantile(n - 1) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def _finite_array(values: Iterable[float | None]) -> np.ndarray:
    kept = [float(v) for v in values if v is not None]
    array = np.asarray(kept, dtype=float)
    return array[np.isfinite(array)]


def _t_quantile(df: int) -> float:
    """Two-sided critical value of Student's t for :data:`CONFIDENCE` (4.303 for df=2)."""
    return float(_scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, df))


# -- the variant table ---------------------------------------------------------------------------
def variant_table(
    results: Sequence[RunResult],
    variants: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per variant (index ``variant``): each figure as mean/std (and interval) over seeds.

    Columns, in order: ``seeds`` (runs with status ok or diverged), ``diverged`` (how many of them
    diverged); for each test metric ``m`` and weights ``w`` in best/last: ``{m}_{w}_n`` (seeds with
    a finite value), ``_mean``, ``_std``, ``_low``, ``_high``; ``best_val_*`` (best value of the
    monitored quantity); ``best_epoch_mean/std``; ``epochs_run_mean/std``; ``gap_*`` (train loss
    minus validation loss at the best epoch: negative when train loss is the larger, e.g. with
    dropout; large positive values mean overfitting); ``seconds_mean/std`` (total training time).
    ``low``/``high`` are the 95% t-interval of the mean; NaN with fewer than two seeds.
    """
    by_variant = _group(results)
    names = list(variants) if variants is not None else list(by_variant)
    chosen = list(metrics) if metrics is not None else _metric_names(results)
    rows = [_variant_row(by_variant.get(name, []), chosen) for name in names]
    columns = list(_variant_row([], chosen))
    return pd.DataFrame(rows, index=pd.Index(names, name="variant"), columns=columns)


def _variant_row(runs: Sequence[RunResult], metrics: Sequence[str]) -> dict[str, float]:
    row: dict[str, float] = {
        "seeds": len(runs),
        "diverged": sum(r.status == "diverged" for r in runs),
    }
    for metric in metrics:
        for weights in WEIGHTS:
            values = [r.test.get(weights, {}).get(metric) for r in runs]
            row.update(_columns(f"{metric}_{weights}", summarize(values), with_n=True))
    row.update(_columns("best_val", summarize(r.best_monitor_value for r in runs)))
    row.update(_columns("best_epoch", summarize(r.best_epoch for r in runs), interval=False))
    row.update(_columns("epochs_run", summarize(r.epochs_run for r in runs), interval=False))
    row.update(_columns("gap", summarize(generalization_gap(r) for r in runs)))
    row.update(_columns("seconds", summarize(r.seconds_total for r in runs), interval=False))
    return row


def _columns(
    prefix: str, summary: Summary, *, interval: bool = True, with_n: bool = False
) -> dict[str, float]:
    out: dict[str, float] = {f"{prefix}_n": summary.n} if with_n else {}
    out[f"{prefix}_mean"] = summary.mean
    out[f"{prefix}_std"] = summary.std
    if interval:
        out[f"{prefix}_low"] = summary.low
        out[f"{prefix}_high"] = summary.high
    return out


def generalization_gap(result: RunResult) -> float | None:
    """Train loss minus validation loss at the best epoch; None when it is not recorded.

    Positive: the model fits its training data better than unseen data (overfitting). Negative:
    train loss is larger, as with dropout or other regularisation active only during training.
    """
    if result.best_epoch is None or result.best_epoch < 1:
        return None
    index = result.best_epoch - 1
    train = result.history.get("loss", [])
    val = result.history.get("val_loss", [])
    if index >= len(train) or index >= len(val):
        return None
    gap = float(train[index]) - float(val[index])
    return gap if math.isfinite(gap) else None


def _metric_names(results: Sequence[RunResult]) -> list[str]:
    """Every test metric of the results' best weights: loss first, then alphabetical."""
    names = {m for r in _counted(results) for m in r.test.get("best", {})}
    return sorted(names, key=lambda m: (m != "loss", m))


def _counted(results: Iterable[RunResult]) -> list[RunResult]:
    return [r for r in results if r.status in COUNTED_STATUSES]


def _group(results: Sequence[RunResult]) -> dict[str, list[RunResult]]:
    """Counted results by variant, in first-seen order; a variant x seed twice is an error."""
    groups: dict[str, list[RunResult]] = {}
    seen: set[tuple[str, int]] = set()
    for result in results:
        groups.setdefault(result.variant, [])
        if result.status not in COUNTED_STATUSES:
            continue
        if (result.variant, result.seed) in seen:
            raise ValueError(f"two results for variant {result.variant!r} seed {result.seed}")
        seen.add((result.variant, result.seed))
        groups[result.variant].append(result)
    return groups


# -- comparisons against a baseline --------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """One variant against the baseline on one test metric, paired by seed.

    The deciding rule: a paired t-test, Bonferroni-adjusted across the ``tests`` comparisons of
    the call that could be tested (those with at least two paired seeds). ``p`` is the paired
    t-test, ``p_adjusted`` = min(1, ``tests`` x ``p``), and ``verdict`` says "better"/"worse"
    only when ``p_adjusted`` is below ``alpha`` (i.e. ``p`` below ``alpha / tests``).

    ``diff`` is variant minus baseline (sign as the metric: for a loss, negative is an
    improvement) over the ``n`` paired seeds, and ``[ci_low, ci_high]`` the matching adjusted
    interval: the paired t-interval at confidence ``1 - alpha / tests`` (:attr:`confidence`). It
    excludes 0 exactly when the verdict is "better" or "worse".

    For information, beside the rule: ``p_beats`` is the share of seeds on which the variant beat
    the baseline (a tie counts half), an estimate of P(variant beats baseline on a new seed),
    with ``[p_beats_low, p_beats_high]`` its 95% percentile bootstrap interval over the seeds;
    ``mde`` is the minimum detectable difference: the smallest |difference| the rule detects
    with power 0.8 at ``n`` seeds and the observed spread of the differences; ``seeds_needed``
    is how many seeds the rule would need to detect a difference the size of ``diff`` (power
    0.8), a planning figure that takes the observed values at face value.
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
    verdict: str
    mde: float
    seeds_needed: int | None
    p_beats: float
    p_beats_low: float
    p_beats_high: float

    @property
    def alpha_adjusted(self) -> float:
        """The per-comparison level of the rule: ``alpha / tests``."""
        return self.alpha / max(self.tests, 1)

    @property
    def confidence(self) -> float:
        """Confidence of the adjusted interval ``[ci_low, ci_high]``: ``1 - alpha / tests``."""
        return 1 - self.alpha_adjusted

    def sentence(self) -> str:
        """The comparison in one line, e.g. ``dropout vs baseline: loss -0.052, 98.33% interval
        [-0.081, -0.023], p=0.001, adjusted p=0.003 (Bonferroni across 3 comparisons, alpha
        0.05/3): better; minimum detectable difference ±0.031; P(dropout beats baseline on a new
        seed) 0.90 [0.75, 1.00].``"""
        label = self.metric if self.weights == "best" else f"{self.metric} (last weights)"
        head = f"{self.variant} vs {self.baseline}: {label}"
        if self.p is None:
            value = f" {_number(self.diff, self.diff)} on 1 seed" if self.n == 1 else ""
            return f"{head}{value}: {self.verdict}."
        scale = max(abs(self.diff), abs(self.ci_low), abs(self.ci_high))
        low = _number(self.ci_low, scale, sign=False)
        high = _number(self.ci_high, scale, sign=False)
        interval = f"{percent(self.confidence)} interval [{low}, {high}]"
        if self.tests == 1:
            test = f"{_p_is('p', self.p)} (1 comparison, alpha {self.alpha:g})"
        else:
            test = (
                f"{_p_is('p', self.p)}, {_p_is('adjusted p', self.p_adjusted)} (Bonferroni "
                f"across {self.tests} comparisons, alpha {self.alpha:g}/{self.tests})"
            )
        text = f"{head} {_number(self.diff, scale)}, {interval}, {test}: {self.verdict}"
        if self.ci_low == self.ci_high:  # every seed gave the same difference
            text += " (the same difference on every seed)"
        elif self.verdict.startswith("no detectable") and (self.seeds_needed or 0) > self.n:
            text += f"; about {self.seeds_needed} seeds would detect a difference this size"
        if math.isfinite(self.mde):
            text += f"; minimum detectable difference ±{_number(self.mde, self.mde, sign=False)}"
        if math.isfinite(self.p_beats_low):
            text += (
                f"; P({self.variant} beats {self.baseline} on a new seed) {self.p_beats:.2f} "
                f"[{self.p_beats_low:.2f}, {self.p_beats_high:.2f}]"
            )
        return text + "."


def decision_rule(tests: int, alpha: float = 0.05) -> str:
    """The deciding rule in words, e.g. for 3 comparisons: ``verdicts: paired t-test,
    Bonferroni-adjusted across the 3 comparisons (alpha 0.05/3); intervals are the matching
    adjusted intervals (98.33%)``."""
    m = max(tests, 1)
    comparisons = "comparison" if m == 1 else "comparisons"
    return (
        f"verdicts: paired t-test, Bonferroni-adjusted across the {m} {comparisons} "
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
) -> list[Comparison]:
    """Every variant (``variants``, else all in first-seen order) except ``baseline`` against it.

    Seeds are paired: a seed counts only when both runs have a finite ``metric`` (a None value,
    e.g. auc on a one-class test set, drops that seed from the pair). A comparison with fewer than
    two pairs is not tested ("too few seeds to test"); the others, m of them, are paired t-tests
    Bonferroni-adjusted together: the verdict is "better"/"worse" (direction from
    :func:`higher_is_better`) only when m x p is below ``alpha``, and the interval shown is the
    paired t-interval at confidence 1 - alpha/m, which excludes 0 exactly then.

    When every paired difference is exactly identical the t-test is undefined (zero spread):
    then p is 1.0 if the difference is zero (the variant changed nothing; the interval is
    [0, 0]), and 0.0 otherwise (a deterministic difference, reproduced by every seed; the
    interval is that difference, excluding 0); ``mde`` is NaN and ``seeds_needed`` None in both.
    """
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be 'best' or 'last', not {weights!r}")
    groups = _group(results)
    if baseline not in groups:
        raise ValueError(f"baseline variant {baseline!r} has no results")
    names = [v for v in (variants if variants is not None else groups) if v != baseline]
    base = _values_by_seed(groups[baseline], metric, weights)
    paired = [_paired(_values_by_seed(groups.get(v, []), metric, weights), base) for v in names]
    tests = [_paired_test(variant, reference) for variant, reference in paired]
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
        beats, beats_low, beats_high = _beats(variant - reference, higher)
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
                verdict=_verdict(summary, p_adjusted, metric, alpha),
                mde=(
                    minimum_detectable_difference(summary.std, summary.n, alpha_adjusted)
                    if tested
                    else math.nan
                ),
                seeds_needed=(
                    seeds_needed(summary.mean, summary.std, alpha_adjusted) if tested else None
                ),
                p_beats=beats,
                p_beats_low=beats_low,
                p_beats_high=beats_high,
            )
        )
    return comparisons


def comparison_frame(comparisons: Sequence[Comparison]) -> pd.DataFrame:
    """The comparisons as a table, one row each (p and p_adjusted NaN where untested)."""
    columns = list(Comparison.__dataclass_fields__)
    frame = pd.DataFrame([asdict(c) for c in comparisons], columns=columns)
    for column in ("p", "p_adjusted", "mde", "p_beats", "p_beats_low", "p_beats_high"):
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


def _paired_test(variant: np.ndarray, baseline: np.ndarray) -> tuple[Summary, float | None, Any]:
    """Summary of the paired differences, the paired t-test p-value and scipy's test result.

    p is None with fewer than two pairs; with identical differences (no spread) it is 1.0 or
    0.0 (see :func:`compare`) and there is no test result.
    """
    summary = summarize(variant - baseline)
    if summary.n < 2:
        return summary, None, None
    if summary.std == 0:  # identical differences: no spread, the t statistic is undefined
        return summary, 1.0 if summary.mean == 0 else 0.0, None
    result = _scipy_stats.ttest_rel(variant, baseline)
    return summary, float(result.pvalue), result


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
    adjusted = iter(multipletests(tested, method="bonferroni")[1].tolist())
    return [None if p is None else float(next(adjusted)) for p in p_values]


def _verdict(summary: Summary, p_adjusted: float | None, metric: str, alpha: float) -> str:
    if p_adjusted is None:
        return f"too few seeds to test ({summary.n})"
    if p_adjusted >= alpha or summary.mean == 0:
        return f"no detectable difference with {summary.n} seeds"
    improved = (summary.mean > 0) == higher_is_better(metric)
    return "better" if improved else "worse"


def _beats(differences: np.ndarray, higher: bool) -> tuple[float, float, float]:
    """P(variant beats baseline on a new seed) and its 95% percentile bootstrap interval.

    Each seed scores 1 when the variant is better, 0.5 on a tie and 0 when it is worse; the
    estimate is the mean score. The interval resamples the seeds :data:`BOOTSTRAP_RESAMPLES`
    times with ``numpy.random.default_rng(BOOTSTRAP_SEED)`` (the same figures on every call).
    NaN without seeds; the interval is NaN with a single seed.
    """
    if len(differences) == 0:
        return math.nan, math.nan, math.nan
    oriented = differences if higher else -differences
    scores = np.where(oriented > 0, 1.0, np.where(oriented == 0, 0.5, 0.0))
    estimate = float(scores.mean())
    if len(scores) < 2:
        return estimate, math.nan, math.nan
    interval = _scipy_stats.bootstrap(
        (scores,),
        np.mean,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        vectorized=True,
        **{_BOOTSTRAP_RNG: np.random.default_rng(BOOTSTRAP_SEED)},
    ).confidence_interval
    return estimate, float(interval.low), float(interval.high)


# scipy >= 1.15 takes the generator as ``rng``; older versions as ``random_state``.
_BOOTSTRAP_RNG = (
    "rng" if "rng" in inspect.signature(_scipy_stats.bootstrap).parameters else "random_state"
)


def minimum_detectable_difference(
    sd: float, n: int, alpha: float = 0.05, power: float = POWER
) -> float:
    """The smallest |mean difference| a two-sided paired t-test over ``n`` seeds detects with
    probability ``power`` at level ``alpha``, when the differences have standard deviation ``sd``.

    The effect size (in units of ``sd``) comes from statsmodels' :class:`TTestPower`
    (``solve_power(nobs=n, alpha=alpha, power=power)``; e.g. 0.996 for n=10, alpha 0.05, power
    0.8), checked and, where the solver fails (very few seeds), found by root finding on
    statsmodels' power function. NaN with fewer than two seeds or no positive finite ``sd``.
    """
    if n < 2 or not math.isfinite(sd) or sd <= 0:
        return math.nan
    return _detectable_effect(n, alpha, power) * sd


def _detectable_effect(n: int, alpha: float, power: float) -> float:
    analysis = TTestPower()

    def reached(effect: float) -> float:
        value = float(analysis.power(effect_size=effect, nobs=n, alpha=alpha))
        if not math.isfinite(value):  # scipy's noncentral t fails far in its lower tail
            value = float(
                analysis.power(effect_size=effect, nobs=n, alpha=alpha / 2, alternative="larger")
            )
        return value

    with warnings.catch_warnings():
        # The solver's failures are handled below; statsmodels' own filter shows them "always".
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        effect = float(np.squeeze(analysis.solve_power(nobs=n, alpha=alpha, power=power)))
        if math.isfinite(effect) and effect > 0 and abs(reached(effect) - power) < 1e-6:
            return effect
        high = 1.0
        while reached(high) < power and high < 1e6:
            high *= 2
        return float(brentq(lambda e: reached(e) - power, 0.0, high, xtol=1e-12))


def seeds_needed(diff: float, sd: float, alpha: float = 0.05, power: float = POWER) -> int | None:
    """Seeds a two-sided paired t-test needs to detect a mean difference ``diff`` at spread ``sd``.

    :func:`compare` asks it at the adjusted level alpha/m of its rule. Uses statsmodels'
    :class:`TTestPower` with effect size ``|diff| / sd`` (e.g. effect 1.0 at alpha 0.05 and power
    0.8 needs 9.94, so 10 seeds). None when ``diff`` is 0 or ``sd`` is not a positive finite
    number. Very large effects, where the solver does not converge, are answered by the smallest
    n >= 2 whose upper-tail power reaches ``power`` (the lower tail is negligible there).
    """
    if not (math.isfinite(diff) and math.isfinite(sd)) or diff == 0 or sd <= 0:
        return None
    effect = abs(diff) / sd
    analysis = TTestPower()
    with warnings.catch_warnings():
        # The solver's failures are handled below; statsmodels' own filter shows them "always".
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        nobs = float(np.squeeze(analysis.solve_power(effect_size=effect, alpha=alpha, power=power)))
        if math.isfinite(nobs) and nobs > 2:
            return math.ceil(nobs)
        for n in range(2, 101):
            reached = analysis.power(
                effect_size=effect, nobs=n, alpha=alpha / 2, alternative="larger"
            )
            if reached >= power:
                return n
    return None


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


# -- training diagnostics ------------------------------------------------------------------------
def diagnostics_frame(results: Iterable[RunResult]) -> pd.DataFrame:
    """Every diagnostics row of every counted run, with its variant and seed (long format)."""
    rows = [
        {"variant": r.variant, "seed": r.seed, **row}
        for r in _counted(results)
        for row in r.diagnostics
    ]
    return pd.DataFrame(rows)


def diagnostics_table(
    results: Sequence[RunResult], variants: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per variant, mean and std over seeds of the final-epoch diagnostics.

    ``dead`` and ``saturated``: the shares of dead / saturated units over all hidden layers at
    the last measured epoch; ``grad_ratio_start`` and ``grad_ratio_end``: the kernel gradient
    norm of the first hidden layer divided by that of the last, untrained (epoch 0) and at the
    last measured epoch (well below 1: vanishing gradients).
    """
    frame = diagnostics_frame(results)
    if frame.empty:
        return pd.DataFrame()
    per_run = frame.groupby(["variant", "seed"], sort=False).apply(_run_diagnostics)
    order = list(variants) if variants is not None else list(dict.fromkeys(frame["variant"]))
    out = {}
    for variant in order:
        if variant not in per_run.index.get_level_values(0):
            continue
        runs = per_run.loc[variant]
        row: dict[str, float] = {}
        for column in ("dead", "saturated", "grad_ratio_start", "grad_ratio_end"):
            summary = summarize(runs[column].tolist())
            row[f"{column}_mean"], row[f"{column}_std"] = summary.mean, summary.std
        out[variant] = row
    return pd.DataFrame.from_dict(out, orient="index")


def _run_diagnostics(rows: pd.DataFrame) -> pd.Series:
    last = rows[rows["epoch"] == rows["epoch"].max()]
    weights = last["units"].to_numpy(dtype=float)

    def share(column: str) -> float:
        values = last[column].to_numpy(dtype=float)
        keep = np.isfinite(values)
        return float(np.average(values[keep], weights=weights[keep])) if keep.any() else math.nan

    layers = list(dict.fromkeys(rows["layer"]))
    by_layer = rows.pivot_table(index="epoch", columns="layer", values="kernel_grad_norm")
    if len(layers) > 1:
        ratio = (by_layer[layers[0]] / by_layer[layers[-1]]).to_numpy(dtype=float)
    else:
        ratio = np.array([math.nan])
    return pd.Series(
        {
            "dead": share("dead_fraction"),
            "saturated": share("saturated_fraction"),
            "grad_ratio_start": float(ratio[0]),
            "grad_ratio_end": float(ratio[-1]),
        }
    )
