"""A population's initial weights and seed-generator states, without a Keras model per member.

After ``set_random_seed(seed)``, all the randomness of building a model comes from Python's
``random``: Keras draws ``randint(1, 10**9)`` once per unseeded random initializer and once per
``SeedGenerator`` (Dropout, GaussianNoise), in the order it constructs them. Every variable is
then a pure function of its drawn integer -- the initializer called with it as an explicit seed
(``jax.random`` with the key ``[seed, 0]``), or the seed state ``[seed, 0]`` itself -- or of
nothing (zeros, ones, constants, explicitly seeded initializers).

So one template model per cohort, built after seeding with its first member's seed, tells which
draw feeds which variable (its seeds are found in that seed's draw sequence). This covers layers
whose variable ``x`` Keras creates with their ``x_initializer`` (dense, convolution, embedding,
normalisation) and every layer's seed generators (dropout, noise, augmentation). Each member's
variables are the same functions of its own draws, called exactly as Keras calls them when it
creates a variable. The member built with the template's seed must then reproduce the
template's values bit for bit; where anything is not understood or does not match (recurrent
cells name their initializers otherwise: ``recurrent_kernel`` comes from
``recurrent_initializer``; separable convolutions likewise), :func:`initial_states` returns None
and the caller builds each member's model (:func:`built_states`), as the solo engine does.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tricklab.base import backend as _backend
from tricklab.engines._scoring import seed_everything
from tricklab.engines.build import build_model
from tricklab.spec import Recipe

#: Keras's ``make_default_seed``: ``random.randint(1, int(1e9))``.
_LOW, _HIGH = 1, 10**9
#: Draws looked at beyond one per source: room for draws that feed no variable (an initializer
#: of a bias the layer does not have).
_SPARE_DRAWS = 16

# (trainable, non-trainable) per member-stacked variable, ordered like the template's lists.
States = tuple[list[Any], list[Any]]
# A variable's value from one member's draws.
Derive = Callable[[Sequence[int]], Any]


def built_states(recipe: Recipe, input_shape: tuple[int, ...], seeds: Sequence[int]) -> States:
    """One model per member, built after ``set_random_seed`` like the solo run builds it."""
    import jax.numpy as jnp

    trainable, non_trainable = [], []
    for seed in seeds:
        seed_everything(seed)
        model = build_model(recipe, input_shape)
        trainable.append([v.value for v in model.trainable_variables])
        non_trainable.append([v.value for v in model.non_trainable_variables])
    return (
        [jnp.stack(values) for values in zip(*trainable, strict=True)],
        [jnp.stack(values) for values in zip(*non_trainable, strict=True)],
    )


def initial_states(template: Any, template_seed: int, seeds: Sequence[int]) -> States | None:
    """The members' initial variables, stacked, as ``build_model`` after ``set_random_seed(s)``
    gives them for each ``s`` in ``seeds``; None where the template does not reveal them.

    ``template`` is the cohort's model, built right after ``seed_everything(template_seed)`` and
    not trained.
    """
    import jax.numpy as jnp

    variables = [*template.trainable_variables, *template.non_trainable_variables]
    found = _derivations(template, variables, template_seed)
    if found is None:
        return None
    derive, count = found
    values: dict[int, list[Any]] = {}
    for seed in dict.fromkeys([template_seed, *seeds]):  # members sharing a seed share values
        draws = _draws(seed, count)
        values[seed] = [d(draws) for d in derive]
    # The template's own seed must give back the template, bit for bit.
    for variable, value in zip(variables, values[template_seed], strict=True):
        expected, got = np.asarray(variable.value), np.asarray(value)
        if got.dtype != expected.dtype or not np.array_equal(got, expected, equal_nan=True):
            return None
    # Stacked on the host: one transfer per variable, and no XLA program to compile for it.
    stacked = [
        jnp.asarray(np.stack([np.asarray(v) for v in per_member]))
        for per_member in zip(*(values[s] for s in seeds), strict=True)
    ]
    split = len(template.trainable_variables)
    return stacked[:split], stacked[split:]


def _derivations(template: Any, variables: list[Any], seed: int) -> tuple[list[Derive], int] | None:
    """Per variable, how it follows from a member's draws; and how many draws that reads."""
    keras = _backend.keras()
    initializers: dict[int, Any] = {}  # id(variable) -> the initializer Keras created it with
    states: set[int] = set()  # id(variable) of seed-generator states
    for layer in template._flatten_layers(include_self=False):
        states.update(id(generator.state) for generator in layer._seed_generators)
        for variable in [*layer._trainable_variables, *layer._non_trainable_variables]:
            # Keras's layers create variable ``x`` with their attribute ``x_initializer``.
            initializer = getattr(layer, f"{variable.name}_initializer", None)
            if isinstance(initializer, keras.initializers.Initializer):
                initializers[id(variable)] = initializer
    seen = _draws(seed, len(initializers) + len(states) + _SPARE_DRAWS)
    where = {value: i for i, value in enumerate(seen)}
    if len(where) < len(seen):  # a repeated draw would make positions ambiguous
        return None
    out: list[Derive] = []
    used = [-1]
    for variable in variables:
        initializer = initializers.get(id(variable))
        seeded = getattr(initializer, "_init_seed", None) is not None  # in the recipe
        if id(variable) in states:
            state = np.asarray(variable.value)
            if state.shape != (2,) or state[1] != 0 or int(state[0]) not in where:
                return None
            used.append(where[int(state[0])])
            out.append(_state(used[-1], state.dtype))
        elif initializer is None:  # a variable whose origin is not understood
            return None
        elif not hasattr(initializer, "seed") or seeded:
            # Not random (zeros, ones, constant, identity) or seeded: the same for every member.
            out.append(_fixed(variable.value))
        elif isinstance(initializer.seed, int) and initializer.seed in where:
            used.append(where[initializer.seed])
            out.append(_initialized(used[-1], initializer, variable.shape, variable.dtype))
        else:
            return None
    return out, max(used) + 1


def _fixed(value: Any) -> Derive:
    return lambda draws: value


def _state(index: int, dtype: Any) -> Derive:
    """A SeedGenerator's initial state: ``[seed, 0]``."""
    import jax.numpy as jnp

    return lambda draws: jnp.asarray(np.array([draws[index], 0], dtype=dtype))


def _initialized(index: int, initializer: Any, shape: tuple[int, ...], dtype: str) -> Derive:
    """What Keras does when it creates the variable, with the member's seed for the template's."""
    import jax.numpy as jnp

    cls, config = type(initializer), initializer.get_config()

    def derive(draws: Sequence[int]) -> Any:
        return jnp.asarray(cls.from_config({**config, "seed": draws[index]})(shape, dtype=dtype))

    return derive


def _draws(seed: int, count: int) -> list[int]:
    """The first ``count`` of Keras's default seeds after ``random.seed(seed)``."""
    rng = random.Random(seed)
    return [rng.randint(_LOW, _HIGH) for _ in range(count)]
