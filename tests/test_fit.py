"""``tricklab fit`` (one variant trained on every row, as a MODEL_DIR) and predicting raw rows
with it: ``tricklab predict MODEL_DIR new.csv`` and ``tricklab.load_model(MODEL_DIR)``."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import statistics
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tricklab.cli import main
from tricklab.data import exact_json, fitted_from_json

PLANS = ("basic", "plus", "pro")
HEADER = ["customer_id", "signup", "monthly_fee", "plan", "tenure", "churn"]
STUDY = """name = "churn"
seeds = [0, 1]
dataset = {{csv = "churn.csv", target = "churn", delimiter = ";", drop = ["customer_id"],
           dates = ["signup"], date_format = "%d/%m/%Y",
           impute = {{monthly_fee = "median", plan = "most_frequent"}}, missing_indicator = true}}
[model]
layers = [{{type = "dense", units = 8, activation = "relu"}},
          {{type = "dense", units = 1, activation = "sigmoid"}}]
[train]
loss = "binary_crossentropy"
optimizer = {{name = "adam", learning_rate = 0.01}}
batch_size = 16
epochs = {epochs}
early_stopping = {{monitor = "val_loss", patience = 2, restore_best_weights = true}}
{evaluate}
"""
# New raw rows: a missing fee (imputed), a plan never seen in training (all zeros), a missing
# plan (imputed), columns in another order, without the target.
NEW = (
    "tenure;plan;signup;monthly_fee;customer_id\n"
    "12;basic;05/03/2021;;X1\n"
    "40;platinum;17/11/2022;61.5;X2\n"
    "3;;01/01/2020;45;X3\n"
)


def messy_rows(n: int = 96, seed: int = 0) -> list[list[str]]:
    """A churn-like table: an id, a day-first date, missing numbers and text, a yes/no target."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        signup = dt.date(2020, 1, 1) + dt.timedelta(days=int(rng.integers(0, 900)))
        fee = "" if rng.random() < 0.1 else f"{rng.normal(50, 10):.2f}"
        plan = "" if rng.random() < 0.1 else str(rng.choice(PLANS))
        tenure = int(rng.integers(1, 60))
        churn = "yes" if tenure < 15 or i % 7 == 0 else "no"
        rows.append([f"C{1000 + i}", f"{signup:%d/%m/%Y}", fee, plan, str(tenure), churn])
    return rows


def write_study(folder: Path, *, epochs: int = 6, evaluate: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [HEADER, *messy_rows()]
    (folder / "churn.csv").write_text("\n".join(";".join(r) for r in lines) + "\n", "utf-8")
    study = folder / "churn.toml"
    study.write_text(STUDY.format(epochs=epochs, evaluate=evaluate), encoding="utf-8")
    return study


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The study run (2 seeds), then fit: what fit printed and where everything is."""
    from tricklab import run_study

    folder = tmp_path_factory.mktemp("churn")
    study = write_study(folder)
    outcome = run_study(study, out=folder / "runs", engine="solo")
    assert [r.status.value for r in outcome.results] == ["ok", "ok"]
    model_dir = folder / "model"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            [
                "fit",
                str(study),
                "--variant",
                "baseline",
                "-o",
                str(model_dir),
                "--out",
                str(folder / "runs"),
            ]
        )
    assert code == 0
    (folder / "new.csv").write_text(NEW, encoding="utf-8")
    return {
        "folder": folder,
        "study": study,
        "model_dir": model_dir,
        "printed": out.getvalue(),
        "best_epochs": [r.best_epoch for r in sorted(outcome.results, key=lambda r: r.seed)],
    }


def test_fit_trains_for_the_median_best_epoch(fitted: dict[str, Any]) -> None:
    best = fitted["best_epochs"]
    median = int(statistics.median(best) + 0.5)  # rounded half up
    record = json.loads((fitted["model_dir"] / "tricklab-model.json").read_text("utf-8"))
    assert record["epochs"] == median
    shown = ", ".join(map(str, best))
    assert f"for {median} epochs: median best epoch of 2 stored runs ({shown})" in " ".join(
        fitted["printed"].split()
    )
    assert record["rows"] == 96  # every row: no validation or test split
    assert record["classes"] == ["no", "yes"]
    assert record["csv"] == {
        "delimiter": ";",
        "header": True,
        "columns": HEADER,
        "target": "churn",
    }
    assert record["columns"]["dropped"] == ["customer_id"]


def test_everything_learnt_is_fitted_on_all_rows(fitted: dict[str, Any]) -> None:
    record = json.loads((fitted["model_dir"] / "tricklab-model.json").read_text("utf-8"))
    rows = messy_rows()
    fees = np.array([float(r[2]) for r in rows if r[2]])
    by_name = {c["name"]: c for c in record["columns"]["columns"]}
    assert by_name["monthly_fee"]["fill"] == pytest.approx(float(np.median(fees)))
    first = min(dt.datetime.strptime(r[1], "%d/%m/%Y").date() for r in rows)
    assert by_name["signup"]["origin"] == first.isoformat()
    tenure = np.array([float(r[4]) for r in rows])
    features = record["columns"]["features"]
    scaling = record["columns"]["standardize"]
    at = features.index("tenure")
    assert scaling["mean"][at] == pytest.approx(tenure.mean())
    assert scaling["std"][at] == pytest.approx(tenure.std())


def _hand_features(record: dict[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """The model's inputs made from the JSON record by hand (not by tricklab's code)."""
    columns = []
    for column in record["columns"]["columns"]:
        cells = frame[column["name"]].tolist()
        missing = [c is None or (isinstance(c, float) and np.isnan(c)) for c in cells]
        filled = [column.get("fill") if m else c for c, m in zip(cells, missing, strict=True)]
        if column["kind"] == "date":
            origin = dt.date.fromisoformat(column["origin"])
            dates = [dt.datetime.strptime(c, column["date_format"]).date() for c in filled]
            columns += [
                [d.year for d in dates],
                [d.month for d in dates],
                [d.weekday() for d in dates],
                [(d - origin).days for d in dates],
            ]
        elif column["kind"] == "text":
            columns += [[float(c == level) for c in filled] for level in column["levels"]]
        else:
            columns.append([float(c) for c in filled])
        if column.get("missing_indicator"):
            columns.append([float(m) for m in missing])
    x = np.array(columns, dtype=np.float64).T
    scaling = record["columns"]["standardize"]
    return ((x - np.array(scaling["mean"])) / np.array(scaling["std"])).astype(np.float32)


def test_predict_equals_load_model_and_the_keras_model(
    fitted: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    import keras

    import tricklab

    model_dir, new = fitted["model_dir"], fitted["folder"] / "new.csv"
    capsys.readouterr()
    assert main(["predict", str(model_dir), str(new)]) == 0
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(printed.columns) == ["row", "prediction", "p(no)", "p(yes)"]
    assert printed["row"].tolist() == [1, 2, 3]

    frame = pd.read_csv(new, sep=";")
    api = tricklab.load_model(model_dir).predict(frame)
    assert list(api.columns) == list(printed.columns)
    assert api["prediction"].tolist() == printed["prediction"].tolist()
    for name in ("p(no)", "p(yes)"):
        np.testing.assert_allclose(api[name], printed[name], atol=1e-6)

    record = json.loads((model_dir / "tricklab-model.json").read_text("utf-8"))
    bare = keras.saving.load_model(model_dir / "model.keras", compile=False)
    p_yes = bare.predict(_hand_features(record, frame), verbose=0)[:, 0]
    np.testing.assert_allclose(api["p(yes)"], p_yes, atol=1e-6)
    np.testing.assert_allclose(api["p(no)"], 1 - p_yes, atol=1e-6)
    assert api["prediction"].tolist() == ["yes" if p > 0.5 else "no" for p in p_yes]


def test_unseen_category_is_all_zeros(fitted: dict[str, Any]) -> None:
    import tricklab

    model = tricklab.load_model(fitted["model_dir"])
    frame = pd.read_csv(io.StringIO(NEW), sep=";")
    features = model.features(frame)
    names = model.record["columns"]["features"]
    scaling = model.record["columns"]["standardize"]
    for level in PLANS:  # the raw one-hot cell is 0: scaled, -mean/std
        at = names.index(f"plan={level}")
        expected = -scaling["mean"][at] / scaling["std"][at]
        assert features[1, at] == pytest.approx(expected, abs=1e-6)


def test_fit_needs_stored_runs_for_the_best_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = write_study(tmp_path)
    args = ["fit", str(study), "--variant", "baseline", "-o", str(tmp_path / "m")]
    code = main([*args, "--out", str(tmp_path / "runs")])
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "run the study first" in err
    assert not (tmp_path / "m").exists()


def test_an_existing_model_dir_is_refused_without_force(
    fitted: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["fit", str(fitted["study"]), "--variant", "baseline", "-o", str(fitted["model_dir"])]
    args += ["--out", str(fitted["folder"] / "runs")]
    before = (fitted["model_dir"] / "tricklab-model.json").read_bytes()
    capsys.readouterr()
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err
    assert (fitted["model_dir"] / "tricklab-model.json").read_bytes() == before
    assert main([*args, "--force"]) == 0
    # seeded as a solo run: the same record again
    again = json.loads((fitted["model_dir"] / "tricklab-model.json").read_text("utf-8"))
    assert again == json.loads(before)


def test_the_model_dir_is_plain_json_and_keras(fitted: dict[str, Any]) -> None:
    model_dir = fitted["model_dir"]
    assert sorted(p.name for p in model_dir.iterdir()) == ["model.keras", "tricklab-model.json"]
    text = (model_dir / "tricklab-model.json").read_text("utf-8")
    record = json.loads(text)
    assert record["format"] == "tricklab-model" and record["version"] == 1
    assert json.loads(json.dumps(record)) == record
    assert exact_json(fitted_from_json(record["columns"])) == record["columns"]
    with zipfile.ZipFile(model_dir / "model.keras") as archive:
        names = archive.namelist()
        assert not [n for n in names if n.endswith((".pkl", ".pickle"))]
        for name in names:
            assert not archive.read(name).startswith(b"\x80")  # a pickle's first byte


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("monthly_fee=abc", "new.csv: line 2, column 'monthly_fee': 'abc': not a number"),
        ("signup=2021-03-05", "new.csv: line 2, column 'signup': '2021-03-05': not a date"),
        ("tenure=", "new.csv: line 2, column 'tenure': missing value"),
        ("tenure=DROP", "missing column(s) 'tenure'"),
        ("extra=1", "unknown column(s) 'extra'"),
    ],
)
def test_predict_errors_are_one_located_line(
    fitted: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cell: str,
    expected: str,
) -> None:
    column, value = cell.split("=")
    frame = pd.read_csv(io.StringIO(NEW), sep=";", dtype=str, keep_default_na=False)
    if value == "DROP":
        frame = frame.drop(columns=[column])
    else:
        frame.loc[0, column] = value
    new = tmp_path / "new.csv"
    frame.to_csv(new, sep=";", index=False)
    capsys.readouterr()
    assert main(["predict", str(fitted["model_dir"]), str(new)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert expected in " ".join(err.split())


def test_predict_reads_the_training_delimiter_unless_told(
    fitted: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    comma = tmp_path / "comma.csv"
    comma.write_text(NEW.replace(";", ","), encoding="utf-8")
    bare = tmp_path / "bare.csv"  # no header: the training file's columns in order, no target
    frame = pd.read_csv(io.StringIO(NEW), sep=";", dtype=str, keep_default_na=False)
    frame[HEADER[:-1]].to_csv(bare, sep=";", index=False, header=False)
    capsys.readouterr()
    assert main(["predict", str(fitted["model_dir"]), str(fitted["folder"] / "new.csv")]) == 0
    expected = capsys.readouterr().out
    assert main(["predict", str(fitted["model_dir"]), str(comma), "--delimiter", ","]) == 0
    assert capsys.readouterr().out == expected
    assert main(["predict", str(fitted["model_dir"]), str(bare), "--no-header"]) == 0
    assert capsys.readouterr().out == expected


def test_thoracic_fits_for_the_recipes_epochs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A study evaluated at its last weights needs no stored runs; the built-in table fits."""
    import tricklab

    study = tmp_path / "thoracic.toml"
    study.write_text(
        'name = "thoracic"\ndataset = {name = "thoracic"}\nseeds = 1\n'
        "[model]\n"
        'layers = [{type = "dense", units = 4, activation = "relu"}, '
        '{type = "dense", units = 1, activation = "sigmoid"}]\n'
        '[train]\nloss = "binary_crossentropy"\noptimizer = "adam"\nbatch_size = 64\n'
        'epochs = 2\nevaluate = "last"\n',
        encoding="utf-8",
    )
    model_dir = tmp_path / "model"
    assert main(["fit", str(study), "--variant", "baseline", "-o", str(model_dir)]) == 0
    assert "for 2 epochs: the recipe's epochs" in " ".join(capsys.readouterr().out.split())
    from tricklab.spec import THORACIC_COLUMNS

    resource = Path(tricklab.__file__).parent / "resources" / "thoracic.csv"
    rows = pd.read_csv(resource, header=None, names=[*THORACIC_COLUMNS, "Risk1Yr"], nrows=4)
    new = tmp_path / "new.csv"
    rows.to_csv(new, index=False)
    assert main(["predict", str(model_dir), str(new)]) == 0
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(printed.columns) == ["row", "prediction", "p(survived)", "p(died)"]
    api = tricklab.load_model(model_dir).predict(rows)
    np.testing.assert_allclose(api["p(died)"], printed["p(died)"], atol=1e-6)


def test_fit_logs_an_mlflow_model_with_its_signature(
    fitted: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mlflow")

    folder = fitted["folder"]
    uri = f"sqlite:///{folder / 'tracking' / 'mlflow.db'}"
    (folder / "tracking").mkdir()
    model_dir = folder / "model-mlflow"
    args = ["fit", str(fitted["study"]), "--variant", "baseline", "-o", str(model_dir)]
    args += ["--out", str(folder / "runs"), "--mlflow", "--tracking-uri", uri]
    capsys.readouterr()
    assert main(args) == 0
    logged = capsys.readouterr().out.split("logged to MLflow: ")[1].split()[0]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # not set_tracking_uri: it stays set
    served_as_the_model_dir(logged, model_dir, folder / "new.csv")


def served_as_the_model_dir(logged: str, model_dir: Path, new_csv: Path) -> None:
    """The MLflow model at ``logged`` takes the raw columns (its signature) and predicts the
    rows of ``new_csv`` as ``tricklab.load_model(model_dir)`` does."""
    import mlflow

    import tricklab

    info = mlflow.models.get_model_info(logged)
    inputs = [c["name"] for c in info.signature.inputs.to_dict()]
    assert inputs == ["signup", "monthly_fee", "plan", "tenure"]  # raw columns, as trained
    frame = pd.read_csv(new_csv, sep=";")[inputs]
    frame["tenure"] = frame["tenure"].astype("float64")  # MLflow: a double column takes floats
    served = mlflow.pyfunc.load_model(logged).predict(frame)
    expected = tricklab.load_model(model_dir).predict(frame)
    assert served["prediction"].tolist() == expected["prediction"].tolist()
    np.testing.assert_allclose(served["p(yes)"], expected["p(yes)"], atol=1e-6)


def test_image_datasets_are_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "fashion.toml"
    study.write_text(
        'name = "fashion"\ndataset = {name = "fashion_mnist", limit = 100}\n[model]\n'
        'layers = [{type = "flatten"}, {type = "dense", units = 10, activation = "softmax"}]\n'
        '[train]\nloss = "sparse_categorical_crossentropy"\noptimizer = "adam"\nepochs = 1\n'
        "batch_size = 32\n",
        encoding="utf-8",
    )
    args = ["fit", str(study), "--variant", "baseline", "-o", str(tmp_path / "m")]
    assert main([*args, "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "fit supports tables" in err[0] and "images (fashion_mnist)" in err[0]


def test_runs_of_a_changed_recipe_do_not_count(
    fitted: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = fitted["folder"]
    changed = folder / "churn-changed.toml"  # the same study, its epochs edited since the runs
    changed.write_text(STUDY.format(epochs=7, evaluate=""), encoding="utf-8")
    args = ["fit", str(changed), "--variant", "baseline", "-o", str(folder / "changed-model")]
    capsys.readouterr()
    assert main([*args, "--out", str(folder / "runs")]) == 2
    assert "run the study first" in " ".join(capsys.readouterr().err.split())


def test_a_plain_table_gets_the_same_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the column keys (no impute, no dates): the same kind of MODEL_DIR, its text
    column one-hot over every value of the file, and a missing cell refused at predict time."""
    import tricklab

    rng = np.random.default_rng(1)
    lines = ["size,color,price"]
    for _ in range(60):
        size = rng.normal(10, 3)
        color = str(rng.choice(["red", "green", "blue"]))
        lines.append(f"{size:.3f},{color},{2 * size + (5 if color == 'red' else 0):.3f}")
    (tmp_path / "shop.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    study = tmp_path / "shop.toml"
    study.write_text(
        'name = "shop"\ndataset = {csv = "shop.csv", target = "price"}\nseeds = 1\n[model]\n'
        'layers = [{type = "dense", units = 1}]\n'
        '[train]\nloss = "mse"\noptimizer = "adam"\nbatch_size = 16\nepochs = 2\n'
        'evaluate = "last"\n',
        encoding="utf-8",
    )
    model_dir = tmp_path / "model"
    args = ["fit", str(study), "--variant", "baseline", "-o", str(model_dir)]
    assert main([*args, "--out", str(tmp_path / "runs")]) == 0
    record = json.loads((model_dir / "tricklab-model.json").read_text("utf-8"))
    assert record["task"] == "regression" and record["classes"] == []
    assert record["columns"]["features"] == ["size", "color=blue", "color=green", "color=red"]
    assert [c["kind"] for c in record["columns"]["columns"]] == ["number", "text"]
    (tmp_path / "new.csv").write_text("color,size\nred,10\npurple,12\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["predict", str(model_dir), str(tmp_path / "new.csv")]) == 0
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(printed.columns) == ["row", "prediction"]
    api = tricklab.load_model(model_dir).predict(
        pd.DataFrame({"size": [10.0, 12.0], "color": ["red", "purple"]})
    )
    np.testing.assert_allclose(api["prediction"], printed["prediction"], atol=1e-6)
    (tmp_path / "gap.csv").write_text("color,size\nred,\n", encoding="utf-8")
    assert main(["predict", str(model_dir), str(tmp_path / "gap.csv")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "gap.csv: line 2, column 'size': missing value" in err
