"""How many runs decide a difference: power, the minimum detectable difference, the floor."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Protocol, cast

import numpy as np
from scipy.optimize import brentq
from statsmodels.stats.power import NormalIndPower, TTestPower
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from tricklab.stats._summary import POWER


class _Power(Protocol):
    """What is used of statsmodels' :class:`TTestPower` (whose methods are not annotated)."""

    def power(
        self, effect_size: float, nobs: float, alpha: float, alternative: str = ...
    ) -> float | np.ndarray: ...

    def solve_power(
        self,
        effect_size: float | None = ...,
        nobs: float | None = ...,
        alpha: float | None = ...,
        power: float | None = ...,
    ) -> float | np.ndarray: ...


def _t_test_power() -> _Power:
    # cast: statsmodels is unannotated (strict mypy calls no unannotated function); see _Power.
    return cast(Callable[[], _Power], TTestPower)()


class _NormalPower(Protocol):
    """What is used of statsmodels' :class:`NormalIndPower` (not annotated)."""

    def power(
        self, effect_size: float, nobs1: float, alpha: float, ratio: float = ...
    ) -> float | np.ndarray: ...


def detectable_floor(
    sd: float, alpha: float = 0.05, power: float = POWER, *, correction: float = 0.0
) -> float:
    """The smallest |mean difference| the rule detects with probability ``power`` at level
    ``alpha`` with any number of runs: the limit of :func:`minimum_detectable_difference` as
    the runs grow.

    Under Nadeau-Bengio's ``correction`` the variance of the mean difference over J runs,
    sd^2 (1/J + correction), tends to sd^2 correction, and the t-test to a z-test: the floor is
    z sd sqrt(correction), z the noncentrality at which a two-sided z-test at level ``alpha``
    has power ``power`` (statsmodels' one-sample :class:`NormalIndPower`, solved with scipy's
    brentq; 3.48 at alpha 0.05/6 and power 0.8, about z_{1-alpha/2} + z_{power}). A
    difference at or below it is not detected by any number of runs (only a larger test
    fraction, a larger ``correction``'s denominator, lowers it). 0 without a correction (more
    seeds always help); NaN when ``sd`` is not a positive finite number.
    """
    if not math.isfinite(sd) or sd <= 0:
        return math.nan
    if not correction:
        return 0.0
    normal = cast(Callable[[], _NormalPower], NormalIndPower)()

    def shortfall(noncentrality: float) -> float:
        reached = normal.power(effect_size=noncentrality, nobs1=1, alpha=alpha, ratio=0)
        return float(np.squeeze(reached)) - power

    noncentrality = float(brentq(shortfall, 0.0, 100.0, xtol=1e-12))
    return noncentrality * sd * math.sqrt(correction)


def minimum_detectable_difference(
    sd: float, n: int, alpha: float = 0.05, power: float = POWER, *, correction: float = 0.0
) -> float:
    """The smallest |mean difference| a two-sided paired t-test over ``n`` seeds detects with
    probability ``power`` at level ``alpha``, when the differences have standard deviation ``sd``.

    The effect size (in units of ``sd``) comes from statsmodels' :class:`TTestPower`
    (``solve_power(nobs=n, alpha=alpha, power=power)``; e.g. 0.996 for n=10, alpha 0.05, power
    0.8), checked and, where the solver fails (very few seeds), found by root finding on
    statsmodels' power function. NaN with fewer than two seeds or no positive finite ``sd``.
    With Nadeau-Bengio's ``correction`` the spread that matters is sd sqrt(1 + n correction);
    as ``n`` grows the result falls towards :func:`detectable_floor`, never below it.
    """
    if n < 2 or not math.isfinite(sd) or sd <= 0:
        return math.nan
    return _detectable_effect(n, alpha, power) * sd * math.sqrt(1 + n * correction)


def _detectable_effect(n: int, alpha: float, power: float) -> float:
    analysis = _t_test_power()

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


#: The most runs :func:`seeds_needed` answers with under a correction (statsmodels' power of
#: the t-test stays finite there).
MAX_RUNS = 10_000_000


def seeds_needed(
    diff: float, sd: float, alpha: float = 0.05, power: float = POWER, *, correction: float = 0.0
) -> int | None:
    """Seeds a two-sided paired t-test needs to detect a mean difference ``diff`` at spread ``sd``.

    :func:`compare` asks it at the adjusted level alpha/m of its rule. Uses statsmodels'
    :class:`TTestPower` with effect size ``|diff| / sd`` (e.g. effect 1.0 at alpha 0.05 and power
    0.8 needs 9.94, so 10 seeds). None when ``diff`` is 0 or ``sd`` is not a positive finite
    number. Very large effects, where the solver does not converge, are answered by the smallest
    n >= 2 whose upper-tail power reaches ``power`` (the lower tail is negligible there).

    With Nadeau-Bengio's ``correction`` more runs shrink the standard error only down to
    sd sqrt(correction): None when ``|diff|`` is at or below :func:`detectable_floor` (no
    number of runs reaches ``power``), else the smallest n whose power reaches it (found by
    doubling and bisection; None also beyond :data:`MAX_RUNS`).
    """
    if not (math.isfinite(diff) and math.isfinite(sd)) or diff == 0 or sd <= 0:
        return None
    if correction:  # power grows with n (so does n / (1 + n c)) up to its limit at the floor
        if abs(diff) <= detectable_floor(sd, alpha, power, correction=correction):
            return None

        def reached(n: int) -> bool:
            effect = abs(diff) / (sd * math.sqrt(1 + n * correction))
            return bool(_t_test_power().power(effect_size=effect, nobs=n, alpha=alpha) >= power)

        low, high = 1, 2
        while not reached(high):
            if high >= MAX_RUNS:
                return None
            low, high = high, min(2 * high, MAX_RUNS)
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if reached(middle) else (middle, high)
        return high
    effect = abs(diff) / sd
    analysis = _t_test_power()
    with warnings.catch_warnings():
        # The solver's failures are handled below; statsmodels' own filter shows them "always".
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        nobs = float(np.squeeze(analysis.solve_power(effect_size=effect, alpha=alpha, power=power)))
        if math.isfinite(nobs) and nobs > 2:
            return math.ceil(nobs)
        for n in range(2, 101):
            achieved = analysis.power(
                effect_size=effect, nobs=n, alpha=alpha / 2, alternative="larger"
            )
            if achieved >= power:
                return n
    return None
