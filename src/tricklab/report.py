"""Reports of a study: the terminal table, ``report.md`` and a self-contained ``report.html``.

    >>> from tricklab.report import build_report, terminal_table
    >>> report = build_report("runs/thoracic-losses")
    >>> rich.print(terminal_table(report))

:func:`build_report` reads the study index (``study.json``) and the finished runs it lists (a run
counts only when its stored key is the one the index plans: results of removed or changed
variants are left out), computes the statistics of :mod:`tricklab.stats` and writes, under the
study directory::

    report.md          Markdown; figures referenced as files
    report.html        one file: CSS inline, figures inlined as data: URIs, no scripts
    figures/*.png      the figures of report.md

Nothing here imports Keras.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import pandas as pd
from rich.table import Table
from rich.text import Text

from tricklab import __version__, plots
from tricklab.build import DEFAULT_PRIMARY_METRIC
from tricklab.errors import StoreError
from tricklab.result import RunResult
from tricklab.stats import (
    BOOTSTRAP_RESAMPLES,
    CONFIDENCE,
    COUNTED_STATUSES,
    POWER,
    Comparison,
    compare,
    decision_rule,
    diagnostics_frame,
    diagnostics_table,
    higher_is_better,
    percent,
    variant_table,
)
from tricklab.store import RunState, RunStore

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Report", "build_report", "report_text", "terminal_table"]

MARKDOWN = "report.md"
HTML = "report.html"
FIGURES = "figures"
#: Resolution of the PNG figures (the HTML shows them at most 1000 px wide).
DPI = 110
TEST_SET_CAPTION = "validated on the TEST SET (the lecture's protocol): test scores are optimistic"
DASH = "–"


@dataclass
class Report:
    """A written report: where its files are, and the numbers and figures they show.

    ``table`` is :func:`tricklab.stats.variant_table` (index order = the study's variants);
    ``comparisons`` compare every variant with the baseline on the primary metric of the best
    weights (:func:`tricklab.stats.compare`: paired t-tests, Bonferroni-adjusted across them).
    ``index`` is the study index the report was built from and ``results`` the finished runs it
    counted.
    """

    root: Path
    markdown: Path
    html: Path
    table: pd.DataFrame
    comparisons: list[Comparison]
    primary_metric: str
    figures: dict[str, Figure]
    study: str = ""
    index: dict[str, Any] = field(default_factory=dict)
    results: list[RunResult] = field(default_factory=list)

    @property
    def baseline(self) -> str:
        return str(self.index.get("baseline") or next(iter(self.table.index), ""))

    @property
    def rule(self) -> str:
        """The deciding rule of the comparisons in words ("" when none could be tested)."""
        if not self.comparisons or not self.comparisons[0].tests:
            return ""
        first = self.comparisons[0]
        return decision_rule(first.tests, first.alpha)

    @property
    def validated_on_test(self) -> bool:
        return self.index.get("protocol", {}).get("validated_on") == "test set"

    def ranked(self) -> list[str]:
        """Variants by the primary metric of the best weights, best first (no value last)."""
        column = self.table[f"{self.primary_metric}_best_mean"]
        sign = -1.0 if higher_is_better(self.primary_metric) else 1.0

        def key(variant: str) -> tuple[bool, float]:
            value = float(column[variant])
            return (not math.isfinite(value), sign * value if math.isfinite(value) else 0.0)

        return sorted(self.table.index, key=key)


# -- building ------------------------------------------------------------------------------------
def build_report(root: str | Path) -> Report:
    """Read the study in ``root`` (``runs/<study>``), write its reports, return them.

    Raises :class:`StoreError` when ``root`` holds no study index or none of its runs finished.
    """
    root = Path(root)
    store = RunStore(root)
    index = store.read_index()
    study = str(index.get("study") or root.name)
    results, missing = _load_runs(store)
    if not results:
        planned = len(index.get("runs", []))
        raise StoreError(
            f"{root}: no run of study {study!r} has finished yet ({planned} planned). "
            "Run `tricklab run STUDY.toml` to train them."
        )
    finished = {r.variant for r in results}  # variants with no finished run get no row
    variants = [v for v in index.get("variants") or [r.variant for r in results] if v in finished]
    task = index.get("dataset", {}).get("task", "binary")
    primary = index.get("primary_metric") or DEFAULT_PRIMARY_METRIC[task]
    table = variant_table(results, variants, _metric_names(results, primary))
    baseline = index.get("baseline") or variants[0]
    counted = {r.variant for r in results if r.status in COUNTED_STATUSES}
    comparisons = (
        compare(results, baseline, primary, "best", variants=variants)
        if baseline in counted
        else []
    )
    report = Report(
        root=root,
        markdown=root / MARKDOWN,
        html=root / HTML,
        table=table,
        comparisons=comparisons,
        primary_metric=primary,
        figures={},
        study=study,
        index=index,
        results=results,
    )
    report.figures = _figures(report)
    images = _write_figures(root / FIGURES, report.figures)
    context = _context(report, missing, images)
    report.markdown.write_text(_render("report.md.j2", context, html=False), encoding="utf-8")
    report.html.write_text(_render("report.html.j2", context, html=True), encoding="utf-8")
    return report


def report_text(report: Report) -> str:
    """The Markdown report, for printing or a notebook cell."""
    return report.markdown.read_text(encoding="utf-8")


def _load_runs(store: RunStore) -> tuple[list[RunResult], list[dict[str, Any]]]:
    """The finished runs the index plans (matched by key), and why the others are missing."""
    results: list[RunResult] = []
    missing: list[dict[str, Any]] = []
    for status in store.indexed_runs():
        if status.result is not None:
            results.append(status.result)
            continue
        why = {
            RunState.PLANNED: status.detail or "not trained yet",
            RunState.RUNNING: f"in training ({status.detail})",
            RunState.FAILED: f"failed: {status.detail}",
            RunState.DAMAGED: f"damaged: {status.detail}",
        }[status.state]
        missing.append({"variant": status.variant, "seed": status.seed, "why": why})
    return results, missing


def _metric_names(results: Sequence[RunResult], primary: str) -> list[str]:
    """Test metrics of the results (and the primary metric): loss first, then alphabetical."""
    names = {m for r in results for m in r.test.get("best", {})} | {primary}
    return sorted(names, key=lambda m: (m != "loss", m))


# -- figures -------------------------------------------------------------------------------------
def _is_classification(report: Report) -> bool:
    return report.index.get("dataset", {}).get("task") in ("binary", "multiclass")


def _majority(report: Report) -> float | None:
    """Test accuracy of always answering the majority class (of the training rows)."""
    column = "majority_baseline_best_mean"
    if column in report.table.columns:
        values = [v for v in report.table[column] if math.isfinite(v)]
        if values:
            return float(sum(values) / len(values))
    value = report.index.get("dataset", {}).get("majority_fraction")
    return float(value) if value is not None else None


def _best_variant_matrix(report: Report) -> tuple[str, list[list[int]], int] | None:
    """The best variant (primary metric) with confusion matrices, their sum and their count."""
    for variant in report.ranked():
        matrices = [
            r.confusion_matrix
            for r in report.results
            if r.variant == variant and r.status in COUNTED_STATUSES and r.confusion_matrix
        ]
        if matrices:
            total = [
                [sum(m[i][j] for m in matrices) for j in range(len(matrices[0]))]
                for i in range(len(matrices[0]))
            ]
            return variant, total, len(matrices)
    return None


def _figures(report: Report) -> dict[str, Figure]:
    variants = list(report.table.index)
    metric = report.primary_metric
    classification = _is_classification(report)
    majority = _majority(report) if classification else None
    figures: dict[str, Figure] = {
        "learning_curves": plots.learning_curves(report.results, variants),
        f"{metric}_intervals": plots.metric_intervals(
            report.table, metric, "best", report.baseline, majority
        ),
    }
    if classification and metric != "accuracy" and "accuracy_best_mean" in report.table.columns:
        figures["accuracy_intervals"] = plots.metric_intervals(
            report.table, "accuracy", "best", report.baseline, majority
        )
    if classification:
        best = _best_variant_matrix(report)
        if best is not None:
            variant, matrix, n = best
            classes = report.index.get("dataset", {}).get("classes", [])
            title = (
                f"Confusion matrix of {variant} (best {metric})\n"
                f"test rows, best weights, summed over {n} seed{'s' if n != 1 else ''}"
            )
            figures["confusion_matrix"] = plots.confusion_matrix(matrix, classes, title)
    frame = diagnostics_frame(report.results)
    if not frame.empty:
        for quantity in plots.DIAGNOSTIC_QUANTITIES:
            figures[f"diagnostics_{quantity}"] = plots.diagnostics_grid(frame, variants, quantity)
    return figures


def _write_figures(folder: Path, figures: dict[str, Figure]) -> dict[str, dict[str, str]]:
    """Save each figure as ``folder/<name>.png`` (old PNGs removed); their files and data URIs."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    out: dict[str, dict[str, str]] = {}
    for name, figure in figures.items():
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
        data = buffer.getvalue()
        (folder / f"{name}.png").write_bytes(data)
        out[name] = {
            "file": f"{FIGURES}/{name}.png",
            "uri": "data:image/png;base64," + base64.b64encode(data).decode("ascii"),
        }
    return out


# -- number formatting ---------------------------------------------------------------------------
def _finite(value: Any) -> bool:
    return value is not None and isinstance(value, int | float) and math.isfinite(value)


def _num(value: Any, digits: int = 4, *, sign: bool = False) -> str:
    """``value`` with ``digits`` significant digits (trailing zeros kept: 0.7700); large values
    as whole numbers, not in exponent notation; a dash when missing or not finite."""
    if not _finite(value):
        return DASH
    if value == 0:
        return "0"
    plus = "+" if sign else ""
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude >= digits - 1 and magnitude < 12:  # 1234.5 -> 1235; 123456 -> 123456
        return f"{round(value, digits - 1 - magnitude):{plus}.0f}"
    return f"{value:{plus}#.{digits}g}".removesuffix(".")


def _count(value: Any) -> str:
    """A mean of whole numbers (epochs): an int when it is one, else one decimal."""
    if not _finite(value):
        return DASH
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _mean_std(row: pd.Series, prefix: str, digits: int | None = 4) -> str:
    """``mean ± std`` (the std with 2 significant digits); ``digits=None``: counts (epochs)."""
    mean, std = row.get(f"{prefix}_mean"), row.get(f"{prefix}_std")
    if not _finite(mean):
        return DASH
    text = _count(mean) if digits is None else _num(mean, digits)
    return text + (f" ± {_num(std, 2)}" if _finite(std) else "")


def _interval(low: Any, high: Any, digits: int = 4) -> str:
    if not (_finite(low) and _finite(high)):
        return DASH
    return f"[{_num(low, digits)}, {_num(high, digits)}]"


def _row_interval(row: pd.Series, prefix: str) -> str:
    return _interval(row.get(f"{prefix}_low"), row.get(f"{prefix}_high"))


# -- the summary table (terminal, Markdown and HTML) ---------------------------------------------
@dataclass(frozen=True)
class _Column:
    """A table column; ``ci``: its cells have an interval (``sub``), a column of its own in
    Markdown and a second line in the terminal and in HTML."""

    key: str
    header: str
    numeric: bool = True
    ci: bool = False
    ci_header: str = f"{CONFIDENCE:.0%} CI"


def _summary_columns(report: Report) -> list[_Column]:
    metric = report.primary_metric
    columns = [
        _Column("variant", "variant", numeric=False),
        _Column("seeds", "seeds"),
        _Column("best", f"{metric} best weights", ci=True),
        _Column("last", f"{metric} last weights", ci=True),
    ]
    table = report.table
    if "majority_baseline_best_mean" in table.columns and metric != "majority_baseline":
        columns.append(_Column("majority", "majority class"))
    if "balanced_accuracy_best_mean" in table.columns and metric != "balanced_accuracy":
        columns.append(_Column("balanced", "balanced accuracy"))
    columns += [
        _Column("epochs", "epochs (best)"),
        _Column("gap", "train−val gap"),
        _Column(
            "diff",
            f"Δ {metric} vs {report.baseline}",
            ci=True,
            ci_header=f"{percent(_confidence(report))} CI (adjusted)",
        ),
        _Column("verdict", "verdict", numeric=False),
        _Column(
            "beats",
            f"P(beats {report.baseline})",
            ci=True,
            ci_header=f"{CONFIDENCE:.0%} bootstrap CI",
        ),
    ]
    return columns


def _confidence(report: Report) -> float:
    """Confidence of the comparisons' adjusted intervals (1 - alpha/m)."""
    return report.comparisons[0].confidence if report.comparisons else CONFIDENCE


def _seeds_cell(report: Report, variant: str, row: pd.Series) -> dict[str, Any]:
    """Seeds counted (of those planned, when some are missing); diverged ones below."""
    planned = sum(1 for r in report.index.get("runs", []) if r["variant"] == variant)
    seeds = int(row["seeds"])
    text = f"{seeds}/{planned}" if planned and planned != seeds else str(seeds)
    diverged = int(row.get("diverged", 0) or 0)
    return _cell(text, f"({diverged} diverged)" if diverged else "")


def _epochs(row: pd.Series) -> str:
    """Epochs run, and the best epoch in parentheses (means over seeds)."""
    if not _finite(row.get("epochs_run_mean")):
        return DASH
    return f"{_count(row['epochs_run_mean'])} ({_count(row['best_epoch_mean'])})"


def _difference(comparison: Comparison) -> tuple[str, str]:
    """The paired difference and its interval, with the decimals of 3 significant digits of the
    largest of them (so that the three line up)."""
    values = [v for v in (comparison.diff, comparison.ci_low, comparison.ci_high) if _finite(v)]
    if not _finite(comparison.diff):
        return DASH, DASH
    scale = max(abs(v) for v in values)
    decimals = 3 if scale == 0 else max(0, 2 - math.floor(math.log10(scale)))
    diff = f"{comparison.diff:+.{decimals}f}"
    if not (_finite(comparison.ci_low) and _finite(comparison.ci_high)):
        return diff, DASH
    return diff, f"[{comparison.ci_low:.{decimals}f}, {comparison.ci_high:.{decimals}f}]"


def _verdict_cell(comparison: Comparison) -> dict[str, Any]:
    """The verdict, and below it the minimum detectable difference (in the decimals of Δ)."""
    if not _finite(comparison.mde):
        return _cell(comparison.verdict, numeric=False)
    values = [abs(v) for v in (comparison.diff, comparison.ci_low, comparison.ci_high)]
    scale = max([v for v in values if _finite(v)] + [comparison.mde])
    decimals = 3 if scale == 0 else max(0, 2 - math.floor(math.log10(scale)))
    return _cell(
        comparison.verdict, f"(min. detectable ±{comparison.mde:.{decimals}f})", numeric=False
    )


def _beats_cell(comparison: Comparison) -> dict[str, Any]:
    """P(variant beats baseline on a new seed) and its bootstrap interval."""
    if not _finite(comparison.p_beats):
        return _cell(DASH)
    interval = ""
    if _finite(comparison.p_beats_low):
        interval = f"[{comparison.p_beats_low:.2f}, {comparison.p_beats_high:.2f}]"
    return _cell(f"{comparison.p_beats:.2f}", interval)


def _summary_rows(report: Report) -> list[dict[str, dict[str, Any]]]:
    """One row per variant, best primary metric first: cells by column key."""
    metric = report.primary_metric
    by_variant = {c.variant: c for c in report.comparisons}
    rows = []
    for variant in report.ranked():
        row = report.table.loc[variant]
        cells = {
            "variant": _cell(variant, numeric=False),
            "seeds": _seeds_cell(report, variant, row),
            "best": _cell(_mean_std(row, f"{metric}_best"), _row_interval(row, f"{metric}_best")),
            "last": _cell(_mean_std(row, f"{metric}_last"), _row_interval(row, f"{metric}_last")),
            "majority": _cell(_num(row.get("majority_baseline_best_mean"))),
            "balanced": _cell(_mean_std(row, "balanced_accuracy_best")),
            "epochs": _cell(_epochs(row)),
            "gap": _cell(_mean_std(row, "gap")),
        }
        comparison = by_variant.get(variant)
        cells["diff"] = cells["beats"] = _cell(DASH)
        if variant == report.baseline:
            cells["verdict"] = _cell("baseline", numeric=False)
        elif comparison is None:
            cells["verdict"] = _cell("not compared", numeric=False)
        else:
            cells["diff"] = _cell(*_difference(comparison))
            cells["verdict"] = _verdict_cell(comparison)
            cells["beats"] = _beats_cell(comparison)
        rows.append(cells)
    return rows


def _caption(report: Report) -> str:
    rule = f"; {report.rule}" if report.rule else ""
    if report.validated_on_test:
        return TEST_SET_CAPTION + rule
    seeds = len(report.index.get("seeds", [])) or int(report.table["seeds"].max())
    if rule:
        rule += (
            f"; P(beats {report.baseline}) = share of seeds where the variant is better (ties "
            f"half), {CONFIDENCE:.0%} bootstrap interval; min. detectable = smallest Δ the "
            f"verdict detects with power {POWER:g}"
        )
    return (
        "validated on a validation split carved from the training data; mean ± std over "
        f"{seeds} seed{'s' if seeds != 1 else ''}, {CONFIDENCE:.0%} t-intervals in brackets; "
        f"Δ = variant − {report.baseline}, paired by seed{rule}; epochs = epochs run (best "
        "epoch); gap = train loss − validation loss at the best epoch"
    )


def terminal_table(report: Report) -> Table:
    """The study in one rich table: a row per variant, best primary metric first."""
    columns = _summary_columns(report)
    test_set = report.validated_on_test
    direction = "higher" if higher_is_better(report.primary_metric) else "lower"
    table = Table(
        title=f"{report.study}: test {report.primary_metric} ({direction} is better), "
        f"baseline {report.baseline}",
        caption=Text(_caption(report), style="bold red" if test_set else "dim"),
        caption_justify="left",
        header_style="bold",
    )
    rows = []
    for cells in _summary_rows(report):
        verdict = cells["verdict"]["text"]
        values = []
        for column in columns:
            cell = cells[column.key]
            style = {"better": "green", "worse": "red"}.get(verdict, "")
            # "±" sticks to the std: a narrow terminal wraps before it, not after it.
            text = Text(
                cell["text"].replace(" ± ", " ±"), style=style if column.key == "verdict" else ""
            )
            if cell["sub"]:
                text.append("\n" + cell["sub"], style="dim")
            values.append(text)
        rows.append((values, "bold" if verdict == "baseline" else None))
    for number, column in enumerate(columns):
        # A header no wider than its numbers: the width goes to the numbers, not to the header.
        content = max(
            (len(line) for values, _ in rows for line in values[number].plain.split("\n")),
            default=0,
        )
        header = column.header
        if column.numeric:
            header = textwrap.fill(header, width=max(content, 6), break_long_words=False)
        table.add_column(header, justify="right" if column.numeric else "left")
    for values, style in rows:
        table.add_row(*values, style=style)
    return table


def diagnostics_terminal_table(report: Report) -> Table | None:
    """The diagnostics summary (see the report's Diagnostics section), or None without any."""
    content = _diagnostics_table(report)
    if content is None:
        return None
    table = Table(
        title=f"{report.study}: training diagnostics (last epoch, mean ± std over seeds)",
        header_style="bold",
    )
    for column in content["columns"]:
        table.add_column(column.header, justify="right" if column.numeric else "left")
    for row in content["rows"]:
        table.add_row(*(cell["text"] for cell in row))
    return table


# -- the full tables -----------------------------------------------------------------------------
def _cell(text: str, sub: str = "", numeric: bool = True) -> dict[str, Any]:
    return {"text": text, "sub": "" if sub == DASH else sub, "num": numeric}


def _metrics_table(report: Report) -> dict[str, Any]:
    """Every test metric, best and last weights: mean ± std and interval, a row per variant x
    weights."""
    metrics = _metric_names(report.results, report.primary_metric)
    headers = [_Column("variant", "variant", False), _Column("weights", "weights", False)]
    headers += [_Column(m, m) for m in metrics]
    rows = []
    for variant in report.ranked():
        row = report.table.loc[variant]
        for weights in ("best", "last"):
            cells = [
                _cell(variant if weights == "best" else "", numeric=False),
                _cell(weights, numeric=False),
            ]
            cells += [
                _cell(_mean_std(row, f"{m}_{weights}"), _row_interval(row, f"{m}_{weights}"))
                for m in metrics
            ]
            rows.append(cells)
    return {"columns": headers, "rows": rows}


def _training_table(report: Report) -> dict[str, Any]:
    monitors = sorted({r.monitor for r in report.results if r.monitor})
    monitor = " / ".join(monitors) or "monitored value"
    headers = [
        _Column("variant", "variant", False),
        _Column("seeds", "seeds"),
        _Column("best_val", f"best {monitor}"),
        _Column("best_epoch", "best epoch"),
        _Column("epochs", "epochs run"),
        _Column("gap", "train−val gap"),
        _Column("seconds", "seconds"),
    ]
    rows = []
    for variant in report.ranked():
        row = report.table.loc[variant]
        rows.append(
            [
                _cell(variant, numeric=False),
                _seeds_cell(report, variant, row),
                _cell(_mean_std(row, "best_val"), _row_interval(row, "best_val")),
                _cell(_mean_std(row, "best_epoch", None)),
                _cell(_mean_std(row, "epochs_run", None)),
                _cell(_mean_std(row, "gap"), _row_interval(row, "gap")),
                _cell(_mean_std(row, "seconds", 3)),
            ]
        )
    return {"columns": headers, "rows": rows}


# -- the template context ------------------------------------------------------------------------
_FIGURE_CAPTIONS = {
    "learning_curves": "Training (dashed) and validation (solid) loss per epoch: the mean over "
    "seeds, with a band from the lowest to the highest seed. Runs stopped early leave the mean "
    "at the epoch they stopped.",
    "accuracy_intervals": "Test accuracy (best weights) with 95% intervals. The dashed line is "
    "the accuracy of always answering the majority class: a model on it has learned nothing "
    "accuracy can show.",
    "confusion_matrix": "Rows are the true classes of the test rows, columns the predictions; "
    "each cell gives the count and its share of the row.",
}


_FIGURE_CAPTIONS.update(
    {
        "diagnostics_kernel_grad_norm": "Norm of the gradient of the data loss with respect to "
        "each hidden layer's kernel, on a fixed validation batch. Darker first layers than last "
        "ones mean vanishing gradients: the layers near the input learn slowest.",
        "diagnostics_saturated_fraction": "Share of units within 1% of a bound of their activation "
        "(sigmoid, tanh) for most samples: their derivative is nearly 0.",
        "diagnostics_dead_fraction": "Share of units of a ReLU-family activation that output 0 for "
        "every sample of the batch: dead units get no gradient.",
        "diagnostics_mean_abs_activation": "Mean absolute output of each hidden layer.",
    }
)
_FIGURE_TITLES = {
    "learning_curves": "Learning curves",
    "confusion_matrix": "Confusion matrix",
    "diagnostics_kernel_grad_norm": "Diagnostics: kernel gradient norms",
    "diagnostics_saturated_fraction": "Diagnostics: saturated units",
    "diagnostics_dead_fraction": "Diagnostics: dead units",
    "diagnostics_mean_abs_activation": "Diagnostics: activation size",
}


def _diagnostics_table(report: Report) -> dict[str, Any] | None:
    """Final-epoch diagnostics per variant (None when the study measured none)."""
    table = diagnostics_table(report.results, report.ranked())
    if table.empty:
        return None
    headers = [
        _Column("variant", "variant", False),
        _Column("dead", "dead units"),
        _Column("saturated", "saturated units"),
        _Column("grad_ratio_start", "grad. first / last layer, untrained"),
        _Column("grad_ratio_end", "grad. first / last layer, end"),
    ]
    rows = [
        [_cell(variant, numeric=False)]
        + [
            _cell(_mean_std(table.loc[variant], column, 3))
            for column in ("dead", "saturated", "grad_ratio_start", "grad_ratio_end")
        ]
        for variant in table.index
    ]
    return {"columns": headers, "rows": rows}


def _figure_entries(report: Report, images: dict[str, dict[str, str]]) -> list[dict[str, str]]:
    metric = report.primary_metric
    entries = []
    for name in report.figures:
        caption = _FIGURE_CAPTIONS.get(name)
        if name == f"{metric}_intervals":
            caption = (
                f"Test {metric} (best weights, the primary metric): the mean over seeds "
                f"and its 95% interval; the baseline variant ({report.baseline}) is in "
                "red."
            )
            if metric == "accuracy" and _is_classification(report):
                caption += " The dashed line: always answering the majority class."
        title = _FIGURE_TITLES.get(name, f"Test {name.removesuffix('_intervals')} per variant")
        entries.append({"name": name, "title": title, "caption": caption or "", **images[name]})
    return entries


def _lint_entries(index: dict[str, Any]) -> dict[str, Any] | None:
    if "lint" not in index:
        return None
    findings = index.get("lint") or []

    def line(f: dict[str, Any]) -> dict[str, str]:
        where = ": ".join(p for p in (f.get("scope"), f.get("path")) if p)
        return {
            "code": str(f.get("code", "")),
            "severity": str(f.get("severity", "warning")),
            "where": where,
            "message": str(f.get("message", "")),
            "fix": str(f.get("fix", "")),
            "ignored": "" if f.get("ignored") is None else str(f["ignored"]),
        }

    entries = [line(f) for f in findings]
    return {
        "active": [e for e in entries if not e["ignored"]],
        "ignored": [e for e in entries if e["ignored"]],
    }


def _versions(results: Sequence[RunResult]) -> str:
    found: dict[str, list[str]] = {}
    for result in results:
        for package, version in result.versions.items():
            seen = found.setdefault(package, [])
            if version not in seen:
                seen.append(version)
    parts = [f"{package} {' / '.join(versions)}" for package, versions in found.items()]
    mixed = any(len(v) > 1 for v in found.values())
    return ", ".join(parts) + (" (runs trained with different versions)" if mixed else "")


def _protocol(report: Report, missing: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The Protocol section: (name, text) items."""
    index = report.index
    data = index.get("dataset", {})
    protocol = index.get("protocol", {})
    items: list[tuple[str, str]] = []

    def add(name: str, text: str) -> None:
        items.append((name, text))

    classes = data.get("classes") or []
    dataset = f"{data.get('name', '?')} ({data.get('task', '?')}"
    if classes:
        dataset += f", {len(classes)} classes: {', '.join(map(str, classes))}"
    if data.get("features") is not None:
        dataset += f"; {data['features']} features"
    if data.get("input_shape"):
        dataset += f", input shape ({', '.join(map(str, data['input_shape']))})"
    add("Dataset", dataset + ")")
    if data.get("majority_fraction") is not None:
        add("Majority class", f"{data['majority_fraction']:.1%} of the rows")
    if data.get("intake"):  # what intake did: rows, one-hot expansions, the task and why
        add("Data intake", "; ".join(data["intake"]))
    add("Source", str(data.get("source") or DASH))
    add("Citation", str(data.get("citation") or DASH))
    sizes = protocol.get("split_sizes", {})
    if sizes:
        add("Split sizes (rows)", ", ".join(f"{k} {v}" for k, v in sizes.items()))
    if report.validated_on_test:
        add(
            "Validation",
            "THE TEST SET: the best epoch (checkpoint) and early stopping were chosen on the "
            "test rows, so the study is validated on the test set and its test scores are "
            "optimistic",
        )
    else:
        fraction = protocol.get("validation")
        share = f" ({fraction:.0%} of the non-test rows)" if isinstance(fraction, float) else ""
        add("Validation", f"a validation split carved from the training data{share}")
    if protocol.get("resplit"):
        split = "drawn anew for every seed (split seed = run seed), the same for every variant"
    else:
        split = f"one fixed split for every run, drawn with seed {protocol.get('split_seed', 0)}"
    add("Split", split)
    seeds = index.get("seeds", [])
    add(
        "Seeds",
        f"{', '.join(map(str, seeds))} ({len(seeds)} per variant); a seed fixes initial "
        "weights, dropout masks and batch order",
    )
    runs = f"{len(report.results)} of {len(index.get('runs', []))} planned runs finished"
    if missing:
        runs += "; missing: " + "; ".join(
            f"{m['variant']} seed {m['seed']} ({m['why']})" for m in missing
        )
    add("Runs", runs)
    monitors = " / ".join(sorted({r.monitor for r in report.results if r.monitor}))
    add(
        "Weights",
        f"best = the checkpoint of the epoch with the best {monitors or 'monitored value'}; "
        "last = after the final epoch",
    )
    statistics = f"mean ± sample std over seeds, {CONFIDENCE:.0%} t-intervals"
    if report.rule:
        statistics += (
            f"; variants paired with the baseline by seed, {report.rule}; P(beats baseline on "
            f"a new seed) with a {CONFIDENCE:.0%} percentile bootstrap interval "
            f"({BOOTSTRAP_RESAMPLES:,} resamples of the seeds, fixed seed); minimum detectable "
            f"difference at power "
            f"{POWER:g} and the adjusted alpha"
        )
    add("Statistics", statistics)
    engines = sorted({r.engine for r in report.results})
    backends = sorted({r.backend for r in report.results}) or [str(index.get("backend", "?"))]
    add("Backend", f"{', '.join(backends)}; engine {', '.join(engines)}")
    add("Library versions", _versions(report.results) or DASH)
    finished = sorted(r.finished_at for r in report.results if r.finished_at)
    if finished:
        add(
            "Trained",
            finished[0]
            if finished[0] == finished[-1]
            else " to ".join((finished[0], finished[-1])),
        )
    if index.get("source"):
        add("Study file", str(index["source"]))
    if index.get("updated_at"):
        add("Study index updated", str(index["updated_at"]))
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    add("Report written", f"{now} by tricklab {__version__}")
    return items


def _comparison_lead(report: Report) -> str:
    metric = report.primary_metric
    compared = len(report.comparisons)
    if not compared:
        if report.baseline not in {r.variant for r in report.results}:
            return f"No comparison: the baseline variant ({report.baseline}) has no finished run."
        return "No comparison: the study has a single variant."
    head = (
        f"Each variant is compared with the baseline variant ({report.baseline}) on the primary "
        f"metric, test {metric} of the best weights: the difference variant − baseline, paired "
        "by seed."
    )
    tested = report.comparisons[0].tests
    if not tested:
        return f"{head} No comparison has two paired seeds: none could be tested."
    untested = (
        f" ({compared - tested} of the {compared} had too few paired seeds to test)"
        if tested < compared
        else ""
    )
    return (
        f"{head} The rule — {report.rule}. A verdict is “better” or “worse” exactly when its "
        f"{percent(report.comparisons[0].confidence)} interval excludes 0{untested}. "
        "For information: P(variant beats baseline on a new seed), the share of seeds on which "
        f"the variant was better (ties count half), with its {CONFIDENCE:.0%} bootstrap "
        "interval; the minimum detectable difference, the smallest difference the rule detects "
        f"with power {POWER:g} at this many seeds and the observed spread."
    )


def _context(
    report: Report, missing: list[dict[str, Any]], images: dict[str, dict[str, str]]
) -> dict[str, Any]:
    index = report.index
    metric = report.primary_metric
    return {
        "study": report.study,
        "description": index.get("description") or "",
        "test_set": report.validated_on_test,
        "primary_metric": metric,
        "direction": "higher" if higher_is_better(metric) else "lower",
        "baseline": report.baseline,
        "summary": {"columns": _summary_columns(report), "rows": _summary_rows(report)},
        "caption": _caption(report),
        "comparison_lead": _comparison_lead(report),
        "rule": report.rule,
        "sentences": [c.sentence() for c in report.comparisons],
        "figures": _figure_entries(report, images),
        "metrics_table": _metrics_table(report),
        "training_table": _training_table(report),
        "diagnostics_table": _diagnostics_table(report),
        "lint": _lint_entries(index),
        "protocol": _protocol(report, missing),
        "missing": missing,
        "version": __version__,
    }


# -- rendering -----------------------------------------------------------------------------------
def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


_ENVIRONMENTS: dict[bool, jinja2.Environment] = {}


def _environment(html: bool) -> jinja2.Environment:
    if html not in _ENVIRONMENTS:
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("tricklab", "templates"),
            autoescape=html,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            undefined=jinja2.StrictUndefined,
        )
        env.filters["md"] = _md_cell
        _ENVIRONMENTS[html] = env
    return _ENVIRONMENTS[html]


def _render(template: str, context: dict[str, Any], *, html: bool) -> str:
    return _environment(html).get_template(template).render(**context)
