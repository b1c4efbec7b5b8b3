"""Study files: loading, variants (deep merge, lists, quoted paths), grids, names, seeds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_study

from tricklab.base.errors import SpecError
from tricklab.spec import DenseLayer, DropoutLayer, StudySpec, load_study

ISSUE_EXAMPLE = """
name = "thoracic-losses"           # default: file stem
dataset = "thoracic"               # or "fashion_mnist", or {csv = ..., target = ...}
seeds = 3                          # N -> seeds 0..N-1, or a list [0, 7, 42]
validation = 0.1                   # or "test"
[model]
layers = [
  {type = "dense", units = 30, activation = "relu"},
  {type = "dropout", rate = 0.5},
  {type = "dense", units = 30, activation = "relu",
   kernel_regularizer = {name = "l2", l2 = 0.01}, activity_regularizer = {name = "l1", l1 = 0.01},
   kernel_constraint = {name = "max_norm", max_value = 2.0}},
  {type = "dense", units = 1, activation = "sigmoid"},
]
[train]
loss = "binary_crossentropy"
optimizer = {name = "adam", learning_rate = 0.001, beta_1 = 0.9}   # or just "adam"
batch_size = 30
epochs = 30
early_stopping = {monitor = "val_loss", patience = 10}            # omitted = no early stopping
[variants.baseline]                                               # empty = the base recipe
[variants.mse]
train.loss = "mean_squared_error"                                 # nested tables deep-merge
[variants.no_dropout]
"model.layers[1].rate" = 0.0                                      # quoted paths reach list items
"""


def test_the_documented_example_loads(tmp_path: Path) -> None:
    spec = load_study(write_study(tmp_path / "x.toml", ISSUE_EXAMPLE))
    assert spec.name == "thoracic-losses"
    assert spec.seeds == (0, 1, 2)
    assert list(spec.variants) == ["baseline", "mse", "no_dropout"]
    assert spec.baseline_variant == "baseline"
    base, mse, no_dropout = spec.variants.values()
    assert base.train.loss.name == "binary_crossentropy"
    assert mse.train.loss.name == "mean_squared_error"
    # deep merge: the rest of [train] is kept
    assert mse.train.optimizer.args == {"learning_rate": 0.001, "beta_1": 0.9}
    assert mse.train.early_stopping.patience == 10
    assert isinstance(no_dropout.model.layers[1], DropoutLayer)
    assert no_dropout.model.layers[1].rate == 0.0
    assert base.model.layers[1].rate == 0.5  # the base is not modified
    reg = base.model.layers[2]
    assert isinstance(reg, DenseLayer)
    assert reg.kernel_regularizer.to_dict() == {"name": "l2", "l2": 0.01}
    assert reg.kernel_constraint.to_dict() == {"name": "max_norm", "max_value": 2.0}


def test_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    text = ISSUE_EXAMPLE.replace('name = "thoracic-losses"', "")
    assert load_study(write_study(tmp_path / "my-study.toml", text)).name == "my-study"


def test_a_study_file_saved_with_a_utf8_bom_reads_as_without(tmp_path: Path) -> None:
    plain = load_study(write_study(tmp_path / "plain.toml", ISSUE_EXAMPLE))
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + ISSUE_EXAMPLE.encode("utf-8"))  # as Notepad saves it
    assert load_study(path).model_dump(exclude={"source", "base_dir"}) == plain.model_dump(
        exclude={"source", "base_dir"}
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("l2 = 0.01", "l2 = inf"), "l2: must be a finite number. Received: inf."),
        (("l2 = 0.01", "l2 = nan"), "l2: must be a finite number. Received: nan."),
        (("units = 1,", "units = 1099511627776,"), "units: must be an int in [1, 65536]"),
        (("epochs = 30", "epochs = 1000000000000"), "epochs: must be an int in [1, 100000]"),
        (
            ("batch_size = 30", "batch_size = 2000000"),
            "batch_size: must be an int in [1, 1048576]",
        ),
    ],
)
def test_values_keras_would_fail_on_are_refused_when_the_file_is_read(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in ISSUE_EXAMPLE
    path = write_study(tmp_path / "x.toml", ISSUE_EXAMPLE.replace(old, new, 1))
    with pytest.raises(SpecError) as info:
        load_study(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


def test_seed_list_and_no_variants_gives_one_baseline(tiny: dict) -> None:
    tiny["seeds"] = [7, 42]
    spec = StudySpec.from_dict(tiny)
    assert spec.seeds == (7, 42)
    assert list(spec.variants) == ["baseline"]


def test_a_list_in_a_variant_replaces_the_base_list(tiny: dict) -> None:
    tiny["variants"] = {
        "deep": {
            "model": {
                "layers": [
                    {"type": "dense", "units": 4, "activation": "tanh"},
                    {"type": "dense", "units": 4, "activation": "tanh"},
                    {"type": "dense", "units": 1, "activation": "sigmoid"},
                ]
            }
        }
    }
    layers = StudySpec.from_dict(tiny).variants["deep"].model.layers
    assert [layer.units for layer in layers] == [4, 4, 1]


def test_a_component_table_with_another_name_replaces_the_base_table(tiny: dict) -> None:
    tiny["model"]["layers"][0]["kernel_regularizer"] = {"name": "l2", "l2": 0.01}
    tiny["variants"] = {
        "l1": {"model": {"layers": tiny["model"]["layers"]}},
        "stronger": {"model.layers[0].kernel_regularizer.l2": 0.1},
        "other": {"model.layers[0].kernel_regularizer": {"name": "l1", "l1": 0.001}},
    }
    spec = StudySpec.from_dict(tiny)
    assert spec.variants["stronger"].model.layers[0].kernel_regularizer.args == {"l2": 0.1}
    assert spec.variants["other"].model.layers[0].kernel_regularizer.to_dict() == {
        "name": "l1",
        "l1": 0.001,
    }


def test_optimizer_schedule_table(tiny: dict) -> None:
    tiny["train"]["optimizer"] = {
        "name": "sgd",
        "momentum": 0.9,
        "nesterov": True,
        "learning_rate": {
            "name": "exponential_decay",
            "initial_learning_rate": 0.01,
            "decay_steps": 10000,
            "decay_rate": 0.9,
        },
    }
    optimizer = StudySpec.from_dict(tiny).variants["baseline"].train.optimizer
    assert optimizer.args["learning_rate"].name == "exponential_decay"
    assert optimizer.to_dict()["learning_rate"]["decay_steps"] == 10000


def test_grid_single_axis_names_variants_by_value(tiny: dict) -> None:
    tiny["grid"] = {
        "model.layers[0].activation": [
            "relu",
            "tanh",
            {"name": "leaky_relu", "negative_slope": 0.1},
        ]
    }
    spec = StudySpec.from_dict(tiny)
    assert list(spec.variants) == ["relu", "tanh", "leaky_relu-0.1"]
    assert spec.variants["leaky_relu-0.1"].model.layers[0].activation.args == {
        "negative_slope": 0.1
    }


def test_grid_product_tied_paths_and_options(tiny: dict) -> None:
    tiny["model"]["layers"].insert(1, {"type": "dense", "units": 8, "activation": "relu"})
    tiny["grid"] = {
        "width": {"paths": ["model.layers[0].units", "model.layers[1].units"], "values": [4, 16]},
        "opt": {
            "options": {
                "adam": {"train.optimizer": "adam"},
                "sgd": {"train.optimizer": {"name": "sgd", "momentum": 0.9}},
            }
        },
    }
    spec = StudySpec.from_dict(tiny)
    assert list(spec.variants) == [
        "width=4_opt=adam",
        "width=4_opt=sgd",
        "width=16_opt=adam",
        "width=16_opt=sgd",
    ]
    recipe = spec.variants["width=16_opt=sgd"]
    assert [layer.units for layer in recipe.model.layers] == [16, 16, 1]
    assert recipe.train.optimizer.to_dict() == {"name": "sgd", "momentum": 0.9}


def test_repeat_stacks_layers_for_depth_grids(tiny: dict) -> None:
    tiny["grid"] = {"depth": {"path": "model.layers[0].repeat", "values": [1, 3]}}
    spec = StudySpec.from_dict(tiny)
    assert [v.model.layers[0].repeat for v in spec.variants.values()] == [1, 3]


def test_select_and_epochs_override(tiny: dict) -> None:
    tiny["seeds"] = 5
    tiny["variants"] = {"a": {}, "b": {"train.epochs": 7}}
    spec = StudySpec.from_dict(tiny).select(["b"], seeds=2).with_epochs(3)
    assert list(spec.variants) == ["b"]
    assert spec.seeds == (0, 1)
    assert spec.baseline_variant == "b"
    assert spec.variants["b"].train.epochs == 3


def test_specs_are_frozen(tiny: dict) -> None:
    spec = StudySpec.from_dict(tiny)
    with pytest.raises(Exception, match="frozen"):
        spec.seeds = (1,)  # type: ignore[misc]


def test_reading_a_study_does_not_import_keras(tmp_path: Path) -> None:
    path = write_study(tmp_path / "x.toml", ISSUE_EXAMPLE)
    code = (
        "import sys; from tricklab.spec import load_study; "
        f"load_study({str(path)!r}); "
        "print(sorted(m for m in ('keras', 'jax', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_error_lines_are_located_with_file_and_variant(tmp_path: Path) -> None:
    text = ISSUE_EXAMPLE + '[variants.l2]\n"model.layers[2].kernel_regularizer.name" = "l3"\n'
    path = write_study(tmp_path / "x.toml", text)
    with pytest.raises(SpecError) as info:
        load_study(path)
    assert str(info.value) == (
        f"{path}: variants.l2: model.layers[2].kernel_regularizer.name: unknown regularizer "
        "'l3'. Expected one of: l1, l1_l2, l2, orthogonal_regularizer."
    )


def test_seeds_option_takes_the_first_n_of_the_study_seeds(tiny: dict) -> None:
    tiny["seeds"] = [0, 7, 42]
    listed = StudySpec.from_dict(tiny)
    assert listed.select(seeds=2).seeds == (0, 7)  # not range(2)
    with pytest.raises(SpecError, match=r"--seeds 4: the study lists 3 seeds \(0, 7, 42\)"):
        listed.select(seeds=4)
    tiny["seeds"] = 3
    counted = StudySpec.from_dict(tiny)
    assert counted.select(seeds=2).seeds == (0, 1)
    assert counted.select(seeds=5).seeds == (0, 1, 2, 3, 4)  # a count extends
