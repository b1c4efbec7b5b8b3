"""The command line: help without Keras, datasets, summary, run/export/predict, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import TINY_TOML, write_study

from tricklab.cli import main

COMMANDS = [
    "run",
    "summary",
    "lint",
    "datasets",
    "report",
    "status",
    "export",
    "predict",
    "activations",
    "lr-find",
    "init",
    "fit",
]


def tricklab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tricklab", *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_command_has_help_and_does_not_start_keras(command: str | None) -> None:
    args = ["--help"] if command is None else [command, "--help"]
    code = (
        "import sys; from tricklab.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('KERAS' if 'keras' in sys.modules else 'NO-KERAS')"
    )
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert "usage: tricklab" in out.stdout
    assert out.stdout.strip().endswith("NO-KERAS")


@pytest.mark.parametrize("command", [*COMMANDS, "search", "mlflow"])
def test_every_command_reports_a_usage_error_in_one_line(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A wrong type (`--seeds 1.5`) or an unknown option: one line, no usage block, exit 2.
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--no-such-option", "1.5"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.splitlines() == [err.strip()], err
    assert err.startswith(f"tricklab {command}: error: ")
    assert err.strip().endswith(f"See 'tricklab {command} --help'.")


def test_datasets_lists_the_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "thoracic" in out and "fashion_mnist" in out and "binary" in out


def test_summary_prints_the_lecture_parameter_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_study(
        tmp_path / "softmax.toml",
        """
dataset = "fashion_mnist"
[model]
layers = [{type = "flatten"}, {type = "dense", units = 10, activation = "softmax"}]
[train]
loss = "sparse_categorical_crossentropy"
""",
    )
    if main(["summary", str(path)]) == 2:
        pytest.skip("Fashion-MNIST is not available here (apt-get install dataset-fashion-mnist)")
    out = capsys.readouterr().out
    assert "7,850" in out  # "# 총 7850 parameters (10 bias)" in the lecture


def test_run_export_predict(tmp_path: Path) -> None:
    study = write_study(tmp_path / "tiny.toml", TINY_TOML)
    first = tricklab("run", str(study), "--quiet", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "trained 1 run, reused 0" in first.stdout
    assert "study tiny: 1 variant x 1 seed on jax" in first.stdout  # not "1 variants x 1 seeds"
    assert "tiny seed 0" not in first.stdout  # one line per run names variant and seed
    assert "baseline seed 0: 2 epochs" in first.stdout
    second = tricklab("run", str(study), "--quiet", cwd=tmp_path)
    assert "trained 0 runs, reused 1" in second.stdout

    run_dir = tmp_path / "runs" / "tiny" / "baseline" / "seed-0"
    exported = tricklab("export", str(run_dir), str(tmp_path / "m.keras"))
    assert exported.returncode == 0, exported.stderr
    model = keras.saving.load_model(tmp_path / "m.keras")  # plain Keras, no tricklab objects
    raw = np.loadtxt(
        Path(__file__).parents[1] / "src/tricklab/resources/thoracic.csv", delimiter=","
    )[:3]
    probabilities = model.predict(raw[:, 1:17], verbose=0)
    assert probabilities.shape == (3, 1)

    header = (
        "id,DGN,PRE4,PRE5,PRE6,PRE7,PRE8,PRE9,PRE10,PRE11,PRE14,PRE17,PRE19,PRE25,PRE30,"
        "PRE32,AGE,Risk1Yr"
    )
    rows = "\n".join(",".join(f"{v:g}" for v in row) for row in raw)
    (tmp_path / "rows.csv").write_text(header + "\n" + rows + "\n")
    predicted = tricklab("predict", str(run_dir), str(tmp_path / "rows.csv"))
    assert predicted.returncode == 0, predicted.stderr
    lines = predicted.stdout.strip().splitlines()
    assert lines[0] == "row,prediction,p(survived),p(died)"
    p_died = [float(line.split(",")[3]) for line in lines[1:]]
    np.testing.assert_allclose(p_died, probabilities[:, 0], rtol=1e-4)


def test_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    out = tricklab("run", str(tmp_path / "missing.toml"))
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: {tmp_path / 'missing.toml'}: no such study file."


def test_lint_exit_code_reflects_warnings(tmp_path: Path) -> None:
    clean = write_study(tmp_path / "clean.toml", TINY_TOML)
    assert tricklab("lint", str(clean)).returncode == 0
    linear = write_study(
        tmp_path / "linear.toml",
        TINY_TOML.replace(
            '{type = "dense", units = 8, activation = "relu"}', '{type = "dense", units = 8}'
        ),
    )
    out = tricklab("lint", str(linear))
    assert out.returncode == 1
    assert out.stdout.startswith("TL001 warning")
