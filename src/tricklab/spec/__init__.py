"""Study files: what to train, validated once when it is read (no data, no Keras).

One concept per module: ``_validation`` (pydantic errors as one located line), ``_registry``
(named Keras components, one ``get()`` each) and ``components`` (the registries themselves),
``_merge`` (variant overrides), ``_grid`` (axes that expand into variants), ``_limits`` (sizes,
nesting depth and names, checked before anything is expanded), ``_dataset`` (the study's
``dataset`` entry), ``_recipe`` (a variant's model and training) and ``_study`` (the whole
study). Rules that need the data live with the data (:mod:`tricklab.data`).
"""

from __future__ import annotations

from tricklab.spec._dataset import (
    DATASETS,
    MAX_AUTO_CLASSES,
    CsvSpec,
    DatasetRegistry,
    DatasetSpec,
    FashionMnistSpec,
    Task,
    ThoracicSpec,
    parse_dataset,
)
from tricklab.spec._limits import MAX_DEPTH, MAX_NAME_LENGTH, NAME_PATTERN, NAME_RULE, LimitsSpec
from tricklab.spec._recipe import (
    LAYER_TYPES,
    ActivationLayer,
    BatchNormLayer,
    CheckpointSpec,
    DenseLayer,
    DropoutLayer,
    EarlyStoppingSpec,
    FlattenLayer,
    GaussianNoiseLayer,
    ModelSpec,
    Recipe,
    TrainSpec,
)
from tricklab.spec._registry import Component, ComponentError, Registry
from tricklab.spec._study import CvSpec, DiagnosticsSpec, LintSpec, StudySpec, load_study

__all__ = [
    "DATASETS",
    "LAYER_TYPES",
    "MAX_AUTO_CLASSES",
    "MAX_DEPTH",
    "MAX_NAME_LENGTH",
    "NAME_PATTERN",
    "NAME_RULE",
    "ActivationLayer",
    "BatchNormLayer",
    "CheckpointSpec",
    "Component",
    "ComponentError",
    "CsvSpec",
    "CvSpec",
    "DatasetRegistry",
    "DatasetSpec",
    "DenseLayer",
    "DiagnosticsSpec",
    "DropoutLayer",
    "EarlyStoppingSpec",
    "FashionMnistSpec",
    "FlattenLayer",
    "GaussianNoiseLayer",
    "LimitsSpec",
    "LintSpec",
    "ModelSpec",
    "Recipe",
    "Registry",
    "StudySpec",
    "Task",
    "ThoracicSpec",
    "TrainSpec",
    "load_study",
    "parse_dataset",
]
