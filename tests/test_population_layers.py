"""The population engine trains every layer type, and ``--engine auto`` picks per model kind.

Each kind (convolution and pooling, recurrent, embedding on integer ids, augmentation) trains in
a population whose members reproduce their solo runs (same seed) to the tolerance of the dense
populations' tests (``tests/test_population.py``: ``rtol=1e-5``, ``atol=1e-6``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from test_population import assert_same_run, both_engines

from tricklab.engines import assign, population_key
from tricklab.engines._grouping import BUILDER_REASON, RULES, rule
from tricklab.spec import CsvSpec, ModelKind, ModelSpec, Recipe, StudySpec, model_kind

OUT = {"type": "dense", "units": 1, "activation": "sigmoid"}
# 338 training rows of 16 Thoracic features in batches of 34: 10 steps per epoch.
BASE: dict[str, Any] = {
    "name": "layers-pop",
    "dataset": "thoracic",
    "seeds": [0, 1],
    "train": {"loss": "binary_crossentropy", "batch_size": 34, "epochs": 1},
}
KINDS: dict[str, list[dict[str, Any]]] = {
    "conv2d_pooling": [
        {"type": "reshape", "target_shape": [4, 4, 1]},
        {"type": "conv2d", "filters": 2, "kernel_size": 2, "activation": "relu"},
        {"type": "separable_conv2d", "filters": 2, "kernel_size": 2, "padding": "same"},
        {"type": "max_pooling2d", "pool_size": 1},
        {"type": "global_average_pooling2d"},
        OUT,
    ],
    "conv1d_pooling": [
        {"type": "reshape", "target_shape": [16, 1]},
        {"type": "conv1d", "filters": 2, "kernel_size": 3, "activation": "relu"},
        {"type": "average_pooling1d"},
        {"type": "global_max_pooling1d"},
        OUT,
    ],
    "lstm_gru_bidirectional": [  # dropout: the LSTM cell's seed generator steps too
        {"type": "reshape", "target_shape": [4, 4]},
        {"type": "lstm", "units": 2, "return_sequences": True, "dropout": 0.2},
        {"type": "bidirectional", "layer": {"type": "gru", "units": 2}},
        OUT,
    ],
    # Every augmentation layer draws from its own seed generator per batch. random_translation
    # and random_rotation transform like random_zoom (one affine transform; each compiles for
    # tens of seconds here): the augmentation layers of tests/test_layers.py cover them solo.
    "augmentation": [
        {"type": "reshape", "target_shape": [4, 4, 1]},
        {"type": "random_flip"},
        {"type": "random_contrast", "factor": 0.2},
        {"type": "random_zoom", "height_factor": 0.2},
        {"type": "flatten"},
        OUT,
    ],
}


def table(layers: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    return {**copy.deepcopy(BASE), "model": {"layers": layers}, **top}


def assert_members_reproduce_solo(study: dict[str, Any]) -> None:
    outcomes = both_engines(study)
    assert len(outcomes["population"]) == len(outcomes["solo"]) >= 2
    for key, solo in outcomes["solo"].items():
        member = outcomes["population"][key]
        assert member.result.engine == "population" and solo.result.engine == "solo"
        assert_same_run(member, solo)
    # the members are not copies of one another: their seeds train other weights
    first, second = list(outcomes["population"].values())[:2]
    assert not np.allclose(first.weights[-2], second.weights[-2])


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_layer_kind_trains_in_a_population_like_its_solo_runs(kind: str) -> None:
    assert_members_reproduce_solo(table(KINDS[kind]))


def test_embedding_on_integer_token_ids_trains_in_a_population_like_its_solo_runs(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 6, (120, 5))
    labels = (ids[:, 0] > ids[:, 1]).astype(int)
    path = tmp_path / "ids.csv"
    rows = [",".join(map(str, [*r, y])) for r, y in zip(ids, labels, strict=True)]
    path.write_text("a,b,c,d,e,y\n" + "\n".join(rows) + "\n")
    dataset: dict[str, Any] = {"csv": str(path), "target": "y", "standardize": False}
    if "sequence" in CsvSpec.model_fields:  # token columns: x is int32, fed as it is
        dataset["sequence"] = ["a", "b", "c", "d", "e"]
    layers = [
        {"type": "embedding", "input_dim": 6, "output_dim": 3},
        {"type": "flatten"},
        {"type": "dense", "units": 4, "activation": "relu"},
        OUT,
    ]
    study = table(layers, dataset=dataset, train={**BASE["train"], "batch_size": 16})
    assert_members_reproduce_solo(study)


def test_integer_inputs_keep_their_dtype_in_the_populations_data() -> None:
    from tricklab.engines._population_data import _input_dtype

    assert _input_dtype(np.zeros((2, 3), dtype=np.int32)) is None
    assert _input_dtype(np.zeros((2, 3), dtype=np.int64)) is None
    assert _input_dtype(np.zeros((2, 3), dtype=np.float64)) == "float32"


# -- grouping and auto's rule -------------------------------------------------------------------
def recipe(layers: list[dict[str, Any]], **train: Any) -> Recipe:
    return Recipe.model_validate(
        {"model": {"layers": layers}, "train": {"loss": "binary_crossentropy", **train}}
    )


DENSE = [{"type": "dense", "units": 4, "activation": "relu"}, OUT]


def test_model_kinds() -> None:
    def kind(name: str) -> ModelKind:
        return model_kind(recipe(KINDS[name]).model.layers)

    assert model_kind(recipe(DENSE).model.layers) is ModelKind.DENSE
    assert kind("conv2d_pooling") is kind("conv1d_pooling") is ModelKind.CONVOLUTIONAL
    assert kind("augmentation") is ModelKind.CONVOLUTIONAL
    assert kind("lstm_gru_bidirectional") is ModelKind.RECURRENT
    embedding = [{"type": "embedding", "input_dim": 6, "output_dim": 3}, {"type": "flatten"}, OUT]
    assert model_kind(recipe(embedding).model.layers) is ModelKind.RECURRENT


def test_auto_chooses_per_kind_and_device_with_the_measured_reason() -> None:
    conv, dense = recipe(KINDS["conv2d_pooling"]), recipe(DENSE)
    lstm = recipe(KINDS["lstm_gru_bidirectional"])
    recipes = [conv, conv, dense, dense, lstm, lstm]

    def auto(platform: str) -> list[Any]:
        return assign(recipes, choice="auto", backend="jax", diagnostics=False, platform=platform)

    cpu = auto("cpu")
    assert [a.engine for a in cpu[2:4]] == ["population", "population"]
    assert cpu[2].group == cpu[3].group and cpu[2].reason is None
    assert [(a.engine, a.reason) for a in cpu[:2]] == [RULES[ModelKind.CONVOLUTIONAL, "cpu"]] * 2
    assert cpu[0].engine == "solo"
    assert cpu[0].reason is not None and "benchmarks/engines.py --model cnn" in cpu[0].reason
    assert cpu[0].reason.startswith("convolutional groups train solo on CPU: a population ran ")
    assert [(a.engine, a.reason) for a in cpu[4:]] == [("population", None)] * 2  # --model rnn
    assert cpu[4].group == cpu[5].group != cpu[2].group
    gpu = auto("gpu")
    assert [a.engine for a in gpu] == ["solo", "solo", "population", "population", "solo", "solo"]
    assert gpu[0].reason == "convolutional groups train solo on GPU: not measured on GPU"
    assert gpu[4].reason == "recurrent groups train solo on GPU: not measured on GPU"
    # every (kind, device) has a rule; unmeasured ones are solo and say so
    assert rule(ModelKind.CONVOLUTIONAL, "tpu") == (
        "solo",
        "convolutional groups train solo on TPU: not measured on TPU",
    )
    assert rule(ModelKind.DENSE, "gpu") == ("population", None)


def test_engine_population_trains_every_layer_type_without_refusing() -> None:
    recipes = [recipe(layers) for layers in KINDS.values() for _ in range(2)]
    out = assign(recipes, choice="population", backend="jax", diagnostics=False)
    assert [a.engine for a in out] == ["population"] * len(recipes)
    assert len({a.group for a in out}) == len(KINDS)  # one population per model


def test_population_key_keeps_shapes_and_lets_the_rest_differ() -> None:
    base = KINDS["conv2d_pooling"]
    conv = recipe(base)

    def changed(index: int, **arguments: Any) -> Recipe:
        layers = copy.deepcopy(base)
        layers[index] = {**layers[index], **arguments}
        return recipe(layers)

    # shapes: filters, kernel sizes, strides, padding, pool sizes
    for index, arguments in [
        (1, {"filters": 3}),
        (1, {"kernel_size": 3}),
        (2, {"padding": "valid"}),
        (3, {"pool_size": 2}),
    ]:
        assert population_key(changed(index, **arguments)) != population_key(conv), arguments
    # not shapes: activations, regularizers, initializers; augmentation and dropout layers
    for index, arguments in [
        (1, {"activation": "tanh"}),
        (1, {"kernel_regularizer": "l2"}),
        (1, {"kernel_initializer": "he_normal"}),
    ]:
        assert population_key(changed(index, **arguments)) == population_key(conv), arguments
    flip = recipe([base[0], {"type": "random_flip"}, *base[1:]])
    assert population_key(flip) == population_key(conv)
    lstm = KINDS["lstm_gru_bidirectional"]
    wider = copy.deepcopy(lstm)
    wider[2]["layer"]["units"] = 3
    less_dropout = copy.deepcopy(lstm)
    less_dropout[2]["layer"]["recurrent_dropout"] = 0.3
    assert population_key(recipe(wider)) != population_key(recipe(lstm))
    assert population_key(recipe(less_dropout)) == population_key(recipe(lstm))


def _builder_recipes() -> list[Any]:
    """Builder recipes: real ones where ModelSpec has ``builder``, else look-alikes."""
    train = recipe(DENSE).train
    specs = [
        ("models.py:build", {"width": 8, "depth": 2}),
        ("models.py:build", {"depth": 2, "width": 8}),  # the same arguments, another order
        ("models.py:build", {"width": 16, "depth": 2}),
        ("models.py:other", {"width": 8, "depth": 2}),
    ]
    if "builder" in ModelSpec.model_fields:
        return [
            Recipe.model_validate(
                {
                    "model": {"builder": builder, "args": args},
                    "train": train.model_dump(mode="json"),
                }
            )
            for builder, args in specs
        ]
    return [
        SimpleNamespace(model=SimpleNamespace(builder=b, args=a, layers=()), train=train)
        for b, a in specs
    ]


def test_builder_recipes_group_by_builder_and_arguments_and_train_solo_under_auto() -> None:
    build, same, wider, other = _builder_recipes()
    assert population_key(build) == population_key(same)
    assert population_key(build) != population_key(wider)
    assert population_key(build) != population_key(other)
    assert json.dumps({"depth": 2, "width": 8}) in population_key(build)
    dense = recipe(DENSE)
    assert population_key(build) != population_key(dense)
    recipes = [build, same, dense, dense]
    auto = assign(recipes, choice="auto", backend="jax", diagnostics=False, platform="cpu")
    assert [(a.engine, a.reason) for a in auto[:2]] == [("solo", BUILDER_REASON)] * 2
    assert [a.engine for a in auto[2:]] == ["population"] * 2
    forced = assign(recipes, choice="population", backend="jax", diagnostics=False)
    assert [a.engine for a in forced] == ["population"] * 4
    assert forced[0].group == forced[1].group != forced[2].group


def test_a_conv_study_runs_with_engine_population(tmp_path: Path) -> None:
    from tricklab.api import run_study

    spec = StudySpec.from_dict(table(KINDS["conv1d_pooling"], seeds=[0]))
    run = run_study(spec, out=tmp_path / "runs", engine="population")
    assert not run.failed
    assert [r.engine for r in run.results] == ["population"]
