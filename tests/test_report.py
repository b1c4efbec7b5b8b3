"""Reports: report.md, the self-contained report.html (checked in headless Chromium), the terminal
table, the test-set warning, errors, and that stale runs stay out of a report."""

from __future__ import annotations

import copy
import io
import json
import math
import re
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from conftest import TINY, write_finished_run
from rich.console import Console

from tricklab.base.errors import StoreError
from tricklab.engines.contract import RunResult
from tricklab.report import (
    Report,
    build_report,
    comparison_sentence,
    headline,
    load_report,
    report_text,
    terminal_table,
    verdict_label,
)
from tricklab.report._format import decimals_for, estimate
from tricklab.stats import Verdict
from tricklab.store import RunStore, StudyIndex

TEST_SET = "validated on the test set"


# -- a tiny trained study, once per module -------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/report-tiny: baseline and mse loss, 2 seeds, 3 epochs each (a few seconds)."""
    from tricklab import run_study
    from tricklab.spec import StudySpec

    study = copy.deepcopy(TINY)
    study.update(name="report-tiny", description="Two losses on the tiny model.", seeds=[0, 1])
    study["train"]["epochs"] = 3
    study["variants"] = {"baseline": {}, "mse": {"train.loss": "mean_squared_error"}}
    out = tmp_path_factory.mktemp("runs")
    outcome = run_study(StudySpec.from_dict(study), out=out)
    assert not outcome.failed and len(outcome.results) == 4
    return outcome.root


@pytest.fixture(scope="module")
def report(trained: Path) -> Report:
    return build_report(trained)


def _terminal(report: Report, *, wide: bool = True, width: int = 250) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(terminal_table(report, wide=wide))
    return console.export_text()


def test_report_files_and_markdown(report: Report, trained: Path) -> None:
    assert report.markdown == trained / "report.md" and report.markdown.exists()
    assert report.html == trained / "report.html" and report.html.exists()
    assert report.primary_metric == "auc"
    md = report_text(report)
    assert "baseline" in md and "mse" in md
    assert "auc" in md
    assert report.comparisons and report.comparisons[0].variant == "mse"
    assert comparison_sentence(report.comparisons[0]) in md
    rule = (
        "verdicts: paired t-test, Bonferroni-adjusted across the 1 comparison (alpha 0.05/1); "
        "intervals are the matching adjusted intervals"
    )
    assert rule in md and "Holm" not in md
    assert "95% CI (adjusted)" in md and "P(beats baseline)" in md
    assert "## Protocol" in md
    sizes = json.loads((trained / "study.json").read_text())["resolved"]["protocol"]["split_sizes"]
    assert f"train {sizes['train']}, validation {sizes['validation']}, test {sizes['test']}" in md
    assert "a validation split carved from the training data" in md
    assert TEST_SET not in md.lower()
    assert "Library versions" in md and "keras" in md
    # figures are files next to the report, referenced relatively
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert "figures/learning_curves.png" in images and "figures/auc_intervals.png" in images
    assert "figures/confusion_matrix.png" in images and "figures/accuracy_intervals.png" in images
    for image in images:
        assert not Path(image).is_absolute()
        assert (trained / image).stat().st_size > 5_000
    assert _drawn(report) == {Path(i).stem for i in images}


def _drawn(report: Report) -> set[str]:
    """The figures written next to the report."""
    return {path.stem for path in (report.root / "figures").glob("*.png")}


def test_html_is_self_contained(report: Report) -> None:
    html = report.html.read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == len(_drawn(report)) >= 4
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "<style>" in html and 'class="num"' in html
    assert "Bonferroni-adjusted across the 1 comparison" in html and "Holm" not in html


def test_terminal_table(report: Report) -> None:
    text = _terminal(report)
    assert "report-tiny" in text and "auc" in text
    assert "baseline" in text and "mse" in text
    assert "validation split" in str(terminal_table(report).caption)
    assert "Bonferroni-adjusted across the 1 comparison (alpha 0.05/1)" in " ".join(text.split())
    assert TEST_SET not in text.lower()
    # rows are sorted by the primary metric, best first, in the compact table too
    ranked = report.table["auc_best_mean"].sort_values(ascending=False).index.tolist()
    for table, start in ((text, "│ "), (_terminal(report, wide=False, width=80), "\n")):
        positions = [table.index(f"{start}{name} ") for name in ranked]
        assert positions == sorted(positions)


# -- studies written directly as results ---------------------------------------------------------
CLASSES = {"binary": ["survived", "died"], "multiclass": ["a", "b", "c"], "regression": []}


def _result(
    study: str, variant: str, seed: int, task: str, validated_on: str, scale: float
) -> RunResult:
    rng = np.random.default_rng(1000 * seed + len(variant))
    epochs = 6 + 2 * seed  # early stopping: seeds run for different numbers of epochs
    decay = np.exp(-0.3 * np.arange(epochs))
    history = {
        "loss": list(scale * (0.5 + decay + rng.uniform(0, 0.05, epochs))),
        "val_loss": list(scale * (0.6 + decay + rng.uniform(0, 0.05, epochs))),
    }
    status = "ok"
    if variant == "unstable" and seed == 1:  # a diverged run: its loss became NaN
        history["loss"][-2:] = [math.nan, math.nan]
        history["val_loss"][-2:] = [math.nan, math.nan]
        status = "diverged"
    best = {"loss": float(history["val_loss"][epochs - 3])}
    matrix = None
    if task == "regression":  # errors on the target's scale, as the engines compute them
        mse = 30.0 + seed + len(variant)
        best |= {"mse": mse, "mae": mse**0.5, "r2": 0.4, "mean_baseline_mse": 55.0}
        best["mean_absolute_error"] = 2.0 + 0.1 * seed
    else:
        k = len(CLASSES[task])
        matrix = [
            [int(rng.integers(0, 30)) + (40 if i == j else 0) for j in range(k)] for i in range(k)
        ]
        best |= {
            "accuracy": 0.8 + 0.01 * seed + 0.02 * len(variant) % 0.1,
            "balanced_accuracy": 0.6 + 0.01 * seed,
            "majority_baseline": 0.85,
        }
        if task == "binary":
            best["auc"] = 0.7 + 0.02 * seed + (0.05 if variant == "dropout" else 0.0)
    return RunResult(
        key=f"{variant}-{seed}",
        study=study,
        variant=variant,
        seed=seed,
        status=status,
        test={"best": best, "last": {k: v * 1.01 for k, v in best.items()}},
        epochs_run=epochs,
        best_epoch=epochs - 2,
        monitor="val_loss",
        best_monitor_value=float(history["val_loss"][epochs - 3]),
        params=145,
        seconds_per_epoch=0.01,
        first_epoch_seconds=1.0,
        seconds_total=1.2,
        backend="jax",
        engine="solo",
        versions={"python": "3.11", "keras": "3.10"},
        validated_on=validated_on,
        split_sizes={"train": 300, "validation": 40, "test": 90},
        confusion_matrix=matrix,
        history=history,
        finished_at="2025-01-01T00:00:00+00:00",
    )


def write_fake_study(
    root: Path,
    *,
    task: str = "binary",
    validation: Any = "test",
    variants: tuple[str, ...] = ("baseline", "dropout", "unstable"),
    seeds: tuple[int, ...] = (0, 1, 2),
) -> Path:
    """A study directory with an index and finished runs, written without training."""
    validated_on = "test set" if validation == "test" else "validation split"
    runs = []
    for variant in variants:
        for seed in seeds:
            result = _result(
                root.name,
                variant,
                seed,
                task,
                validated_on,
                1000.0 if variant == "unstable" else 1.0,
            )
            stored = write_finished_run(root, result)
            runs.append(
                {
                    "variant": variant,
                    "seed": seed,
                    "key": stored.key,
                    "dir": f"{variant}/seed-{seed}",
                }
            )
    index = {
        "study": root.name,
        "description": "Made up <b>numbers</b> & no training.",
        "source": "studies/made-up.toml",
        "spec": {},
        "variants": list(variants),
        "seeds": list(seeds),
        "baseline": variants[0],
        "resolved": {
            "primary_metric": None,
            "task": task,
            "backend": "jax",
            "dataset": {
                "name": "made-up",
                "classes": CLASSES[task],
                "features": 4,
                "input_shape": [4],
                "source": "made-up.csv",
                "citation": None,
                "majority_fraction": None if task == "regression" else 0.85,
            },
            "protocol": {
                "validation": validation,
                "validated_on": validated_on,
                "split_sizes": {"train": 300, "validation": 40, "test": 90},
                "resplit": True,
                "split_seed": 0,
            },
        },
        "runs": runs,
        "lint": [
            {
                "code": "TL005",
                "severity": "warning",
                "scope": None,
                "path": "validation",
                "message": 'validation = "test" peeks at the test set.',
                "fix": "validation = 0.1",
                "ignored": None,
            },
            {
                "code": "TL003",
                "severity": "warning",
                "scope": "variants.unstable",
                "path": "train.loss",
                "message": "a regression loss on classes.",
                "fix": "binary_crossentropy",
                "ignored": "on purpose, to show it",
            },
        ],
        "updated_at": "2025-01-01T00:00:00+00:00",
    }
    RunStore(root).write_index(StudyIndex.from_json(index))
    return root


def test_validated_on_test_set_says_so_everywhere(tmp_path: Path) -> None:
    report = build_report(write_fake_study(tmp_path / "lecture"))
    md = report_text(report)
    html = report.html.read_text(encoding="utf-8")
    assert TEST_SET in md and TEST_SET in html
    assert "THE TEST SET" in md and 'class="warning"' in html
    caption = terminal_table(report).caption
    assert TEST_SET in str(caption).lower()
    assert "red" in str(caption.style)
    assert TEST_SET in _terminal(report).lower()
    # lint findings: active ones as warnings, ignored ones with their reason
    assert "TL005" in md and "TL003" in md and "on purpose, to show it" in md
    assert "Ignored on purpose" in html
    # user text is escaped in HTML
    assert "Made up &lt;b&gt;numbers&lt;/b&gt; &amp; no training." in html
    # a diverged run is counted and said so; early-stopped runs of different lengths plot fine
    assert report.table.loc["unstable", "diverged"] == 1
    assert "3 (1 diverged)" in md


@pytest.mark.parametrize(
    ("task", "figures"),
    [
        ("multiclass", {"learning_curves", "accuracy_intervals", "confusion_matrix"}),
        ("regression", {"learning_curves", "mse_intervals"}),
    ],
)
def test_other_tasks(tmp_path: Path, task: str, figures: set[str]) -> None:
    report = build_report(
        write_fake_study(
            tmp_path / task, task=task, validation=0.1, variants=("baseline", "wide"), seeds=(0, 1)
        )
    )
    assert _drawn(report) == figures
    assert report.primary_metric == {"multiclass": "accuracy", "regression": "mse"}[task]
    md = report_text(report)
    assert "a validation split carved from the training data" in md
    assert TEST_SET not in md.lower()
    assert all((report.root / "figures" / f"{name}.png").exists() for name in figures)


def test_report_shows_the_adjusted_intervals_of_the_verdicts(tmp_path: Path) -> None:
    """Δ intervals in the table are the Bonferroni-adjusted ones that decide the verdict: an
    unadjusted 95% interval that excludes 0 is not what the report shows."""
    root = write_fake_study(tmp_path / "adjusted", validation=0.1, seeds=(0, 1, 2, 3))
    base = [0.70, 0.72, 0.74, 0.76]
    shifts = {
        "baseline": [0.0] * 4,
        "dropout": [0.05, 0.06, 0.04, 0.05],  # decided: better
        "unstable": [0.01, 0.02, 0.005, 0.025],  # p = 0.046, 2p = 0.092: undecided
    }
    for path in root.glob("*/seed-*/result.json"):
        data = json.loads(path.read_text())
        data["test"]["best"]["auc"] = base[data["seed"]] + shifts[data["variant"]][data["seed"]]
        path.write_text(json.dumps(data))
    report = build_report(root)
    dropout, unstable = report.comparisons
    assert dropout.tests == unstable.tests == 2
    assert dropout.verdict == "better" and dropout.ci_low > 0
    assert unstable.p < 0.05 < unstable.p_adjusted
    assert unstable.verdict is Verdict.NO_DIFFERENCE
    assert verdict_label(unstable) == (
        "no detectable difference with 4 seeds; about 7 seeds would decide it"
    )
    assert unstable.ci_low < 0 < unstable.ci_high
    md = report_text(report)
    html = report.html.read_text(encoding="utf-8")
    rule = (
        "verdicts: paired t-test, Bonferroni-adjusted across the 2 comparisons (alpha 0.05/2); "
        "intervals are the matching adjusted intervals (97.5%)"
    )
    assert rule in md and rule in html
    assert rule in " ".join(_terminal(report).split())
    assert "| 97.5% CI (adjusted) |" in md and "| 97.5% exact CI |" in md
    # the unstable row: its Δ interval is the adjusted one (holding 0), beside the verdict
    row = next(line for line in md.splitlines() if line.startswith("| unstable |"))
    cells = [cell.strip() for cell in row.strip("| ").split(" | ")]
    low, high = (float(v) for v in re.findall(r"-?\d+\.\d+", cells[11]))
    # rounded to two significant digits of the interval's half-width
    unit = 10.0 ** -decimals_for((unstable.ci_high - unstable.ci_low) / 2)
    assert (low, high) == (
        pytest.approx(unstable.ci_low, abs=unit / 2),
        pytest.approx(unstable.ci_high, abs=unit / 2),
    )
    assert low < 0 < high
    assert cells[12].startswith(
        "no detectable difference with 4 seeds; about 7 seeds would decide it (min. detectable ±"
    )
    # P(beats baseline): better on all 4 seeds, yet no verdict: the two answer different
    # questions; 4 of 4 is not certain: Clopper-Pearson at 97.5%, [0.0125^(1/4), 1]
    assert (cells[13], cells[14]) == ("1.00", "[0.33, 1.00]")
    assert comparison_sentence(unstable) in md
    assert "97.5% interval" in comparison_sentence(unstable)


# -- errors --------------------------------------------------------------------------------------
def test_empty_directory_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=re.escape(str(tmp_path))):
        build_report(tmp_path)
    with pytest.raises(StoreError, match=r"not a tricklab study directory"):
        build_report(tmp_path / "missing")


def test_no_finished_run_is_a_store_error(tmp_path: Path) -> None:
    root = write_fake_study(tmp_path / "unfinished", seeds=(0,))
    for result in root.glob("*/seed-*/result.json"):
        result.unlink()
    with pytest.raises(StoreError, match=r"no run of study 'unfinished' has finished"):
        build_report(root)


# -- stale runs ----------------------------------------------------------------------------------
def test_stale_runs_are_left_out(trained: Path, tmp_path: Path) -> None:
    """Runs of a variant removed from the study, or of a changed recipe, are not reported."""
    root = tmp_path / "report-tiny"
    shutil.copytree(trained, root)
    index = json.loads((root / "study.json").read_text())
    index["variants"] = ["baseline"]
    index["runs"] = [r for r in index["runs"] if r["variant"] == "baseline"]
    index["runs"][1]["key"] = "0123456789abcdef"  # seed 1's recipe changed since it trained
    index["lint"] = [f for f in index.get("lint", []) if f["scope"] != "variants.mse"]
    (root / "study.json").write_text(json.dumps(index))
    assert (root / "mse" / "seed-0" / "result.json").exists()  # still on disk

    report = build_report(root)
    assert list(report.table.index) == ["baseline"]
    assert report.table.loc["baseline", "seeds"] == 1
    assert [(r.variant, r.seed) for r in report.results] == [("baseline", 0)]
    assert report.comparisons == []
    md = report_text(report)
    html = re.sub(r"data:image/png;base64,[^\"]+", "", report.html.read_text(encoding="utf-8"))
    assert "mse" not in md and "mse" not in html and "mse" not in _terminal(report)
    assert "baseline seed 1 (the stored result is out of date" in md
    assert "1/2" in md  # one of two planned seeds


# -- 80 columns ----------------------------------------------------------------------------------
LONG = ("mean_squared_error", "mean_absolute_percentage_error", "mean_squared_logarithmic_error")


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def test_the_default_output_fits_80_columns_and_cuts_no_number(tmp_path: Path) -> None:
    """Long variant names and numbers in the millions beside small ones: at 80 columns every
    line fits and every number is whole."""
    from tricklab.report import print_report

    root = write_fake_study(
        tmp_path / "regression-at-80", task="regression", validation=0.1, variants=LONG
    )
    for path in root.glob("mean_absolute_percentage_error/seed-*/result.json"):
        data = json.loads(path.read_text())
        data["test"]["best"]["mse"] *= 70_000.0  # about 2.2e6, as the losses study's mape
        path.write_text(json.dumps(data))
    report = load_report(root)
    console = Console(file=io.StringIO(), width=80, record=True, color_system=None)
    print_report(console, report)
    text = console.export_text()
    assert max(len(line) for line in _lines(text)) <= 80, text
    assert "…" not in text
    for variant in LONG:  # each mean and interval whole, on the lines of its row
        row = report.table.loc[variant]
        mean, interval = estimate(row["mse_best_mean"], row["mse_best_low"], row["mse_best_high"])
        assert mean in text and interval in text, (mean, interval)
    assert "e6 [" in text  # the millions with an exponent, not 2195000 ± 880000
    assert headline(report)[0].split()[0] in _lines(text)[0]  # the headline comes first


def test_the_progress_display_fits_80_columns(tmp_path: Path) -> None:
    from tricklab.cli._progress import RichDisplay
    from tricklab.engines import PopulationEpoch
    from tricklab.executors import RunEvent

    console = Console(file=io.StringIO(), width=80, record=True, color_system=None)
    display = RichDisplay(console, "auc", {LONG[1]: 30})
    plan = SimpleNamespace(variant=LONG[1], seed=12, engine="solo")
    display(RunEvent("epoch", plan, 3, 140, epoch=7, logs={"val_loss": 0.412345}))
    console.print(display.progress.get_renderable())
    population = PopulationEpoch(members=140, training=137, epoch=12, epochs=30)
    display(RunEvent("population", None, 3, 140, population=population))
    console.print(display.progress.get_renderable())
    text = console.export_text()
    assert max(len(line) for line in _lines(text)) <= 80, text
    assert "…" not in text
    assert "0/140 runs" in text and "ETA" in text
    assert f"{LONG[1]} / seed 12, epoch 7/30, val_loss 0.4123" in " ".join(text.split())
    assert "population of 140 members, epoch 12/30, 137 still training" in text


@pytest.mark.parametrize(
    ("values", "metric", "expected"),
    [
        ((0.6234, 0.601, 0.647), "auc", ("0.623", "[0.601, 0.647]")),
        ((2195000.0, 1315000.0, 3075000.0), "loss", ("2.20e6", "[1.32e6, 3.08e6]")),
        ((0.0008313, 0.00081, 0.00085), "loss", ("0.000831", "[0.000810, 0.000850]")),
        ((0.98, 0.93, 1.04), "auc", ("0.980", "[0.930, 1.000*]")),  # clipped to [0, 1], marked
        ((0.05, -0.02, 0.12), "accuracy", ("0.050", "[0.000*, 0.120]")),
        ((31.2, 28.0, 34.4), "mse", ("31.2", "[28.0, 34.4]")),
        ((0.8, None, None), "auc", ("0.800", "")),  # one seed: no interval
        # a decided difference: its interval excludes 0, so no end may print as 0
        ((-0.1199, -0.2394, -0.0003), None, ("-0.1199", "[-0.2394, -0.0003]")),
        ((-0.12, -0.24, 0.01), None, ("-0.12", "[-0.24, 0.01]")),
    ],
)
def test_numbers_are_rounded_to_their_interval(
    values: tuple[float, Any, Any], metric: str | None, expected: tuple[str, str]
) -> None:
    assert estimate(*values, metric) == expected


def test_bounded_intervals_are_clipped_in_the_table(tmp_path: Path) -> None:
    root = write_fake_study(tmp_path / "clipped", validation=0.1, seeds=(0, 1, 2))
    for path in root.glob("dropout/seed-*/result.json"):  # AUCs near 1: the interval passes 1
        data = json.loads(path.read_text())
        data["test"]["best"]["auc"] = 0.99 - 0.04 * (data["seed"] == 1)
        path.write_text(json.dumps(data))
    report = build_report(root)
    assert report.table.loc["dropout", "auc_best_high"] > 1
    md = report_text(report)
    row = next(line for line in md.splitlines() if line.startswith("| dropout "))
    assert re.search(r", 1\.0*\*\]", row), row  # the upper end clipped at 1, marked
    assert "* clipped to the metric's range" in md
    assert re.search(r", 1\.0*\*\]", _terminal(report, wide=False, width=80))
