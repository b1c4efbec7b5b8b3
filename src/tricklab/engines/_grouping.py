"""Which engine trains which run (``--engine auto|solo|population``); no Keras here.

Runs share a population when their parameters have the same shapes and they take the same steps:
same layers carrying weights (type, units, bias, repeat), batch size and epochs. Everything else
may differ between members: seed, coefficients, dropout rates (a variant without a Dropout layer
joins as its own cohort), constraints, activations, loss, optimizer and schedule. Recipes with
convolutional, pooling, recurrent, embedding or augmentation layers train solo.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tricklab.base.errors import TricklabError
from tricklab.spec import ENGINES, SOLO_ONLY_LAYERS

if TYPE_CHECKING:
    from tricklab.spec import Recipe


@dataclass(frozen=True)
class Assignment:
    """The engine a run trains with, its population group, and why it is not in a population."""

    engine: str  # "solo" or "population"
    group: str | None  # the population it trains in
    reason: str | None = None  # set when auto (or population) fell back to solo


def population_key(recipe: Recipe) -> str:
    """Runs with the same key can train in one population."""
    shapes: list[Any] = []
    for layer in recipe.model.layers:
        if layer.type == "dense":
            shapes.append(("dense", layer.units, layer.use_bias, layer.repeat))
        elif layer.type == "batch_norm":
            shapes.append(("batch_norm", layer.center, layer.scale, layer.repeat))
        elif layer.type == "layer_norm":
            shapes.append(("layer_norm", layer.center, layer.scale, layer.repeat))
        elif layer.type == "reshape":
            shapes.append(("reshape", layer.target_shape, layer.repeat))
        elif isinstance(layer, SOLO_ONLY_LAYERS):  # trained solo; every argument shapes it
            shapes.append(tuple(sorted(layer.model_dump(mode="json").items(), key=str)))
    train = recipe.train
    return repr((tuple(shapes), train.batch_size, train.epochs))


#: Why ``auto`` trains a recipe with a layer of :data:`SOLO_ONLY_LAYERS` solo.
SOLO_LAYER_REASON = (
    "convolutional/recurrent layers train solo: vmapped over members they ran 4-5x slower "
    "than plain Keras on this CPU (benchmarks)"
)


def _solo_layer(recipe: Recipe) -> str | None:
    """The type of the first layer the population engine does not train, if any."""
    return next((x.type for x in recipe.model.layers if isinstance(x, SOLO_ONLY_LAYERS)), None)


def assign(
    recipes: Sequence[Recipe],
    *,
    choice: str,
    backend: str,
    diagnostics: bool,
    test_rows: Sequence[int] | None = None,
) -> list[Assignment]:
    """One assignment per recipe (one per planned run, in order).

    ``test_rows``: how many rows each run tests on, where runs differ (cross-validation folds
    of unequal size): members of a population hold their rows in one array, so only runs with
    equal splits share one.
    """
    if choice not in ENGINES:
        raise ValueError(f"unknown engine {choice!r}. Expected one of: {', '.join(ENGINES)}.")
    if choice == "population" and backend != "jax":
        raise TricklabError(
            f"--engine population needs the JAX backend. Received: backend={backend!r}. "
            "Use --engine solo (or auto) on other backends."
        )
    solo_layers = [_solo_layer(r) for r in recipes]
    if choice == "population" and backend == "jax":
        for layer in solo_layers:
            if layer is not None:
                raise TricklabError(
                    f"--engine population does not train {layer!r} layers (convolutional, "
                    "pooling, recurrent, embedding and augmentation layers train solo). "
                    "Received: engine='population'. Use --engine solo (or auto)."
                )
    keys = [population_key(r) for r in recipes]
    if test_rows is not None:
        keys = [f"{key}/{rows}" for key, rows in zip(keys, test_rows, strict=True)]
    sizes: dict[str, int] = defaultdict(int)
    for key in keys:
        sizes[key] += 1
    names = {key: f"population-{i + 1}" for i, key in enumerate(dict.fromkeys(keys))}
    out = []
    for index, key in enumerate(keys):
        if choice == "solo":
            out.append(Assignment("solo", None))
        elif backend != "jax":
            out.append(Assignment("solo", None, f"{backend} backend (populations need JAX)"))
        elif solo_layers[index] is not None:
            out.append(Assignment("solo", None, SOLO_LAYER_REASON))
        elif diagnostics:
            out.append(Assignment("solo", None, "diagnostics = true (measured per run)"))
        elif choice == "auto" and sizes[key] < 2:
            out.append(
                Assignment(
                    "solo", None, "no other run has its layer shapes, batch size, epochs and rows"
                )
            )
        else:
            out.append(Assignment("population", names[key]))
    return out
