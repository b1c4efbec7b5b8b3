"""``tricklab report RUNS/STUDY --csv PATH``: the report's numbers as two flat CSV tables.

PATH gets one row per run (variants, then the reference models, ``kind`` says which), and
PATH with ``-variants`` before its suffix one row per variant and reference model, with the
same intervals, comparison and failure mode the report shows.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY, write_toml

from tricklab.cli import main
from tricklab.report import load_report
from tricklab.store import RunStore


@pytest.fixture(scope="module")
def study_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 variants x 3 seeds of the tiny study, trained once for the module."""
    folder = tmp_path_factory.mktemp("csv")
    table = copy.deepcopy(TINY)
    table |= {"name": "csvstudy", "seeds": 3, "baseline": "a"}
    table["train"]["epochs"] = 8  # long enough that the best epoch is not always the last
    table["variants"] = {"a": {}, "b": {"train.optimizer": {"name": "adam", "learning_rate": 0.05}}}
    study = write_toml(folder / "study.toml", table)
    assert main(["run", str(study), "--out", str(folder / "runs"), "--quiet"]) == 0
    return folder / "runs" / "csvstudy"


def test_runs_and_variants_tables_hold_the_reports_numbers(
    study_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "out" / "results.csv"
    assert main(["report", str(study_root), "--csv", str(path)]) == 0
    assert f"{path} (runs)" in capsys.readouterr().out.replace("\n", "")
    runs = pd.read_csv(path)
    variants = pd.read_csv(tmp_path / "out" / "results-variants.csv")
    report = load_report(study_root)

    # one row per finished run, then one per reference fit, each with its stored test scores
    stored = {(r.variant, r.seed): r for r in RunStore(study_root).results()}
    mine = runs[runs["kind"] == "variant"]
    assert sorted(zip(mine["variant"], mine["seed"], strict=True)) == sorted(stored)
    for row in mine.itertuples():
        result = stored[(row.variant, row.seed)]
        assert row.key == result.key and row.status == "ok"
        assert row.auc_best == pytest.approx(result.test["best"]["auc"], abs=1e-12)
        assert row.auc_last == pytest.approx(result.test["last"]["auc"], abs=1e-12)
        assert row.checkpoint == report.weights
    assert (mine["auc_best"] != mine["auc_last"]).any()  # the two checkpoints are told apart
    references = runs[runs["kind"] == "reference"]
    assert len(references) == len(report.references) > 0
    assert set(references["variant"]) == {r.variant for r in report.references}

    # one row per variant with the table's interval and the comparison, then the references
    assert list(variants["kind"]) == ["variant"] * 2 + ["reference"] * (len(variants) - 2)
    metric = f"{report.primary_metric}_{report.weights}"
    for row in variants[variants["kind"] == "variant"].itertuples():
        expected = report.table.loc[row.variant]
        for stat in ("mean", "low", "high"):
            assert getattr(row, f"{metric}_{stat}") == pytest.approx(
                expected[f"{metric}_{stat}"], abs=1e-12
            )
    b = variants.set_index("variant").loc["b"]
    comparison = next(c for c in report.comparisons if c.variant == "b")
    assert b["compared"] == metric and b["baseline"] == "a"
    assert b["verdict"] == comparison.verdict.value
    assert (b["diff"], b["ci_low"], b["ci_high"]) == pytest.approx(
        (comparison.diff, comparison.ci_low, comparison.ci_high), abs=1e-12
    )
    a = variants.set_index("variant").loc["a"]
    assert isinstance(a["verdict"], float) and math.isnan(a["verdict"])  # the baseline: empty


def test_a_folder_or_a_file_in_the_way_is_one_line(
    study_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(study_root), "--csv", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"--csv: {tmp_path} is a folder" in err and "Traceback" not in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["report", str(study_root), "--csv", str(blocker / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert f"{blocker} is a file, not a directory" in err
    assert not list(tmp_path.glob("*.csv"))
