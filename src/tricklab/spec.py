"""Study specifications: what to train, validated once when it is read.

A study is a base recipe (``[model]`` and ``[train]``), named variants that override it, a
dataset and seeds. Specs are frozen pydantic models that reject unknown keys; nothing here imports
Keras, so ``tricklab lint`` and bad-input errors answer at once. Values that depend on the data
(input shape, target encoding, default metrics) are derived when a run starts (:mod:`build`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import tomli
from annotated_types import Ge, Gt, Le, Lt
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
)

from tricklab import _grid, _merge, _validation, components
from tricklab.data import DatasetSpec, parse_dataset
from tricklab.errors import SpecError, not_utf8
from tricklab.registry import Component, ComponentError, Registry

PosInt = Annotated[int, Ge(1)]
NonNegInt = Annotated[int, Ge(0)]
NonNegFloat = Annotated[float, Ge(0)]
Rate = Annotated[float, Ge(0), Le(1)]
OpenFraction = Annotated[float, Gt(0), Lt(1)]

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_=-][A-Za-z0-9_.=-]*$")
NAME_RULE = "letters, digits, '-', '_', '.' and '=' (not starting with '.')"


def _component(registry: Registry) -> Any:
    """A field holding a validated component of ``registry``; serialised as name or table."""

    def parse(value: Any) -> Component:
        try:
            return registry.parse(value)
        except ComponentError as exc:
            raise _validation.own_error(exc.message, exc.at) from None

    def dump(component: Component) -> Any:
        return component.to_dict() if component.args else component.name

    return Annotated[Component, BeforeValidator(parse), PlainSerializer(dump)]


Activation = _component(components.ACTIVATIONS)
Regularizer = _component(components.REGULARIZERS)
Constraint = _component(components.CONSTRAINTS)
Initializer = _component(components.INITIALIZERS)
Loss = _component(components.LOSSES)
Optimizer = _component(components.OPTIMIZERS)
Metric = _component(components.METRICS)


class _Spec(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=True, arbitrary_types_allowed=True
    )


# -- layers (Keras argument names; None means the Keras default) --------------------------------
class DenseLayer(_Spec):
    """``keras.layers.Dense``. ``repeat`` stacks N identical copies (architecture grids)."""

    type: Literal["dense"] = "dense"
    units: PosInt
    activation: Activation | None = None
    use_bias: bool = True
    kernel_initializer: Initializer | None = None
    bias_initializer: Initializer | None = None
    kernel_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None
    activity_regularizer: Regularizer | None = None
    kernel_constraint: Constraint | None = None
    bias_constraint: Constraint | None = None
    repeat: PosInt = 1


class DropoutLayer(_Spec):
    """``keras.layers.Dropout``: zeroes a fraction ``rate`` of its inputs while training."""

    type: Literal["dropout"] = "dropout"
    rate: Rate
    repeat: PosInt = 1


class FlattenLayer(_Spec):
    """``keras.layers.Flatten``: images (28, 28) -> vectors (784,)."""

    type: Literal["flatten"] = "flatten"
    repeat: PosInt = 1


class BatchNormLayer(_Spec):
    """``keras.layers.BatchNormalization``."""

    type: Literal["batch_norm"] = "batch_norm"
    momentum: OpenFraction | None = None
    epsilon: Annotated[float, Gt(0)] | None = None
    center: bool = True
    scale: bool = True
    repeat: PosInt = 1


class ActivationLayer(_Spec):
    """``keras.layers.Activation`` (or the layer of a parameterised activation)."""

    type: Literal["activation"] = "activation"
    activation: Activation
    repeat: PosInt = 1


class GaussianNoiseLayer(_Spec):
    """``keras.layers.GaussianNoise``: adds noise with ``stddev`` while training."""

    type: Literal["gaussian_noise"] = "gaussian_noise"
    stddev: NonNegFloat
    repeat: PosInt = 1


Layer = Annotated[
    DenseLayer
    | DropoutLayer
    | FlattenLayer
    | BatchNormLayer
    | ActivationLayer
    | GaussianNoiseLayer,
    Field(discriminator="type"),
]
LAYER_TYPES = ("activation", "batch_norm", "dense", "dropout", "flatten", "gaussian_noise")


class ModelSpec(_Spec):
    """A sequential model; the input shape comes from the dataset."""

    layers: tuple[Layer, ...] = Field(min_length=1, strict=False)

    @field_validator("layers")
    @classmethod
    def _has_dense(cls, layers: tuple[Any, ...]) -> tuple[Any, ...]:
        if not any(isinstance(layer, DenseLayer) for layer in layers):
            raise _validation.own_error(
                "needs at least one layer of type 'dense' (the last one is the output layer)."
            )
        return layers

    def output_layer(self) -> tuple[int, DenseLayer]:
        """Index and spec of the last Dense layer."""
        for index in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[index]
            if isinstance(layer, DenseLayer):
                return index, layer
        raise AssertionError("validated: a model has a dense layer")


# -- training -----------------------------------------------------------------------------------
Mode = Literal["auto", "min", "max"]


class EarlyStoppingSpec(_Spec):
    """``keras.callbacks.EarlyStopping`` with its argument names."""

    monitor: str = "val_loss"
    patience: NonNegInt = 0
    min_delta: NonNegFloat = 0.0
    mode: Mode = "auto"
    restore_best_weights: bool = False
    start_from_epoch: NonNegInt = 0


class CheckpointSpec(_Spec):
    """The best-weights checkpoint (always kept); ``monitor`` defaults to early stopping's."""

    monitor: str | None = None
    mode: Mode = "auto"


class TrainSpec(_Spec):
    """How the model is compiled and fitted."""

    loss: Loss
    optimizer: Optimizer = Field(default_factory=lambda: components.OPTIMIZERS.parse("adam"))
    metrics: tuple[Metric, ...] | None = Field(default=None, strict=False)
    batch_size: PosInt = 32
    epochs: PosInt = 10
    early_stopping: EarlyStoppingSpec | None = None
    checkpoint: CheckpointSpec = CheckpointSpec()
    #: Steps per compiled call; None: 50, or 1 on PyTorch (which supports no other value).
    steps_per_execution: PosInt | None = None
    shuffle: bool = True

    def checkpoint_monitor(self) -> str:
        if self.checkpoint.monitor:
            return self.checkpoint.monitor
        return self.early_stopping.monitor if self.early_stopping else "val_loss"


class Recipe(_Spec):
    """What one variant trains: a model and a training recipe."""

    model: ModelSpec
    train: TrainSpec


# -- the study ----------------------------------------------------------------------------------
def _seeds(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise _validation.own_error(
                f"must be a number of seeds >= 1 or a list of seeds. Received: seeds={value}."
            )
        return tuple(range(value))
    if isinstance(value, list | tuple):
        bad = [s for s in value if not isinstance(s, int) or isinstance(s, bool) or s < 0]
        if bad or not value or len(set(value)) != len(value):
            raise _validation.own_error(
                "must be a number of seeds >= 1 or a list of distinct ints >= 0. "
                f"Received: seeds={_validation.show(value)}."
            )
        return tuple(value)
    raise _validation.own_error(
        "must be a number of seeds >= 1 or a list of distinct ints >= 0. "
        f"Received: seeds={_validation.show(value)}."
    )


def _dataset(value: Any) -> Any:
    try:
        return parse_dataset(value)
    except SpecError as exc:
        raise _validation.own_error("; ".join(exc.problems)) from None


def _validation_choice(value: Any) -> Any:
    if value == "test":
        return value
    if isinstance(value, float | int) and not isinstance(value, bool) and 0 < value < 1:
        return float(value)
    raise _validation.own_error(
        'must be a fraction of the training data in (0, 1), or "test" to validate on the '
        f"test set as the lecture does. Received: validation={_validation.show(value)}."
    )


class DiagnosticsSpec(_Spec):
    """Per-layer training diagnostics (see :mod:`tricklab.diagnostics`); ``true`` = defaults."""

    batch_size: PosInt = 256  # validation samples the statistics are computed on
    every: PosInt = 1  # epochs between measurements


def _diagnostics(value: Any) -> Any:
    if value is True:
        return DiagnosticsSpec()
    if value is False:
        return None
    return value


class LintSpec(_Spec):
    """Rules this study breaks on purpose: ``ignore = {CODE = "reason"}``."""

    ignore: dict[str, str] = {}


class StudySpec(_Spec):
    """A whole study: the base recipe, its variants, the data and the seeds.

    Build one with :meth:`from_file` / :func:`load_study` or :meth:`from_dict`.
    """

    name: str
    description: str = ""
    dataset: Annotated[DatasetSpec, BeforeValidator(_dataset)]
    seeds: Annotated[tuple[int, ...], BeforeValidator(_seeds)] = (0, 1, 2)
    validation: Annotated[float | Literal["test"], BeforeValidator(_validation_choice)] = 0.1
    resplit: bool = False
    split_seed: NonNegInt = 0
    primary_metric: str | None = None
    baseline: str | None = None
    model: ModelSpec
    train: TrainSpec
    lint: LintSpec = LintSpec()
    diagnostics: Annotated[DiagnosticsSpec | None, BeforeValidator(_diagnostics)] = None
    variants: dict[str, Recipe]
    overrides: dict[str, dict[str, Any]]  # each variant's table as written (for reports)
    source: str | None = None  # the study file, when read from one

    #: The keys a study file may use (``overrides`` and ``source`` are filled in by tricklab).
    USER_KEYS: ClassVar[tuple[str, ...]] = (
        "baseline", "dataset", "description", "diagnostics", "grid", "lint", "model", "name",
        "primary_metric", "resplit", "seeds", "split_seed", "train", "validation", "variants",
    )  # fmt: skip

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise _validation.own_error(
                f"must use only {NAME_RULE} (it names the run directory). Received: name={value!r}."
            )
        return value

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> StudySpec:
        """Read and validate a study TOML file; errors name the file."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SpecError("no such study file.", file=str(path)) from None
        except IsADirectoryError:
            raise SpecError(
                "is a directory; expected a study file (TOML).", file=str(path)
            ) from None
        except OSError as exc:
            raise SpecError(
                f"cannot read the study file: {exc.strerror}.", file=str(path)
            ) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError(
                f"{not_utf8(exc)}. A study file is TOML, which is UTF-8; save it as UTF-8.",
                file=str(path),
            ) from None
        if not text.strip():
            raise SpecError(
                "the file is empty; a study needs at least dataset = ..., [model] and [train].",
                file=str(path),
            )
        try:
            raw = tomli.loads(text)
        except tomli.TOMLDecodeError as exc:
            raise SpecError(f"not valid TOML: {exc}.", file=str(path)) from None
        raw.setdefault("name", path.stem)
        try:
            return cls.from_dict(raw, source=str(path))
        except SpecError as exc:
            raise exc.located(file=str(path)) from None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str | None = None) -> StudySpec:
        """Validate a study given as a dictionary (the TOML structure)."""
        raw = dict(raw)
        internal = sorted(k for k in ("overrides", "source") if k in raw)
        if internal:
            raise SpecError(
                f"unknown key '{internal[0]}'. Expected one of: {', '.join(cls.USER_KEYS)}."
            )
        variants_raw = raw.pop("variants", {})
        grid_raw = raw.pop("grid", {})
        if not isinstance(variants_raw, Mapping):
            raise SpecError("variants: must be a table of named variants.")
        raw.setdefault("name", "study")
        base = {"model": raw.get("model"), "train": raw.get("train")}
        overrides = {name: dict(value or {}) for name, value in variants_raw.items()}
        for name, value in variants_raw.items():
            if not isinstance(value, Mapping):
                raise SpecError(
                    f'must be a table of overrides (e.g. train.loss = "mse"). '
                    f"Received: {_validation.show(value)}.",
                    where=f"variants.{name}",
                )
        overrides.update(_grid.expand(grid_raw, taken=set(overrides)))
        if not overrides:
            overrides = {"baseline": {}}
        recipes = cls._recipes(base, overrides, raw)
        try:
            spec = cls.model_validate(
                {**raw, "variants": recipes, "overrides": overrides, "source": source}
            )
        except ValidationError as exc:
            raise SpecError(_validation.translate(exc, cls, raw)) from None
        spec._check_baseline()
        return spec

    @classmethod
    def _recipes(
        cls, base: dict[str, Any], overrides: dict[str, dict[str, Any]], raw: dict[str, Any]
    ) -> dict[str, Recipe]:
        problems: list[str] = []
        try:
            Recipe.model_validate(base)
        except ValidationError as exc:
            problems = _validation.translate(exc, Recipe, base)
        top = {k: v for k, v in raw.items() if k not in ("model", "train")}
        try:  # report the study's other fields together with the base recipe's problems
            cls.model_validate({**top, **base, "variants": {}, "overrides": {}})
        except ValidationError as exc:
            problems += [p for p in _validation.translate(exc, cls, raw) if p not in problems]
        if problems:
            raise SpecError(problems)
        recipes: dict[str, Recipe] = {}
        for name, override in overrides.items():
            recipes[name] = cls._variant(name, base, override)
        return recipes

    @staticmethod
    def _variant(name: str, base: dict[str, Any], override: dict[str, Any]) -> Recipe:
        where = f"variants.{name}"
        if not NAME_PATTERN.match(name):
            raise SpecError(
                f"variant names may use only {NAME_RULE} (they name run directories). "
                f"Received: {name!r}.",
                where=where,
            )
        try:
            outside = [k for k in override if _merge.split_path(k)[0] not in ("model", "train")]
            if outside:
                raise SpecError(
                    f"unknown key '{outside[0]}'. A variant overrides the base recipe: keys "
                    'under model or train (e.g. train.loss, "model.layers[1].rate").',
                )
            merged = _merge.merge(base, override)
            return Recipe.model_validate(merged)
        except SpecError as exc:
            raise exc.located(where=where) from None
        except ValidationError as exc:
            raise SpecError(_validation.translate(exc, Recipe, merged), where=where) from None

    def _check_baseline(self) -> None:
        if self.baseline is not None and self.baseline not in self.variants:
            raise SpecError(
                f"baseline: no variant named '{self.baseline}'."
                f"{_validation.did_you_mean(self.baseline, list(self.variants))} "
                f"Expected one of: {', '.join(self.variants)}."
            )

    # -- derived --------------------------------------------------------------------------
    @property
    def baseline_variant(self) -> str:
        return self.baseline or next(iter(self.variants))

    @property
    def base_dir(self) -> Path | None:
        """The folder relative CSV paths are resolved against."""
        return Path(self.source).parent if self.source else None

    def select(self, variants: list[str] | None = None, seeds: int | None = None) -> StudySpec:
        """This study restricted to some variants and/or the first ``seeds`` seeds."""
        update: dict[str, Any] = {}
        if variants:
            unknown = [v for v in variants if v not in self.variants]
            if unknown:
                raise SpecError(
                    f"--variant: no variant named '{unknown[0]}'."
                    f"{_validation.did_you_mean(unknown[0], list(self.variants))} "
                    f"Expected one of: {', '.join(self.variants)}."
                )
            update["variants"] = {v: self.variants[v] for v in variants}
            update["overrides"] = {v: self.overrides[v] for v in variants}
            if self.baseline_variant not in variants:
                update["baseline"] = variants[0]
        if seeds is not None:
            update["seeds"] = self._first_seeds(seeds)
        return self.model_copy(update=update)

    def _first_seeds(self, n: int) -> tuple[int, ...]:
        """``--seeds N``: the first N seeds; a counted study (seeds 0..K-1) extends to 0..N-1."""
        if n < 1:
            raise SpecError(f"--seeds must be an int >= 1. Received: {n}.")
        if n <= len(self.seeds) or self.seeds == tuple(range(len(self.seeds))):
            return (*self.seeds, *range(len(self.seeds), n))[:n]
        raise SpecError(
            f"--seeds {n}: the study lists {len(self.seeds)} seeds "
            f"({', '.join(map(str, self.seeds))}), so at most {len(self.seeds)} can be taken. "
            "Add seeds to its list, or give seeds as a count (seeds = N) to extend it."
        )

    def with_epochs(self, epochs: int) -> StudySpec:
        """Every variant trained for at most ``epochs`` epochs (``--epochs``)."""
        if epochs < 1:
            raise SpecError(f"--epochs must be an int >= 1. Received: {epochs}.")
        variants = {
            name: recipe.model_copy(
                update={"train": recipe.train.model_copy(update={"epochs": epochs})}
            )
            for name, recipe in self.variants.items()
        }
        return self.model_copy(update={"variants": variants})


def load_study(path: str | Path) -> StudySpec:
    """Read and validate a study file (see the README for its format)."""
    return StudySpec.from_file(path)
