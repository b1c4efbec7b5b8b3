"""A user's own messy table: the column keys of a CSV dataset table (drop / columns, impute,
missing_indicator, dates, date_format), fitted on each run's training rows only."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tricklab.base.errors import DataError, SpecError
from tricklab.cli import main
from tricklab.data import load_dataset, make_splits
from tricklab.data._columns import read_dates
from tricklab.spec import parse_dataset

PLANS = ("basic", "plus", "pro")


def messy_rows(n: int = 240, seed: int = 0) -> list[list[str]]:
    """A churn-like table: an id, a day-first signup date, missing numbers and text, a yes/no
    target with 11:1 imbalance."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        signup = dt.date(2020, 1, 1) + dt.timedelta(days=int(rng.integers(0, 900)))
        fee = "" if rng.random() < 0.1 else f"{rng.normal(50, 10):.2f}"
        plan = "" if rng.random() < 0.08 else str(rng.choice(PLANS))
        tenure = str(int(rng.integers(1, 60)))
        churn = "yes" if i % 12 == 0 else "no"
        rows.append([f"C{1000 + i}", f"{signup:%d/%m/%Y}", fee, plan, tenure, churn])
    return rows


HEADER = ["customer_id", "signup", "monthly_fee", "plan", "tenure", "churn"]


def write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    path.write_text("\n".join(";".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


MESSY = {
    "target": "churn",
    "delimiter": ";",
    "drop": ["customer_id"],
    "impute": "median",
    "missing_indicator": True,
    "dates": ["signup"],
}


def load(path: Path, **keys: Any) -> Any:
    return load_dataset({"csv": str(path), **keys})


# --- the messy table trains -----------------------------------------------------------------


def test_messy_table_trains_without_editing_it(tmp_path: Path) -> None:
    from tricklab import run_study

    csv = write(tmp_path / "churn.csv", messy_rows())
    before = csv.read_bytes()
    study = tmp_path / "churn.toml"
    study.write_text(
        'name = "churn"\nseeds = 1\n'
        'dataset = {csv = "churn.csv", target = "churn", delimiter = ";", '
        'drop = ["customer_id"], impute = "median", missing_indicator = true, '
        'dates = ["signup"], date_format = "%d/%m/%Y"}\n'
        "[model]\n"
        'layers = [{type = "dense", units = 4, activation = "relu"}, '
        '{type = "dense", units = 1, activation = "sigmoid"}]\n'
        '[train]\nloss = "binary_crossentropy"\noptimizer = "adam"\nbatch_size = 64\n'
        "epochs = 1\n",
        encoding="utf-8",
    )
    assert main(["lint", str(study)]) == 0  # lint stays clean on the column keys
    outcome = run_study(study, out=tmp_path / "runs", engine="solo")
    assert [r.status.value for r in outcome.results] == ["ok"]
    result = outcome.results[0]
    assert np.isfinite(result.test["last"]["auc"])
    # each run's input has the features of its own training rows
    dataset = load(csv, **MESSY)
    splits = make_splits(dataset, validation=0.1, seed=0)
    assert result.input_shape == [splits.x_train.shape[1]]
    assert csv.read_bytes() == before
    index = json.loads((tmp_path / "runs" / "churn" / "study.json").read_text(encoding="utf-8"))
    columns = index["resolved"]["dataset"]["columns"]
    assert columns["dropped"] == ["customer_id"]
    assert [c["kind"] for c in columns["columns"]] == ["date", "number", "text", "number"]
    references = sorted((tmp_path / "runs" / "churn" / "references").glob("*.json"))
    assert references  # the reference models fit on the run's own preprocessed rows
    # the run's model takes its own fitted features: a bare .keras of it cannot take raw rows,
    # so export refuses; predict fits the run's columns again and reads the table's raw rows
    run_dir = tmp_path / "runs" / "churn" / "baseline" / "seed-0"
    assert main(["export", str(run_dir)]) == 2
    assert not (run_dir / "model.keras").exists()
    assert main(["predict", str(run_dir), str(csv)]) == 0


def test_per_run_columns_train_solo_under_auto_and_population_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each run has its own features, so runs cannot share a population's one copy of x."""
    write(tmp_path / "churn.csv", messy_rows())
    study = tmp_path / "churn.toml"
    study.write_text(
        'name = "churn"\nseeds = 2\n'
        'dataset = {csv = "churn.csv", target = "churn", delimiter = ";", '
        'drop = ["customer_id"], impute = "median", dates = ["signup"], '
        'date_format = "%d/%m/%Y"}\n'
        '[model]\nlayers = [{type = "dense", units = 1, activation = "sigmoid"}]\n'
        '[train]\nloss = "binary_crossentropy"\nepochs = 1\n',
        encoding="utf-8",
    )
    runs = str(tmp_path / "runs")
    assert main(["run", str(study), "--out", runs, "--engine", "population"]) == 2
    err = capsys.readouterr().err
    assert "--engine population does not train a table whose columns are fitted per run" in err
    assert main(["run", str(study), "--out", runs, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.count("solo engine (the table's columns are fitted on each run's training") == 2


def test_intake_says_what_the_keys_do(tmp_path: Path) -> None:
    from tricklab.data import describe_intake

    dataset = load(write(tmp_path / "churn.csv", messy_rows()), **MESSY)
    assert dataset.fitted_per_run
    assert dataset.feature_names == ("signup", "monthly_fee", "plan", "tenure")
    lines = describe_intake(dataset)
    assert lines[1] == (
        "features: up to 11 per run = 2 numeric columns + one-hot plan (3 levels) + date "
        "signup (4) + 2 missing indicators"
    )
    assert lines[2].startswith("note: left out customer_id; imputed monthly_fee (median), plan")


def test_fitted_record_is_plain_json(tmp_path: Path) -> None:
    dataset = load(write(tmp_path / "churn.csv", messy_rows()), **MESSY)
    splits = make_splits(dataset, validation=0.1, seed=0)
    fitted = splits.fitted
    assert fitted is not None
    assert json.loads(json.dumps(fitted)) == fitted
    assert fitted["dropped"] == ["customer_id"]
    assert fitted["features"] == [
        "signup:year",
        "signup:month",
        "signup:weekday",
        "signup:days",
        "monthly_fee",
        "monthly_fee:missing",
        "plan=basic",
        "plan=plus",
        "plan=pro",
        "plan:missing",
        "tenure",
    ]
    by_name = {c["name"]: c for c in fitted["columns"]}
    assert by_name["plan"]["impute"] == "most_frequent"  # text under impute = "median"
    assert by_name["plan"]["levels"] == list(PLANS)
    assert by_name["signup"]["date_format"] == "%d/%m/%Y"
    assert len(fitted["standardize"]["mean"]) == splits.x_train.shape[1]
    # the training part is standardised with its own statistics
    np.testing.assert_allclose(splits.x_train.mean(axis=0), 0, atol=1e-5)


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent"])
def test_imputation_values_are_simple_imputers_on_training_rows(
    tmp_path: Path, strategy: str
) -> None:
    from sklearn.impute import SimpleImputer

    rows = messy_rows()
    dataset = load(write(tmp_path / "churn.csv", rows), **{**MESSY, "impute": strategy})
    splits = make_splits(dataset, validation=0.1, seed=3)
    fees = np.array([float(r[2]) if r[2] else np.nan for r in rows])[splits.rows["train"]]
    expected = SimpleImputer(strategy=strategy).fit(fees[:, None]).statistics_[0]
    fee = next(c for c in splits.fitted["columns"] if c["name"] == "monthly_fee")
    assert fee["fill"] == pytest.approx(expected)


# --- leakage: nothing is learnt from test rows ---------------------------------------------


def _fitted(csv: Path, seed: int, **split: Any) -> tuple[dict[str, Any], Any]:
    dataset = load(csv, **MESSY)
    splits = make_splits(dataset, validation=0.1, seed=seed, **split)
    assert splits.fitted is not None
    return splits.fitted, splits


@pytest.mark.parametrize("split", [{}, {"fold": 1, "folds": 4}], ids=["hold-out", "cv-fold"])
def test_test_rows_influence_nothing_that_is_fitted(tmp_path: Path, split: dict) -> None:
    rows = messy_rows()
    original, splits = _fitted(write(tmp_path / "a.csv", rows), 5, **split)
    test = set(splits.rows["test"].tolist())
    # change every feature of the run's test rows: numbers, a text value never seen, missing
    # cells, dates years before the first one
    changed = [list(r) for r in rows]
    for i in test:
        changed[i][1] = "01/01/1990"
        changed[i][2] = "" if i % 2 else "99999.5"
        changed[i][3] = "enterprise" if i % 3 else ""
        changed[i][4] = "1000"
    again, other = _fitted(write(tmp_path / "b.csv", changed), 5, **split)
    assert other.rows["test"].tolist() == splits.rows["test"].tolist()
    assert again == original  # imputation values, indicators, levels, date origin, mean/std
    np.testing.assert_array_equal(other.x_train, splits.x_train)
    np.testing.assert_array_equal(other.x_val, splits.x_val)
    # the new level is unknown to the run: its test rows encode it as zeros
    assert "plan=enterprise" not in again["features"]
    assert not np.array_equal(other.x_test, splits.x_test)


def test_training_rows_do_change_what_is_fitted(tmp_path: Path) -> None:
    """The leakage test's control: the same change in the training rows changes the fit."""
    rows = messy_rows()
    original, splits = _fitted(write(tmp_path / "a.csv", rows), 5)
    changed = [list(r) for r in rows]
    for i in splits.rows["train"][:20]:
        changed[i][1] = "01/01/1990"
        changed[i][2] = "99999.5"
        changed[i][3] = "enterprise"
    again, _ = _fitted(write(tmp_path / "b.csv", changed), 5)
    columns = {c["name"]: c for c in again["columns"]}
    before = {c["name"]: c for c in original["columns"]}
    assert columns["signup"]["origin"] == "1990-01-01" != before["signup"]["origin"]
    assert columns["monthly_fee"]["fill"] != before["monthly_fee"]["fill"]
    assert "enterprise" in columns["plan"]["levels"]
    assert again["standardize"] != original["standardize"]


def test_missing_indicator_follows_the_training_rows(tmp_path: Path) -> None:
    rows = messy_rows()
    _, splits = _fitted(write(tmp_path / "a.csv", rows), 0)
    train = set(splits.rows["train"].tolist())
    filled = [list(r) for r in rows]
    for i, row in enumerate(filled):
        if i in train and not row[2]:
            row[2] = "50.00"  # no training row misses a fee now; test rows still may
    fitted, again = _fitted(write(tmp_path / "b.csv", filled), 0)
    fee = next(c for c in fitted["columns"] if c["name"] == "monthly_fee")
    assert fee["missing_indicator"] is False
    assert "monthly_fee:missing" not in fitted["features"]
    assert again.x_train.shape[1] == splits.x_train.shape[1] - 1


# --- columns and drop -------------------------------------------------------------------------


def test_columns_keeps_what_drop_does_not_remove(tmp_path: Path) -> None:
    csv = write(tmp_path / "churn.csv", messy_rows())
    dropped = load(csv, **MESSY)
    kept = load(
        csv,
        **{k: v for k, v in MESSY.items() if k != "drop"},
        columns=["signup", "monthly_fee", "plan", "tenure"],
    )
    assert kept.feature_names == dropped.feature_names
    np.testing.assert_array_equal(kept.x, dropped.x)
    only = load(csv, target="churn", delimiter=";", columns=["tenure"])
    assert only.feature_names == ("tenure",)
    assert not only.fitted_per_run  # numbers only, none missing: nothing fitted but scaling


def test_columns_and_drop_are_never_both() -> None:
    with pytest.raises(SpecError) as caught:
        parse_dataset({"csv": "x.csv", "target": "y", "drop": ["a"], "columns": ["b"]})
    assert str(caught.value) == (
        "columns: cannot be used with drop: columns keeps only the listed feature columns, drop "
        "leaves out the listed ones; use one of them. Received: columns=['b'], drop=['a']."
    )


def test_plain_tables_are_unchanged(tmp_path: Path) -> None:
    """Without the column keys one-hot levels come from the file as before (no plan)."""
    csv = tmp_path / "plain.csv"
    csv.write_text("a,c,y\n1,x,0\n2,y,1\n3,x,0\n4,z,1\n5,y,0\n6,x,1\n", encoding="utf-8")
    dataset = load(csv, target="y")
    assert not dataset.fitted_per_run
    assert dataset.feature_names == ("a", "c=x", "c=y", "c=z")
    splits = make_splits(dataset, validation="test", seed=0)
    assert splits.fitted is None


# --- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cells", "form"),
    [
        (["2021-03-31", "2020-12-01"], "ISO"),
        (["2021-03-31T08:30:00", "2020-12-01"], "ISO"),
        (["31/03/2021", "01/12/2020"], "%d/%m/%Y"),
        (["31.03.2021", "01.12.2020"], "%d.%m.%Y"),
        (["31-03-2021", "01-12-2020"], "%d-%m-%Y"),
        (["03/31/2021", "12/01/2020"], "%m/%d/%Y"),
    ],
)
def test_date_forms_are_recognised(cells: list[str], form: str) -> None:
    forms, days = read_dates(cells, None)
    assert forms == [form]
    assert days[0] is not None and int(days[0]) == (dt.date(2021, 3, 31) - dt.date(1970, 1, 1)).days


def test_dates_become_year_month_weekday_and_days(tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text(
        "when,y\n2021-03-31,0\n2021-04-02,1\n2021-04-03,0\n2021-04-05,1\n", encoding="utf-8"
    )
    dataset = load(csv, target="y", dates=["when"], test=0.5, standardize=False)
    splits = make_splits(dataset, validation="test", seed=0)
    assert splits.fitted is not None
    origin = splits.fitted["columns"][0]["origin"]
    train_rows = splits.rows["train"].tolist()
    days = [dt.date(2021, 3, 31), dt.date(2021, 4, 2), dt.date(2021, 4, 3), dt.date(2021, 4, 5)]
    assert origin == min(days[i] for i in train_rows).isoformat()
    first = dt.date.fromisoformat(origin)
    for row, i in zip(splits.x_train, train_rows, strict=True):
        day = days[i]
        assert row.tolist() == [day.year, day.month, day.weekday(), (day - first).days]


def test_date_format_settles_an_ambiguous_column(tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("when,y\n03/04/2021,0\n05/06/2021,1\n07/08/2021,0\n", encoding="utf-8")
    day_first = load(csv, target="y", dates=["when"], date_format="%d/%m/%Y")
    month_first = load(csv, target="y", dates=["when"], date_format={"when": "%m/%d/%Y"})
    expected = (dt.date(2021, 4, 3) - dt.date(1970, 1, 1)).days
    assert day_first.x[0, 0] == expected
    assert month_first.x[0, 0] == (dt.date(2021, 3, 4) - dt.date(1970, 1, 1)).days


# --- errors: one located line -----------------------------------------------------------------

STUDY = """
dataset = {{csv = "data.csv", target = "y", {keys}}}
[model]
layers = [{{type = "dense", units = 1, activation = "sigmoid"}}]
[train]
loss = "binary_crossentropy"
"""
TABLE = "id,when,a,c,y\n1,2021-01-02,1.5,x,0\n2,2021-01-03,,y,1\n3,2021-01-04,2.5,,0\n4,,3.5,x,1\n"

ERRORS = [
    (
        "drop-unknown",
        'drop = ["idd"]',
        TABLE,
        "{csv}: drop: column 'idd' not found. Did you mean 'id'? Columns: id, when, a, c, y.",
    ),
    (
        "drop-target",
        'drop = ["y"]',
        TABLE,
        "{csv}: drop names the target column 'y'; drop lists feature columns to leave out.",
    ),
    (
        "columns-unknown",
        'columns = ["a", "cc"]',
        TABLE,
        "{csv}: columns: column 'cc' not found. Columns: id, when, a, c, y.",
    ),
    (
        "both",
        'drop = ["id"], columns = ["a"]',
        TABLE,
        None,  # a spec error: see test_columns_and_drop_are_never_both
    ),
    (
        "not-imputed",
        'drop = ["id"], dates = ["when"], impute = {a = "mean", when = "median"}',
        TABLE,
        "{csv}: line 4, column 'c': missing value, and impute does not name the column. Add "
        'it to the impute table ({c = "median"}, or "mean", "most_frequent"), or fill the '
        "cells.",
    ),
    (
        "no-impute",
        'drop = ["id"], dates = ["when"]',
        TABLE,
        "{csv}: line 3, column 'a': missing value (and 2 more missing values, on lines 4, 5). "
        'Fill or drop the rows, or set impute = "median" (or "mean", "most_frequent") in the '
        "dataset table.",
    ),
    (
        "target-missing",
        'impute = "mean", dates = ["when"]',
        TABLE.replace("4,,3.5,x,1", "4,,3.5,x,"),
        "{csv}: line 5, column 'y': missing value in the target column; the target is never "
        "imputed. Fill or drop the rows.",
    ),
    (
        "text-mean",
        'impute = {a = "mean", c = "mean", when = "median"}, dates = ["when"]',
        TABLE,
        '{csv}: impute.c: "mean" needs numbers, and column \'c\' is text. Use "most_frequent".',
    ),
    (
        "impute-dropped",
        'drop = ["a"], impute = {a = "mean"}',
        TABLE,
        "{csv}: impute.a names column 'a', which drop leaves out.",
    ),
    (
        "not-a-date",
        'dates = ["when"], impute = "median"',
        TABLE.replace("2021-01-03", "yesterday"),
        "{csv}: line 3, column 'when': 'yesterday' is not a date. Accepted: ISO 8601 "
        "(2021-03-31), day-first (31/03/2021) or month-first (03/31/2021) with / - or . between "
        'the parts, or any form given as date_format = "%d/%m/%Y" in the dataset table.',
    ),
    (
        "not-in-format",
        'dates = ["when"], date_format = "%d/%m/%Y", impute = "median"',
        TABLE,
        "{csv}: line 2, column 'when': '2021-01-02' is not a date in date_format '%d/%m/%Y' "
        "(and 2 more cells).",
    ),
    (
        "ambiguous",
        'dates = ["when"], impute = "median"',
        TABLE.replace("2021-01-02", "03/04/2021")
        .replace("2021-01-03", "05/06/2021")
        .replace("2021-01-04", "07/08/2021"),
        "{csv}: line 2, column 'when': '03/04/2021': every date of the column reads both "
        'day-first (%d/%m/%Y) and month-first (%m/%d/%Y); set date_format = "%d/%m/%Y" (or '
        '"%m/%d/%Y") in the dataset table.',
    ),
    (
        "dates-target",
        'dates = ["y"]',
        TABLE,
        "{csv}: dates names the target column 'y'; it lists feature columns.",
    ),
    (
        "text-dropped",
        'drop = ["c"], text_columns = ["c"], impute = "median"',
        TABLE,
        "{csv}: text_columns names column 'c', which drop leaves out.",
    ),
]


@pytest.mark.parametrize(
    ("keys", "csv", "expected"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_errors_are_one_located_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    keys: str,
    csv: str,
    expected: str | None,
) -> None:
    study = tmp_path / "study.toml"
    study.write_text(STUDY.format(keys=keys), encoding="utf-8")
    (tmp_path / "data.csv").write_text(csv, encoding="utf-8")
    assert main(["lint", str(study)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line.removeprefix("error: ") for line in err.splitlines()]
    assert len(lines) == 1
    if expected is not None:
        shown = expected.replace("{csv}", str(tmp_path / "data.csv"))
        assert lines == [f"{study}: dataset: {shown}"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"impute": "medain"},
            'impute: must be one of "mean", "median", "most_frequent", or a table '
            "{column = strategy}. Did you mean 'median'? Received: impute='medain'.",
        ),
        (
            {"impute": {"a": "max"}},
            "impute.a: unknown strategy 'max' for column 'a'. Expected one of: \"mean\", "
            '"median", "most_frequent".',
        ),
        (
            {"missing_indicator": True},
            "missing_indicator: needs impute: a missing indicator marks the cells impute filled. "
            'Set impute = "median" (or "mean", "most_frequent") in the dataset table.',
        ),
        (
            {"dates": ["d"], "date_format": "dd/mm/yyyy"},
            'date_format: must be a strptime format such as "%d/%m/%Y" (day/month/year) or '
            "\"%m/%d/%Y\", with %d, %m, %Y, %y, %b or %B. Received: date_format='dd/mm/yyyy'.",
        ),
        (
            {"date_format": "%d/%m/%Y"},
            "date_format: needs dates: it says how the date columns listed in dates = [...] are "
            "written.",
        ),
        (
            {"dates": ["d"], "date_format": {"e": "%d/%m/%Y"}},
            "date_format.e: names column 'e', which dates does not list. Received: dates=['d'].",
        ),
        (
            {"drop": ["a", "a"]},
            "drop: lists column 'a' twice. Received: drop=['a', 'a'].",
        ),
        (
            {"columns": []},
            "columns: must list at least one feature column to keep. Received: columns=[].",
        ),
        (
            {"header": False, "target": 0, "drop": ["a"]},
            "drop: must hold 0-based column indices (ints) when header = false. Received: "
            "drop=['a'].",
        ),
    ],
)
def test_spec_errors(table: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_dataset({"csv": "x.csv", "target": "y", **table})
    assert str(caught.value) == message


def test_todays_errors_now_say_which_key_fixes_them(tmp_path: Path) -> None:
    csv = write(tmp_path / "churn.csv", messy_rows())
    with pytest.raises(DataError) as caught:
        load(csv, target="churn", delimiter=";", impute="median")
    assert 'Leave the column out with drop = ["customer_id"]' in str(caught.value)
    with pytest.raises(DataError) as caught:
        load(csv, target="churn", delimiter=";", drop=["customer_id"], impute="median")
    assert 'read it as dates with dates = ["signup"]' in str(caught.value)
    with pytest.raises(DataError) as caught:
        load(csv, target="churn", delimiter=";", drop=["customer_id", "signup"])
    assert str(caught.value).endswith(
        'Fill or drop the rows, or set impute = "median" (or "mean", "most_frequent") in the '
        "dataset table."
    )


def test_a_missing_target_is_never_imputed_hint(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("a,y\n1,0\n2,\n3,1\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load(csv, target="y")
    assert str(caught.value) == (
        f"{csv}: line 3, column 'y': missing value. The target is never imputed; fill or drop "
        "the row."
    )


def test_a_column_with_no_values_cannot_be_imputed(tmp_path: Path) -> None:
    csv = tmp_path / "e.csv"
    csv.write_text("a,b,y\n1,,0\n2,,1\n3,,0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"column 'b' has no values, only missing cells"):
        load(csv, target="y", impute="mean")


def test_indices_without_a_header(tmp_path: Path) -> None:
    csv = tmp_path / "n.csv"
    csv.write_text("7,2021-01-02,1.5,0\n8,2021-01-09,,1\n9,2021-02-01,2.5,0\n", encoding="utf-8")
    dataset = load(csv, header=False, target=3, drop=[0], dates=[1], impute={"2": "mean"})
    assert dataset.feature_names == ("1", "2")
    assert np.isnan(dataset.x[1, 1])
