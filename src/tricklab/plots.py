"""Figures of a study: learning curves, test metrics with their intervals, confusion matrices.

Every function returns a :class:`matplotlib.figure.Figure` drawn on its own Agg canvas: nothing
here touches pyplot's global state or the session's backend, and nothing imports Keras. Save one
with ``fig.savefig("curves.png")``; in a notebook, display it as it is.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tricklab.stats import COUNTED_STATUSES, higher_is_better

if TYPE_CHECKING:
    import pandas as pd

    from tricklab.result import RunResult

__all__ = ["confusion_matrix", "diagnostics_grid", "learning_curves", "metric_intervals"]

#: Losses spanning more than this many decades are drawn on a log axis.
LOG_DECADES = 2.0
BASELINE_COLOR = "#c0392b"
OTHER_COLOR = "#2c3e50"
MAJORITY_COLOR = "#7f8c8d"


def _figure(width: float, height: float, layout: str = "constrained") -> Figure:
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


def learning_curves(results: Sequence[RunResult], variants: Sequence[str]) -> Figure:
    """Train (dashed) and validation (solid) loss per variant, over epochs (1-based).

    Each line is the mean over the seeds still running at that epoch (runs stopped early drop out),
    with a band from the lowest to the highest seed. The y axis is logarithmic when the losses
    span more than two decades.
    """
    by_variant: dict[str, list[RunResult]] = {v: [] for v in variants}
    for result in results:
        if result.variant in by_variant and result.status in COUNTED_STATUSES:
            by_variant[result.variant].append(result)

    fig = _figure(10.5, 5.2)
    ax = fig.add_subplot()
    handles: list[Line2D] = []
    drawn: list[np.ndarray] = []
    longest = 1
    for variant, color in zip(variants, _colors(len(variants)), strict=True):
        runs = by_variant[variant]
        label = f"{variant} ({len(runs)} seed{'s' if len(runs) != 1 else ''})"
        handles.append(Line2D([], [], color=color, lw=2.2, label=label))
        for key, style, width, alpha in (("val_loss", "-", 2.0, 0.18), ("loss", "--", 1.4, 0.10)):
            band = _band([r.history.get(key, []) for r in runs])
            if band is None:
                continue
            epochs, mean, low, high = band
            longest = max(longest, int(epochs[-1]))
            ax.plot(epochs, mean, style, color=color, lw=width)
            if len(runs) > 1:
                ax.fill_between(epochs, low, high, color=color, alpha=alpha, lw=0)
            drawn += [low, high]

    values = np.concatenate(drawn) if drawn else np.array([])
    values = values[np.isfinite(values)]
    if values.size and values.min() > 0 and math.log10(values.max() / values.min()) > LOG_DECADES:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_xlim(0.8, longest + 0.2 if longest > 1 else 1.2)
    if longest <= 12:
        ax.set_xticks(range(1, longest + 1))
    ax.grid(True, alpha=0.3)
    ax.set_title("Learning curves: mean over seeds, band = min..max of the seeds still running")
    handles += [
        Line2D([], [], color="black", lw=2.0, ls="-", label="validation loss"),
        Line2D([], [], color="black", lw=1.4, ls="--", label="train loss"),
    ]
    fig.legend(
        handles=handles,
        loc="outside right upper",
        fontsize="small",
        frameon=False,
        title="variant",
        alignment="left",
    )
    if not drawn:
        ax.text(
            0.5,
            0.5,
            "no loss history recorded",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color=MAJORITY_COLOR,
        )
    return fig


# -- a test metric with its interval -------------------------------------------------------------
def metric_intervals(
    table: pd.DataFrame,
    metric: str,
    weights: str = "best",
    baseline: str | None = None,
    majority: float | None = None,
) -> Figure:
    """The test ``metric`` per variant: mean (point) and 95% interval (bar) over seeds.

    ``table`` is :func:`tricklab.stats.variant_table`; variants are drawn top to bottom in its
    order. The ``baseline`` variant is drawn in red with a dotted line at its mean; when the
    metric is accuracy and ``majority`` is given, a dashed line marks the accuracy of always
    answering the majority class.
    """
    prefix = f"{metric}_{weights}"
    missing = [c for c in ("mean", "low", "high") if f"{prefix}_{c}" not in table.columns]
    if missing:
        raise KeyError(f"table has no column {prefix}_{missing[0]}")
    names = [str(v) for v in table.index]
    n_rows = max(len(names), 1)
    fig = _figure(9.0, 1.5 + 0.42 * n_rows)
    ax = fig.add_subplot()
    for row, name in enumerate(names):
        mean = float(table.loc[name, f"{prefix}_mean"])
        low = float(table.loc[name, f"{prefix}_low"])
        high = float(table.loc[name, f"{prefix}_high"])
        color = BASELINE_COLOR if name == baseline else OTHER_COLOR
        if math.isfinite(low) and math.isfinite(high):
            ax.hlines(row, low, high, color=color, lw=2.5, alpha=0.55)
            ax.plot([low, high], [row, row], "|", color=color, ms=10, mew=1.5)
        if math.isfinite(mean):
            ax.plot(mean, row, "o", color=color, ms=7, zorder=3)
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
    if majority is not None and metric == "accuracy" and math.isfinite(majority):
        ax.axvline(
            majority,
            color=MAJORITY_COLOR,
            lw=1.5,
            ls="--",
            label=f"majority class ({majority:.4g})",
        )
        ax.legend(loc="best", fontsize="small", framealpha=0.9)
    ax.set_yticks(range(len(names)), labels=names)
    for label in ax.get_yticklabels():
        if label.get_text() == baseline:
            label.set_color(BASELINE_COLOR)
            label.set_fontweight("bold")
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.grid(True, axis="x", alpha=0.3)
    direction = "higher" if higher_is_better(metric) else "lower"
    ax.set_xlabel(f"test {metric}, {weights} weights ({direction} is better)")
    title = f"Test {metric}: mean and 95% interval over seeds"
    if baseline is not None and baseline in names:
        title += " (red: the baseline)"
    ax.set_title(title, fontsize="medium")
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


# -- training diagnostics ------------------------------------------------------------------------
DIAGNOSTIC_QUANTITIES = {
    "kernel_grad_norm": "kernel gradient norm (log colour scale)",
    "saturated_fraction": "share of saturated units",
    "dead_fraction": "share of dead units",
    "mean_abs_activation": "mean |activation|",
}


def diagnostics_grid(frame: pd.DataFrame, variants: Sequence[str], quantity: str) -> Figure:
    """Small multiples: one panel per variant, hidden layer (rows) x epoch (columns).

    ``frame`` is :func:`tricklab.stats.diagnostics_frame`; cells are means over seeds; a variant
    whose activation does not define the quantity (dead units of sigmoid) shows "n/a".
    """
    from matplotlib.colors import LogNorm, Normalize

    present = [v for v in variants if v in set(frame["variant"])]
    cols = min(len(present), 4)
    rows = math.ceil(len(present) / cols)
    fig = _figure(3.2 * cols + 1.2, 2.4 * rows + 0.8)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    grids = {v: _layer_epoch_grid(frame[frame["variant"] == v], quantity) for v in present}
    finite = np.concatenate([g.to_numpy(dtype=float).ravel() for g in grids.values()])
    finite = finite[np.isfinite(finite)]
    log = quantity == "kernel_grad_norm" and finite.size and (finite > 0).all()
    if log:
        norm = LogNorm(vmin=finite.min(), vmax=finite.max())
    elif quantity.endswith("fraction"):
        norm = Normalize(vmin=0.0, vmax=1.0)
    else:
        norm = Normalize(
            vmin=finite.min() if finite.size else 0, vmax=finite.max() if finite.size else 1
        )
    image = None
    for ax, variant in zip(axes, present, strict=False):
        grid = grids[variant]
        values = grid.to_numpy(dtype=float)
        ax.set_title(textwrap.shorten(variant, 28), fontsize=9)
        if not np.isfinite(values).any():
            ax.text(
                0.5,
                0.5,
                "n/a for this activation",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=8,
                color=MAJORITY_COLOR,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        image = ax.imshow(values, aspect="auto", cmap="viridis", norm=norm, interpolation="nearest")
        ax.set_yticks(range(len(grid.index)))
        ax.set_yticklabels(grid.index, fontsize=7)
        epochs = list(grid.columns)
        step = max(1, len(epochs) // 6)
        ax.set_xticks(range(0, len(epochs), step))
        ax.set_xticklabels([str(e) for e in epochs[::step]], fontsize=7)
        ax.set_xlabel("epoch (0 = untrained)", fontsize=7)
    for ax in axes[len(present) :]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(
            image,
            ax=list(axes[: len(present)]),
            shrink=0.9,
            label=DIAGNOSTIC_QUANTITIES.get(quantity, quantity),
        )
    fig.suptitle(
        f"{DIAGNOSTIC_QUANTITIES.get(quantity, quantity)}: hidden layer (first at top) "
        "x epoch, mean over seeds",
        fontsize=10,
    )
    return fig


def _layer_epoch_grid(rows: pd.DataFrame, quantity: str) -> pd.DataFrame:
    layers = list(dict.fromkeys(rows["layer"]))
    grid = rows.pivot_table(
        index="layer", columns="epoch", values=quantity, aggfunc="mean", dropna=False
    )
    return grid.reindex(layers)
