"""A Python model builder in a study: ``[model] builder = "models.py:build"`` with ``args``."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from tricklab.base.errors import SpecError
from tricklab.cli import main
from tricklab.data import resolve
from tricklab.spec import StudySpec, load_study
from tricklab.study import make_plan

EXAMPLES = Path(__file__).parents[1] / "examples"

#: Records every call (as JSON lines next to itself), so tests see what tricklab passed.
BUILDER = """
import json
from pathlib import Path

import keras


def build(input_shape, outputs, width=4, depth=1):
    with open(Path(__file__).with_name("calls.jsonl"), "a") as calls:
        calls.write(json.dumps({"input_shape": list(input_shape), "outputs": outputs,
                                "width": width, "depth": depth}) + "\\n")
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for _ in range(depth):
        x = keras.layers.Dense(width, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(outputs, activation="sigmoid")(x))


def wrong_type(input_shape, outputs):
    return "a string"


def wrong_shape(input_shape, outputs):
    inputs = keras.Input(shape=input_shape)
    return keras.Model(inputs, keras.layers.Dense(3)(inputs))


def raises(input_shape, outputs):
    raise ValueError("width must be even\\nand more")


not_callable = 3
"""

STUDY = """
dataset = "thoracic"
seeds = [0]
[model]
builder = "{builder}"
{args}
[train]
loss = "binary_crossentropy"
epochs = 1
batch_size = 64
{rest}
"""


def write(
    folder: Path, builder: str = "models.py:build", args: str = "args = {width = 4}", rest: str = ""
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "models.py").write_text(BUILDER, encoding="utf-8")
    path = folder / "study.toml"
    path.write_text(STUDY.format(builder=builder, args=args, rest=rest), encoding="utf-8")
    return path


def calls(folder: Path) -> list[dict[str, Any]]:
    lines = (folder / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def error_lines(capsys: pytest.CaptureFixture[str], argv: list[str]) -> list[str]:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return [line for line in captured.err.splitlines() if line.strip()]


# -- training ------------------------------------------------------------------------------------
def test_builder_trains_from_another_cwd_records_args_and_exports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tricklab import run_study
    from tricklab.tools.export import export_model

    folder = tmp_path / "study"
    path = write(
        folder,
        rest='[variants.base]\n[variants.deep]\n"model.args.depth" = 2\n',  # not in base args
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # models.py is found next to the study file, not in the cwd
    run = run_study(path, out=tmp_path / "runs", engine="solo")
    assert sorted(r.variant for r in run.results) == ["base", "deep"]
    seen = {(c["width"], c["depth"]) for c in calls(folder)}
    assert seen == {(4, 1), (4, 2)}  # args reach the builder, with the variant's new name
    assert {c["outputs"] for c in calls(folder)} == {1}  # binary: one sigmoid output
    assert {tuple(c["input_shape"]) for c in calls(folder)} == {(16,)}  # no batch axis

    spec = json.loads((tmp_path / "runs/study/deep/seed-0/spec.json").read_text())
    model = spec["recipe"]["model"]
    assert model["builder"] == "models.py:build"  # as written: the store does not move with it
    assert model["args"] == {"width": 4, "depth": 2}  # resolved
    digest = hashlib.sha256((folder / "models.py").read_bytes()).hexdigest()
    assert model["bound"] == {
        "file": str((folder / "models.py").resolve()),
        "sha256": digest,
        "outputs": 1,
    }

    exported = export_model(tmp_path / "runs/study/deep/seed-0", tmp_path / "deep.keras")
    loaded = keras.saving.load_model(exported)
    rows = np.zeros((2, 16), dtype="float32")
    assert loaded.predict(rows, verbose=0).shape == (2, 1)


def test_multiclass_builder_gets_one_output_per_class(tmp_path: Path) -> None:
    csv = tmp_path / "three.csv"
    rng = np.random.default_rng(0)
    rows = [f"{a:.3f},{b:.3f},{'abc'[i % 3]}" for i, (a, b) in enumerate(rng.random((60, 2)))]
    csv.write_text("a,b,y\n" + "\n".join(rows) + "\n", encoding="utf-8")
    path = write(tmp_path, args="")
    text = path.read_text().replace('"thoracic"', '{csv = "three.csv", target = "y"}')
    path.write_text(text.replace("binary_crossentropy", "categorical_crossentropy"))
    resolved = resolve(load_study(path))
    recipe = resolved.spec.variants["baseline"]
    assert recipe.model.bound is not None and recipe.model.bound.outputs == 3


# -- paths over model.args -----------------------------------------------------------------------
def test_variant_grid_and_search_paths_set_names_absent_from_args(tmp_path: Path) -> None:
    from tricklab.tools.search import trial_recipe

    path = write(
        tmp_path,
        args="",  # no args at all in the base recipe
        rest='[variants.wide]\n"model.args.width" = 8\n'
        "[variants.nested]\nmodel.args.depth = 3\n"
        '[grid]\ndepth = {path = "model.args.depth", values = [1, 2]}\n',
    )
    spec = load_study(path)
    args = {name: r.model.builder_args() for name, r in spec.variants.items()}
    assert args == {
        "wide": {"width": 8},
        "nested": {"depth": 3},
        "1": {"depth": 1},
        "2": {"depth": 2},
    }
    base = {"model": {"builder": "models.py:build"}, "train": {"loss": "binary_crossentropy"}}
    assert trial_recipe(base, {"model.args.depth": 2}).model.args == {"depth": 2}
    with pytest.raises(SpecError, match=r"model\.layers: a variant cannot switch"):
        trial_recipe(base, {"model.layers": [{"type": "dense", "units": 1}]})


def test_run_key_follows_the_builder_source_not_its_folder(tmp_path: Path) -> None:
    def key(path: Path) -> str:
        return make_plan(resolve(load_study(path)), "baseline", 0).key

    path = write(tmp_path / "a")
    before = key(path)
    moved = tmp_path / "b"
    shutil.copytree(tmp_path / "a", moved)
    assert key(moved / "study.toml") == before  # the store is portable
    with (tmp_path / "a/models.py").open("a") as source:
        source.write("\n# edited\n")
    assert key(path) != before


# -- what a study file may say -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "override", "message"),
    [
        (
            {"builder": "models.py:build", "layers": [{"type": "dense", "units": 1}]},
            None,
            "model.builder: has either layers or builder (+ args), never both",
        ),
        (
            {"layers": [{"type": "dense", "units": 1}], "args": {"width": 2}},
            None,
            "model.args: args are the keyword arguments of a builder",
        ),
        (
            {"builder": "models.py:build", "args": {"outputs": 2}},
            None,
            "model.args: 'outputs' is passed by tricklab",
        ),
        ({"builder": "models.py"}, None, 'model.builder: must be "models.py:build"'),
        (
            {"layers": [{"type": "dense", "units": 1}]},
            {"model.builder": "models.py:build"},
            "variants.v: model.builder: a variant cannot switch the base recipe's layers model",
        ),
        (
            {"builder": "models.py:build"},
            {"model": {"layers": [{"type": "dense", "units": 1}]}},
            "variants.v: model.layers: a variant cannot switch the base recipe's builder model",
        ),
        ({"builder": "models.py:build", "bound": {"sha256": "0"}}, None, "unknown key 'bound'"),
        ({"builder": "models.py:build"}, {"model.bound.sha256": "0"}, "unknown key 'bound'"),
    ],
)
def test_model_table_rules(
    tmp_path: Path, model: dict[str, Any], override: dict[str, Any] | None, message: str
) -> None:
    (tmp_path / "models.py").write_text(BUILDER, encoding="utf-8")
    study: dict[str, Any] = {
        "dataset": "thoracic",
        "model": model,
        "train": {"loss": "binary_crossentropy"},
    }
    if override is not None:
        study["variants"] = {"v": override}
    with pytest.raises(SpecError) as caught:
        StudySpec.from_dict(study, source=str(tmp_path / "study.toml"))
    assert len(caught.value.lines()) == 1
    assert message in str(caught.value)


# -- errors: one located line, exit status 2 -----------------------------------------------------
@pytest.mark.parametrize(
    ("builder", "expected"),
    [
        ("missing.py:build", "missing.py: no such file"),
        ("models.py:buidl", "models.py: defines no function 'buidl'. Did you mean 'build'?"),
    ],
)
def test_missing_file_or_function_is_found_when_the_study_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], builder: str, expected: str
) -> None:
    path = write(tmp_path, builder=builder, args="")
    for command in ("lint", "run"):
        lines = error_lines(capsys, [command, str(path)])
        assert len(lines) == 1
        assert lines[0].startswith(f"error: {path}: model.builder: "), lines[0]
        assert expected in lines[0]
        assert f"Received: builder='{builder}'" in lines[0]


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("not_callable", "models.py:not_callable: 'not_callable' is a int (3), not a function."),
        ("raises", "models.py:raises(input_shape=(16,), outputs=1) raised ValueError: width must"),
        ("wrong_type", "models.py:wrong_type(input_shape=(16,), outputs=1) returned str ("),
        ("wrong_shape", "returned a model with output shape (None, 3); expected an uncompiled"),
    ],
)
def test_a_failing_builder_is_one_line_when_first_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], function: str, expected: str
) -> None:
    path = write(tmp_path, builder=f"models.py:{function}", args="")
    lines = error_lines(capsys, ["summary", str(path)])
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {path}: variants.baseline: model.builder: "), lines[0]
    assert str(tmp_path / "models.py") in lines[0]
    assert expected in lines[0]
    if function == "raises":  # and the same when a run builds it
        lines = error_lines(capsys, ["run", str(path), "--out", str(tmp_path / "runs")])
        assert len(lines) == 1
        assert "variants.baseline: model.builder: " in lines[0]
        assert expected in lines[0]


# -- a module path, lint and the example ---------------------------------------------------------
def test_dotted_module_path_is_imported_normally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    package = tmp_path / "site" / "tlbuilders"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "mlp.py").write_text(BUILDER, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    path = write(tmp_path / "study", builder="tlbuilders.mlp:build", args="args = {width = 5}")
    assert main(["summary", str(path)]) == 0
    assert "(None, 5)" in capsys.readouterr().out
    bound = load_study(path).variants["baseline"].model.bound
    assert bound is not None and bound.file is None  # imported, not loaded from a path
    assert bound.sha256 == hashlib.sha256((package / "mlp.py").read_bytes()).hexdigest()
    path.write_text(path.read_text().replace("mlp:build", "nope:build"))
    lines = error_lines(capsys, ["lint", str(path)])
    assert "model.builder: no module named 'tlbuilders.nope'" in lines[0]


def test_example_study_lints_clean_from_another_cwd(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["lint", str(EXAMPLES / "own-model.toml")]) == 0
    out = capsys.readouterr().out
    assert "0 warning(s), 0 hint(s)" in out
    spec = load_study(EXAMPLES / "own-model.toml")
    assert len(spec.variants) >= 2
    assert all(r.model.is_builder for r in spec.variants.values())
