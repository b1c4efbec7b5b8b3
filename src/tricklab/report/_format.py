"""Numbers as a report shows them: an estimate rounded to what its interval supports.

An estimate with an interval keeps two significant digits of the interval's half-width, and the
mean and both ends are rounded to that same decimal place (``0.62 [0.58, 0.66]``,
``2.2e6 [1.3e6, 3.1e6]``), so a column never shows more digits than the seeds support; an
interval that excludes 0 gets more decimals until neither end shows as 0. Intervals
of bounded metrics (accuracy, AUC, ...) are clipped to the metric's range (from the metric
catalogue, :data:`tricklab.spec.METRIC_CATALOGUE`) and the clipped end is marked with
:data:`CLIP_MARK`.
"""

from __future__ import annotations

import math
from typing import Any

from tricklab.spec import METRIC_CATALOGUE

DASH = "–"
#: Marks the end of an interval clipped to its metric's range: ``[0.93, 1.00*]``.
CLIP_MARK = "*"
#: Largest number of decimals shown (an interval narrower than 1e-12 is shown as that).
MAX_DECIMALS = 12
#: Values needing more decimals than this, and below 1e-4, are written with an exponent.
SMALL_DECIMALS = 6
#: Whole numbers at or above this are written with an exponent (``2.2e6``).
EXPONENT_FROM = 1e5


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def clip(low: float, high: float, metric: str | None) -> tuple[float, float, bool, bool]:
    """``[low, high]`` clipped to the range of ``metric`` (the metric catalogue's: [0, 1] for
    shares and AUC, (-inf, 1] for R^2, [0, inf) for errors), and whether each end was clipped."""
    if metric is None:
        return low, high, False, False
    bottom, top = METRIC_CATALOGUE.get(metric).bounds
    return max(low, bottom), min(high, top), low < bottom, high > top


def decimals_for(half_width: float) -> int:
    """Decimal places that keep two significant digits of ``half_width`` (negative: tens...)."""
    if not finite(half_width) or half_width <= 0:
        return 3
    return min(MAX_DECIMALS, 1 - math.floor(math.log10(half_width)))


def fixed(value: Any, decimals: int, *, sign: bool = False) -> str:
    """``value`` rounded to ``decimals`` places (negative: to tens, hundreds, ...); whole
    numbers from :data:`EXPONENT_FROM` on with an exponent (``2.2e6``); a dash when missing."""
    if not finite(value):
        return DASH
    plus = "+" if sign else ""
    if decimals > SMALL_DECIMALS and (value == 0 or abs(value) < 1e-4):
        if value == 0:
            return "0"
        digits = max(decimals + math.floor(math.log10(abs(value))), 0)  # significant - 1
        mantissa, power = f"{value:{plus}.{digits}e}".split("e")
        return f"{mantissa}e{int(power)}"
    if decimals >= 0:
        text = f"{value:{plus}.{decimals}f}"
    else:
        rounded = round(float(value), decimals)
        if abs(rounded) < EXPONENT_FROM:
            text = f"{rounded:{plus}.0f}"
        else:
            exponent = math.floor(math.log10(abs(rounded)))
            mantissa, power = f"{rounded:{plus}.{max(exponent + decimals, 0)}e}".split("e")
            text = f"{mantissa}e{int(power)}"
    if float(text) == 0:  # "0.00", never "-0.00"
        text = ("+" if sign else "") + text.lstrip("+-")
    return text


def significant(value: Any, digits: int = 3, *, sign: bool = False) -> str:
    """``value`` with ``digits`` significant digits (trailing zeros kept), for a value that has
    no interval to round it by."""
    if not finite(value):
        return DASH
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    return fixed(value, digits - 1 - magnitude, sign=sign)


def estimate(
    mean: Any, low: Any, high: Any, metric: str | None = None, *, sign: bool = False
) -> tuple[str, str]:
    """A mean and its interval as ``("0.62", "[0.58, 0.66]")``, both rounded to two significant
    digits of the interval's half-width; the interval clipped to the range of ``metric``, a
    clipped end marked. Without an interval: the mean with 3 significant digits and ``""``; an
    interval of no width (every seed the same): the mean with 4 significant digits, twice. An
    interval that excludes 0 (a decided verdict) gets more decimals until neither end shows as 0
    (``[-0.2394, -0.0003]``, never ``[-0.239, -0.000]``)."""
    if not finite(mean):
        return DASH, ""
    if not (finite(low) and finite(high)):
        return significant(mean, 3, sign=sign), ""
    if high <= low:
        text = significant(mean, 4, sign=sign)
        return text, f"[{significant(low, 4)}, {significant(high, 4)}]"
    decimals = decimals_for((high - low) / 2)
    if mean != 0:  # an interval far narrower than the mean: 4 significant digits suffice
        decimals = min(decimals, 3 - math.floor(math.log10(abs(mean))))
    while (
        (low > 0 or high < 0)
        and decimals < 12
        and 0 in (round(low, decimals), round(high, decimals))
    ):
        decimals += 1  # an interval that excludes 0 (a decided verdict) must not print as 0.00
    low, high, low_clipped, high_clipped = clip(float(low), float(high), metric)
    left = fixed(low, decimals) + (CLIP_MARK if low_clipped else "")
    right = fixed(high, decimals) + (CLIP_MARK if high_clipped else "")
    return fixed(mean, decimals, sign=sign), f"[{left}, {right}]"


def beside(value: Any, low: Any, high: Any) -> str:
    """A size that stands beside the interval ``[low, high]`` (a detectable difference, a floor)
    at that interval's precision: two significant digits of its half-width, or of ``value``
    itself where that precision would show it as 0 (or the interval has no width)."""
    if not finite(value):
        return DASH
    if finite(low) and finite(high) and high > low:
        decimals = decimals_for((high - low) / 2)
        if value == 0 or round(value, decimals) != 0:
            return fixed(value, decimals)
    return significant(value, 2)


def mean_std(mean: Any, std: Any, low: Any = None, high: Any = None) -> str:
    """``mean ± std``, both to the decimals of the interval (else of two digits of the std)."""
    if not finite(mean):
        return DASH
    if not finite(std):
        return significant(mean, 3)
    if finite(low) and finite(high) and high > low:
        decimals = decimals_for((high - low) / 2)
    else:
        decimals = decimals_for(std) if std > 0 else decimals_for(abs(mean) / 100 or 1e-3)
    if mean != 0:  # a spread far below the mean: 4 significant digits of the mean suffice
        decimals = min(decimals, 3 - math.floor(math.log10(abs(mean))))
    return f"{fixed(mean, decimals)} ± {fixed(std, decimals)}"


def count(value: Any) -> str:
    """A mean of whole numbers (epochs): an int when it is one, else one decimal."""
    if not finite(value):
        return DASH
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
