"""Limits: a study's size, its TOML's nesting, its names and a CSV's columns, refused at once.

Each refusal is one pinned line, exit status 2, no traceback, and answers in well under a second
because nothing is built before the check (the grid, the seeds, the runs, the CSV's rows); the
largest cases also run under tracemalloc, so a check that expanded first would show in memory as
well as in time. ``[limits]`` raising a limit makes the same study load.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from typing import NamedTuple

import pytest

from tricklab.base.errors import DataError, SpecError
from tricklab.cli import main
from tricklab.data import load_dataset
from tricklab.spec import load_study

STUDY = """
dataset = "thoracic"
seeds = 2
[model]
layers = [{type = "dense", units = 1, activation = "sigmoid"}]
[train]
loss = "binary_crossentropy"
"""
FAST = 5.0  # seconds; the checks take milliseconds, the bound leaves room for a busy machine


def grid(*lengths: int) -> str:
    """A [grid] whose axes have these lengths (every value a valid epoch count)."""
    axes = [
        f'a{i} = {{path = "train.epochs", values = [{", ".join(map(str, range(1, n + 1)))}]}}'
        for i, n in enumerate(lengths)
    ]
    return "[grid]\n" + "\n".join(axes) + "\n"


def limits(**values: int) -> str:
    return "[limits]\n" + "".join(f"{key} = {value}\n" for key, value in values.items())


def exceeded(field: str, value: int, limit: int, key: str) -> str:
    return f"{field}: {value} exceeds the limit {limit} (raise it with [limits] {key})"


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[str, float]:
    """Run the command line; return its one error line and how long it took."""
    start = time.perf_counter()
    code = main(argv)
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0].removeprefix("error: "), elapsed


class Case(NamedTuple):
    id: str
    study: str
    message: str  # after "FILE: "
    raise_with: str | None  # a [limits] table that makes the study load, or None (too big)
    loads: tuple[int, int] = (0, 0)  # then: its variants and runs per variant


def seeds(value: object) -> str:
    return STUDY.replace("seeds = 2", f"seeds = {value}")


def cv(folds: int, repeats: int) -> str:
    return STUDY.replace("seeds = 2", f"cv = {{folds = {folds}, repeats = {repeats}}}")


CASES = [
    Case(
        "seeds-count",
        seeds(1001),
        exceeded("seeds", 1001, 1000, "max_seeds"),
        limits(max_seeds=1001),
        (1, 1001),
    ),
    Case(
        "seeds-list",
        seeds(list(range(1001))),
        exceeded("seeds", 1001, 1000, "max_seeds"),
        limits(max_seeds=1001),
        (1, 1001),
    ),
    Case("seeds-ten-million", seeds(10**7), exceeded("seeds", 10**7, 1000, "max_seeds"), None),
    Case(
        "variants-grid",
        STUDY + grid(1001),
        exceeded("variants", 1001, 1000, "max_variants"),
        limits(max_variants=1001),
        (1001, 2),
    ),
    Case(
        "variants-tables-and-grid",  # [variants.*] count with the grid's product
        STUDY + "[variants.a]\n[variants.b]\n" + grid(20, 50),
        exceeded("variants", 1002, 1000, "max_variants"),
        limits(max_variants=1002),
        (1002, 2),
    ),
    Case(
        "variants-a-million",  # 10^6 variants: counted as 10^6, never built
        STUDY + grid(10, 10, 10, 10, 10, 10),
        exceeded("variants", 10**6, 1000, "max_variants"),
        None,
    ),
    Case(
        "runs",
        seeds(700) + grid(30),
        exceeded("runs", 21000, 20000, "max_runs"),
        limits(max_runs=21000),
        (30, 700),
    ),
    Case(
        "cv-repeats",
        cv(2, 1001),
        exceeded("cv.repeats", 1001, 1000, "max_seeds"),
        limits(max_seeds=1001),
        (1, 2 * 1001),
    ),
    Case(
        "cv-runs",  # folds x repeats x variants
        cv(10**8, 2),
        exceeded("runs", 2 * 10**8, 20000, "max_runs"),
        None,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_study_over_a_limit_is_refused_at_once(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "study.toml"
    path.write_text(case.study, encoding="utf-8")
    line, elapsed = refused(["lint", str(path)], capsys)
    assert line == f"{path}: {case.message}"
    assert elapsed < FAST, elapsed
    tracemalloc.start()  # counted, not built: a few kB, where building would take hundreds of MB
    try:
        with pytest.raises(SpecError):
            load_study(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, peak
    if case.raise_with is not None:
        path.write_text(case.study + case.raise_with, encoding="utf-8")
        spec = load_study(path)
        assert (len(spec.variants), len(spec.seeds)) == case.loads


def test_seeds_on_the_command_line_obey_the_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, thirty = tmp_path / "one.toml", tmp_path / "thirty.toml"
    one.write_text(STUDY, encoding="utf-8")
    thirty.write_text(STUDY + grid(30), encoding="utf-8")
    # --out names a file: were --seeds let through, `run` would stop there, before training.
    taken = tmp_path / "taken"
    taken.write_text("x", encoding="utf-8")
    out = ["--out", str(taken)]
    line, elapsed = refused(["run", str(one), "--seeds", "1001", *out], capsys)
    assert line == f"{one}: {exceeded('--seeds', 1001, 1000, 'max_seeds')}"
    assert elapsed < FAST, elapsed
    line, _ = refused(["run", str(thirty), "--seeds", "700", *out], capsys)
    assert line == f"{thirty}: {exceeded('runs', 21000, 20000, 'max_runs')}"
    # Selecting fewer variants is a smaller study: 10 x 700 runs are within the limit.
    assert len(load_study(thirty).select([str(n) for n in range(1, 11)], 700).seeds) == 700
    with pytest.raises(SpecError, match=r"--seeds: 10000000 exceeds the limit 1000 "):
        load_study(thirty).select(["1"], 10**7)
    one.write_text(STUDY.replace("seeds = 2", "cv = {folds = 3}"), encoding="utf-8")
    with pytest.raises(SpecError, match=r"--seeds: 1001 exceeds the limit 1000 "):
        load_study(one).select(None, 1001)  # under cv, --seeds N is N repeats
    one.write_text(STUDY + limits(max_seeds=2000), encoding="utf-8")
    assert len(load_study(one).select(None, 1500).seeds) == 1500


# -- nesting depth ----------------------------------------------------------------------------


def nested(depth: int) -> str:
    """Tables nested ``depth`` deep (``[search]`` is 1): ``[search]`` takes any table."""
    return STUDY + "[search]\nk = " + "{k = " * (depth - 1) + "1" + "}" * (depth - 1) + "\n"


DEPTHS = [
    ("inline-tables-300", nested(300), "search.k.k.k...: nesting depth 51 exceeds the limit 50"),
    (
        "arrays-300",
        STUDY + "[search]\nk = " + "[" * 299 + "1" + "]" * 299 + "\n",
        "search.k[0][0]...: nesting depth 51 exceeds the limit 50",
    ),
    (
        "table-headers-300",
        STUDY + "[" + ".".join(["t"] * 300) + "]\nx = 1\n",
        "t.t.t.t...: nesting depth 51 exceeds the limit 50",
    ),
    (
        "beyond-the-parser-3000",  # tomli stops at 400 levels with a RecursionError
        nested(3000),
        "toml: nesting depth exceeds the limit 50 (tomli: TOML inline arrays/tables are nested "
        "more than the allowed 400 levels)",
    ),
]


def test_nesting_up_to_the_limit_loads(tmp_path: Path) -> None:
    path = tmp_path / "study.toml"
    path.write_text(nested(50), encoding="utf-8")
    whole: object = 1  # [search] k = {k = ... {k = 1}}: 50 tables deep, the last value kept
    for _ in range(50):
        whole = {"k": whole}
    assert load_study(path).search == whole
    path.write_text(nested(51), encoding="utf-8")
    with pytest.raises(SpecError, match="nesting depth 51 exceeds the limit 50"):
        load_study(path)


# -- names ------------------------------------------------------------------------------------

RULE = "letters, digits, '-', '_', '.' and '=' (not starting with '.')"
LONG = "x" * 40 + "'... (101 characters)"
NAMES = [
    (
        "study-trailing-newline",
        'name = "abc\\n"\n' + STUDY,
        f"name: must use only {RULE} (it names the run directory). Received: name='abc\\n'.",
    ),
    (
        "study-101-chars",
        f'name = "{"x" * 101}"\n' + STUDY,
        "name: must use at most 100 characters (it names the run directory). "
        f"Received: name='{LONG}.",
    ),
    (
        "study-bad-characters",
        'name = "my study"\n' + STUDY,
        f"name: must use only {RULE} (it names the run directory). Received: name='my study'.",
    ),
    (
        "variant-trailing-newline",
        STUDY + '[variants."v\\n"]\n',
        f"variants.'v\\n': variant names may use only {RULE} (they name run directories). "
        "Received: 'v\\n'.",
    ),
    (
        "variant-101-chars",
        STUDY + f"[variants.{'x' * 101}]\n",
        f"variants.{'x' * 40}...: variant names may use at most 100 characters (they name run "
        f"directories). Received: '{LONG}.",
    ),
    (
        "variant-slash",
        STUDY + '[variants."a/b"]\n',
        f"variants.a/b: variant names may use only {RULE} (they name run directories). "
        "Received: 'a/b'.",
    ),
    (
        "grid-value-trailing-newline",
        STUDY + '[grid]\nloss = {path = "train.loss", values = ["mse\\n"]}\n',
        f"grid.loss: variant names may use only {RULE} (they name run directories). "
        "Received: 'mse\\n'.",
    ),
    (
        "grid-option-101-chars",
        STUDY + f'[grid]\nopt = {{options = {{{"x" * 101} = {{"train.epochs" = 2}}}}}}\n',
        "grid.opt: variant names may use at most 100 characters (they name run directories). "
        f"Received: '{LONG}.",
    ),
    (
        "grid-joined-name-over-100",  # each label is short, the name they make is not
        STUDY
        + "[grid]\n"
        + "".join(f"axis_label{i} = {{path = 'train.epochs', values = [1]}}\n" for i in range(12)),
        "grid: variant names may use at most 100 characters (they name run directories). "
        "Received: 'axis_label0=1_axis_label1=1_axis_label2='... (169 characters).",
    ),
]


@pytest.mark.parametrize(
    ("study", "message"), [c[1:] for c in DEPTHS + NAMES], ids=[c[0] for c in DEPTHS + NAMES]
)
def test_deep_nesting_and_bad_names_are_one_line_when_the_study_is_read(
    study: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "study.toml"
    path.write_text(study, encoding="utf-8")
    line, elapsed = refused(["lint", str(path)], capsys)
    assert line == f"{path}: {message}"
    assert elapsed < FAST, elapsed


def test_names_of_100_characters_are_accepted(tmp_path: Path) -> None:
    name = "n" * 100
    path = tmp_path / "study.toml"
    path.write_text(
        f'name = "{name}"\n{STUDY}[variants.{name}]\n[grid]\nopt = {{options = {{{"o" * 100} '
        '= {"train.epochs" = 2}}}\n',
        encoding="utf-8",
    )
    spec = load_study(path)
    assert spec.name == name
    assert list(spec.variants) == [name, "o" * 100]


# -- CSV columns ------------------------------------------------------------------------------


def wide_csv(path: Path, columns: int, rows: int = 6) -> Path:
    """``columns`` columns in all: numeric features c0, c1, ... and a 0/1 target y last."""
    features = columns - 1
    lines = [",".join(f"c{i}" for i in range(features)) + ",y"]
    cells = [f"{i % 97}.25" for i in range(features)]
    lines += [",".join(cells[r:] + cells[:r]) + f",{r % 2}" for r in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_a_csv_of_100000_columns_is_read_in_seconds(tmp_path: Path) -> None:
    # CPU time: the machine is shared; the wall clock bound only catches a hang.
    wide_csv(tmp_path / "wide.csv", 100_000)
    cpu, wall = time.process_time(), time.perf_counter()
    data = load_dataset({"csv": "wide.csv", "target": "y"}, base_dir=tmp_path)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert data.x.shape == (6, 99_999)
    assert data.feature_names[-1] == "c99998"
    assert data.intake is not None and data.intake.columns == 100_000
    assert cpu < 10, (cpu, wall)
    assert wall < 60, (cpu, wall)


def test_a_csv_over_the_column_limit_is_refused_from_its_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = wide_csv(tmp_path / "wide.csv", 100_001)
    study = tmp_path / "study.toml"
    study.write_text(
        STUDY.replace('"thoracic"', '{csv = "wide.csv", target = "y"}'), encoding="utf-8"
    )
    line, elapsed = refused(["lint", str(study)], capsys)
    assert (
        line == f"{study}: dataset: {csv}: {exceeded('columns', 100_001, 100_000, 'max_columns')}"
    )
    assert elapsed < FAST, elapsed


def test_the_column_limit_comes_from_the_study(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a,b,c,y\n1,2,3,0\n4,5,6,1\n7,8,9,0\n1,3,5,1\n", "utf-8")
    study = tmp_path / "study.toml"
    text = STUDY.replace('"thoracic"', '{csv = "d.csv", target = "y"}')
    study.write_text(text + limits(max_columns=3), encoding="utf-8")
    from tricklab.data import load_data

    with pytest.raises(DataError) as info:
        load_data(load_study(study))
    assert str(info.value) == (
        f"{study}: dataset: {tmp_path / 'd.csv'}: {exceeded('columns', 4, 3, 'max_columns')}"
    )
    study.write_text(text + limits(max_columns=4), encoding="utf-8")
    assert load_data(load_study(study)).x.shape == (4, 3)


def test_a_repeated_name_in_a_wide_header_is_found_in_linear_time(tmp_path: Path) -> None:
    names = [f"c{i}" for i in range(99_998)] + ["c5", "y"]
    row = ",".join(["1"] * 100_000)
    (tmp_path / "d.csv").write_text(",".join(names) + "\n" + row + "\n" + row + "\n", "utf-8")
    start = time.perf_counter()
    with pytest.raises(DataError) as info:
        load_dataset({"csv": "d.csv", "target": "y"}, base_dir=tmp_path)
    assert time.perf_counter() - start < FAST
    assert str(info.value) == (
        f"{tmp_path / 'd.csv'}: line 1: column name 'c5' appears twice (0-based columns 5 and "
        "99998); column names must be unique. Rename or drop the repeats."
    )
