"""Drawing a study's figures: learning curves, test metrics with their intervals and runs,
ROC curves and confusion matrices (the training diagnostics: :mod:`._diagnostic_plots`).

Every function returns a :class:`matplotlib.figure.Figure` drawn on its own Agg canvas: nothing
here touches pyplot's global state or the session's backend, and nothing imports Keras. Save one
with ``fig.savefig("curves.png")``; in a notebook, display it as it is.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal, cast

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tricklab.spec import METRIC_CATALOGUE, Chance
from tricklab.stats import COUNTED_STATUSES

if TYPE_CHECKING:
    import pandas as pd

    from tricklab.engines.contract import RunResult

#: Losses spanning more than this many decades are drawn on a log axis.
LOG_DECADES = 2.0
BASELINE_COLOR = "#c0392b"
OTHER_COLOR = "#2c3e50"
MAJORITY_COLOR = "#7f8c8d"


def _figure(
    width: float,
    height: float,
    layout: Literal["constrained", "compressed", "tight"] = "constrained",
) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _colors(n: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    size = 10 if n <= 10 else 20
    return [cmap(i % size) for i in range(n)]


# -- learning curves -----------------------------------------------------------------------------
def _stack(curves: Sequence[Sequence[float]]) -> np.ndarray:
    """Curves of different lengths as rows of one array, padded with NaN (non-finite -> NaN)."""
    length = max((len(c) for c in curves), default=0)
    out = np.full((len(curves), length), np.nan)
    for row, curve in enumerate(curves):
        values = np.asarray(curve, dtype=float)
        values[~np.isfinite(values)] = np.nan
        out[row, : len(values)] = values
    return out


def _band(curves: Sequence[Sequence[float]]) -> tuple[np.ndarray, ...] | None:
    """Epochs (1-based), mean, min and max over the runs still running at each epoch."""
    stacked = _stack(curves)
    if stacked.size == 0:
        return None
    running = np.isfinite(stacked).sum(axis=0)
    keep = running > 0
    if not keep.any():
        return None
    with np.errstate(invalid="ignore"):
        data = stacked[:, keep]
        mean = np.nanmean(data, axis=0)
        low = np.nanmin(data, axis=0)
        high = np.nanmax(data, axis=0)
    epochs = np.arange(1, stacked.shape[1] + 1)[keep]
    return epochs, mean, low, high


def _by_variant(
    results: Sequence[RunResult], variants: Sequence[str]
) -> dict[str, list[RunResult]]:
    by_variant: dict[str, list[RunResult]] = {v: [] for v in variants}
    for result in results:
        if result.variant in by_variant and result.status in COUNTED_STATUSES:
            by_variant[result.variant].append(result)
    return by_variant


def epoch_metric(results: Sequence[RunResult], metric: str | None) -> str | None:
    """The validation curve drawn for every variant on one axis: ``val_<metric>`` when the runs
    record it per epoch, else ``val_accuracy``, else none."""
    for key in (f"val_{metric}" if metric else "", "val_accuracy"):
        if key and any(key in r.history for r in results):
            return key
    return None


def learning_curves(
    results: Sequence[RunResult],
    variants: Sequence[str],
    metric: str | None = None,
    unit: str = "seeds",
) -> Figure:
    """One panel per variant: train (dashed) and validation (solid) loss per epoch (1-based), on
    the variant's own y axis, since different losses have different scales; below them the
    validation curve of ``metric`` (see :func:`epoch_metric`) of every variant on one axis.

    Each line is the mean over the runs still running at that epoch (runs stopped early drop
    out), with a band from the lowest to the highest run; ``unit`` names the runs ("seeds", or
    "runs" under cross-validation). A panel's y axis is logarithmic when its losses span more
    than two decades.
    """
    by_variant = _by_variant(results, variants)
    shared = epoch_metric(results, metric)
    cols = min(max(len(variants), 1), 3)
    rows = max(math.ceil(len(variants) / cols), 1)
    fig = _figure(10.5, 2.4 * rows + (3.4 if shared else 0) + 0.5)
    grid = fig.add_gridspec(
        rows + bool(shared), cols, height_ratios=[1] * rows + [1.6] * bool(shared)
    )
    colors = _colors(len(variants))
    longest = max((len(r.history.get("loss", [])) for r in results), default=1) or 1
    for number, (variant, color) in enumerate(zip(variants, colors, strict=True)):
        ax = fig.add_subplot(grid[number // cols, number % cols])
        runs = by_variant[variant]
        drawn = []
        for key, style, width, alpha in (("val_loss", "-", 1.8, 0.18), ("loss", "--", 1.2, 0.10)):
            band = _band([r.history.get(key, []) for r in runs])
            if band is None:
                continue
            epochs, mean, low, high = band
            ax.plot(epochs, mean, style, color=color, lw=width)
            if len(runs) > 1:
                ax.fill_between(epochs, low, high, color=color, alpha=alpha, lw=0)
            drawn += [low, high]
        values = np.concatenate(drawn) if drawn else np.array([])
        values = values[np.isfinite(values)]
        if (
            values.size
            and values.min() > 0
            and math.log10(values.max() / values.min()) > LOG_DECADES
        ):
            ax.set_yscale("log")
        if not drawn:
            ax.text(
                0.5,
                0.5,
                "no loss history",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color=MAJORITY_COLOR,
                fontsize=8,
            )
        seeds = f"{len(runs)} {unit if len(runs) != 1 else unit[:-1]}"
        ax.set_title(f"{textwrap.shorten(variant, 40)} ({seeds})", fontsize=8.5, color=color)
        ax.set_xlim(0.8, longest + 0.2 if longest > 1 else 1.2)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
    if shared:
        ax = fig.add_subplot(grid[rows, :])
        for variant, color in zip(variants, colors, strict=True):
            band = _band([r.history.get(shared, []) for r in by_variant[variant]])
            if band is None:
                continue
            epochs, mean, low, high = band
            ax.plot(epochs, mean, color=color, lw=1.8, label=variant)
        ax.set_xlabel("epoch")
        ax.set_ylabel(shared.replace("_", " "))
        ax.set_xlim(0.8, longest + 0.2 if longest > 1 else 1.2)
        ax.grid(True, alpha=0.3)
        ax.set_title(
            f"{shared.replace('_', ' ')} per epoch, every variant on one axis (mean over {unit})",
            fontsize=9,
        )
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="x-small", frameon=False)
    fig.suptitle(
        "Loss per epoch, each variant on its own scale: validation (solid), train (dashed); "
        f"mean over {unit}, band = min..max",
        fontsize=9.5,
    )
    return fig


# -- a test metric with its interval -------------------------------------------------------------
def _number(table: pd.DataFrame, name: str, column: str) -> float:
    # pandas-stubs types a cell as any scalar (str, Timestamp, ...); these columns hold floats.
    return float(cast(float, table.loc[name, column]))


def metric_intervals(
    table: pd.DataFrame,
    metric: str,
    weights: str = "best",
    baseline: str | None = None,
    majority: float | None = None,
    points: Mapping[str, Sequence[float]] | None = None,
    unit: str = "seeds",
    chance: str = "majority class",
) -> Figure:
    """The test ``metric`` per variant: mean (point), 95% interval (bar) and each run (dots).

    ``table`` is :func:`tricklab.stats.variant_table`; variants are drawn top to bottom in its
    order, ``points`` are each variant's per-run values (``unit``: "seeds", or "runs"). The axis
    is zoomed on the variants; intervals are clipped to the metric's range (a clipped end is
    drawn as a triangle). The ``baseline`` variant is drawn in red with a dotted line at its
    mean; when the metric's chance level is a score of the data's (the majority class for
    accuracy, the mean predictor for mse) and ``majority`` is given (that score, named
    ``chance``), a dashed line marks it, or, when it lies far from the variants, a note in the
    legend says where.
    """
    from tricklab.report._format import clip

    prefix = f"{metric}_{weights}"
    missing = [c for c in ("mean", "low", "high") if f"{prefix}_{c}" not in table.columns]
    if missing:
        raise KeyError(f"table has no column {prefix}_{missing[0]}")
    points = points or {}
    names = [str(v) for v in table.index]
    n_rows = max(len(names), 1)
    fig = _figure(9.0, 1.7 + 0.5 * n_rows)
    ax = fig.add_subplot()
    shown: list[float] = []
    clipped = False
    rng = np.random.default_rng(0)
    for row, name in enumerate(names):
        mean = _number(table, name, f"{prefix}_mean")
        color = BASELINE_COLOR if name == baseline else OTHER_COLOR
        low, high = (
            _number(table, name, f"{prefix}_low"),
            _number(table, name, f"{prefix}_high"),
        )
        if math.isfinite(low) and math.isfinite(high):
            low, high, low_clipped, high_clipped = clip(low, high, metric)
            clipped |= low_clipped or high_clipped
            ax.hlines(row, low, high, color=color, lw=2.5, alpha=0.55)
            for end, cut, marker in ((low, low_clipped, "<"), (high, high_clipped, ">")):
                ax.plot(end, row, marker if cut else "|", color=color, ms=8 if cut else 10, mew=1.5)
            shown += [low, high]
        seeds = [float(v) for v in points.get(name, []) if v is not None and math.isfinite(v)]
        if seeds:
            jitter = rng.uniform(-0.07, 0.07, len(seeds))
            ax.plot(seeds, row + 0.27 + jitter, ".", color=color, ms=4, alpha=0.55, zorder=2)
            shown += seeds
        if math.isfinite(mean):
            ax.plot(mean, row, "o", color=color, ms=7, zorder=3)
            shown.append(mean)
            if name == baseline:
                ax.axvline(mean, color=BASELINE_COLOR, lw=1, ls=":", alpha=0.8)
        else:
            ax.text(
                0.01,
                row,
                " no finite value",
                va="center",
                color=MAJORITY_COLOR,
                transform=ax.get_yaxis_transform(),
                fontsize="small",
            )
    handles = [
        Line2D(
            [], [], color=OTHER_COLOR, marker="o", lw=2.5, alpha=0.8, label="mean, 95% interval"
        ),
        Line2D([], [], color=OTHER_COLOR, marker=".", ls="", alpha=0.6, label=f"each {unit[:-1]}"),
    ]
    if clipped:
        handles.append(
            Line2D(
                [],
                [],
                color=OTHER_COLOR,
                marker=">",
                ls="",
                label="interval clipped at the metric's range",
            )
        )
    if shown:
        low_x, high_x = min(shown), max(shown)
        pad = 0.08 * (high_x - low_x) or 0.01 * max(abs(high_x), 1e-9)
        ax.set_xlim(low_x - pad, high_x + pad)
    facts = METRIC_CATALOGUE.get(metric)
    drawn = facts.chance in (Chance.MAJORITY, Chance.MEAN_MSE)
    if majority is not None and drawn and math.isfinite(majority):
        label = f"{chance} ({majority:.3g})"
        left, right = ax.get_xlim()
        reach = right - left
        if left - reach <= majority <= right + reach:  # near enough: draw it, widening the axis
            ax.axvline(majority, color=MAJORITY_COLOR, lw=1.5, ls="--")
            ax.set_xlim(min(left, majority - 0.05 * reach), max(right, majority + 0.05 * reach))
            handles.append(Line2D([], [], color=MAJORITY_COLOR, lw=1.5, ls="--", label=label))
        else:
            side = "left" if majority < left else "right"
            handles.append(
                Line2D(
                    [],
                    [],
                    color=MAJORITY_COLOR,
                    lw=1.5,
                    ls="--",
                    label=f"{label}: far to the {side}, not drawn",
                )
            )
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncol=min(len(handles), 4),
        fontsize="small",
        frameon=False,
    )
    ax.set_yticks(range(len(names)), labels=names)
    for tick in ax.get_yticklabels():
        if tick.get_text() == baseline:
            tick.set_color(BASELINE_COLOR)
            tick.set_fontweight("bold")
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_xlabel(f"test {metric}, {weights} weights ({facts.direction.better} is better)")
    title = f"Test {metric}: mean, 95% interval and each {unit[:-1]}"
    if baseline is not None and baseline in names:
        title += " (red: the baseline)"
    ax.set_title(title, fontsize="medium")
    return fig


# -- ROC curves ----------------------------------------------------------------------------------
def roc_curves(
    curves: Mapping[str, Sequence[tuple[Sequence[int], Sequence[float]]]], unit: str = "seeds"
) -> Figure:
    """ROC curves of binary classifiers: per variant, each run's test-set curve (thin) and the
    curve of all runs' predictions pooled (bold, with its AUC). ``curves`` maps a variant to
    ``(y_true, P(positive class))`` per run (``unit``: "seeds" or "runs"); the first variant is
    drawn in red."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig = _figure(6.6, 5.6)
    ax = fig.add_subplot()
    palette = [BASELINE_COLOR, "#1f77b4", "#2ca02c", "#9467bd"]
    for (variant, pairs), color in zip(curves.items(), palette, strict=False):
        pooled_y: list[np.ndarray] = []
        pooled_p: list[np.ndarray] = []
        for y_true, proba in pairs:
            p = np.asarray(proba, dtype=float)
            if p.ndim == 2 and p.shape[1] == 2:  # two softmax units: the positive class's
                p = p[:, 1]
            y, p = np.asarray(y_true).ravel(), p.ravel()
            keep = np.isfinite(p)
            y, p = y[keep], p[keep]
            if len(np.unique(y)) < 2:
                continue
            fpr, tpr, _ = roc_curve(y, p)
            ax.plot(fpr, tpr, color=color, lw=0.7, alpha=0.3)
            pooled_y.append(y)
            pooled_p.append(p)
        if not pooled_y:
            continue
        y, p = np.concatenate(pooled_y), np.concatenate(pooled_p)
        fpr, tpr, _ = roc_curve(y, p)
        label = f"{variant}: {len(pooled_y)} {unit} pooled (AUC {roc_auc_score(y, p):.3f})"
        ax.plot(fpr, tpr, color=color, lw=2.4, label=label)
    ax.plot([0, 1], [0, 1], ls=":", color=MAJORITY_COLOR, label="chance (AUC 0.5)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title(
        f"ROC curves on the test rows: thin = one {unit[:-1]}, bold = {unit} pooled", fontsize=9.5
    )
    return fig


# -- confusion matrix ----------------------------------------------------------------------------
def confusion_matrix(
    matrix: Sequence[Sequence[int]], class_names: Sequence[str], title: str
) -> Figure:
    """Counts (rows = true class) with each row's shares; colour = share of the true class."""
    counts = np.asarray(matrix, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"a confusion matrix must be square, not of shape {counts.shape}")
    k = counts.shape[0]
    names = list(class_names) if len(class_names) == k else [str(i) for i in range(k)]
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(totals > 0, counts / np.where(totals > 0, totals, 1), 0.0)

    side = min(max(3.2 + 0.55 * k, 4.6), 11.0)
    fig = _figure(side + 1.2, side, layout="compressed")  # keeps square cells and the labels
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
    fontsize = 11 if k <= 4 else (8 if k <= 10 else 6)
    for i in range(k):
        for j in range(k):
            color = "white" if shares[i, j] > 0.6 else "black"
            ax.text(
                j,
                i,
                f"{int(counts[i, j])}\n{shares[i, j]:.1%}",
                ha="center",
                va="center",
                color=color,
                fontsize=fontsize,
            )
    ax.set_xticks(
        range(k), labels=names, rotation=30 if k > 3 else 0, ha="right" if k > 3 else "center"
    )
    ax.set_yticks(
        range(k), labels=[f"{n} ({int(t)})" for n, t in zip(names, totals[:, 0], strict=True)]
    )
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (test rows)")
    lines = [textwrap.fill(line, width=int(side * 11)) for line in title.splitlines()]
    ax.set_title("\n".join(lines), fontsize="medium")
    return fig
