"""A recipe: one variant's model and training, validated once when it is read.

Specs are frozen pydantic models that reject unknown keys; components (activations, losses,
optimizers, ...) are parsed through their registries (:mod:`tricklab.spec.components`). Nothing
here imports Keras, so ``tricklab lint`` and bad-input errors answer at once. Values that depend
on the data (input shape, target encoding, default metrics) are derived when a run starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from annotated_types import Ge, Gt, Le, Lt
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from tricklab.base.errors import SpecError
from tricklab.spec import _builder as _builder_module
from tricklab.spec import _validation, components
from tricklab.spec._fields import (
    Activation,
    Constraint,
    Initializer,
    Loss,
    Metric,
    Optimizer,
    Regularizer,
)
from tricklab.spec._layers import (
    SOLO_ONLY_LAYERS,
    AveragePooling1DLayer,
    AveragePooling2DLayer,
    BidirectionalLayer,
    Conv1DLayer,
    Conv2DLayer,
    EmbeddingLayer,
    GlobalAveragePooling1DLayer,
    GlobalAveragePooling2DLayer,
    GlobalMaxPooling1DLayer,
    GlobalMaxPooling2DLayer,
    GRULayer,
    LayerNormLayer,
    LSTMLayer,
    MaxPooling1DLayer,
    MaxPooling2DLayer,
    RandomContrastLayer,
    RandomFlipLayer,
    RandomRotationLayer,
    RandomTranslationLayer,
    RandomZoomLayer,
    ReshapeLayer,
    SeparableConv2DLayer,
)

PosInt = Annotated[int, Ge(1)]
#: Sane upper bounds: a value above one is a typo, and would fail deep inside Keras or XLA.
Units = Annotated[int, Ge(1), Le(65_536)]
BatchSize = Annotated[int, Ge(1), Le(1_048_576)]
MAX_EPOCHS = 100_000
Epochs = Annotated[int, Ge(1), Le(MAX_EPOCHS)]
NonNegInt = Annotated[int, Ge(0)]
NonNegFloat = Annotated[float, Ge(0)]
Rate = Annotated[float, Ge(0), Le(1)]
OpenFraction = Annotated[float, Gt(0), Lt(1)]


class _Spec(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=True, arbitrary_types_allowed=True
    )


# -- layers (Keras argument names; None means the Keras default) --------------------------------
class DenseLayer(_Spec):
    """``keras.layers.Dense``. ``repeat`` stacks N identical copies (architecture grids)."""

    type: Literal["dense"] = "dense"
    units: Units
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
    | GaussianNoiseLayer
    | Conv1DLayer
    | Conv2DLayer
    | SeparableConv2DLayer
    | MaxPooling1DLayer
    | MaxPooling2DLayer
    | AveragePooling1DLayer
    | AveragePooling2DLayer
    | GlobalAveragePooling1DLayer
    | GlobalAveragePooling2DLayer
    | GlobalMaxPooling1DLayer
    | GlobalMaxPooling2DLayer
    | ReshapeLayer
    | LayerNormLayer
    | EmbeddingLayer
    | LSTMLayer
    | GRULayer
    | BidirectionalLayer
    | RandomFlipLayer
    | RandomTranslationLayer
    | RandomRotationLayer
    | RandomZoomLayer
    | RandomContrastLayer,
    Field(discriminator="type"),
]
LAYER_TYPES = tuple(
    sorted(
        t.model_fields["type"].default
        for t in (
            DenseLayer,
            DropoutLayer,
            FlattenLayer,
            BatchNormLayer,
            ActivationLayer,
            GaussianNoiseLayer,
            *SOLO_ONLY_LAYERS,
            ReshapeLayer,
            LayerNormLayer,
        )
    )
)


class BuilderBinding(_Spec):
    """A builder model as tricklab found and calls it; filled in by tricklab, never written in a
    study file. Recorded in each run's spec.json: ``sha256`` and ``outputs`` are part of the run
    key, ``file`` (where the builder was found) is not, so a moved store keeps its keys."""

    file: str | None = None  # the builder file, absolute (None: a module path, imported)
    sha256: str | None = None  # of the builder's source, when it has one
    outputs: int | None = None  # the output units the data needs (bound when resolved)


def _builder(value: Any) -> Any:
    if not isinstance(value, str):
        return value  # strict str validation words the rule
    try:
        _builder_module.parse(value)
    except ValueError as exc:
        raise _validation.own_error(str(exc)) from None
    return value


def _args(value: Any) -> Any:
    if isinstance(value, dict):
        taken = [k for k in _builder_module.RESERVED_ARGS if k in value]
        if taken:
            raise _validation.own_error(
                f"'{taken[0]}' is passed by tricklab (the data decides it); args holds the "
                f"builder's other keyword arguments. Received: args={_validation.show(value)}."
            )
    return value


class ModelSpec(_Spec):
    """A sequential model of ``layers`` (the input shape comes from the dataset), or a Python
    ``builder`` called with ``(input_shape, outputs, **args)`` (:mod:`tricklab.spec._builder`)."""

    layers: Annotated[tuple[Layer, ...], Field(min_length=1)] | None = Field(
        default=None, strict=False
    )
    builder: Annotated[str, BeforeValidator(_builder)] | None = None
    args: Annotated[dict[str, Any], BeforeValidator(_args)] | None = None
    bound: BuilderBinding | None = None

    #: The keys a study file may use (``bound`` is filled in by tricklab).
    USER_KEYS: ClassVar[tuple[str, ...]] = ("args", "builder", "layers")

    @field_validator("layers")
    @classmethod
    def _has_dense(cls, layers: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        if layers is not None and not any(isinstance(layer, DenseLayer) for layer in layers):
            raise _validation.own_error(
                "needs at least one layer of type 'dense' (the last one is the output layer)."
            )
        return layers

    @model_validator(mode="after")
    def _one_kind(self) -> ModelSpec:
        # the two ways to make a model do not combine: a builder's model is its own
        if self.layers is not None and self.builder is not None:
            raise _validation.own_error(
                "has either layers or builder (+ args), never both. Received: layers and builder.",
                "builder",
            )
        if self.layers is None and self.builder is None:
            raise _validation.own_error(
                'needs layers = [...] or builder = "models.py:build". Received: neither.'
            )
        if self.args is not None and self.builder is None:
            raise _validation.own_error(
                "args are the keyword arguments of a builder; a layers model takes none. "
                f"Received: args={_validation.show(self.args)}.",
                "args",
            )
        return self

    @property
    def is_builder(self) -> bool:
        return self.builder is not None

    def builder_args(self) -> dict[str, Any]:
        """The keyword arguments the builder is called with besides input_shape and outputs."""
        return dict(self.args or {})

    def output_layer(self) -> tuple[int, DenseLayer]:
        """Index and spec of the last Dense layer (a layers model only)."""
        for index in range(len(self.layers or ()) - 1, -1, -1):
            layer = (self.layers or ())[index]
            if isinstance(layer, DenseLayer):
                return index, layer
        raise AssertionError("validated: a layers model has a dense layer; ask is_builder first")

    def layer_specs(self) -> tuple[Layer, ...]:
        """The layer specs (none for a builder model, whose layers tricklab does not know)."""
        return self.layers or ()


# -- training -----------------------------------------------------------------------------------
Mode = Literal["auto", "min", "max"]
#: The checkpoint whose test scores a study compares (``train.evaluate``).
Evaluate = Literal["best", "last"]
EVALUATE_CHOICES: tuple[Evaluate, ...] = ("best", "last")


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


def _class_weight(value: Any) -> Any:
    """``train.class_weight``: "balanced", or weights >= 0 by class label as written in the data
    (TOML keys are strings: ``{"0" = 1.0, "1" = 11.0}``, ``{yes = 3.0}``)."""
    if value is None or value == "balanced":
        return value
    if isinstance(value, dict) and value:
        weights = list(value.values())
        if all(isinstance(w, int | float) and not isinstance(w, bool) and w >= 0 for w in weights):
            return {str(label): float(w) for label, w in value.items()}
    raise _validation.own_error(
        'must be "balanced" or a table of weights >= 0 by class label as written in the data '
        f'({{"0" = 1.0, "1" = 11.0}}). Received: class_weight={_validation.show(value)}.'
    )


ClassWeight = Annotated[
    Literal["balanced"] | dict[str, float] | None, BeforeValidator(_class_weight)
]


class TrainSpec(_Spec):
    """How the model is compiled and fitted."""

    loss: Loss
    optimizer: Optimizer = Field(default_factory=lambda: components.OPTIMIZERS.parse("adam"))
    metrics: tuple[Metric, ...] | None = Field(default=None, strict=False)
    batch_size: BatchSize = 32
    epochs: Epochs = 10
    early_stopping: EarlyStoppingSpec | None = None
    checkpoint: CheckpointSpec = CheckpointSpec()
    #: Steps per compiled call; None: 50, or 1 on PyTorch (which supports no other value).
    steps_per_execution: PosInt | None = None
    shuffle: bool = True
    #: ``fit``'s class_weight: "balanced" (scikit-learn's rule on the run's training rows) or a
    #: weight per class label as written in the data; the labels are checked against the data's
    #: classes when the study is resolved (``data._rules.check_compatible``).
    class_weight: ClassWeight = None
    #: Which weights' test scores are the study's numbers: "best" (the checkpoint of the best
    #: monitored epoch) or "last" (what training returns); None: :meth:`evaluation`'s default.
    #: Both are always scored and stored; this picks the one the comparisons use. Not part of
    #: a run's key (it changes no number a run produces).
    evaluate: Evaluate | None = None

    def checkpoint_monitor(self) -> str:
        if self.checkpoint.monitor:
            return self.checkpoint.monitor
        return self.early_stopping.monitor if self.early_stopping else "val_loss"

    def evaluation(self) -> Evaluate:
        """The checkpoint this recipe is evaluated at: ``evaluate`` as written, else "best"
        only when early stopping restores the best weights (the always-kept best-weights file
        does not count), else "last"."""
        if self.evaluate is not None:
            return self.evaluate
        stopping = self.early_stopping
        return "best" if stopping is not None and stopping.restore_best_weights else "last"


class Recipe(_Spec):
    """What one variant trains: a model and a training recipe."""

    model: ModelSpec
    train: TrainSpec


def study_evaluation(variants: Mapping[str, Recipe]) -> Evaluate:
    """The one checkpoint a study compares its variants at: a paired comparison needs the same
    checkpoint for every variant.

    A value written (``train.evaluate``, in ``[train]`` or a variant) is the study's; variants
    that write different values are a :class:`SpecError` located at the second one. Where none
    is written: "best" when every variant defaults to it (early stopping that restores the best
    weights), else "last": the weights each variant's training returns (a variant that restores
    its best weights returns those).
    """
    declared = {n: r.train.evaluate for n, r in variants.items() if r.train.evaluate is not None}
    first = next(iter(declared.items()), None)
    for name, value in declared.items():
        if first is not None and value != first[1]:
            raise SpecError(
                f"train.evaluate: a study compares every variant at one checkpoint (the "
                f"differences are paired by seed), but this variant says {value!r} and "
                f"variants.{first[0]} says {first[1]!r}. Received: evaluate={value!r}. Write "
                'train.evaluate once in [train] ("best" or "last"), or the same in every variant.',
                where=f"variants.{name}",
            )
    if first is not None:
        return first[1]
    defaults = {recipe.train.evaluation() for recipe in variants.values()}
    return "best" if defaults == {"best"} else "last"
