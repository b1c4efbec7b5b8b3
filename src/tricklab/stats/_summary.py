"""One quantity over seeds, and the table of every variant."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats

from tricklab.engines.contract import ResultStatus
from tricklab.spec import METRIC_CATALOGUE

if TYPE_CHECKING:
    from tricklab.engines.contract import RunResult


#: Confidence level of every interval of one variant reported here.
CONFIDENCE = 0.95
#: Power that :attr:`Comparison.mde`, :attr:`Comparison.seeds_needed` and
#: :attr:`Comparison.floor` are computed for.
POWER = 0.8
#: Statuses of runs that count as trained seeds (a diverged run is a result, not a failure).
COUNTED_STATUSES = frozenset({ResultStatus.OK, ResultStatus.DIVERGED})
WEIGHTS = ("best", "last")


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is an improvement (``val_`` prefixes are ignored),
    as the metric catalogue says (:data:`tricklab.spec.METRIC_CATALOGUE`).

    Raises :class:`~tricklab.spec.UnknownMetricError` for a metric it does not know.
    """
    return METRIC_CATALOGUE.get(metric).higher_is_better


# -- one quantity over seeds ---------------------------------------------------------------------
@dataclass(frozen=True)
class Summary:
    """One quantity over seeds: ``mean`` and its 95% t-interval ``[low, high]`` (Nadeau-Bengio
    corrected when the runs' training sets overlap, see :func:`summarize`).

    ``n`` counts the seeds that gave a finite value; ``std`` is the sample standard deviation
    (ddof=1). With fewer than two values there is no spread, so ``std``, ``low`` and ``high`` are
    NaN (and ``mean`` is NaN with no values at all).
    """

    n: int
    mean: float
    std: float
    low: float
    high: float


def summarize(values: Iterable[float | None], correction: float = 0.0) -> Summary:
    """Mean, sample std and 95% t-interval of the mean, ignoring None, NaN and inf values.

    The interval is mean +- t_{0.975, J-1} s sqrt(1/J + ``correction``) over the J values: with
    ``correction`` 0 the plain t-interval s/sqrt(J); with the protocol's n_test/n_train (runs
    whose training sets overlap: resplit, cross-validation) Nadeau and Bengio's variance of a
    mean over such runs (Machine Learning 52, 2003), which more runs shrink only down to
    s sqrt(correction).
    """
    _check_correction(correction)
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
    half = _t_quantile(n - 1) * std * math.sqrt(1 / n + correction)
    return Summary(n, mean, std, mean - half, mean + half)


def _check_correction(correction: float) -> None:
    if not (math.isfinite(correction) and correction >= 0):
        raise ValueError(f"correction must be a finite number >= 0, not {correction!r}")


def _finite_array(values: Iterable[float | None]) -> np.ndarray:
    kept = [float(v) for v in values if v is not None]
    array = np.asarray(kept, dtype=float)
    finite: np.ndarray = array[np.isfinite(array)]  # numpy types the ufunc's result as Any
    return finite


def _t_quantile(df: int) -> float:
    """Two-sided critical value of Student's t for :data:`CONFIDENCE` (4.303 for df=2)."""
    return float(_scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, df))


# -- the variant table ---------------------------------------------------------------------------
def variant_table(
    results: Sequence[RunResult],
    variants: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    *,
    correction: float = 0.0,
) -> pd.DataFrame:
    """One row per variant (index ``variant``): each figure as mean/std (and interval) over seeds.

    Columns, in order: ``seeds`` (runs with status ok or diverged), ``diverged`` (how many of them
    diverged); for each test metric ``m`` and weights ``w`` in best/last: ``{m}_{w}_n`` (seeds with
    a finite value), ``_mean``, ``_std``, ``_low``, ``_high``; ``best_val_*`` (best value of the
    monitored quantity); ``best_epoch_mean/std``; ``epochs_run_mean/std``; ``gap_*`` (train loss
    minus validation loss at the best epoch: negative when train loss is the larger, e.g. with
    dropout; large positive values mean overfitting); ``seconds_mean/std`` (total training time).
    ``low``/``high`` are the 95% t-interval of the mean (:func:`summarize`), Nadeau-Bengio
    corrected with ``correction`` (the protocol's n_test/n_train, :class:`tricklab.data.Protocol`;
    0, a plain t-interval, under one fixed split); NaN with fewer than two seeds.
    """
    _check_correction(correction)
    by_variant = group_runs(results)
    names = list(variants) if variants is not None else list(by_variant)
    chosen = list(metrics) if metrics is not None else _metric_names(results)
    rows = [_variant_row(by_variant.get(name, []), chosen, correction) for name in names]
    columns = list(_variant_row([], chosen, correction))
    return pd.DataFrame(rows, index=pd.Index(names, name="variant"), columns=columns)


def _variant_row(
    runs: Sequence[RunResult], metrics: Sequence[str], correction: float = 0.0
) -> dict[str, float]:
    row: dict[str, float] = {
        "seeds": len(runs),
        "diverged": sum(r.status is ResultStatus.DIVERGED for r in runs),
    }
    for metric in metrics:
        for weights in WEIGHTS:
            values = [r.test.get(weights, {}).get(metric) for r in runs]
            summary = summarize(values, correction)
            row.update(_columns(f"{metric}_{weights}", summary, with_n=True))
    row.update(_columns("best_val", summarize((r.best_monitor_value for r in runs), correction)))
    row.update(_columns("best_epoch", summarize(r.best_epoch for r in runs), interval=False))
    row.update(_columns("epochs_run", summarize(r.epochs_run for r in runs), interval=False))
    row.update(_columns("gap", summarize((generalization_gap(r) for r in runs), correction)))
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
    names = {m for r in counted(results) for m in r.test.get("best", {})}
    return sorted(names, key=lambda m: (m != "loss", m))


def counted(results: Iterable[RunResult]) -> list[RunResult]:
    return [r for r in results if r.status in COUNTED_STATUSES]


def group_runs(results: Sequence[RunResult]) -> dict[str, list[RunResult]]:
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
