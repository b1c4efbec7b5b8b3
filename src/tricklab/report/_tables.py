"""The report's tables as rows of formatted cells, shared by the terminal, Markdown and HTML.

A cell is ``{"text", "sub", "num"}``: its main text, a second line (an interval) and whether it is
a number. :func:`compact_table` is the default terminal table (variant, primary metric, Δ vs the
baseline, verdict); :func:`summary_table` has every column (``--wide``, the reports).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from tricklab.report._format import (
    CLIP_MARK,
    DASH,
    beside,
    count,
    estimate,
    fixed,
    mean_std,
)
from tricklab.report._model import metric_names
from tricklab.report._notes import (
    MEAN_PREDICTOR,
    mean_predictor,
    mean_predictor_note,
    runs_behind,
    seconds_share,
)
from tricklab.report._references import (
    REFERENCE,
    reference_names,
    reference_seconds,
    reference_table,
)
from tricklab.report._sentences import (
    BASELINE,
    NOT_COMPARED,
    beats_note,
    failure_words,
    interval_note,
    short_verdict,
    verdict_label,
)
from tricklab.stats import CONFIDENCE, POWER, Comparison, diagnostics_table, percent

if TYPE_CHECKING:
    from tricklab.report._model import Report

TEST_SET_CAPTION = "validated on the TEST SET (the lecture's protocol): test scores are optimistic"
#: The columns of one quantity in :func:`tricklab.stats.variant_table`.
STATS = ("mean", "std", "low", "high")


@dataclass(frozen=True)
class Column:
    """A table column; ``ci``: its cells have an interval (``sub``), a column of its own in
    Markdown and a second line in the terminal and in HTML."""

    key: str
    header: str
    numeric: bool = True
    ci: bool = False
    ci_header: str = f"{CONFIDENCE:.0%} CI"


def cell(text: str, sub: str = "", numeric: bool = True) -> dict[str, Any]:
    return {"text": text, "sub": "" if sub == DASH else sub, "num": numeric}


def _estimate_cell(row: pd.Series, prefix: str, metric: str | None) -> dict[str, Any]:
    mean, interval = estimate(
        row.get(f"{prefix}_mean"), row.get(f"{prefix}_low"), row.get(f"{prefix}_high"), metric
    )
    return cell(mean, interval)


def _mean_std_cell(row: pd.Series, prefix: str, metric: str | None = None) -> dict[str, Any]:
    """``mean ± std`` and, below it, the interval (clipped to the range of ``metric``)."""
    mean, std = row.get(f"{prefix}_mean"), row.get(f"{prefix}_std")
    low, high = row.get(f"{prefix}_low"), row.get(f"{prefix}_high")
    _, interval = estimate(mean, low, high, metric)
    return cell(mean_std(mean, std, low, high), interval)


def confidence(report: Report) -> float:
    """Confidence of the comparisons' adjusted intervals (1 - alpha/m)."""
    return report.comparisons[0].confidence if report.comparisons else CONFIDENCE


def _row(report: Report, variant: str) -> pd.Series:
    """The variant's row of the report's table."""
    row = report.table.loc[variant]
    assert isinstance(row, pd.Series)  # variant names, the index, are unique
    return row


def _mean_predictor_cell(report: Report, row: pd.Series) -> dict[str, Any]:
    """A row's mean predictor score (its runs' test rows), at the precision of its interval."""
    prefix = f"{report.primary_metric}_{report.weights}"
    value = row.get(f"mean_baseline_mse_{report.weights}_mean")
    return cell(beside(value, row.get(f"{prefix}_low"), row.get(f"{prefix}_high")))


def _seconds_cell(report: Report, variant: str, row: pd.Series) -> dict[str, Any]:
    """Training seconds per run, and below them whether they are a population's share."""
    text = mean_std(row.get("seconds_mean"), row.get("seconds_std"))
    return cell(text, seconds_share(report, variant))


def _seeds_cell(report: Report, variant: str, row: pd.Series) -> dict[str, Any]:
    """Seeds counted (of those planned, when some are missing); diverged ones below."""
    planned = report.facts.planned.get(variant, 0)
    seeds = int(row["seeds"])
    text = f"{seeds}/{planned}" if planned and planned != seeds else str(seeds)
    diverged = int(row.get("diverged", 0) or 0)
    return cell(text, f"({diverged} diverged)" if diverged else "")


def _difference(comparison: Comparison) -> dict[str, Any]:
    return cell(*estimate(comparison.diff, comparison.ci_low, comparison.ci_high, sign=True))


def _verdict_cell(comparison: Comparison) -> dict[str, Any]:
    """The verdict, and below it the minimum detectable difference (in the decimals of Δ)."""
    label = verdict_label(comparison)
    if comparison.mde != comparison.mde:  # NaN: no spread or too few seeds
        return cell(label, numeric=False)
    mde = beside(comparison.mde, comparison.ci_low, comparison.ci_high)
    return cell(label, f"(min. detectable ±{mde})", False)


def _beats_cell(comparison: Comparison) -> dict[str, Any]:
    """P(variant beats baseline on a new seed) and its exact interval (none when the runs share
    training rows: the column's header says so)."""
    if comparison.p_beats != comparison.p_beats:
        return cell(DASH)
    interval = ""
    if comparison.p_beats_low == comparison.p_beats_low:
        interval = f"[{comparison.p_beats_low:.2f}, {comparison.p_beats_high:.2f}]"
    return cell(f"{comparison.p_beats:.2f}", interval)


# -- the summary table ----------------------------------------------------------------------------
def summary_columns(report: Report, *, wide: bool = True) -> list[Column]:
    """The summary's columns; ``wide=False``: those of the HTML results (no majority, balanced
    accuracy, epochs and gap: the tables below it hold them)."""
    metric, weights = report.primary_metric, report.weights
    columns = [
        Column("variant", "variant", numeric=False),
        Column("seeds", report.facts.unit),
        # the study's checkpoint first: its numbers are the ones compared
        *(Column(w, f"{metric} {w} weights", ci=True) for w in checkpoints(report)),
    ]
    table = report.table
    majority = f"majority_baseline_{weights}_mean"
    if wide and majority in table.columns and metric != "majority_baseline":
        columns.append(Column("majority", "majority class"))
    if mean_predictor(report):  # the score of learning nothing, in the primary metric (mse)
        columns.append(Column("mean_predictor", MEAN_PREDICTOR))
    balanced = f"balanced_accuracy_{weights}_mean"
    if wide and balanced in table.columns and metric != "balanced_accuracy":
        columns.append(Column("balanced", "balanced accuracy"))
    if wide:
        columns += [Column("epochs", "epochs (best)"), Column("gap", "train−val gap")]
    columns += [
        Column(
            "diff",
            f"Δ {metric} vs {report.baseline}",
            ci=True,
            ci_header=f"{percent(confidence(report))} CI (adjusted)",
        ),
        Column("verdict", "verdict", numeric=False),
        Column(
            "beats",
            f"P(beats {report.baseline})",
            ci=True,
            ci_header=_beats_header(report),
        ),
    ]
    return columns


def _beats_header(report: Report) -> str:
    """What the P(beats baseline) column's interval is: exact at the adjusted level, or none."""
    if report.facts.correction:
        return "no CI: runs share training rows"
    return f"{percent(confidence(report))} exact CI"


def summary_rows(report: Report) -> list[dict[str, dict[str, Any]]]:
    """One row per variant, best primary metric first: cells by column key."""
    by_variant = {c.variant: c for c in report.comparisons}
    failed = report.failures()
    rows = []
    for variant in report.ranked():
        row = _row(report, variant)
        epochs = DASH
        if row.get("epochs_run_mean") == row.get("epochs_run_mean"):
            epochs = f"{count(row['epochs_run_mean'])} ({count(row['best_epoch_mean'])})"
        cells = {
            "variant": cell(variant, numeric=False),
            "seeds": _seeds_cell(report, variant, row),
            **_score_cells(report, row),
            "epochs": cell(epochs),
            "gap": cell(mean_std(*(row.get(f"gap_{s}") for s in STATS))),
        }
        comparison = by_variant.get(variant)
        cells["diff"] = cells["beats"] = cell(DASH)
        if variant == report.baseline:
            cells["verdict"] = cell(BASELINE, numeric=False)
        elif comparison is None:
            cells["verdict"] = cell(NOT_COMPARED, numeric=False)
        else:
            cells["diff"] = _difference(comparison)
            cells["verdict"] = _verdict_cell(comparison)
            cells["beats"] = _beats_cell(comparison)
        if variant in failed:  # how it failed, above what the comparison says
            words = failure_words(failed[variant].mode)
            verdict = cells["verdict"]
            verdict["sub"] = f"{words}; {verdict['sub']}" if verdict["sub"] else words
        rows.append(cells)
    return rows + _reference_rows(report)


def _score_cells(report: Report, row: pd.Series) -> dict[str, dict[str, Any]]:
    """The test scores of one row (a variant's or a reference model's), by column key."""
    metric, weights = report.primary_metric, report.weights
    return {
        "best": _mean_std_cell(row, f"{metric}_best", metric),
        "last": _mean_std_cell(row, f"{metric}_last", metric),
        "majority": cell(fixed(row.get(f"majority_baseline_{weights}_mean"), 3)),
        "mean_predictor": _mean_predictor_cell(report, row),
        "balanced": cell(mean_std(*(row.get(f"balanced_accuracy_{weights}_{s}") for s in STATS))),
    }


def _reference_rows(report: Report) -> list[dict[str, dict[str, Any]]]:
    """A row per reference model (below the variants, in their fixed order): its scores on
    the same runs' rows, its fit time, no Δ or verdict (see the Reference line)."""
    table = reference_table(report)
    rows = []
    for name in table.index:
        row = table.loc[name]
        cells = {c.key: cell(DASH) for c in summary_columns(report)}
        seconds = reference_seconds(report, str(name))
        cells.update(
            {
                "variant": cell(str(name), f"(reference; fit {seconds} s)", False),
                "seeds": cell(str(int(row["seeds"]))),
                **_score_cells(report, row),
                "verdict": cell(REFERENCE, numeric=False),
            }
        )
        rows.append(cells)
    return rows


def compact_rows(report: Report) -> list[dict[str, dict[str, Any]]]:
    """The compact table: variant, the primary metric of the study's checkpoint (key "primary")
    with its interval, Δ vs the baseline with its adjusted interval, and the verdict in one word
    (better, worse, unclear, untested; baseline and not compared as in the summary), with how
    the variant failed below it."""
    by_variant = {c.variant: c for c in report.comparisons}
    failed = report.failures()
    rows = []
    names = [*report.ranked(), *reference_names(report)]  # the reference rows come last
    for variant, cells in zip(names, summary_rows(report), strict=True):
        comparison = by_variant.get(variant)
        verdict = cells["verdict"]["text"]
        if comparison is not None and variant != report.baseline:
            verdict = short_verdict(comparison.verdict)
        primary = cells[report.weights]
        rows.append(
            {
                "variant": cells["variant"],
                "primary": cell(primary["text"].split(" ± ")[0], primary["sub"]),
                "diff": cells["diff"],
                "verdict": cell(
                    verdict,
                    failure_words(failed[variant].mode) if variant in failed else "",
                    numeric=False,
                ),
            }
        )
    level = mean_predictor(report)
    if level:  # what the primary metric scores without learning (mse), below the variants
        rows.append(
            {
                "variant": cell(MEAN_PREDICTOR, "(the training mean)", False),
                "primary": cell(level),
                "diff": cell(DASH),
                "verdict": cell("no learning", numeric=False),
            }
        )
    return rows


def clipped_note(report: Report) -> str:
    """A note for the clip mark, when some interval of the summary was clipped."""
    text = " ".join(c["sub"] for row in summary_rows(report) for c in row.values())
    return f"{CLIP_MARK} clipped to the metric's range" if CLIP_MARK in text else ""


def checkpoints(report: Report) -> tuple[str, str]:
    """The weights whose test scores the tables show: the study's checkpoint, then the other."""
    return (report.weights, "last" if report.weights == "best" else "best")


def primary_caption(report: Report) -> str:
    """What every results caption begins with: ``Primary metric: test auc, last weights``."""
    return f"Primary metric: test {report.primary_metric}, {report.weights} weights"


def caption(report: Report) -> str:
    rule = f"; {report.rule}" if report.rule else ""
    if report.validated_on_test:
        return f"{primary_caption(report)}; {TEST_SET_CAPTION}{rule}"
    one = report.facts.unit[:-1]
    if rule:
        rule += (
            f"; {beats_note(report.comparisons[0])}; min. detectable = smallest Δ the verdict "
            f"detects with power {POWER:g}"
        )
    note = clipped_note(report)
    return (
        f"{primary_caption(report)}; "
        "validated on a validation split carved from the training data; mean ± std over "
        f"{runs_behind(report)}, {interval_note(report.facts.correction)} in brackets; "
        f"Δ = variant − {report.baseline}, paired by {one}{rule}; epochs = epochs run (best "
        "epoch); gap = train loss − validation loss at the best epoch"
        + (f"; {mean_predictor_note(report)}" if mean_predictor(report) else "")
        + (f"; {note}" if note else "")
    )


def compact_caption(report: Report) -> str:
    corrected = ", Nadeau-Bengio corrected" if report.facts.correction else ""
    text = f"mean [{CONFIDENCE:.0%} CI{corrected}] over {runs_behind(report)}"
    if report.validated_on_test:
        text = TEST_SET_CAPTION + "; " + text
    else:
        text = "validated on a validation split of the training data; " + text
    if report.comparisons and report.comparisons[0].tests:
        first = report.comparisons[0]
        text += (
            f"; Δ = variant − baseline, paired by {report.facts.unit[:-1]}, "
            f"[{percent(first.confidence)} CI] "
            + ("Nadeau-Bengio corrected, " if first.correction else "")
            + f"Bonferroni-adjusted across {first.tests}"
        )
    if mean_predictor(report):
        text += f"; {mean_predictor_note(report)}"
    note = clipped_note(report)
    text = f"{primary_caption(report)}; {text}"
    return text + (f"; {note}" if note else "") + "; --wide: every column"


# -- the other tables -----------------------------------------------------------------------------
def metrics_table(report: Report) -> dict[str, Any]:
    """Every test metric, best and last weights (the study's checkpoint first): mean ± std and
    interval, a row per variant x weights."""
    metrics = metric_names(report.results, report.primary_metric)
    headers = [Column("variant", "variant", False), Column("weights", "weights", False)]
    headers += [Column(m, m) for m in metrics]
    rows = []
    for variant in report.ranked():
        row = _row(report, variant)
        for weights in checkpoints(report):
            cells = [
                cell(variant if weights == report.weights else "", numeric=False),
                cell(weights, numeric=False),
            ]
            cells += [_mean_std_cell(row, f"{m}_{weights}", m) for m in metrics]
            rows.append(cells)
    references = reference_table(report)
    for name in references.index:  # a reference's scores: one fit, no checkpoint
        row = references.loc[name]
        cells = [cell(str(name), numeric=False), cell(REFERENCE, numeric=False)]
        rows.append(cells + [_mean_std_cell(row, f"{m}_best", m) for m in metrics])
    return {"columns": headers, "rows": rows}


def training_table(report: Report) -> dict[str, Any]:
    monitors = sorted({r.monitor for r in report.results if r.monitor})
    monitor = " / ".join(monitors) or "monitored value"
    headers = [
        Column("variant", "variant", False),
        Column("seeds", report.facts.unit),
        Column("best_val", f"best {monitor}"),
        Column("best_epoch", "best epoch"),
        Column("epochs", "epochs run"),
        Column("gap", "train−val gap"),
        Column("seconds", "seconds"),
    ]
    rows = []
    for variant in report.ranked():
        row = _row(report, variant)

        def counts(prefix: str, row: pd.Series = row) -> str:
            mean, std = row.get(f"{prefix}_mean"), row.get(f"{prefix}_std")
            text = count(mean)
            return text + (
                f" ± {std:.1f}" if std == std and std is not None and text != DASH else ""
            )

        rows.append(
            [
                cell(variant, numeric=False),
                _seeds_cell(report, variant, row),
                _mean_std_cell(row, "best_val"),
                cell(counts("best_epoch")),
                cell(counts("epochs_run")),
                _mean_std_cell(row, "gap"),
                _seconds_cell(report, variant, row),
            ]
        )
    references = reference_table(report)
    for name in references.index:  # seconds: the fit time of a reference model
        row = references.loc[name]
        rows.append(
            [cell(str(name), REFERENCE, False), cell(str(int(row["seeds"])))]
            + [cell(DASH)] * 4
            + [cell(mean_std(row.get("seconds_mean"), row.get("seconds_std")))]
        )
    return {"columns": headers, "rows": rows}


def diagnostics_summary(report: Report) -> dict[str, Any] | None:
    """Final-epoch diagnostics per variant (None when the study measured none)."""
    table = diagnostics_table(report.results, report.ranked())
    if table.empty:
        return None
    headers = [
        Column("variant", "variant", False),
        Column("dead", "dead units"),
        Column("saturated", "saturated units"),
        Column("grad_ratio_start", "grad. first / last layer, untrained"),
        Column("grad_ratio_end", "grad. first / last layer, end"),
    ]
    keys = ("dead", "saturated", "grad_ratio_start", "grad_ratio_end")
    rows = [
        [cell(variant, numeric=False)]
        + [
            cell(mean_std(table.loc[variant].get(f"{k}_mean"), table.loc[variant].get(f"{k}_std")))
            for k in keys
        ]
        for variant in table.index
    ]
    return {"columns": headers, "rows": rows}
