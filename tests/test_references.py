"""Reference models: scikit-learn fits on every run's rows of a table, beside the variants.

Is a network even needed? Every tabular study stores, per run seed, a majority-class (mean)
predictor, a logistic (ridge) regression on standardised features and gradient boosting, fit on
exactly the run's non-test rows after its preprocessing and scored on its test rows; the report
shows them as rows and opens with a Reference line (best variant vs the linear model, paired by
run). They are not runs: not counted, not in ``status``, reused on rerun.
"""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TINY, write_toml
from rich.console import Console
from scipy import stats as scipy_stats
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    mean_squared_error,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from tricklab import study as study_module
from tricklab.api import run_study
from tricklab.base.errors import SpecError
from tricklab.cli import main
from tricklab.data import resolve
from tricklab.engines.references import fit_references, takes_references
from tricklab.report import build_report, headline, load_report, report_figures, terminal_table
from tricklab.spec import StudySpec
from tricklab.store import RunStore

#: 3 variants x 2 seeds, each seed its own split (resplit: Nadeau-Bengio corrected comparisons).
VARIANTS = {
    "a": {},
    "b": {"train.optimizer": {"name": "adam", "learning_rate": 0.01}},
    "c": {"train.optimizer": {"name": "adam", "learning_rate": 0.003}},
}
LINE = re.compile(
    r"Reference: (?P<best>\S+) (?P<word>ties|beats|loses to) logistic regression: "
    r"delta auc (?P<v>\S+) \[(?P<lo>[^,\]]+), (?P<hi>[^\]]+)\]"
)


def _spec(**changes: Any) -> StudySpec:
    table = copy.deepcopy(TINY)
    table.update({"seeds": 2, "resplit": True, "variants": copy.deepcopy(VARIANTS)}, **changes)
    return StudySpec.from_dict(table)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    out = tmp_path_factory.mktemp("references")
    outcome = run_study(_spec(), out=out, engine="population")
    return outcome, out


def _opening(markdown: str) -> str:
    """The report before its first table: the headline, its notes and the changes."""
    return markdown.split("\n|", 1)[0]


def _fits(root: Path, seed: int) -> dict[str, dict[str, Any]]:
    stored = RunStore(root).read_references(seed)
    assert stored is not None, f"no references stored for seed {seed}"
    return {fit.model: fit.test for fit in stored.fits}


def test_reference_rows_equal_scikit_learns_own_fit_on_the_same_rows(
    trained: tuple[Any, Path],
) -> None:
    outcome, _ = trained
    resolved = resolve(_spec())
    for seed in (0, 1):
        splits = resolved.splits(seed)  # the run's rows, standardised as the run's were
        x = np.concatenate([splits.x_train, splits.x_val])
        y = np.concatenate([splits.y_train, splits.y_val])
        fits = _fits(outcome.root, seed)

        logistic = Pipeline(
            [("scale", StandardScaler()), ("model", LogisticRegression(C=1.0, max_iter=1000))]
        ).fit(x, y)
        proba = logistic.predict_proba(splits.x_test)
        expected = {
            "auc": roc_auc_score(splits.y_test, proba[:, 1]),
            "accuracy": accuracy_score(splits.y_test, proba.argmax(axis=1)),
            "balanced_accuracy": balanced_accuracy_score(splits.y_test, proba.argmax(axis=1)),
        }
        for metric, value in expected.items():
            assert fits["logistic regression"][metric] == pytest.approx(value, abs=1e-9), metric

        boosting = HistGradientBoostingClassifier(random_state=seed).fit(x, y)
        auc = roc_auc_score(splits.y_test, boosting.predict_proba(splits.x_test)[:, 1])
        assert fits["gradient boosting"]["auc"] == pytest.approx(auc, abs=1e-9)

        majority = DummyClassifier(strategy="most_frequent").fit(x, y)
        accuracy = accuracy_score(splits.y_test, majority.predict(splits.x_test))
        assert fits["majority class"]["accuracy"] == pytest.approx(accuracy, abs=1e-9)
    # resplit: the seeds' rows differ, and so do the logistic regression's scores
    assert (
        _fits(outcome.root, 0)["logistic regression"]
        != _fits(outcome.root, 1)["logistic regression"]
    )


def test_references_fit_on_training_rows_alone_when_validating_on_the_test_set() -> None:
    resolved = resolve(_spec(validation="test"))
    stored = fit_references(resolved, 0)
    splits = resolved.splits(0)  # x_val is the test rows: not fit on
    logistic = Pipeline(
        [("scale", StandardScaler()), ("model", LogisticRegression(C=1.0, max_iter=1000))]
    ).fit(splits.x_train, splits.y_train)
    auc = roc_auc_score(splits.y_test, logistic.predict_proba(splits.x_test)[:, 1])
    fits = {fit.model: fit for fit in stored.fits}
    assert fits["logistic regression"].test["auc"] == pytest.approx(auc, abs=1e-9)
    assert stored.split["fit_rows"] == len(splits.y_train)


def test_regression_references_are_ridge_and_the_mean(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.normal(size=120)
    lines = ["a,b,c,y"] + [
        ",".join(f"{v:.6f}" for v in (*row, t)) for row, t in zip(x, y, strict=True)
    ]
    (tmp_path / "reg.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    table = copy.deepcopy(TINY)
    table["dataset"] = {"csv": str(tmp_path / "reg.csv"), "target": "y"}
    table["model"]["layers"][-1] = {"type": "dense", "units": 1}
    table["train"]["loss"] = "mean_squared_error"
    resolved = resolve(StudySpec.from_dict(table))
    fits = {fit.model: fit.test for fit in fit_references(resolved, 0).fits}
    splits = resolved.splits(0)
    rows = np.concatenate([splits.x_train, splits.x_val])
    target = np.concatenate([splits.y_train, splits.y_val])
    ridge = Pipeline([("scale", StandardScaler()), ("model", Ridge(alpha=1.0))]).fit(rows, target)
    mse = mean_squared_error(splits.y_test, ridge.predict(splits.x_test))
    assert fits["ridge regression"]["mse"] == pytest.approx(mse, abs=1e-9)
    mean = DummyRegressor().fit(rows, target).predict(splits.x_test)
    assert fits["mean predictor"]["mse"] == pytest.approx(
        mean_squared_error(splits.y_test, mean), abs=1e-9
    )


def test_the_report_opens_with_the_reference_line(trained: tuple[Any, Path]) -> None:
    outcome, _ = trained
    report = build_report(outcome.root)
    match = LINE.search(_opening(report.markdown.read_text(encoding="utf-8")))
    assert match is not None, _opening(report.markdown.read_text(encoding="utf-8"))
    assert match["best"] == report.ranked()[0]
    assert LINE.search(report.html.read_text(encoding="utf-8")) is not None

    # Paired by run and Nadeau-Bengio corrected like the comparisons, but one test at alpha 0.05:
    # the study's 2 comparisons are Bonferroni-adjusted, the Reference line is not.
    assert report.comparisons[0].tests == 2
    best = match["best"]
    variant = {r.seed: r.test[report.weights]["auc"] for r in report.runs_of(best)}
    linear = {
        r.seed: r.test["best"]["auc"]
        for r in report.references
        if r.variant == "logistic regression"
    }
    diffs = np.array([variant[s] - linear[s] for s in sorted(variant)])
    correction = report.facts.protocol["correction"]
    assert correction > 0  # resplit
    n = len(diffs)
    half = scipy_stats.t.ppf(0.975, n - 1) * diffs.std(ddof=1) * math.sqrt(1 / n + correction)
    low, high = diffs.mean() - half, diffs.mean() + half
    assert float(match["v"]) == pytest.approx(diffs.mean(), abs=0.05 * half + 1e-12)
    assert float(match["lo"]) == pytest.approx(low, abs=0.05 * half)
    assert float(match["hi"]) == pytest.approx(high, abs=0.05 * half)
    word = "ties" if low <= 0 <= high else ("beats" if diffs.mean() > 0 else "loses to")
    assert match["word"] == word

    # Reference rows (not variants) in the tables and the interval figure, with their seconds.
    markdown = report.markdown.read_text(encoding="utf-8")
    for model in ("majority class", "logistic regression", "gradient boosting"):
        assert re.search(rf"\| {model} \(reference; fit [0-9.e-]+ s\) \|", markdown), model
    assert list(report.table.index) == ["a", "b", "c"]  # not variants
    console = Console(record=True, width=100)
    console.print(terminal_table(report))
    compact = console.export_text()
    assert "logistic regression" in compact and "reference" in compact
    figure = report_figures(report)["auc_intervals"]
    labels = [tick.get_text() for tick in figure.axes[0].get_yticklabels()]
    assert labels[-3:] == ["majority class", "logistic regression", "gradient boosting"]


def test_report_reads_references_and_never_fits_them(
    trained: tuple[Any, Path], tmp_path: Path
) -> None:
    outcome, _ = trained
    copied = tmp_path / "copy"
    shutil.copytree(outcome.root, copied)
    shutil.rmtree(copied / "references")
    report = load_report(copied)
    assert report.references == []
    assert "Reference: references not computed yet" in headline(report)[-1]
    assert not (copied / "references").exists()


def test_a_rerun_reuses_the_references(trained: tuple[Any, Path]) -> None:
    outcome, out = trained
    files = sorted((outcome.root / "references").glob("seed-*.json"))
    assert [f.name for f in files] == ["seed-0.json", "seed-1.json"]
    before = {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in files}
    again = run_study(_spec(), out=out, engine="population")
    assert (again.trained, again.references_fitted, again.references_reused) == (0, 0, 2)
    assert {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in files} == before

    # References of other rows are fit again: here a stored key that no longer matches.
    stale = json.loads(files[0].read_text(encoding="utf-8"))
    files[0].write_text(json.dumps({**stale, "key": "other-rows"}), encoding="utf-8")
    again = run_study(_spec(), out=out, engine="population")
    assert (again.references_fitted, again.references_reused) == (1, 1)
    assert json.loads(files[0].read_text(encoding="utf-8"))["key"] == stale["key"]


def test_references_are_not_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    table = copy.deepcopy(TINY)
    table.update({"seeds": 2, "variants": {"a": {}}})
    table["train"]["epochs"] = 1
    path = write_toml(tmp_path / "tiny.toml", table)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(path), "--out", "runs", "--engine", "population", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "trained 2 runs, reused 0" in out
    assert sorted(p.name for p in (tmp_path / "runs/tiny/references").iterdir()) == [
        "seed-0.json",
        "seed-1.json",
    ]
    assert main(["status", "runs/tiny"]) == 0
    assert "runs/tiny: 2 runs: 2 done," in capsys.readouterr().out
    assert len(list(RunStore(tmp_path / "runs/tiny").results())) == 2
    assert main(["run", str(path), "--out", "runs", "--engine", "population", "--quiet"]) == 0
    assert "trained 0 runs, reused 2" in capsys.readouterr().out


def test_references_false_turns_them_off(tmp_path: Path) -> None:
    table = copy.deepcopy(TINY)
    table["train"]["epochs"] = 1
    off = StudySpec.from_dict({**table, "references": False})
    assert StudySpec.from_dict(table).references is True
    with pytest.raises(SpecError, match="references"):
        StudySpec.from_dict({**table, "references": "no"})
    outcome = run_study(off, out=tmp_path, engine="population")
    assert outcome.references_fitted == 0
    assert not (outcome.root / "references").exists()
    report = build_report(outcome.root)
    assert "Reference:" not in report.markdown.read_text(encoding="utf-8")
    assert not any(line.startswith("Reference:") for line in headline(report))

    # Turned on, a rerun fits them without training; turned off again, the report shows none.
    on = run_study(StudySpec.from_dict(table), out=tmp_path, engine="population")
    assert (on.trained, on.references_fitted) == (0, 1)
    assert "Reference: " in headline(load_report(outcome.root))[-1]
    run_study(off, out=tmp_path, engine="population")
    report = load_report(outcome.root)
    assert not any(line.startswith("Reference:") for line in headline(report))
    console = Console(record=True, width=100)
    console.print(terminal_table(report))
    assert "logistic regression" not in console.export_text()


def test_no_references_for_images(tmp_path: Path, trained: tuple[Any, Path]) -> None:
    from tricklab.data import _idx

    assert takes_references((16,)) and not takes_references((28, 28))
    if _idx.find_local() is None:
        pytest.skip("Fashion-MNIST is not installed")
    spec = StudySpec.from_dict(
        {
            "name": "fashion",
            "dataset": {"name": "fashion_mnist", "limit": 300},
            "seeds": 1,
            "model": {
                "layers": [
                    {"type": "flatten"},
                    {"type": "dense", "units": 10, "activation": "softmax"},
                ]
            },
            "train": {"loss": "sparse_categorical_crossentropy", "epochs": 1},
        }
    )
    resolved = resolve(spec)
    assert not takes_references(resolved.dataset.input_shape)
    store = RunStore(tmp_path / "fashion")
    assert study_module.fit_references(store, resolved, [0]) == (0, 0)
    assert not store.references_dir.exists()
    with pytest.raises(ValueError, match="flat feature vector"):
        fit_references(resolved, 0)

    # The report's rule: an image study (inputs 28 x 28) has no Reference line.
    import dataclasses

    report = load_report(trained[0].root)
    image = {**report.facts.dataset, "input_shape": [28, 28]}
    report.facts = dataclasses.replace(report.facts, dataset=image)
    assert not any(line.startswith("Reference:") for line in headline(report))
