"""Error messages a new user met, driven through the command line: one located line, exit 2.

Each case runs ``tricklab.cli.main`` in-process in a fresh temporary folder and pins the part of
the error line that locates the problem (the file, the field or column, the hint). The
``predict`` cases share one finished 1-epoch run of the tiny study (Thoracic features).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import TINY, study_toml

from tricklab.cli import main

TINY_TOML = study_toml({**TINY, "train": {**TINY["train"], "epochs": 1}})
CSV_STUDY = """
dataset = {{csv = "data.csv", target = "y"{extra}}}
[model]
layers = [{{type = "dense", units = 1, activation = "sigmoid"}}]
[train]
loss = "binary_crossentropy"
"""
THORACIC_HEADER = (
    "DGN,PRE4,PRE5,PRE6,PRE7,PRE8,PRE9,PRE10,PRE11,PRE14,PRE17,PRE19,PRE25,PRE30,PRE32,AGE"
)
ROW = "2,2.88,2.16,1,0,0,0,1,1,3,0,0,0,1,0,60"


def csv_study(extra: str = "") -> str:
    return CSV_STUDY.format(extra=extra)


class Case(NamedTuple):
    id: str
    argv: list[str]  # "{run}": the finished run's directory
    files: dict[str, str]  # written in the case's folder before the command
    message: str  # a substring of the one error line


CASES = [
    # -- [lint] ignore: the unknown code is located in the study file like other study errors
    Case(
        "lint-ignore-unknown-rule-on-lint",
        ["lint", "study.toml"],
        {"study.toml": TINY_TOML + '[lint]\nignore = {TL999 = "reason"}\n'},
        "error: study.toml: lint.ignore: unknown rule 'TL999'. Expected one of: TL001, ",
    ),
    Case(
        "lint-ignore-unknown-rule-on-run",  # refused before anything trains
        ["run", "study.toml", "--out", "runs"],
        {"study.toml": TINY_TOML + '[lint]\nignore = {TL999 = "reason"}\n'},
        "error: study.toml: lint.ignore: unknown rule 'TL999'. Expected one of: TL001, ",
    ),
    # -- a CSV with a header and no rows is not "empty"; an empty one still is
    Case(
        "csv-header-but-no-rows",
        ["lint", "s.toml"],
        {"s.toml": csv_study(), "data.csv": "a,b,y\n"},
        "error: s.toml: dataset: data.csv: the file has a header but no rows; expected at least "
        "2 data rows after the header.",
    ),
    Case(
        "csv-header-then-blank-lines",
        ["lint", "s.toml"],
        {"s.toml": csv_study(), "data.csv": "a,b,y\n\n\n"},
        "error: s.toml: dataset: data.csv: the file has a header but no rows;",
    ),
    Case(
        "csv-truly-empty",
        ["lint", "s.toml"],
        {"s.toml": csv_study(), "data.csv": ""},
        "error: s.toml: dataset: data.csv: the file is empty; expected a header row and at "
        "least 2 data rows.",
    ),
    # -- a file separated by something else than the delimiter: the hint names the option
    Case(
        "csv-semicolons-with-the-default-delimiter",
        ["lint", "s.toml"],
        {"s.toml": csv_study(), "data.csv": "a;b;y\n1;2;0\n3;4;1\n5;6;0\n"},
        "error: s.toml: dataset: data.csv: target column 'y' not found. Columns: a;b;y. The "
        "header holds ';': set delimiter = \";\" in the dataset table.",
    ),
    Case(
        "csv-tabs-with-the-default-delimiter",
        ["lint", "s.toml"],
        {"s.toml": csv_study(), "data.csv": "a\tb\ty\n1\t2\t0\n3\t4\t1\n"},
        r"Columns: a\tb\ty. The header holds a tab: "  # \t as two characters, not a tab
        r'set delimiter = "\t" in the dataset table.',
    ),
    Case(
        "csv-semicolons-and-decimal-commas",  # a parse error gets the hint too
        ["lint", "s.toml"],
        {"s.toml": csv_study(), "data.csv": "a;b;y\n1;2;0\n3,5,7;4;1\n"},
        "error: s.toml: dataset: data.csv: cannot parse as CSV: Error tokenizing data. C error: "
        "Expected 1 fields in line 3, saw 3. The header holds ';': set delimiter = \";\" in the "
        "dataset table.",
    ),
    Case(
        "csv-commas-with-delimiter-semicolon",
        ["lint", "s.toml"],
        {"s.toml": csv_study(', delimiter = ";"'), "data.csv": "a,b,y\n1,2,0\n3,4,1\n"},
        "Columns: a,b,y. The header holds ',': set delimiter = \",\" in the dataset table.",
    ),
    Case(
        "csv-semicolons-without-header",
        ["lint", "s.toml"],
        {
            "s.toml": csv_study().replace('target = "y"', "target = 2, header = false"),
            "data.csv": "1;2;0\n3;4;1\n",
        },
        "error: s.toml: dataset: data.csv: target column 2 not found; the file has 1 columns "
        "(0-based indices 0-0). Columns: 0. The first row holds ';': set delimiter = \";\" in the "
        "dataset table.",
    ),
    # -- predict: a missing or non-numeric cell is located by line (1 = the header) and column
    Case(
        "predict-missing-value-names-the-column",
        ["predict", "{run}", "rows.csv"],
        {"rows.csv": f"{THORACIC_HEADER}\n{ROW}\n{ROW.removesuffix('60')}\n"},
        "error: rows.csv: line 3, column 'AGE': missing value. tricklab does not impute; fill "
        "the cell or drop the row.",
    ),
    Case(
        "predict-missing-value-after-a-blank-line",  # the line counts the blank line
        ["predict", "{run}", "rows.csv"],
        {"rows.csv": f"{THORACIC_HEADER}\n{ROW}\n\n{ROW.replace(',2.16,', ',,')}\n"},
        "error: rows.csv: line 4, column 'PRE5': missing value.",
    ),
    Case(
        "predict-not-a-number-names-the-column-and-value",
        ["predict", "{run}", "rows.csv"],
        {"rows.csv": f"{THORACIC_HEADER}\n{ROW}\n{ROW.replace(',60', ',sixty')}\n"},
        "error: rows.csv: line 3, column 'AGE': not a number; features must be numbers. "
        "Received: 'sixty'.",
    ),
    Case(
        "predict-missing-value-without-header",
        ["predict", "{run}", "rows.csv", "--no-header"],
        {"rows.csv": f"{ROW}\n{ROW.replace(',3,0,0,', ',3,0,,')}\n"},
        "error: rows.csv: line 2, column 11 (0-based): missing value.",
    ),
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 1-epoch run of the tiny study, shared by the ``predict`` cases."""
    from tricklab import run_study
    from tricklab.spec import StudySpec

    study = copy.deepcopy(TINY)
    study["train"]["epochs"] = 1
    outcome = run_study(StudySpec.from_dict(study), out=tmp_path_factory.mktemp("runs"))
    assert outcome.trained == 1
    return outcome.root / "baseline" / "seed-0"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_message_is_one_located_line_and_exit_2(
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    argv = list(case.argv)
    if "{run}" in argv:
        run: Path = request.getfixturevalue("finished_run")
        argv = [str(run) if a == "{run}" else a for a in argv]
    monkeypatch.chdir(tmp_path)
    for name, text in case.files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")

    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert code == 2, captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert case.message in lines[0], lines[0]


def test_predict_still_reads_good_rows_after_a_blank_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    run: Path = request.getfixturevalue("finished_run")
    rows = tmp_path / "rows.csv"
    rows.write_text(f"{THORACIC_HEADER}\n{ROW}\n\n{ROW}\n", encoding="utf-8")
    assert main(["predict", str(run), str(rows)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "row,prediction,p(survived),p(died)"
    assert [line.split(",")[0] for line in out[1:]] == ["1", "2"]


def test_the_table_ids_are_unique() -> None:
    assert len({case.id for case in CASES}) == len(CASES)
