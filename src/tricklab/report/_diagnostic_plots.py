"""Drawing the training diagnostics of a study: one small multiple per variant, hidden layer x
epoch, of a quantity the engines measured (gradient norms, saturated and dead units, activation
size).

Like :mod:`tricklab.report._plots` (whose figure helpers it uses), every function returns a
:class:`matplotlib.figure.Figure` on its own Agg canvas; nothing here touches pyplot's global
state or imports Keras.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from tricklab.report._plots import MAJORITY_COLOR, _figure

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

# -- training diagnostics ------------------------------------------------------------------------
DIAGNOSTIC_QUANTITIES = {
    "kernel_grad_norm": "kernel gradient norm (log colour scale)",
    "saturated_fraction": "share of saturated units",
    "dead_fraction": "share of dead units",
    "mean_abs_activation": "mean |activation|",
}


def diagnostics_grid(
    frame: pd.DataFrame, variants: Sequence[str], quantity: str, unit: str = "seeds"
) -> Figure:
    """Small multiples: one panel per variant, hidden layer (rows) x epoch (columns).

    ``frame`` is :func:`tricklab.stats.diagnostics_frame`; cells are means over the runs
    (``unit``: "seeds", or "runs" under cross-validation); a variant whose activation does not
    define the quantity (dead units of sigmoid) shows "n/a".
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
    norm: Normalize
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
        f"x epoch, mean over {unit}",
        fontsize=10,
    )
    return fig


def _layer_epoch_grid(rows: pd.DataFrame, quantity: str) -> pd.DataFrame:
    layers = list(dict.fromkeys(rows["layer"]))
    grid = rows.pivot_table(
        index="layer", columns="epoch", values=quantity, aggfunc="mean", dropna=False
    )
    return grid.reindex(layers)
