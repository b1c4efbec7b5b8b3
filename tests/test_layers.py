"""Layers beyond dense models: specs, building, training solo, engines, memory and lint rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tricklab.base.errors import SpecError
from tricklab.data import Dataset, load_dataset
from tricklab.engines import assign, population_key
from tricklab.engines._grouping import RULES
from tricklab.engines.build import build_model
from tricklab.spec import LAYER_TYPES, ModelKind, Recipe, StudySpec
from tricklab.tools.lint import estimate, lint

OUT = {"type": "dense", "units": 2, "activation": "softmax"}
SEQ = [  # on (6,) integer ids
    {"type": "embedding", "input_dim": 5, "output_dim": 3},
    {"type": "conv1d", "filters": 2, "kernel_size": 2, "padding": "same", "activation": "relu"},
    {"type": "max_pooling1d", "pool_size": 1},
    {"type": "average_pooling1d", "pool_size": 1},
    {"type": "bidirectional", "layer": {"type": "gru", "units": 2, "return_sequences": True}},
    {"type": "lstm", "units": 2, "return_sequences": True, "recurrent_dropout": 0.1},
    {"type": "global_max_pooling1d"},
    {"type": "layer_norm"},
    OUT,
]
SEQ_AVG = [{"type": "reshape", "target_shape": [3, 2]}, {"type": "global_average_pooling1d"}, OUT]
AUGMENT = [  # each runs in training mode in the augmentation test; two also run in fit
    {"type": "random_flip", "mode": "horizontal"},
    {"type": "random_contrast", "factor": 0.2},
    {"type": "random_translation", "height_factor": 0.1, "width_factor": [-0.1, 0.1]},
    {"type": "random_rotation", "factor": 0.05},
    {"type": "random_zoom", "height_factor": 0.1},
]
IMAGE = [  # on (8, 8) images
    {"type": "reshape", "target_shape": [8, 8, 1]},
    *AUGMENT[:2],
    {"type": "conv2d", "filters": 2, "kernel_size": [3, 3], "kernel_regularizer": "l2"},
    {"type": "max_pooling2d"},
    {"type": "separable_conv2d", "filters": 2, "kernel_size": 2, "padding": "same"},
    {"type": "average_pooling2d", "pool_size": 1},
    {"type": "global_average_pooling2d"},
    OUT,
]
IMAGE_MAX = [
    {"type": "reshape", "target_shape": [8, 8, 1]},
    {"type": "conv2d", "filters": 2, "kernel_size": 3, "repeat": 2},
    {"type": "global_max_pooling2d"},
    OUT,
]
MODELS = [
    (SEQ, (6,), True),
    (SEQ_AVG, (6,), False),
    (IMAGE, (8, 8), False),
    (IMAGE_MAX, (8, 8), False),
]


def recipe(layers: list[dict[str, Any]], **train: Any) -> Recipe:
    return Recipe.model_validate(
        {"model": {"layers": layers}, "train": {"loss": "sparse_categorical_crossentropy", **train}}
    )


def study(layers: list[dict[str, Any]], **top: Any) -> StudySpec:
    raw = {"name": "t", "dataset": "thoracic", "model": {"layers": layers}}
    return StudySpec.from_dict({**raw, "train": {"loss": "binary_crossentropy"}, **top})


def test_every_layer_type_trains_one_epoch_solo_with_the_estimated_parameters() -> None:
    used = {layer["type"] for layers, _, _ in MODELS for layer in [*layers, *AUGMENT]}
    used |= {
        layer["layer"]["type"] for layers, _, _ in MODELS for layer in layers if "layer" in layer
    }
    assert used == set(LAYER_TYPES) - {
        "activation",
        "batch_norm",
        "dropout",
        "flatten",
        "gaussian_noise",
    } | {"dense"}
    rng = np.random.default_rng(0)
    for layers, shape, ids in MODELS:
        spec = recipe(layers)
        model = build_model(spec, shape)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        x = rng.integers(0, 5, (8, *shape)) if ids else rng.normal(size=(8, *shape))
        before = [w.copy() for w in model.get_weights()]
        history = model.fit(x.astype("float32"), rng.integers(0, 2, 8), epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        assert any(
            not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True)
        )
        assert estimate(spec, shape).params == model.count_params(), layers


def test_augmentation_changes_training_batches_and_leaves_evaluation_alone() -> None:
    plain = build_model(recipe(IMAGE[:1] + IMAGE[3:]), (8, 8))
    augmented = build_model(recipe([IMAGE[0], *AUGMENT, *IMAGE[3:]]), (8, 8))
    augmented.set_weights(plain.get_weights())  # augmentation layers have no weights
    x = np.random.default_rng(1).normal(size=(4, 8, 8)).astype("float32")
    evaluated = np.asarray(augmented(x, training=False))
    np.testing.assert_allclose(evaluated, np.asarray(plain(x, training=False)), rtol=1e-6)
    assert not np.allclose(np.asarray(augmented(x, training=True)), evaluated)


def test_auto_trains_conv_groups_solo_on_cpu_and_population_trains_them() -> None:
    conv = recipe(IMAGE_MAX)
    dense = recipe([{"type": "flatten"}, {"type": "dense", "units": 4}, OUT])
    recipes = [conv, conv, dense, dense]
    out = assign(recipes, choice="auto", backend="jax", diagnostics=False, platform="cpu")
    assert [a.engine for a in out] == ["solo", "solo", "population", "population"]
    assert out[0].reason == RULES[ModelKind.CONVOLUTIONAL, "cpu"][1]
    assert (out[0].reason or "").startswith("convolutional groups train solo on CPU: ")
    gpu = assign(recipes, choice="auto", backend="jax", diagnostics=False, platform="gpu")
    assert gpu[0].reason == "convolutional groups train solo on GPU: not measured on GPU"
    # --engine population trains them (it no longer refuses non-dense layers)
    forced = assign([conv, conv], choice="population", backend="jax", diagnostics=False)
    assert [a.engine for a in forced] == ["population", "population"]
    assert forced[0].group == forced[1].group
    wider = recipe([{**IMAGE_MAX[0]}, {**IMAGE_MAX[1], "filters": 3}, *IMAGE_MAX[2:]])
    assert population_key(wider) != population_key(conv)
    reshaped = recipe(
        [{"type": "reshape", "target_shape": [4, 16]}, *dense.model_dump()["model"]["layers"]]
    )
    assert population_key(reshaped) != population_key(dense)


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        (
            {"type": "conv2d", "filters": 2, "kernel_size": 0},
            "model.layers[0].kernel_size: must be a positive int or a list of 1 to 3 positive "
            "ints (one per spatial axis). Received: kernel_size=0.",
        ),
        (
            {"type": "lstm", "units": 2, "unit": 3},
            "model.layers[0]: unknown key 'unit'.",
        ),
        (
            {"type": "random_rotation", "factor": [0.1, 2]},
            "model.layers[0].factor: must be a number in [-1, 1] or a [lower, upper] pair of "
            "them. Received: factor=[0.1, 2].",
        ),
        (
            {"type": "conv1d", "filters": 70_000, "kernel_size": 3},
            "model.layers[0].filters: must be an int in [1, 65536]. Received: filters=70000.",
        ),
    ],
)
def test_a_bad_layer_argument_is_a_located_error(layer: dict[str, Any], expected: str) -> None:
    with pytest.raises(SpecError) as raised:
        study([layer, {"type": "dense", "units": 1, "activation": "sigmoid"}])
    assert str(raised.value).startswith(expected)


@pytest.fixture(scope="module")
def thoracic() -> Dataset:
    return load_dataset("thoracic")


SIGMOID = {"type": "dense", "units": 1, "activation": "sigmoid"}
CONV1D = {"type": "conv1d", "filters": 2, "kernel_size": 3}


def _codes(spec: StudySpec, dataset: Dataset) -> set[str]:
    return {f.code for f in lint(spec, dataset)} & {"TL017", "TL018", "TL019", "TL020"}


def test_layer_lint_rules_trigger_and_stay_clean(thoracic: Dataset, tmp_path: Path) -> None:
    n = thoracic.input_shape[0]
    reshape = {"type": "reshape", "target_shape": [n, 1]}
    flat = [{"type": "flatten"}, SIGMOID]
    assert _codes(study([CONV1D, *flat]), thoracic) == {"TL017"}
    assert _codes(study([reshape, CONV1D, *flat]), thoracic) == set()
    found = [f for f in lint(study([CONV1D, *flat]), thoracic) if f.code == "TL017"]
    assert f"target_shape = [{n}, 1]" in found[0].fix
    assert _codes(
        study([reshape, {"type": "max_pooling1d", "pool_size": n + 1}, *flat]), thoracic
    ) == {"TL019"}
    assert (
        _codes(study([reshape, {"type": "max_pooling1d", "pool_size": n}, *flat]), thoracic)
        == set()
    )
    zoom = {"type": "random_zoom", "height_factor": 0.1}
    image = {"type": "reshape", "target_shape": [n, 1, 1]}
    assert _codes(
        study([image, CONV1D | {"type": "conv2d", "kernel_size": [3, 1]}, zoom, *flat]), thoracic
    ) == {"TL018"}
    assert (
        _codes(
            study([image, zoom, CONV1D | {"type": "conv2d", "kernel_size": [3, 1]}, *flat]),
            thoracic,
        )
        == set()
    )
    embed = [{"type": "embedding", "input_dim": 4, "output_dim": 2}, *flat]
    assert _codes(study(embed), thoracic) == {"TL020"}  # real-valued features
    ids = tmp_path / "ids.csv"
    ids.write_text("a,b,y\n" + "".join(f"{i % 4},{i % 3},{i % 2}\n" for i in range(30)))
    on_ids = study(embed, dataset={"csv": str(ids), "target": "y"})
    assert _codes(on_ids, load_dataset(on_ids.dataset)) == set()
    too_small = study(
        [{**embed[0], "input_dim": 3}, *flat], dataset={"csv": str(ids), "target": "y"}
    )
    assert _codes(too_small, load_dataset(too_small.dataset)) == {"TL020"}
