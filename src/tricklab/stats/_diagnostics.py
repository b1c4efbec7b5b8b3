"""Training diagnostics over seeds (dead and saturated units, gradient ratios)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from tricklab.engines.contract import RunResult
from tricklab.stats._summary import counted, summarize


# -- training diagnostics ------------------------------------------------------------------------
def diagnostics_frame(results: Iterable[RunResult]) -> pd.DataFrame:
    """Every diagnostics row of every counted run, with its variant and seed (long format)."""
    rows = [
        {"variant": r.variant, "seed": r.seed, **row}
        for r in counted(results)
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
