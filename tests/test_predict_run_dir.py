"""``tricklab predict RUN_DIR new.csv`` of a run whose table was fitted on its own training rows
(the dataset's column keys): raw rows in the training CSV's own format, the run's columns
fitted again on its training rows, predicted with the run's own weights."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tricklab.cli import main
from tricklab.data import load_dataset, make_splits

HEADER = ["customer_id", "signup", "monthly_fee", "plan", "tenure", "churn"]
KEYS = {
    "target": "churn",
    "delimiter": ";",
    "drop": ["customer_id"],
    "dates": ["signup"],
    "date_format": "%d/%m/%Y",
    "impute": {"monthly_fee": "median", "plan": "most_frequent"},
    "missing_indicator": True,
}
STUDY = """name = "churn"
seeds = [0]
dataset = {csv = "churn.csv", target = "churn", delimiter = ";", drop = ["customer_id"],
           dates = ["signup"], date_format = "%d/%m/%Y",
           impute = {monthly_fee = "median", plan = "most_frequent"}, missing_indicator = true}
[model]
layers = [{type = "dense", units = 8, activation = "relu"},
          {type = "dense", units = 1, activation = "sigmoid"}]
[train]
loss = "binary_crossentropy"
optimizer = {name = "adam", learning_rate = 0.1}
batch_size = 16
epochs = 4
"""


def messy_rows(n: int = 96) -> list[list[str]]:
    """An id, a day-first date, missing fees and plans, a yes/no target."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(n):
        signup = dt.date(2020, 1, 1) + dt.timedelta(days=int(rng.integers(0, 900)))
        fee = "" if rng.random() < 0.1 else f"{rng.normal(50, 10):.2f}"
        plan = "" if rng.random() < 0.1 else str(rng.choice(["basic", "plus", "pro"]))
        tenure = int(rng.integers(1, 60))
        churn = "yes" if tenure < 15 or i % 7 == 0 else "no"
        rows.append([f"C{1000 + i}", f"{signup:%d/%m/%Y}", fee, plan, str(tenure), churn])
    return rows


def write_rows(path: Path, rows: list[list[str]], *, header: bool = True, sep: str = ";") -> Path:
    lines = [HEADER[: len(rows[0])]] * header + rows
    path.write_text("\n".join(sep.join(r) for r in lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The study run once (1 seed, 4 epochs), and what the run itself fitted and trained
    (evaluated at its last weights; a large step makes its best epoch another, here)."""
    from tricklab import run_study
    from tricklab.engines.build import build_model
    from tricklab.spec import load_study
    from tricklab.store import RunStore

    folder = tmp_path_factory.mktemp("churn")
    rows = messy_rows()
    csv = write_rows(folder / "churn.csv", rows)
    study = folder / "churn.toml"
    study.write_text(STUDY, encoding="utf-8")
    outcome = run_study(study, out=folder / "runs", engine="solo")
    assert [r.status.value for r in outcome.results] == ["ok"]
    store = RunStore(folder / "runs" / "churn")
    index = json.loads((store.root / "study.json").read_text("utf-8"))
    evaluate = index["resolved"]["evaluate"]
    # the run's own fit, as it trained (validation 0.1, split seed 0), and its own weights
    dataset = load_dataset({"csv": str(csv), **KEYS})
    splits = make_splits(dataset, validation=0.1, seed=0)
    fitted = dataset.columns.fit(dataset.x[splits.rows["train"]])
    np.testing.assert_array_equal(fitted.transform(dataset.x[splits.rows["train"]]), splits.x_train)
    model = build_model(load_study(study).variants["baseline"], splits.x_train.shape[1:])
    model.load_weights(str(store.weights_path("baseline", 0, evaluate)))
    return {
        "folder": folder,
        "csv": csv,
        "rows": rows,
        "run_dir": store.run_dir("baseline", 0),
        "store": store,
        "evaluate": evaluate,
        "dataset": dataset,
        "splits": splits,
        "fitted": fitted,
        "model": model,
    }


def predict(args: list[str], capsys: pytest.CaptureFixture[str]) -> pd.DataFrame:
    capsys.readouterr()
    assert main(["predict", *args]) == 0, capsys.readouterr().err
    return pd.read_csv(io.StringIO(capsys.readouterr().out))


def one_error_line(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return " ".join(lines[0].split())


def test_raw_rows_predict_as_the_run_does(
    run: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows of the table (missing fees and plans among them), without the target: the run's
    own model on the run's own fitted features of them."""
    missing = [i for i, r in enumerate(run["rows"]) if not r[2] or not r[3]]
    picked = [*missing[:4], 0, 1, 2]
    assert any(not run["rows"][i][2] for i in picked)  # a missing (imputed) cell
    new = write_rows(tmp_path / "new.csv", [run["rows"][i][:-1] for i in picked])
    printed = predict([str(run["run_dir"]), str(new)], capsys)
    assert list(printed.columns) == ["row", "prediction", "p(no)", "p(yes)"]
    assert printed["row"].tolist() == list(range(1, len(picked) + 1))
    features = run["fitted"].transform(run["dataset"].x[picked])
    p_yes = run["model"].predict(features, verbose=0)[:, 0]
    np.testing.assert_allclose(printed["p(yes)"], p_yes, atol=1e-6)
    np.testing.assert_allclose(printed["p(no)"], 1 - p_yes, atol=1e-6)
    assert printed["prediction"].tolist() == ["yes" if p > 0.5 else "no" for p in p_yes]


def test_the_runs_test_rows_give_its_stored_predictions(
    run: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    test = run["splits"].rows["test"]
    new = write_rows(tmp_path / "test.csv", [run["rows"][i] for i in test])
    printed = predict([str(run["run_dir"]), str(new)], capsys)
    stored = run["store"].load_predictions("baseline", 0, run["evaluate"])
    assert stored is not None
    y_true, predictions = stored
    np.testing.assert_array_equal(y_true, run["splits"].y_test)
    np.testing.assert_allclose(printed["p(yes)"], predictions, atol=1e-5)


def test_header_and_delimiter_default_to_the_training_csvs(
    run: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = run["rows"][:6]
    expected = predict([str(run["run_dir"]), str(write_rows(tmp_path / "a.csv", rows))], capsys)
    bare = write_rows(tmp_path / "bare.csv", rows, header=False)  # every column, in order
    args = [str(run["run_dir"]), str(bare), "--no-header"]
    pd.testing.assert_frame_equal(predict(args, capsys), expected)
    bare = write_rows(tmp_path / "bare2.csv", [r[:-1] for r in rows], header=False)
    pd.testing.assert_frame_equal(predict([*args[:1], str(bare), "--no-header"], capsys), expected)
    comma = write_rows(tmp_path / "comma.csv", rows, sep=",")
    args = [str(run["run_dir"]), str(comma), "--delimiter", ",", "--header"]
    pd.testing.assert_frame_equal(predict(args, capsys), expected)
    # without --no-header, the first row is taken for the header: its cells are no columns
    err = one_error_line(["predict", str(run["run_dir"]), str(bare)], capsys)
    assert "unknown column(s)" in err and "bare2.csv" in err


def test_export_is_refused_in_one_line(
    run: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    err = one_error_line(["export", str(run["run_dir"])], capsys)
    assert "fitted on its own training rows" in err and ".keras" in err
    assert "tricklab predict" in err and "tricklab fit" in err
    assert not (run["run_dir"] / "model.keras").exists()


def test_a_bad_cell_is_one_located_line(
    run: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [list(r) for r in run["rows"][:3]]
    rows[1][4] = "many"  # tenure
    new = write_rows(tmp_path / "bad.csv", rows)
    err = one_error_line(["predict", str(run["run_dir"]), str(new)], capsys)
    assert "bad.csv: line 3, column 'tenure': 'many': not a number" in err


def test_a_changed_or_missing_training_csv_is_one_line(
    run: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv: Path = run["csv"]
    new = write_rows(tmp_path / "new.csv", run["rows"][:3])
    original = csv.read_bytes()
    try:
        changed = [list(r) for r in run["rows"]]
        changed[0][4] = "59" if changed[0][4] != "59" else "58"
        write_rows(csv, changed)
        err = one_error_line(["predict", str(run["run_dir"]), str(new)], capsys)
        assert "the training CSV changed since the run" in err and str(csv) in err
        csv.unlink()
        err = one_error_line(["predict", str(run["run_dir"]), str(new)], capsys)
        assert str(csv) in err and "no such file" in err
    finally:
        csv.write_bytes(original)
    predict([str(run["run_dir"]), str(new)], capsys)  # restored: it predicts again


def test_a_regression_run_predicts_on_its_targets_own_scale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A standardised regression target: the run's outputs are mapped back as it scored them."""
    from tricklab import run_study
    from tricklab.store import RunStore

    rows = messy_rows()
    write_rows(tmp_path / "churn.csv", rows)
    study = tmp_path / "tenure.toml"
    study.write_text(
        STUDY.replace('name = "churn"', 'name = "tenure"')
        .replace('target = "churn"', 'target = "tenure", target_transform = "standardize"')
        .replace('units = 1, activation = "sigmoid"', "units = 1")
        .replace('"binary_crossentropy"', '"mean_squared_error"'),
        encoding="utf-8",
    )
    outcome = run_study(study, out=tmp_path / "runs", engine="solo")
    assert [r.status.value for r in outcome.results] == ["ok"]
    assert "target" in outcome.results[0].preprocessing
    store = RunStore(tmp_path / "runs" / "tenure")
    dataset = load_dataset({"csv": str(tmp_path / "churn.csv"), **KEYS, "target": "tenure"})
    test = make_splits(dataset, validation=0.1, seed=0).rows["test"]
    new = write_rows(tmp_path / "test.csv", [rows[i] for i in test])
    printed = predict([str(store.run_dir("baseline", 0)), str(new)], capsys)
    assert list(printed.columns) == ["row", "prediction"]
    stored = store.load_predictions("baseline", 0, "last")
    assert stored is not None
    np.testing.assert_allclose(printed["prediction"], stored[1], rtol=1e-5, atol=1e-4)
    assert printed["prediction"].mean() > 5  # tenure's own scale (1 to 59), not standardised


def test_a_cross_validated_run_predicts_its_own_fold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under cv, run 3 tests on fold 1 of repeat 1: its columns are fitted on the other fold."""
    from tricklab import run_study
    from tricklab.data import cv_folds
    from tricklab.store import RunStore

    rows = messy_rows()
    csv = write_rows(tmp_path / "churn.csv", rows)
    study = tmp_path / "churn.toml"
    study.write_text(STUDY.replace("seeds = [0]\n", "cv = {folds = 2, repeats = 2}\n"), "utf-8")
    outcome = run_study(study, out=tmp_path / "runs", engine="solo")
    assert len(outcome.results) == 4 and not outcome.failed
    store = RunStore(tmp_path / "runs" / "churn")
    test = cv_folds(load_dataset({"csv": str(csv), **KEYS}), 2, 1)[1]
    new = write_rows(tmp_path / "fold.csv", [rows[i] for i in test])
    printed = predict([str(store.run_dir("baseline", 3)), str(new)], capsys)
    stored = store.load_predictions("baseline", 3, "last")
    assert stored is not None
    np.testing.assert_allclose(printed["p(yes)"], stored[1], atol=1e-5)


def test_a_study_run_by_a_relative_path_predicts_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tricklab import run_study

    folder = tmp_path / "work" / "study"
    folder.mkdir(parents=True)
    write_rows(folder / "churn.csv", messy_rows(48))
    (folder / "churn.toml").write_text(STUDY.replace("epochs = 4", "epochs = 1"), "utf-8")
    monkeypatch.chdir(tmp_path / "work")
    run_study("study/churn.toml", out="runs", engine="solo")  # the CSV: study/churn.csv
    new = write_rows(tmp_path / "new.csv", [r[:5] for r in messy_rows(3)])
    monkeypatch.chdir(tmp_path)  # elsewhere: study/churn.csv is not here
    capsys.readouterr()
    assert main(["predict", "work/runs/churn/baseline/seed-0", str(new)]) == 0
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(printed.columns) == ["row", "prediction", "p(no)", "p(yes)"]
    assert len(printed) == 3
