"""``tricklab init DATA.csv --target COL``: a starter study that lints clean and trains as written.

The messy table is the one a new user brings: ``;`` separator, an id column, a day-first signup
date, missing numbers and categories, a yes/no target with a 10 % minority.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tricklab.cli import main


def messy_csv(path: Path, rows: int = 300, day_first: bool = True) -> Path:
    rng = np.random.default_rng(0)
    lines = ["customer_id;signup_date;age;plan;monthly_fee;support_calls;churned"]
    for i in range(rows):
        day, month, year = int(rng.integers(1, 29)), int(rng.integers(1, 13)), 2020
        date = f"{day:02d}/{month:02d}/{year}" if day_first else f"{year}-{month:02d}-{day:02d}"
        age = "" if rng.random() < 0.05 else str(int(rng.integers(18, 80)))
        plan = "" if rng.random() < 0.05 else str(rng.choice(["basic", "plus", "pro"]))
        calls = int(rng.poisson(2))
        churned = "yes" if rng.random() < 0.04 + 0.04 * calls else "no"
        fee = f"{rng.normal(40, 10):.2f}"
        lines.append(f"{5000 + i};{date};{age};{plan};{fee};{calls};{churned}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_init_reads_a_messy_table_and_writes_a_clean_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = messy_csv(tmp_path / "churn.csv")
    assert main(["init", str(data), "--target", "churned"]) == 0
    out = capsys.readouterr().out
    study = tmp_path / "churn.toml"  # the default: <csv stem>.toml beside the CSV
    assert f"wrote {study}" in out
    assert "task: binary (text target" in out and "delimiter ';'" in out
    assert "drop: customer_id (the unique integers 5000..5299: a row id)" in out
    table = tomllib.loads(study.read_text(encoding="utf-8"))
    dataset = table["dataset"]
    assert dataset["csv"] == "churn.csv" and dataset["delimiter"] == ";"
    assert dataset["drop"] == ["customer_id"] and dataset["dates"] == ["signup_date"]
    assert dataset["date_format"] == {"signup_date": "%d/%m/%Y"}
    assert dataset["impute"] == {"age": "median", "plan": "most_frequent"}
    assert dataset["missing_indicator"] is True
    assert table["cv"] == {"folds": 5, "repeats": 2}  # a small table
    assert table["variants"]["class_weight"] == {"train.class_weight": "balanced"}  # imbalanced
    assert main(["lint", str(study)]) == 0  # no error, no warning
    assert "0 warning(s)" in capsys.readouterr().out


@pytest.mark.slow
def test_init_run_fit_predict_with_no_edit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's path: a messy CSV to predictions on new raw rows, editing nothing."""
    import io

    import pandas as pd

    import tricklab

    (tmp_path / "data").mkdir()
    data = messy_csv(tmp_path / "data" / "churn.csv")
    before = data.read_bytes()
    study = tmp_path / "studies" / "churn.toml"
    assert main(["init", str(data), "--target", "churned", "-o", str(study)]) == 0
    assert tomllib.loads(study.read_text())["dataset"]["csv"] == "../data/churn.csv"
    variants = ["--variant", "baseline", "--variant", "class_weight"]
    options = ["--seeds", "1", "--epochs", "2", "--out", str(tmp_path / "r"), "--quiet"]
    assert main(["run", str(study), *variants, *options]) == 0
    model = tmp_path / "model"
    fit = [
        "fit",
        str(study),
        "--variant",
        "baseline",
        "-o",
        str(model),
        "--out",
        str(tmp_path / "r"),
    ]
    assert main(fit) == 0
    new = tmp_path / "new.csv"  # raw rows as the table writes them; the second misses its age
    new.write_text(
        "customer_id;signup_date;age;plan;monthly_fee;support_calls;churned\n"
        "9001;03/02/2021;41;pro;52.10;4;\n9002;15/06/2020;;basic;38.00;0;\n",
        encoding="utf-8",
    )
    capsys.readouterr()
    assert main(["predict", str(model), str(new)]) == 0
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(printed.columns) == ["row", "prediction", "p(no)", "p(yes)"]
    expected = tricklab.load_model(model).predict(pd.read_csv(new, sep=";"))
    pd.testing.assert_frame_equal(printed, expected, check_dtype=False, atol=1e-6)
    assert data.read_bytes() == before and study.read_text().startswith("# A starter study")


def test_an_existing_study_is_kept_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = messy_csv(tmp_path / "churn.csv", rows=60)
    study = tmp_path / "churn.toml"
    study.write_text("# mine\n", encoding="utf-8")
    assert main(["init", str(data), "--target", "churned"]) == 2
    err = capsys.readouterr().err
    assert f"{study}: already exists" in err and "--force" in err and "Traceback" not in err
    assert study.read_text() == "# mine\n"
    assert main(["init", str(data), "--target", "churned", "--force"]) == 0
    assert "[dataset]" in study.read_text()


def test_a_target_not_in_the_header_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = messy_csv(tmp_path / "churn.csv", rows=60)
    assert main(["init", str(data), "--target", "Churn"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "no column 'Churn' in the first row" in err and "'churned'" in err
    assert not (tmp_path / "churn.toml").exists()


def test_iso_dates_need_no_format_and_ambiguous_ones_are_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    iso = messy_csv(tmp_path / "iso.csv", rows=80, day_first=False)
    assert main(["init", str(iso), "--target", "churned"]) == 0
    dataset = tomllib.loads((tmp_path / "iso.toml").read_text())["dataset"]
    assert dataset["dates"] == ["signup_date"] and "date_format" not in dataset
    capsys.readouterr()
    lines = ["when;x;y"] + [
        f"0{d}/0{m}/2021;{d * m};{'a' if d % 2 else 'b'}"
        for d in range(1, 10)
        for m in range(1, 10)
    ]
    ambiguous = tmp_path / "amb.csv"
    ambiguous.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["init", str(ambiguous), "--target", "y"]) == 0
    assert "dates: when (%d/%m/%Y; day-first and month-first both fit: check it)" in (
        capsys.readouterr().out
    )
    assert "day-first and month-first both read every cell" in (tmp_path / "amb.toml").read_text()


def test_a_clean_numeric_regression_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 3))
    y = x @ [1.0, -2.0, 0.5] + rng.normal(scale=0.1, size=120)
    lines = ["a,b,c,price"] + [
        f"{r[0]:.4f},{r[1]:.4f},{r[2]:.4f},{v:.4f}" for r, v in zip(x, y, strict=True)
    ]
    data = tmp_path / "prices.csv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["init", str(data), "--target", "price"]) == 0
    table = tomllib.loads((tmp_path / "prices.toml").read_text())
    assert set(table["dataset"]) == {"csv", "target"}  # nothing to drop, date or impute
    assert table["train"]["loss"] == "mean_squared_error"
    assert "class_weight" not in table["variants"]
    assert "task: regression" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("scale", "expected"),
    [
        (lambda y: y, None),  # std near 1: as it is
        (lambda y: 50_000 + 20_000 * y, "standardize"),  # symmetric, in the tens of thousands
        (lambda y: np.exp(11 + 0.8 * y), "log"),  # positive, skewed to the right
    ],
)
def test_a_regression_target_far_from_unit_scale_gets_a_target_transform(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scale: Any, expected: str | None
) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(150, 2))
    y = scale(x @ [0.6, -0.4] + rng.normal(scale=0.3, size=150))
    lines = ["a,b,price"] + [f"{r[0]:.4f},{r[1]:.4f},{v:.4f}" for r, v in zip(x, y, strict=True)]
    data = tmp_path / "prices.csv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["init", str(data), "--target", "price"]) == 0  # lint-clean, or init raises
    written = (tmp_path / "prices.toml").read_text()
    assert tomllib.loads(written)["dataset"].get("target_transform") == expected
    printed = capsys.readouterr().out
    if expected is not None:
        assert f"target_transform = {expected!r}: " in printed
        assert "scores stay on its scale" in written  # the comment says why
