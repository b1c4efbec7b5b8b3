"""Layer specs beyond dense models: convolution, pooling, reshaping, embeddings, recurrent
layers and augmentation, each with the keyword names of the Keras class it maps to.

Re-exported by :mod:`tricklab.spec._recipe` (which holds the ``Layer`` union). Bounds are the
ones of :mod:`tricklab.spec._recipe`: ``filters``/``units`` up to 65,536, sizes positive ints.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

from tricklab.spec import _validation
from tricklab.spec._fields import Activation, Constraint, Initializer, Regularizer

PosInt = Annotated[int, Ge(1)]
Units = Annotated[int, Ge(1), Le(65_536)]
Rate = Annotated[float, Ge(0), Le(1)]


def _number(value: Any, integer: bool) -> bool:
    kinds = (int,) if integer else (int, float)
    return isinstance(value, kinds) and not isinstance(value, bool)


def _size(value: Any, info: ValidationInfo) -> Any:
    """A kernel, pool or stride size: one positive int, or a list of 1 to 3 (one per axis)."""
    items = list(value) if isinstance(value, list | tuple) else None
    if _number(value, True) and value >= 1:
        return value
    if items and len(items) <= 3 and all(_number(v, True) and v >= 1 for v in items):
        return tuple(items)
    raise _validation.own_error(
        "must be a positive int or a list of 1 to 3 positive ints (one per spatial axis). "
        f"Received: {info.field_name}={_validation.show(value)}."
    )


def _factor(low: float) -> BeforeValidator:
    """An augmentation factor: a number in [low, 1], or a [lower, upper] pair of them."""

    def check(value: Any, info: ValidationInfo) -> Any:
        def ok(v: Any) -> bool:
            return _number(v, False) and low <= v <= 1

        if ok(value):
            return float(value)
        if isinstance(value, list | tuple) and len(value) == 2 and all(map(ok, value)):
            return (float(value[0]), float(value[1]))
        raise _validation.own_error(
            f"must be a number in [{low:g}, 1] or a [lower, upper] pair of them. "
            f"Received: {info.field_name}={_validation.show(value)}."
        )

    return BeforeValidator(check)


#: A kernel, pool or stride size: one positive int, or one per spatial axis.
Size = Annotated[int | tuple[int, ...], BeforeValidator(_size)]
Padding = Literal["valid", "same"]
#: An augmentation factor: a fraction (of the size, or of a turn), or a [lower, upper] pair.
Factor = Annotated[float | tuple[float, float], _factor(-1)]
FillMode = Literal["reflect", "wrap", "constant", "nearest"]


class _Spec(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=True, arbitrary_types_allowed=True
    )


class _Conv(_Spec):
    filters: Units
    kernel_size: Size
    strides: Size = 1
    padding: Padding = "valid"
    dilation_rate: Size = 1
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


class Conv1DLayer(_Conv):
    """``keras.layers.Conv1D`` on inputs (steps, channels)."""

    type: Literal["conv1d"] = "conv1d"


class Conv2DLayer(_Conv):
    """``keras.layers.Conv2D`` on inputs (height, width, channels)."""

    type: Literal["conv2d"] = "conv2d"


class SeparableConv2DLayer(_Spec):
    """``keras.layers.SeparableConv2D``: a depthwise then a pointwise convolution."""

    type: Literal["separable_conv2d"] = "separable_conv2d"
    filters: Units
    kernel_size: Size
    strides: Size = 1
    padding: Padding = "valid"
    dilation_rate: Size = 1
    depth_multiplier: Annotated[int, Ge(1), Le(1024)] = 1
    activation: Activation | None = None
    use_bias: bool = True
    depthwise_initializer: Initializer | None = None
    pointwise_initializer: Initializer | None = None
    bias_initializer: Initializer | None = None
    depthwise_regularizer: Regularizer | None = None
    pointwise_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None
    activity_regularizer: Regularizer | None = None
    depthwise_constraint: Constraint | None = None
    pointwise_constraint: Constraint | None = None
    bias_constraint: Constraint | None = None
    repeat: PosInt = 1


class _Pool(_Spec):
    pool_size: Size = 2
    strides: Size | None = None  # Keras: pool_size
    padding: Padding = "valid"
    repeat: PosInt = 1


class MaxPooling1DLayer(_Pool):
    """``keras.layers.MaxPooling1D``."""

    type: Literal["max_pooling1d"] = "max_pooling1d"


class MaxPooling2DLayer(_Pool):
    """``keras.layers.MaxPooling2D``."""

    type: Literal["max_pooling2d"] = "max_pooling2d"


class AveragePooling1DLayer(_Pool):
    """``keras.layers.AveragePooling1D``."""

    type: Literal["average_pooling1d"] = "average_pooling1d"


class AveragePooling2DLayer(_Pool):
    """``keras.layers.AveragePooling2D``."""

    type: Literal["average_pooling2d"] = "average_pooling2d"


class _GlobalPool(_Spec):
    repeat: PosInt = 1


class GlobalAveragePooling1DLayer(_GlobalPool):
    """``keras.layers.GlobalAveragePooling1D``: (steps, channels) -> (channels,)."""

    type: Literal["global_average_pooling1d"] = "global_average_pooling1d"


class GlobalAveragePooling2DLayer(_GlobalPool):
    """``keras.layers.GlobalAveragePooling2D``: (height, width, channels) -> (channels,)."""

    type: Literal["global_average_pooling2d"] = "global_average_pooling2d"


class GlobalMaxPooling1DLayer(_GlobalPool):
    """``keras.layers.GlobalMaxPooling1D``."""

    type: Literal["global_max_pooling1d"] = "global_max_pooling1d"


class GlobalMaxPooling2DLayer(_GlobalPool):
    """``keras.layers.GlobalMaxPooling2D``."""

    type: Literal["global_max_pooling2d"] = "global_max_pooling2d"


class ReshapeLayer(_Spec):
    """``keras.layers.Reshape``: ``target_shape = [28, 28, 1]`` adds a channel axis."""

    type: Literal["reshape"] = "reshape"
    target_shape: Annotated[tuple[PosInt, ...], Field(min_length=1, max_length=8, strict=False)]
    repeat: PosInt = 1


class LayerNormLayer(_Spec):
    """``keras.layers.LayerNormalization`` (over the last axis)."""

    type: Literal["layer_norm"] = "layer_norm"
    epsilon: Annotated[float, Gt(0)] | None = None
    center: bool = True
    scale: bool = True
    beta_initializer: Initializer | None = None
    gamma_initializer: Initializer | None = None
    beta_regularizer: Regularizer | None = None
    gamma_regularizer: Regularizer | None = None
    beta_constraint: Constraint | None = None
    gamma_constraint: Constraint | None = None
    repeat: PosInt = 1


class EmbeddingLayer(_Spec):
    """``keras.layers.Embedding``: integer ids in ``[0, input_dim)`` -> vectors."""

    type: Literal["embedding"] = "embedding"
    input_dim: Annotated[int, Ge(1), Le(16_777_216)]
    output_dim: Units
    embeddings_initializer: Initializer | None = None
    embeddings_regularizer: Regularizer | None = None
    embeddings_constraint: Constraint | None = None
    mask_zero: bool = False
    repeat: PosInt = 1


class _Recurrent(_Spec):
    units: Units
    activation: Activation | None = None  # Keras: tanh
    recurrent_activation: Activation | None = None  # Keras: sigmoid
    use_bias: bool = True
    kernel_initializer: Initializer | None = None
    recurrent_initializer: Initializer | None = None
    bias_initializer: Initializer | None = None
    kernel_regularizer: Regularizer | None = None
    recurrent_regularizer: Regularizer | None = None
    bias_regularizer: Regularizer | None = None
    activity_regularizer: Regularizer | None = None
    kernel_constraint: Constraint | None = None
    recurrent_constraint: Constraint | None = None
    bias_constraint: Constraint | None = None
    dropout: Rate = 0.0
    recurrent_dropout: Rate = 0.0
    return_sequences: bool = False
    go_backwards: bool = False
    repeat: PosInt = 1


class LSTMLayer(_Recurrent):
    """``keras.layers.LSTM`` (4 gates)."""

    type: Literal["lstm"] = "lstm"
    unit_forget_bias: bool = True


class GRULayer(_Recurrent):
    """``keras.layers.GRU`` (3 gates)."""

    type: Literal["gru"] = "gru"
    reset_after: bool = True


class BidirectionalLayer(_Spec):
    """``keras.layers.Bidirectional`` around ``layer = {type = "lstm", ...}`` (or "gru")."""

    type: Literal["bidirectional"] = "bidirectional"
    layer: Annotated[LSTMLayer | GRULayer, Field(discriminator="type")]
    merge_mode: Literal["sum", "mul", "concat", "ave"] | None = "concat"
    repeat: PosInt = 1


class RandomFlipLayer(_Spec):
    """``keras.layers.RandomFlip`` (training only)."""

    type: Literal["random_flip"] = "random_flip"
    mode: Literal["horizontal", "vertical", "horizontal_and_vertical"] = "horizontal_and_vertical"
    repeat: PosInt = 1


class RandomTranslationLayer(_Spec):
    """``keras.layers.RandomTranslation`` (training only)."""

    type: Literal["random_translation"] = "random_translation"
    height_factor: Factor
    width_factor: Factor
    fill_mode: FillMode = "reflect"
    repeat: PosInt = 1


class RandomRotationLayer(_Spec):
    """``keras.layers.RandomRotation``; ``factor`` is a fraction of a full turn."""

    type: Literal["random_rotation"] = "random_rotation"
    factor: Factor
    fill_mode: FillMode = "reflect"
    repeat: PosInt = 1


class RandomZoomLayer(_Spec):
    """``keras.layers.RandomZoom`` (training only)."""

    type: Literal["random_zoom"] = "random_zoom"
    height_factor: Factor
    width_factor: Factor | None = None
    fill_mode: FillMode = "reflect"
    repeat: PosInt = 1


class RandomContrastLayer(_Spec):
    """``keras.layers.RandomContrast`` (training only)."""

    type: Literal["random_contrast"] = "random_contrast"
    factor: Annotated[float | tuple[float, float], _factor(0)]
    repeat: PosInt = 1


CONV_LAYERS = (Conv1DLayer, Conv2DLayer, SeparableConv2DLayer)
POOLING_LAYERS = (
    MaxPooling1DLayer,
    MaxPooling2DLayer,
    AveragePooling1DLayer,
    AveragePooling2DLayer,
)
GLOBAL_POOLING_LAYERS = (
    GlobalAveragePooling1DLayer,
    GlobalAveragePooling2DLayer,
    GlobalMaxPooling1DLayer,
    GlobalMaxPooling2DLayer,
)
RECURRENT_LAYERS = (LSTMLayer, GRULayer, BidirectionalLayer)
AUGMENTATION_LAYERS = (
    RandomFlipLayer,
    RandomTranslationLayer,
    RandomRotationLayer,
    RandomZoomLayer,
    RandomContrastLayer,
)
#: The layer types beyond dense models. Both engines train every one; ``--engine auto`` picks
#: one per group from the model's :class:`ModelKind` and the device (``engines._grouping``).
SOLO_ONLY_LAYERS = (
    *CONV_LAYERS,
    *POOLING_LAYERS,
    *GLOBAL_POOLING_LAYERS,
    *RECURRENT_LAYERS,
    EmbeddingLayer,
    *AUGMENTATION_LAYERS,
)


class ModelKind(StrEnum):
    """What a model's cost is made of, for choosing an engine (``--engine auto``).

    - ``recurrent``: an ``lstm``, ``gru`` or ``bidirectional`` layer, or an ``embedding`` (models
      of token sequences);
    - ``convolutional``: otherwise, a convolution, pooling, global pooling or augmentation layer;
    - ``dense``: everything else (dense, dropout, batch/layer norm, reshape, flatten, ...).
    """

    DENSE = "dense"
    CONVOLUTIONAL = "convolutional"
    RECURRENT = "recurrent"


_RECURRENT_KIND = (*RECURRENT_LAYERS, EmbeddingLayer)
_CONVOLUTIONAL_KIND = (*CONV_LAYERS, *POOLING_LAYERS, *GLOBAL_POOLING_LAYERS, *AUGMENTATION_LAYERS)


def model_kind(layers: Iterable[object]) -> ModelKind:
    """The :class:`ModelKind` of a model with these layer specs (a recipe's ``model.layers``)."""
    layers = tuple(layers)
    if any(isinstance(layer, _RECURRENT_KIND) for layer in layers):
        return ModelKind.RECURRENT
    if any(isinstance(layer, _CONVOLUTIONAL_KIND) for layer in layers):
        return ModelKind.CONVOLUTIONAL
    return ModelKind.DENSE
