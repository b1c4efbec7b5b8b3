"""Safe CSV intake: each rule has a CSV that triggers it (its message pinned) and one that does not.

Rules (``tricklab.data``): a feature column that is mostly numbers must be all numbers;
a text column must not have too many distinct values (``max_categories`` allows more); numbers
must fit in float32; column names must be unique; the loaded dataset records what intake did
(:func:`describe_intake`); and ``predict`` rejects a text value the model was not trained on.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TINY

from tricklab.base.errors import DataError
from tricklab.data import describe_intake, load_dataset
from tricklab.store import StudyIndex


def rows(n: int, first: str, *, y: str = "{i2}") -> str:
    """``n`` data lines: ``first`` and ``y`` formatted with i (0..n-1) and i2 (i % 2)."""
    return "".join(f"{first},{y}\n".format(i=i, i2=i % 2) for i in range(n))


def replace_lines(text: str, changes: dict[int, str]) -> str:
    """``text`` with some lines replaced; keys are 1-based line numbers in the file."""
    lines = text.splitlines()
    for number, line in changes.items():
        lines[number - 1] = line
    return "\n".join(lines) + "\n"


NUMBERS_20 = "x,y\n" + rows(20, "{i}")  # lines 2..21
NUMBERS_60 = "x,y\n" + rows(60, "{i}")  # lines 2..61
ID_60 = "id,x,y\n" + rows(60, "id{i},{i}")  # 60 distinct text values in 60 rows
LEVELS_31 = "id,x,y\n" + "".join(f"id{i % 31},{i},{i % 2}\n" for i in range(60))
LEVELS_30 = "id,x,y\n" + "".join(f"id{i % 30},{i},{i % 2}\n" for i in range(60))
LEVELS_60_IN_120 = "city,x,y\n" + "".join(f"c{i % 60},{i},{i % 2}\n" for i in range(120))
SMALL_DISTINCT = "id,x,y\n" + rows(49, "id{i},{i}")  # 49 rows: below the 50-row threshold


def mostly(bad: int, n: int, cells: str) -> str:
    return (
        f"{{f}}: column 'x': {bad} of {n} cells are not numbers: {cells}. A column that is 90% "
        "numbers or more is read as numbers; fix these cells, or make the column text on purpose "
        'with text_columns = ["x"] in the dataset table.'
    )


def levels(col: str, k: int, n: int) -> str:
    return (
        f"{{f}}: column '{col}': {k} distinct text values in {n} rows; each value becomes a "
        "one-hot feature, and a text column may have at most 50 values and at most half as many "
        f'as rows ({n // 2}). Leave the column out with drop = ["{col}"] (an identifier or free '
        f"text?), or allow it with max_categories = {k} in the dataset table."
    )


def over_max(col: str, k: int, m: int) -> str:
    return (
        f"{{f}}: column '{col}': {k} distinct text values, more than max_categories = {m}; each "
        f'value becomes a one-hot feature. Leave the column out with drop = ["{col}"], or set '
        f"max_categories = {k} in the "
        "dataset table."
    )


def float32(line: int, col: str, value: str) -> str:
    return (
        f"{{f}}: line {line}, column '{col}': {value} is outside the range of float32 (about "
        "±3.4e+38), which tricklab trains in. Rescale the column (change its unit) so every "
        "value fits."
    )


def duplicate(name: str, times: str, at: str) -> str:
    return (
        f"{{f}}: line 1: column name '{name}' appears {times} (0-based columns {at}); column "
        "names must be unique. Rename or drop the repeats."
    )


TWO_BAD = replace_lines(NUMBERS_20, {5: '"1,5",1', 17: "?,1"})
SIX_BAD = replace_lines(NUMBERS_60, {n: f"v{n},0" for n in (3, 9, 10, 20, 30, 40)})
FIRST_FIVE = "line 3: 'v3', line 9: 'v9', line 10: 'v10', line 20: 'v20', line 30: 'v30', ..."
HUGE_INT = "x,y\n1,0\n1" + "0" * 40 + ",1\n"  # pandas keeps it as a Python int (object column)

# (id, CSV text, extra dataset keys, the error message or None when the CSV loads)
CASES: list[tuple[str, str, dict[str, Any], str | None]] = [
    # 1. a feature column that is 90 % numbers or more must be all numbers
    ("mostly-numbers", TWO_BAD, {}, mostly(2, 20, "line 5: '1,5', line 17: '?'")),
    ("mostly-numbers-lists-the-first-five", SIX_BAD, {}, mostly(6, 60, FIRST_FIVE)),
    (
        "mostly-numbers-85-percent-is-text",
        replace_lines(NUMBERS_20, {3: "a,0", 4: "b,1", 5: "c,0"}),
        {},
        None,
    ),
    ("mostly-numbers-text-on-purpose", TWO_BAD, {"text_columns": ["x"]}, None),
    ("mostly-numbers-all-numbers", NUMBERS_20, {}, None),
    # 2. a text column with too many distinct values (tables of 50+ rows; max_categories allows)
    ("levels-over-50", LEVELS_60_IN_120, {}, levels("city", 60, 120)),
    ("levels-over-half-the-rows", LEVELS_31, {}, levels("id", 31, 60)),
    ("levels-all-distinct", ID_60, {}, levels("id", 60, 60)),
    ("levels-half-the-rows", LEVELS_30, {}, None),
    ("levels-small-table", SMALL_DISTINCT, {}, None),
    ("levels-allowed", LEVELS_60_IN_120, {"max_categories": 60}, None),
    ("levels-over-max", LEVELS_60_IN_120, {"max_categories": 59}, over_max("city", 60, 59)),
    (
        "levels-over-max-small-table",
        "c,y\na,0\nb,1\nc,0\n",
        {"max_categories": 2},
        over_max("c", 3, 2),
    ),
    (
        "levels-of-a-text-column-on-purpose",
        NUMBERS_60,
        {"text_columns": ["x"]},
        levels("x", 60, 60),
    ),
    # 3. numbers must fit in float32
    ("float32-feature", "x,y\n1,0\n1e300,1\n2,0\n", {}, float32(3, "x", "1e+300")),
    ("float32-negative", "x,y\n1,0\n2,1\n-4e38,0\n", {}, float32(4, "x", "-4e+38")),
    ("float32-integer-beyond-int64", HUGE_INT, {}, float32(3, "x", "1e+40")),
    ("float32-regression-target", "x,y\n1,0.5\n2,1e300\n3,0.25\n", {}, float32(3, "y", "1e+300")),
    ("float32-largest", "x,y\n1,0\n3e38,1\n-3e38,0\n", {}, None),
    # 4. column names must be unique (pandas would rename the second 'a' to 'a.1')
    ("duplicate-name", "a,b,a,y\n1,2,3,0\n4,5,6,1\n", {}, duplicate("a", "twice", "0 and 2")),
    (
        "duplicate-name-three-times",
        "y,b,b,b\n0,1,2,3\n1,4,5,6\n",
        {},
        duplicate("b", "3 times", "1, 2 and 3"),
    ),
    ("duplicate-name-none", "a,a.1,y\n1,2,0\n4,5,1\n", {}, None),
]


@pytest.mark.parametrize(
    ("text", "extra", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_intake_rule(tmp_path: Path, text: str, extra: dict[str, Any], message: str | None):
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    spec = {"csv": "data.csv", "target": "y", **extra}
    if message is None:
        data = load_dataset(spec, base_dir=tmp_path)
        assert np.isfinite(data.x).all() and len(data.y) == text.count("\n") - 1
        return
    with pytest.raises(DataError) as info:
        load_dataset(spec, base_dir=tmp_path)
    assert str(info.value) == message.format(f=path)
    assert "\n" not in str(info.value)


def test_the_table_covers_every_rule_both_ways() -> None:
    for prefix in ("mostly-numbers", "levels", "float32", "duplicate"):
        outcomes = {c[3] is None for c in CASES if c[0].startswith(prefix)}
        assert outcomes == {True, False}, prefix
    assert len({c[0] for c in CASES}) == len(CASES)


def test_a_text_column_on_purpose_keeps_its_cells_as_written(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("zip,x,y\n01,1,0\n1.0,2,1\n01,3,0\n7,4,1\n")
    data = load_dataset({"csv": "d.csv", "target": "y", "text_columns": [0]}, base_dir=tmp_path)
    assert data.feature_names == ("zip=01", "zip=1.0", "zip=7", "x")
    assert data.intake is not None and dict(data.intake.one_hot) == {"zip": 3}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"text_columns": ["zp"]},
            "{f}: text_columns: column 'zp' not found. Did you mean 'zip'? Columns: zip, x, y.",
        ),
        (
            {"text_columns": [3]},
            "{f}: text_columns: column 3 not found; the file has 3 columns (0-based indices 0-2).",
        ),
        (
            {"text_columns": ["y"]},
            "{f}: text_columns names the target column 'y'; it lists feature columns. For text "
            'classes set task = "classification".',
        ),
    ],
)
def test_text_columns_must_name_feature_columns(tmp_path: Path, extra: dict, message: str) -> None:
    path = tmp_path / "d.csv"
    path.write_text("zip,x,y\n01,1,0\n02,2,1\n")
    with pytest.raises(DataError) as info:
        load_dataset({"csv": "d.csv", "target": "y", **extra}, base_dir=tmp_path)
    assert str(info.value) == message.format(f=path)


# --- what intake did -------------------------------------------------------------------------


def test_intake_records_rows_columns_one_hot_and_the_task(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text(
        "age,colour,smoker,outcome\n30,red,yes,1\n41,green,no,0\n52,blue,no,1\n28,red,yes,0\n"
    )
    data = load_dataset({"csv": "people.csv", "target": "outcome"}, base_dir=tmp_path)
    intake = data.intake
    assert intake is not None
    assert (intake.rows, intake.columns, intake.numeric, intake.sampled) == (4, 4, 1, None)
    assert dict(intake.one_hot) == {"colour": 3, "smoker": 2}
    assert describe_intake(data) == [
        "people.csv: 4 rows, 4 columns (target 'outcome')",
        "features: 6 = 1 numeric column + one-hot colour (3 levels), smoker (2 levels)",
        "task: binary, 2 classes; why: integer target with 2 distinct values -> classification",
    ]


@pytest.mark.parametrize(
    ("y", "extra", "task", "why"),
    [
        ("{i7}", {}, "multiclass, 7 classes", "integer target with 7 distinct values"
         " -> classification"),
        ("{i}.5", {}, "regression", "float target -> regression"),
        ("{i}", {}, "regression", 'more than 20 distinct integer values (30) -> regression (set '
         'task = "classification" to override)'),
        ("c{i2}", {}, "binary, 2 classes", "text target -> classification"),
        ("{i}", {"task": "classification"}, "multiclass, 30 classes",
         'task = "classification" in the dataset table'),
        ("{i2}", {"task": "regression"}, "regression", 'task = "regression" in the dataset table'),
    ],
)  # fmt: skip
def test_intake_says_why_the_task_is_what_it_is(
    tmp_path: Path, y: str, extra: dict, task: str, why: str
) -> None:
    lines = "".join(f"{i},{y.format(i=i, i2=i % 2, i7=i % 7)}\n" for i in range(30))
    (tmp_path / "t.csv").write_text("x,y\n" + lines)
    data = load_dataset({"csv": "t.csv", "target": "y", **extra}, base_dir=tmp_path)
    assert data.intake is not None and data.intake.task_reason == why
    assert describe_intake(data)[-1] == f"task: {task}; why: {why}"


def test_intake_of_a_sample_and_of_the_built_in_data(tmp_path: Path) -> None:
    (tmp_path / "big.csv").write_text("x,y\n" + rows(400, "{i}"))
    data = load_dataset({"csv": "big.csv", "target": "y", "limit": 40}, base_dir=tmp_path)
    assert describe_intake(data)[:3] == [
        "big.csv: 400 rows, 2 columns (target 'y')",
        "limit: a stratified sample of 40 of the 400 rows",
        "features: 1 numeric column, no one-hot encoding",
    ]
    assert describe_intake(load_dataset("thoracic")) == [
        "thoracic: 470 rows, 18 columns (target 'Risk1Yr')",
        "features: 16 numeric columns, no one-hot encoding",
        "note: the id column is dropped (keep_id = true keeps it)",
        "task: binary, 2 classes; why: built in: the outcome, whether the patient died within "
        "one year",
    ]


# --- predict: text values the model was not trained on ---------------------------------------


def test_predict_features_reject_an_unseen_text_value(tmp_path: Path) -> None:
    from tricklab.tools.export import _features

    index = StudyIndex.from_json(
        {
            "resolved": {
                "dataset": {"feature_names": ["age", "colour=blue", "colour=green", "colour=red"]}
            }
        }
    )
    ok = tmp_path / "ok.csv"
    ok.write_text("colour,age\nred,30\nblue,41\n")
    x = _features(ok, index, [4], True)
    assert x.tolist() == [[30, 0, 0, 1], [41, 1, 0, 0]]
    bad = tmp_path / "bad.csv"
    bad.write_text("colour,age\nred,30\nblue,41\npurple,52\n")
    with pytest.raises(DataError) as info:
        _features(bad, index, [4], True)
    assert str(info.value) == (
        f"{bad}: line 4, column 'colour': 'purple' was not seen in training; the model knows "
        "'blue', 'green', 'red'. Use one of these, or retrain on data that has this value."
    )
    bad.write_text("colour,age\nred,30\n,41\n")
    with pytest.raises(DataError) as info:
        _features(bad, index, [4], True)
    assert str(info.value) == (
        f"{bad}: line 3, column 'colour': missing value; the model knows 'blue', 'green', 'red'. "
        "tricklab does not impute; fill the cell."
    )


def test_predict_reads_text_values_as_written(tmp_path: Path) -> None:
    from tricklab.tools.export import _features

    index = StudyIndex.from_json(
        {"resolved": {"dataset": {"feature_names": ["zip=01", "zip=1.0", "x"]}}}
    )
    path = tmp_path / "p.csv"
    path.write_text("zip,x\n01,5\n1.0,6\n")  # pandas alone would read 1.0 and 1.0
    assert _features(path, index, [3], True).tolist() == [[1, 0, 5], [0, 1, 6]]
    path.write_text("zip,x\n1,5\n")
    with pytest.raises(DataError, match=r"line 2, column 'zip': '1' was not seen in training"):
        _features(path, index, [3], True)


def test_predict_of_a_csv_run_rejects_an_unseen_value(tmp_path: Path) -> None:
    """End to end: one 1-epoch run on a CSV with a text column, then predict."""
    from tricklab import run_study
    from tricklab.spec import StudySpec
    from tricklab.tools.export import predict_csv

    colours = ("red", "green", "blue")
    (tmp_path / "train.csv").write_text(
        "age,colour,y\n" + "".join(f"{20 + i},{colours[i % 3]},{i % 2}\n" for i in range(40))
    )
    study = copy.deepcopy(TINY)
    study["dataset"] = {"csv": str(tmp_path / "train.csv"), "target": "y"}
    study["train"]["epochs"] = 1
    outcome = run_study(StudySpec.from_dict(study), out=tmp_path / "runs")
    run_dir = outcome.root / "baseline" / "seed-0"
    (tmp_path / "rows.csv").write_text("age,colour\n30,blue\n41,red\n")
    assert predict_csv(run_dir, tmp_path / "rows.csv")["prediction"].isin(["0", "1"]).all()
    (tmp_path / "rows.csv").write_text("age,colour\n30,blue\n41,purple\n")
    with pytest.raises(DataError, match=re.escape("line 3, column 'colour': 'purple' was not")):
        predict_csv(run_dir, tmp_path / "rows.csv")
