"""Reports: report.md, the self-contained report.html (checked in headless Chromium), the terminal
table, the test-set warning, errors, and that stale runs stay out of a report."""

from __future__ import annotations

import copy
import io
import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TINY
from rich.console import Console

from tricklab.errors import StoreError
from tricklab.report import Report, build_report, report_text, terminal_table
from tricklab.result import RunResult
from tricklab.store import HISTORY, RESULT, SPEC, WEIGHTS, history_csv

CHROMIUM = Path("/usr/bin/chromium")
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


def _terminal(report: Report) -> str:
    console = Console(file=io.StringIO(), width=250, record=True, color_system=None)
    console.print(terminal_table(report))
    return console.export_text()


def test_report_files_and_markdown(report: Report, trained: Path) -> None:
    assert report.markdown == trained / "report.md" and report.markdown.exists()
    assert report.html == trained / "report.html" and report.html.exists()
    assert report.primary_metric == "auc"
    md = report_text(report)
    assert "baseline" in md and "mse" in md
    assert "auc" in md
    assert report.comparisons and report.comparisons[0].variant == "mse"
    assert report.comparisons[0].sentence() in md
    rule = (
        "verdicts: paired t-test, Bonferroni-adjusted across the 1 comparison (alpha 0.05/1); "
        "intervals are the matching adjusted intervals"
    )
    assert rule in md and "Holm" not in md
    assert "95% CI (adjusted)" in md and "P(beats baseline)" in md
    assert "## Protocol" in md
    sizes = json.loads((trained / "study.json").read_text())["protocol"]["split_sizes"]
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
    assert set(report.figures) == {Path(i).stem for i in images}


def test_html_is_self_contained(report: Report) -> None:
    html = report.html.read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == len(report.figures)
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
    # rows are sorted by the primary metric, best first
    ranked = report.table["auc_best_mean"].sort_values(ascending=False).index.tolist()
    positions = [text.index(f"│ {name} ") for name in ranked]
    assert positions == sorted(positions)


def test_html_renders_in_chromium(report: Report, tmp_path: Path) -> None:
    """The page loads with no console error and every figure decodes to a non-empty image."""
    if not CHROMIUM.exists():
        print(f"skipped: {CHROMIUM} is not installed")
        pytest.skip(f"{CHROMIUM} is not installed")
    # A copy of the page with a probe that writes each image's decoded size into a hidden node.
    probe = (
        "<script>window.addEventListener('load', () => { const p = document.createElement('pre');"
        " p.id = 'probe'; p.style.display = 'none'; p.textContent = 'IMAGES ' + "
        "[...document.images].map(i => i.naturalWidth + 'x' + i.naturalHeight + ':' + "
        "i.src.slice(0, 22)).join(' '); document.body.appendChild(p); });</script>"
    )
    page = tmp_path / "report.html"
    page.write_text(report.html.read_text(encoding="utf-8").replace("</body>", probe + "</body>"))
    screenshot = tmp_path / "report.png"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
        f"--screenshot={screenshot}",
        "--window-size=1280,2400",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90)
    (tmp_path / "chromium.log").write_text(done.stderr)
    assert done.returncode == 0, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not errors, errors
    found = re.search(r"IMAGES ([^<]*)</pre>", done.stdout)
    assert found, done.stdout[-2000:]
    images = found.group(1).split()
    assert len(images) == len(report.figures)
    for image in images:
        size, source = image.split(":", 1)
        width, height = (int(v) for v in size.split("x"))
        assert width > 300 and height > 150, image
        assert source == "data:image/png;base64,"
    # the screenshot shows a page, not a blank one
    from PIL import Image

    assert screenshot.stat().st_size > 50_000
    with Image.open(screenshot) as shot:
        assert shot.size == (1280, 2400)
        pixels = np.asarray(shot.convert("L"))
    assert (pixels < 200).mean() > 0.01  # text and figures, not an empty white page


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
            run_dir = root / variant / f"seed-{seed}"
            run_dir.mkdir(parents=True)
            (run_dir / SPEC).write_text("{}")
            (run_dir / WEIGHTS).write_bytes(b"")  # never loaded: reports read results only
            (run_dir / HISTORY).write_text(history_csv(result.history))
            (run_dir / RESULT).write_text(json.dumps(result.to_json()))
            runs.append(
                {
                    "variant": variant,
                    "seed": seed,
                    "key": result.key,
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
        "primary_metric": None,
        "dataset": {
            "name": "made-up",
            "task": task,
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
        "backend": "jax",
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
    (root / "study.json").write_text(json.dumps(index))
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
    assert set(report.figures) == figures
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
    assert unstable.verdict == "no detectable difference with 4 seeds"
    assert unstable.ci_low < 0 < unstable.ci_high
    md = report_text(report)
    html = report.html.read_text(encoding="utf-8")
    rule = (
        "verdicts: paired t-test, Bonferroni-adjusted across the 2 comparisons (alpha 0.05/2); "
        "intervals are the matching adjusted intervals (97.5%)"
    )
    assert rule in md and rule in html
    assert rule in " ".join(_terminal(report).split())
    assert "| 97.5% CI (adjusted) |" in md and "| 95% bootstrap CI |" in md
    # the unstable row: its Δ interval is the adjusted one (holding 0), beside the verdict
    row = next(line for line in md.splitlines() if line.startswith("| unstable |"))
    cells = [cell.strip() for cell in row.strip("| ").split(" | ")]
    low, high = (float(v) for v in re.findall(r"-?\d+\.\d+", cells[11]))
    assert (low, high) == (
        pytest.approx(unstable.ci_low, abs=1e-4),
        pytest.approx(unstable.ci_high, abs=1e-4),
    )
    assert low < 0 < high
    assert cells[12].startswith("no detectable difference with 4 seeds (min. detectable ±")
    # P(beats baseline): better on all 4 seeds, yet no verdict: the two answer different questions
    assert (cells[13], cells[14]) == ("1.00", "[1.00, 1.00]")
    assert unstable.sentence() in md
    assert "97.5% interval" in unstable.sentence()


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
