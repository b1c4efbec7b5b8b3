"""What the report displays, on made-up stores (no training): counts in the study's unit and of
finished runs, the wide table at any width, the mean predictor of regression, population seconds
said to be a share, and decided intervals whose ends never print as 0."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import made_up_result, write_finished_run
from markupsafe import escape
from rich.console import Console

from tricklab.report import (
    Report,
    build_report,
    headline,
    load_report,
    print_report,
    report_figures,
    report_text,
    terminal_table,
)
from tricklab.report._documents import protocol
from tricklab.report._figures import title_and_caption
from tricklab.report._tables import (
    caption,
    compact_caption,
    compact_rows,
    summary_columns,
    summary_rows,
    training_table,
)
from tricklab.store import RunStore, StudyIndex

LEARNING = list(0.4 + 0.3 * np.exp(-0.5 * np.arange(8)))
#: Per-seed noise every variant shares, and a little of each variant's own.
SHARED = np.array([0.00, 0.04, -0.03, 0.02, -0.05, 0.03, 0.01, -0.02])
SECONDS_NOTE = (
    "seconds: a population's members share its time equally; per-trick cost is not measured "
    'there; use --engine solo (engine="solo" in run_study) to time a trick'
)


def write_study(
    root: Path,
    variants: dict[str, dict[str, Any]],
    *,
    seeds: int = 6,
    task: str = "binary",
    primary: str | None = None,
    kind: str = "split",
) -> Path:
    """Finished made-up runs, indexed as a study. Per variant: ``score`` (the primary metric,
    plus shared and own noise) or ``scores`` (one per seed), ``engine`` (one, or one per seed),
    ``seconds`` and ``missing`` (seeds planned in the index whose result is gone)."""
    metric = primary or ("auc" if task == "binary" else "mse")
    runs = []
    for number, (variant, spec) in enumerate(variants.items()):
        own = np.random.default_rng(number).normal(0, 0.004, seeds)
        scores = spec.get("scores") or [spec["score"] + SHARED[s] + own[s] for s in range(seeds)]
        engines = spec.get("engine", "solo")
        for seed in range(seeds):
            best = {"loss": LEARNING[-1]}
            if task == "binary":
                best |= {"accuracy": 0.85, "majority_baseline": 0.85}
            else:
                best |= {"mse": 0.2, "r2": 0.2, "mean_baseline_mse": 0.25}
            best[metric] = float(scores[seed])
            result = made_up_result(
                variant,
                seed,
                best,
                {"loss": LEARNING, "val_loss": [v + 0.05 for v in LEARNING]},
                study=root.name,
                engine=engines if isinstance(engines, str) else engines[seed],
                seconds_total=spec.get("seconds", 0.5),
            )
            stored = write_finished_run(root, result)
            runs.append({"variant": variant, "seed": seed, "key": stored.key})
        for seed in spec.get("missing", ()):
            shutil.rmtree(root / variant / f"seed-{seed}")
    cv = kind == "cv"
    index = {
        "study": root.name,
        "variants": list(variants),
        "seeds": list(range(seeds)),
        "baseline": next(iter(variants)),
        "resolved": {
            "primary_metric": metric,
            "task": task,
            "evaluate": "best",
            "dataset": {"name": "made-up", "classes": ["no", "yes"] if task == "binary" else []},
            "protocol": {
                "kind": kind,
                "validation": 0.1,
                "validated_on": "validation split",
                "folds": 3 if cv else None,
                "repeats": 2 if cv else None,
                "correction": 0.2 if cv else 0.0,
                "description": "2 x 3-fold cross-validation" if cv else "one split",
            },
        },
        "runs": runs,
    }
    RunStore(root).write_index(StudyIndex.from_json(index))
    return root


def printed(report: Report, width: int, *, wide: bool = False) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    print_report(console, report, wide=wide)
    return console.export_text()


def texts(figure: Any) -> list[str]:
    """Every text of a figure: titles, legend entries, the suptitle."""
    return [t.get_text() for t in figure.findobj(lambda a: hasattr(a, "get_text"))]


# -- 1. counts: the study's unit, the finished runs ------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "missing", "runs"),
    [
        ("cv", {"baseline": (5,), "other": (5,)}, "5 of 6 planned runs"),
        ("cv", {"other": (4, 5)}, "4–6 runs per variant (6 planned)"),
        ("cv", {}, "6 runs"),
        ("split", {"baseline": (5,), "other": (5,)}, "5 of 6 planned seeds"),
        ("split", {}, "6 seeds"),
    ],
)
def test_counts_are_finished_runs_in_the_studys_unit(
    tmp_path: Path, kind: str, missing: dict[str, tuple[int, ...]], runs: str
) -> None:
    variants = {
        "baseline": {"score": 0.70, "missing": missing.get("baseline", ())},
        "other": {"score": 0.701, "missing": missing.get("other", ())},
    }
    report = load_report(write_study(tmp_path / "counts", variants, kind=kind))
    unit = "runs" if kind == "cv" else "seeds"
    one, other = unit[:-1], "seeds" if kind == "cv" else "runs"
    assert f"] over {runs};" in compact_caption(report)
    assert f"mean ± std over {runs}, " in caption(report)
    assert f"paired by {one}" in caption(report) and f"paired by {one}" in compact_caption(report)
    assert summary_columns(report)[1].header == unit  # the count column of the tables
    assert training_table(report)["columns"][1].header == unit
    if kind == "cv":  # no seed is counted under cross-validation
        assert "seed" not in caption(report) and "seed" not in compact_caption(report)
    # the figures: captions, the panels' counts, the legend
    for name in ("learning_curves", "auc_intervals"):
        assert f"the mean over {runs}" in title_and_caption(report, name)[1], name
    assert f"each {one} (dots)" in title_and_caption(report, "auc_intervals")[1]
    figures = report_figures(report)
    finished = 6 - len(missing.get("other", ()))
    assert f"other ({finished} {unit})" in texts(figures["learning_curves"])
    assert f"each {one}" in texts(figures["auc_intervals"])
    assert not any(other[:-1] in text for text in texts(figures["auc_intervals"]))
    # the protocol notes: what is planned says so; the statistics count what finished
    items = dict(protocol(report))
    assert items["Statistics"].startswith(f"mean ± sample std over {runs}, ")
    assert f"paired with the baseline by {one}," in items["Statistics"]
    planned = items["Runs per variant"] if kind == "cv" else items["Seeds"]
    assert "6 planned" in planned
    # the headline counts the pairs compared, in the unit
    pairs = 6 - max(map(len, missing.values()), default=0)
    assert f"cannot be told apart from baseline with {pairs} {unit}" in headline(report)[0]
    assert f" {other}" not in headline(report)[0]


def test_the_documents_count_finished_runs(tmp_path: Path) -> None:
    variants = {"baseline": {"score": 0.70, "missing": (5,)}, "other": {"score": 0.72}}
    report = build_report(write_study(tmp_path / "documents", variants, kind="cv"))
    markdown = report_text(report)
    html = report.html.read_text(encoding="utf-8")
    runs = "5–6 runs per variant (6 planned)"
    assert f"Mean ± std over {runs} and its 95% interval" in markdown
    assert f"Mean ± std over {runs} and its 95% interval" in html
    assert "Δ vs the baseline is paired by run;" in markdown
    assert "paired by seed" not in markdown and "paired by seed" not in html
    assert "over seeds" not in markdown and "over seeds" not in html


# -- 2. the wide table at any width --------------------------------------------------------------
LONG = ("mean_squared_error", "mean_absolute_percentage_error", "huber_with_a_long_name")


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_wide_table_cuts_no_number_at_any_width(tmp_path: Path, width: int) -> None:
    """Long names, numbers in the millions beside small ones, a failed variant: at 60, 80 and
    120 columns every line fits, nothing is ellipsized, and every number of every cell (the
    means, the stds and the intervals as formatted) is printed whole."""
    variants = {
        LONG[0]: {"score": 31.0},
        LONG[1]: {"scores": [2.2e6 + 1e5 * s for s in range(6)]},
        LONG[2]: {"score": 30.0},
    }
    report = load_report(write_study(tmp_path / "wide", variants, task="regression"))
    text = printed(report, width, wide=True)
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width, text
    assert "…" not in text
    assert "e6 ± " in text  # the millions with an exponent
    flat = " ".join(text.split())
    shown = 0
    for row in summary_rows(report):
        for column in summary_columns(report):
            cell = row[column.key]
            if cell["num"]:  # each line of a numeric cell stays whole
                for line in (cell["text"], cell["sub"]):
                    assert line in text, (column.key, line, text)
                    shown += bool(line)
            else:  # numbers inside text (a verdict's detectable difference) are whole words
                for word in f"{cell['text']} {cell['sub']}".split():
                    if re.search(r"\d", word):
                        assert word in flat, (column.key, word)
    assert shown >= 30
    if width < 120:  # the columns are split over several tables, each with the variant column
        assert text.count("┃ variant") >= 2


def test_the_wide_table_keeps_its_caption(tmp_path: Path) -> None:
    report = load_report(write_study(tmp_path / "plain", {"a": {"score": 0.7}}))
    table = terminal_table(report, wide=True)
    assert str(table.caption).startswith("Primary metric: test auc, best weights; ")


# -- 3. regression: the mean predictor -----------------------------------------------------------
def test_the_mean_predictor_is_in_the_table_the_figure_and_the_headline(tmp_path: Path) -> None:
    variants = {"baseline": {"score": 0.20}, "wider": {"score": 0.19}}
    report = load_report(write_study(tmp_path / "mse", variants, task="regression"))
    # the compact table: a row below the variants
    row = compact_rows(report)[-1]
    assert row["variant"]["text"] == "mean predictor"
    assert row["variant"]["sub"] == "(the training mean)"
    assert (row["primary"]["text"], row["diff"]["text"]) == ("0.250", "–")
    assert row["verdict"]["text"] == "no learning"
    compact = printed(report, 80)
    assert re.search(r"mean predictor +0\.250 +– +no learning", compact), compact
    note = "mean predictor = the test mse of always predicting the training mean (no learning)"
    assert note in " ".join(compact.split())
    # the summary (Markdown, --wide, HTML results): a column
    for wide in (True, False):
        keys = [c.key for c in summary_columns(report, wide=wide)]
        assert "mean_predictor" in keys
    assert {r["mean_predictor"]["text"] for r in summary_rows(report)} == {"0.250"}
    # the headline, beside what the differences measure
    assert headline(report)[1].endswith(
        " The mean predictor (always the training mean) scores test mse 0.250."
    )
    # the primary metric's figure: a dashed line at it, named in the legend and the caption
    figure = report_figures(report)["mse_intervals"]
    dashed = [
        line
        for line in figure.axes[0].get_lines()
        if line.get_linestyle() == "--" and list(line.get_xdata()) == [0.25, 0.25]
    ]
    assert len(dashed) == 1
    assert "mean predictor (0.25)" in texts(figure)
    _, words = title_and_caption(report, "mse_intervals")
    assert "The dashed line: the mean predictor, always the training mean." in words


def test_a_single_regression_variant_names_the_mean_predictor(tmp_path: Path) -> None:
    report = load_report(write_study(tmp_path / "one", {"only": {"score": 0.2}}, task="regression"))
    assert headline(report)[0].endswith(
        "(a single variant); the mean predictor (always the training mean) scores test mse 0.250."
    )


def test_r2_shows_no_mean_predictor_score(tmp_path: Path) -> None:
    """R²'s mean predictor scores 0 by definition: no column, row, line or sentence (the
    failure rule still reads it)."""
    variants = {"baseline": {"score": 0.40}, "wider": {"score": 0.42}}
    report = load_report(write_study(tmp_path / "r2", variants, task="regression", primary="r2"))
    assert all(c.key != "mean_predictor" for c in summary_columns(report))
    assert [r["variant"]["text"] for r in compact_rows(report)] == ["wider", "baseline"]
    assert not any("mean predictor" in line for line in headline(report))
    assert "mean predictor" not in printed(report, 120, wide=True)
    figure = report_figures(report)["r2_intervals"]
    assert not any("mean predictor" in text for text in texts(figure))
    assert not any(line.get_linestyle() == "--" for line in figure.axes[0].get_lines())


# -- 4. seconds of a population are a share ------------------------------------------------------
def test_population_seconds_are_said_to_be_a_share(tmp_path: Path) -> None:
    population = ["population"] * 6
    variants = {
        "solo": {"score": 0.70, "seconds": 2.5},
        "pooled": {"score": 0.71, "engine": population, "seconds": 0.8},
        "mixed": {"score": 0.72, "engine": population[:3] + ["solo"] * 3, "seconds": 0.8},
    }
    report = build_report(write_study(tmp_path / "population", variants))
    seconds = {
        row[0]["text"]: (row[-1]["text"], row[-1]["sub"]) for row in training_table(report)["rows"]
    }
    assert seconds == {
        "solo": ("2.500 ± 0.000", ""),
        "pooled": ("0.8000 ± 0.0000", "(population share)"),
        "mixed": ("0.8000 ± 0.0000", "(3 of 6 runs: population share)"),
    }
    markdown = report_text(report)
    assert "| 0.8000 ± 0.0000 (population share) |" in markdown
    assert f"_{SECONDS_NOTE}_" in markdown
    html = report.html.read_text(encoding="utf-8")
    assert str(escape(SECONDS_NOTE)) in html


def test_solo_seconds_are_their_own(tmp_path: Path) -> None:
    report = build_report(write_study(tmp_path / "solo", {"a": {"score": 0.7, "seconds": 2.5}}))
    assert training_table(report)["rows"][0][-1]["sub"] == ""
    assert "per-trick cost" not in report_text(report)


# -- 5. a decided interval never shows an end as 0 ----------------------------------------------
def test_decided_intervals_never_print_an_end_as_zero(tmp_path: Path) -> None:
    """Differences whose adjusted intervals just exclude 0 (ends about ±0.0004 beside a
    half-width of 0.07): the tables, the headline and the documents print the ends with the
    decimals that keep them off 0."""
    base = 0.70 + SHARED[:6]
    swing = 0.05 * np.array([1, -1, 1, -1, 1, -1])
    # t(1 - 0.025/2, 5) x sd/sqrt(6): the half-width of the Bonferroni-adjusted interval
    half = 3.1634 * float(np.std(swing, ddof=1)) / np.sqrt(6)
    variants = {
        "baseline": {"scores": list(base)},
        "up": {"scores": list(base + swing + half + 0.0004)},
        "down": {"scores": list(base + swing - half - 0.0004)},
    }
    report = load_report(write_study(tmp_path / "edge", variants))
    decided = {c.variant: c for c in report.comparisons}
    assert decided["up"].ci_low > 0 > decided["down"].ci_high
    assert decided["up"].verdict == "better" and decided["down"].verdict == "worse"
    intervals = {r["variant"]["text"]: r["diff"]["sub"] for r in compact_rows(report)}
    assert intervals["up"] == "[0.0004, 0.1419]" and intervals["down"] == "[-0.1419, -0.0004]"
    assert {r["variant"]["text"]: r["diff"]["sub"] for r in summary_rows(report)} == intervals
    first = headline(report)[0]
    assert "up (auc +0.0711 [0.0004, 0.1419]) is better than baseline" in first
    assert "down (auc -0.0711 [-0.1419, -0.0004]) is worse than baseline" in first
    # P(beats baseline)'s exact intervals may end at 0 (0 of 6 seeds): not a difference's
    beats = {r["beats"]["sub"] for r in summary_rows(report)} - {""}
    for text in (printed(report, 80), printed(report, 120, wide=True), first):
        assert "[0.0004, 0.1419]" in text and "[-0.1419, -0.0004]" in text
        for interval in beats:
            text = text.replace(interval, "")
        assert not re.search(r"-0\.0+(?![0-9])", text)  # no "-0.000"
        assert not re.search(r"\[[-+]?0\.0+,|, [-+]?0\.0+\]", text)  # no end printed as 0
