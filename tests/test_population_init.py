"""A population's initial weights and dropout seed states, derived from one model per cohort,
are those of each member's own model built after ``set_random_seed``, bit for bit."""

from __future__ import annotations

from typing import Any

import numpy as np

from tricklab.engines._initial import built_states, initial_states
from tricklab.engines._scoring import seed_everything
from tricklab.engines.build import build_model
from tricklab.spec import Recipe, StudySpec

# Every layer kind that holds a variable or a seed, and every initializer kind: default,
# configured, seeded in the recipe (the same for all members), fixed, and a random bias
# initializer of a layer without bias (a draw that feeds no variable).
LAYERS: list[dict[str, Any]] = [
    {"type": "gaussian_noise", "stddev": 0.1},
    {"type": "dense", "units": 8, "activation": "relu"},
    {"type": "dropout", "rate": 0.5},
    {
        "type": "dense",
        "units": 6,
        "kernel_initializer": {"name": "he_normal"},
        "bias_initializer": {"name": "random_normal", "stddev": 0.1},
    },
    {"type": "batch_norm"},
    {
        "type": "dense",
        "units": 6,
        "use_bias": False,
        "kernel_initializer": {"name": "orthogonal"},
        "bias_initializer": {"name": "random_uniform"},
    },
    {"type": "dense", "units": 6, "kernel_initializer": {"name": "truncated_normal", "seed": 7}},
    {
        "type": "dense",
        "units": 6,
        "repeat": 2,
        "kernel_initializer": {"name": "variance_scaling", "distribution": "untruncated_normal"},
        "bias_initializer": {"name": "constant", "value": 0.5},
    },
    {"type": "dense", "units": 6, "kernel_initializer": {"name": "identity"}},
    {"type": "dropout", "rate": 0.2},
    {"type": "dense", "units": 1, "activation": "sigmoid"},
]
SHAPE = (5,)


def recipe(layers: list[dict[str, Any]]) -> Recipe:
    table = {
        "name": "init",
        "dataset": "thoracic",
        "model": {"layers": layers},
        "train": {"loss": "binary_crossentropy"},
    }
    (only,) = StudySpec.from_dict(table).variants.values()
    return only


def derived(recipe: Recipe, seeds: list[int]) -> Any:
    seed_everything(seeds[0])  # the cohort's template, as the engine builds it
    return initial_states(build_model(recipe, SHAPE), seeds[0], seeds)


def test_derived_initial_states_equal_each_members_built_model_bit_for_bit() -> None:
    seeds = [3, 0, 3, 11, 123456]  # members may share a seed (cross-validation folds)
    model = recipe(LAYERS)
    states = derived(model, seeds)
    assert states is not None  # derived, not built
    built = built_states(model, SHAPE, seeds)
    for got, expected in zip(states, built, strict=True):
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    trainable, non_trainable = states
    kernel, seed_state = np.asarray(trainable[0]), np.asarray(non_trainable[-1])
    assert np.array_equal(kernel[0], kernel[2]) and not np.array_equal(kernel[0], kernel[1])
    assert len({tuple(row) for row in seed_state}) == 4  # one dropout stream per seed


def test_a_template_built_under_another_seed_is_not_trusted() -> None:
    model = recipe(LAYERS[:3])
    seed_everything(5)
    assert initial_states(build_model(model, SHAPE), 0, [0, 1]) is None
