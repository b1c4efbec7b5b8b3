"""A recipe: one variant's model and training, validated once when it is read.

Specs are frozen pydantic models that reject unknown keys; components (activations, losses,
optimizers, ...) are parsed through their registries (:mod:`tricklab.spec.components`). Nothing
here imports Keras, so ``tricklab lint`` and bad-input errors answer at once. Values that depend
on the data (input shape, target encoding, default metrics) are derived when a run starts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator

from tricklab.spec import _validation, components
from tricklab.spec._registry import Component, ComponentError, Registry

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


def _parse(registry: Registry) -> BeforeValidator:
    """Validates a field's value as a component of ``registry``."""

    def parse(value: Any) -> Component:
        try:
            return registry.parse(value)
        except ComponentError as exc:
            raise _validation.own_error(exc.message, exc.at) from None

    return BeforeValidator(parse)


def _dump(component: Component) -> Any:
    return component.to_dict() if component.args else component.name


# A field holding a validated component of a registry; serialised as name or table.
_DUMP = PlainSerializer(_dump)
Activation = Annotated[Component, _parse(components.ACTIVATIONS), _DUMP]
Regularizer = Annotated[Component, _parse(components.REGULARIZERS), _DUMP]
Constraint = Annotated[Component, _parse(components.CONSTRAINTS), _DUMP]
Initializer = Annotated[Component, _parse(components.INITIALIZERS), _DUMP]
Loss = Annotated[Component, _parse(components.LOSSES), _DUMP]
Optimizer = Annotated[Component, _parse(components.OPTIMIZERS), _DUMP]
Metric = Annotated[Component, _parse(components.METRICS), _DUMP]


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
    batch_size: BatchSize = 32
    epochs: Epochs = 10
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
