"""Which engine trains which run (``--engine auto|solo|population``); no Keras here.

Runs share a population when their parameters have the same shapes and they take the same steps:
same layers carrying weights or shaping them (type and every argument that sets a shape:
``units``, ``filters``, kernel and pool sizes, strides, padding, ``repeat``, ...), batch size and
epochs; a recipe with a Python model builder groups by its builder and arguments. Everything else
may differ between members: seed, coefficients, dropout rates (a variant without a Dropout layer
joins as its own cohort), augmentation, constraints, activations, initializers, loss, optimizer
and schedule. ``--engine population`` trains every layer type Keras's ``train_step`` takes.

``--engine auto`` chooses per group from one table, :data:`RULES`: the model's kind
(:class:`~tricklab.spec.ModelKind`: dense, convolutional, recurrent) and the device JAX trains on
(cpu, gpu, tpu) give the engine, and where it is solo, the measured reason shown to the user.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tricklab.base.errors import TricklabError
from tricklab.spec import AUGMENTATION_LAYERS, ENGINES, SOLO_ONLY_LAYERS, ModelKind, model_kind

if TYPE_CHECKING:
    from tricklab.spec import Recipe


@dataclass(frozen=True)
class Assignment:
    """The engine a run trains with, its population group, and why it is not in a population."""

    engine: str  # "solo" or "population"
    group: str | None  # the population it trains in
    reason: str | None = None  # set when auto (or population) fell back to solo


#: Arguments that never change a parameter's or an output's shape: members may differ in them.
_SHAPELESS = ("activation", "dropout", "initializer", "regularizer", "constraint")


def _shape_arguments(value: Any) -> Any:
    """A layer's arguments without those that leave every shape alone (nested layers too)."""
    if isinstance(value, dict):
        return tuple(
            sorted(
                (key, _shape_arguments(item))
                for key, item in value.items()
                if not any(key == word or key.endswith(f"_{word}") for word in _SHAPELESS)
            )
        )
    if isinstance(value, list | tuple):
        return tuple(_shape_arguments(item) for item in value)
    return value


def population_key(recipe: Recipe) -> str:
    """Runs with the same key can train in one population."""
    shapes: list[Any] = []
    builder = getattr(recipe.model, "builder", None)
    if builder is not None:  # its layers are unknown until built: the builder and its arguments
        arguments = json.dumps(
            getattr(recipe.model, "args", None) or {}, sort_keys=True, default=str
        )
        source = getattr(getattr(recipe.model, "bound", None), "sha256", None)  # its source's
        shapes.append(("builder", builder, arguments, source))
    for layer in _layers(recipe):
        if layer.type == "dense":
            shapes.append(("dense", layer.units, layer.use_bias, layer.repeat))
        elif layer.type == "batch_norm":
            shapes.append(("batch_norm", layer.center, layer.scale, layer.repeat))
        elif layer.type == "layer_norm":
            shapes.append(("layer_norm", layer.center, layer.scale, layer.repeat))
        elif layer.type == "reshape":
            shapes.append(("reshape", layer.target_shape, layer.repeat))
        elif isinstance(layer, AUGMENTATION_LAYERS):  # no weights, shapes unchanged (as Dropout)
            continue
        elif isinstance(layer, SOLO_ONLY_LAYERS):  # convolution, pooling, recurrent, embedding
            shapes.append(_shape_arguments(layer.model_dump(mode="json")))
    train = recipe.train
    return repr((tuple(shapes), train.batch_size, train.epochs))


def _layers(recipe: Recipe) -> tuple[Any, ...]:
    """The recipe's layer specs; none for a builder model (``layers`` is None or empty)."""
    return tuple(getattr(recipe.model, "layers", None) or ())


# -- auto's rule ----------------------------------------------------------------------------------
#: Where the numbers come from (README, "Engines"): ``benchmarks/engines.py``, each way in its own
#: process, back to back, on the project's 2-core CPU machine; ratios are a population's steady
#: seconds per member-epoch over tricklab solo's.
BENCHMARK = "benchmarks/engines.py"

#: ``(model kind, device platform) -> (engine, reason)``: what ``--engine auto`` trains a group
#: of 2 or more runs with, and, for solo, why (shown in the run's log). A platform not listed
#: (or a kind measured on no device) trains solo as "not measured".
RULES: dict[tuple[ModelKind, str], tuple[str, str | None]] = {
    (ModelKind.DENSE, "cpu"): ("population", None),  # 2.0x plain Keras, 2.1x solo (--model dense)
    # Not measured on GPU/TPU: dense groups train as populations there as before (small dense
    # models are per-step overhead, what one program per population saves).
    (ModelKind.DENSE, "gpu"): ("population", None),
    (ModelKind.DENSE, "tpu"): ("population", None),
    (ModelKind.CONVOLUTIONAL, "cpu"): (
        "solo",
        "convolutional groups train solo on CPU: a population ran 5.4x slower per member-epoch "
        f"than solo ({BENCHMARK} --model cnn)",
    ),
    # --model rnn: a population ran 2.4x faster per member-epoch than solo (0.039 s vs 0.096 s;
    # 1.1x while other jobs shared the CPU) and compiled once, not per run (1.7x less wall time)
    (ModelKind.RECURRENT, "cpu"): ("population", None),
}


def _unmeasured(kind: ModelKind, platform: str) -> str:
    return (
        f"{kind.value} groups train solo on {platform.upper()}: not measured on {platform.upper()}"
    )


def rule(kind: ModelKind, platform: str) -> tuple[str, str | None]:
    """``--engine auto``'s engine for a group of this kind on this device, and why if solo."""
    return RULES.get((kind, platform), ("solo", _unmeasured(kind, platform)))


#: Why ``auto`` trains a recipe with a Python model builder solo.
BUILDER_REASON = "a Python model builder: its layers are unknown until built"


def device_platform() -> str:
    """The platform JAX trains on: ``cpu``, ``gpu`` or ``tpu`` (imports JAX)."""
    import jax

    platform = str(jax.default_backend()).lower()
    return "gpu" if platform in ("cuda", "rocm") else platform


#: Why ``auto`` trains the runs of a table with per-run fitted columns solo.
FITTED_PER_RUN_REASON = (
    "the table's columns are fitted on each run's training rows: each run has its own features"
)


def assign(
    recipes: Sequence[Recipe],
    *,
    choice: str,
    backend: str,
    diagnostics: bool,
    test_rows: Sequence[int] | None = None,
    platform: str | None = None,
    fitted_per_run: bool = False,
) -> list[Assignment]:
    """One assignment per recipe (one per planned run, in order).

    ``test_rows``: how many rows each run tests on, where runs differ (cross-validation folds
    of unequal size): members of a population hold their rows in one array, so only runs with
    equal splits share one. ``platform``: the device JAX trains on (``cpu``, ``gpu``, ``tpu``);
    asked from JAX when ``auto`` needs it and it is not given. ``fitted_per_run``: the table's
    features are made per run (imputation, dates, one-hot levels from each run's training rows),
    so runs do not share one copy of the data and train solo.
    """
    if choice not in ENGINES:
        raise ValueError(f"unknown engine {choice!r}. Expected one of: {', '.join(ENGINES)}.")
    if choice == "population" and backend != "jax":
        raise TricklabError(
            f"--engine population needs the JAX backend. Received: backend={backend!r}. "
            "Use --engine solo (or auto) on other backends."
        )
    if choice == "population" and fitted_per_run:
        raise TricklabError(
            "--engine population does not train a table whose columns are fitted per run "
            "(impute, dates, one-hot levels from each run's training rows: each run has its own "
            "features). Received: engine='population'. Use --engine solo (or auto)."
        )
    keys = [population_key(r) for r in recipes]
    if test_rows is not None:
        keys = [f"{key}/{rows}" for key, rows in zip(keys, test_rows, strict=True)]
    sizes: dict[str, int] = defaultdict(int)
    for key in keys:
        sizes[key] += 1
    names = {key: f"population-{i + 1}" for i, key in enumerate(dict.fromkeys(keys))}
    out = []
    for recipe, key in zip(recipes, keys, strict=True):
        if choice == "solo":
            out.append(Assignment("solo", None))
        elif backend != "jax":
            out.append(Assignment("solo", None, f"{backend} backend (populations need JAX)"))
        elif diagnostics:
            out.append(Assignment("solo", None, "diagnostics = true (measured per run)"))
        elif fitted_per_run:
            out.append(Assignment("solo", None, FITTED_PER_RUN_REASON))
        elif choice == "population":
            out.append(Assignment("population", names[key]))
        elif sizes[key] < 2:
            out.append(
                Assignment(
                    "solo", None, "no other run has its layer shapes, batch size, epochs and rows"
                )
            )
        elif getattr(recipe.model, "builder", None) is not None:
            out.append(Assignment("solo", None, BUILDER_REASON))
        else:
            kind = model_kind(_layers(recipe))
            if kind is not ModelKind.DENSE and platform is None:
                platform = device_platform()  # dense groups train as populations anywhere
            engine, reason = rule(kind, platform or "cpu")
            group = names[key] if engine == "population" else None
            out.append(Assignment(engine, group, reason))
    return out
