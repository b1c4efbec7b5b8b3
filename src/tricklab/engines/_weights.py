"""The weights contract: a run's weights, and where Keras 3 keeps each one in a ``.weights.h5``.

A run's weights are ``model.get_weights()`` of ``build_model(recipe, input_shape)``; both engines
hand them over in that order (:class:`~tricklab.engines.RunDone`). The store writes them as
``best.weights.h5`` so that ``model.load_weights(path)`` of that model loads them unchanged, yet
the store knows no Keras: it writes a :class:`WeightsFile` (HDF5 groups with their attributes,
arrays at their paths). Which path each weight goes to is Keras's business and is decided here:
:func:`weights_layout` asks Keras once per model structure, and :meth:`WeightsLayout.file` then
places the weights of any run of that structure without building a model.

Keras 3's ``.weights.h5`` of a ``Sequential`` (``saving_lib.save_weights_only``)::

    vars                        group of the model itself (attribute ``name``: the model's name)
    layers/<kind>[_<k>]/vars    group of each layer of ``model.layers``, named after its class in
                                snake case (``dense``, ``dense_1``, ``batch_normalization``,
                                ``p_re_lu``...), numbered from the second of a kind on; attribute
                                ``name``: the layer's name; present for layers without variables
    layers/<kind>[_<k>]/vars/<i>  dataset: the layer's i-th variable (trainable ones first)

On load Keras walks the model the same way and checks that each layer's group holds as many
datasets as the layer has variables, each of its variable's shape; it reads no attribute but a
``dtype`` of ``bfloat16`` datasets (tricklab's weights are float32).

This module imports Keras only inside :func:`weights_layout`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tricklab.spec import Recipe


@dataclass(frozen=True)
class WeightsFile:
    """The contents of an HDF5 weights file, as the store writes it (best.weights.h5).

    ``groups``: every group to create, by path (``layers/dense/vars``), with its string
    attributes; ``arrays``: every dataset, by path (``layers/dense/vars/0``). Both in the order
    Keras's own file lists them.
    """

    groups: Mapping[str, Mapping[str, str]]
    arrays: Mapping[str, np.ndarray]

    @property
    def size(self) -> int:
        """How many numbers the arrays hold (Keras's ``count_params`` of the model)."""
        return sum(int(a.size) for a in self.arrays.values())


@dataclass(frozen=True)
class WeightsLayout:
    """Where each weight of one model structure goes in its ``.weights.h5`` file.

    ``arrays``: (dataset path, index of the weight in ``get_weights()``), in the file's order;
    ``weights``: (shape, dtype) of each weight in ``get_weights()`` order.
    """

    groups: Mapping[str, Mapping[str, str]]
    arrays: tuple[tuple[str, int], ...]
    weights: tuple[tuple[tuple[int, ...], str], ...]

    def file(self, weights: Sequence[Any]) -> WeightsFile:
        """``weights`` (``get_weights()`` order) as the file of this structure."""
        if len(weights) != len(self.weights):
            raise ValueError(f"{len(weights)} weights for a model that has {len(self.weights)}")
        values = []
        for i, (value, (shape, dtype)) in enumerate(zip(weights, self.weights, strict=True)):
            array = np.asarray(value, dtype=dtype)
            if array.shape != shape:
                raise ValueError(f"weight {i} has shape {array.shape}; the model's has {shape}")
            values.append(array)
        return WeightsFile(self.groups, {path: values[i] for path, i in self.arrays})


#: Layouts found so far in this process, by model structure (recipe.model) and input shape.
_LAYOUTS: dict[tuple[str, tuple[int, ...]], WeightsLayout] = {}


def weights_layout(recipe: Recipe, input_shape: Sequence[int]) -> WeightsLayout:
    """The layout of ``build_model(recipe, input_shape)``'s weights file, found once per model
    structure in a process. Builds a model (drawing from Keras's global RNG) the first time:
    call it once a run's weights are drawn, not between seeding and building."""
    shape = tuple(int(n) for n in input_shape)
    key = (recipe.model.model_dump_json(), shape)
    layout = _LAYOUTS.get(key)
    if layout is None:
        from tricklab.engines.build import build_model

        layout = _LAYOUTS[key] = layout_of(build_model(recipe, shape))
    return layout


def layout_of(model: Any) -> WeightsLayout:
    """Where ``model.save_weights`` puts each of ``model``'s weights, asked of Keras itself: the
    model saves weight ``i`` filled with ``i + 1`` and the file is read back."""
    import importlib
    import tempfile

    h5py: Any = importlib.import_module("h5py")  # its names are not typed for mypy
    original = model.get_weights()
    model.set_weights([np.full(w.shape, i + 1, w.dtype) for i, w in enumerate(original)])
    groups: dict[str, dict[str, str]] = {}
    arrays: list[tuple[str, int]] = []

    def visit(path: str, item: Any) -> None:
        if isinstance(item, h5py.Group):
            groups[path] = {k: str(v) for k, v in item.attrs.items()}
            return
        value = np.asarray(item[()])
        index = int(value.flat[0]) - 1 if value.size else -1
        if not 0 <= index < len(original) or not np.all(value == index + 1):
            raise ValueError(f"{path}: not one of the model's weights (Keras's layout changed?)")
        if value.shape != original[index].shape or item.attrs:
            raise ValueError(f"{path}: stored unlike weight {index} (Keras's layout changed?)")
        arrays.append((path, index))

    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "layout.weights.h5"
            model.save_weights(str(path))
            with h5py.File(path, "r") as saved:
                if saved.attrs:
                    raise ValueError("Keras wrote attributes on the file's root: layout changed?")
                saved.visititems(visit)
    finally:
        model.set_weights(original)
    if sorted(i for _, i in arrays) != list(range(len(original))):
        raise ValueError("Keras's weights file does not hold each weight once: layout changed?")
    weights = tuple((tuple(w.shape), str(w.dtype)) for w in original)
    return WeightsLayout(groups, tuple(arrays), weights)
