"""Study files: what to train, validated once when it is read (no data, no Keras).

One concept per module: ``_validation`` (pydantic errors as one located line), ``_registry``
(named Keras components, one ``get()`` each) and ``components`` (the registries themselves),
``_merge`` (variant overrides), ``_grid`` (axes that expand into variants), ``_options`` (how a
study trains: engine, executor, checkpoints, claims), ``_limits`` (sizes, nesting depth and
names, checked before anything is expanded), ``_dataset`` (the study's ``dataset`` entry),
``_recipe`` (a variant's model and training), ``_study`` (the whole study) and ``_metrics``
(the metric catalogue: direction, range, chance level of every metric). Rules that
need the data live with the data (:mod:`tricklab.data`).
"""

from __future__ import annotations

from tricklab.spec import _validation as messages  # validation messages, for data and tools
from tricklab.spec._dataset import (
    DATASETS,
    FASHION_CITATION,
    FLOAT32_MAX,
    MAX_AUTO_CLASSES,
    MAX_LEVELS,
    MIN_ROWS_FOR_LEVELS,
    NUMBER_PERCENT,
    THORACIC_CITATION,
    THORACIC_CLASSES,
    THORACIC_COLUMNS,
    CsvSpec,
    DatasetRegistry,
    DatasetSpec,
    FashionMnistSpec,
    Task,
    ThoracicSpec,
    parse_dataset,
)
from tricklab.spec._limits import (
    MAX_COLUMNS,
    MAX_DEPTH,
    MAX_NAME_LENGTH,
    NAME_PATTERN,
    NAME_RULE,
    LimitsSpec,
    exceeded,
)
from tricklab.spec._merge import merge, split_path
from tricklab.spec._metrics import (
    COMPUTED_SCORES,
    DEFAULT_PRIMARY_METRIC,
    METRIC_CATALOGUE,
    Chance,
    Direction,
    MetricCatalogue,
    MetricFacts,
    Source,
    UnknownMetricError,
    chance_level,
    default_primary_metric,
)
from tricklab.spec._options import ENGINES, EXECUTORS, RunOptions
from tricklab.spec._recipe import (
    EVALUATE_CHOICES,
    LAYER_TYPES,
    ActivationLayer,
    BatchNormLayer,
    CheckpointSpec,
    DenseLayer,
    DropoutLayer,
    EarlyStoppingSpec,
    Evaluate,
    FlattenLayer,
    GaussianNoiseLayer,
    ModelSpec,
    Recipe,
    TrainSpec,
    study_evaluation,
)
from tricklab.spec._registry import Component, ComponentError, Registry
from tricklab.spec._study import CvSpec, DiagnosticsSpec, LintSpec, StudySpec, load_study

__all__ = [
    "COMPUTED_SCORES",
    "DATASETS",
    "DEFAULT_PRIMARY_METRIC",
    "ENGINES",
    "EVALUATE_CHOICES",
    "EXECUTORS",
    "FASHION_CITATION",
    "FLOAT32_MAX",
    "LAYER_TYPES",
    "MAX_AUTO_CLASSES",
    "MAX_COLUMNS",
    "MAX_DEPTH",
    "MAX_LEVELS",
    "MAX_NAME_LENGTH",
    "METRIC_CATALOGUE",
    "MIN_ROWS_FOR_LEVELS",
    "NAME_PATTERN",
    "NAME_RULE",
    "NUMBER_PERCENT",
    "THORACIC_CITATION",
    "THORACIC_CLASSES",
    "THORACIC_COLUMNS",
    "ActivationLayer",
    "BatchNormLayer",
    "Chance",
    "CheckpointSpec",
    "Component",
    "ComponentError",
    "CsvSpec",
    "CvSpec",
    "DatasetRegistry",
    "DatasetSpec",
    "DenseLayer",
    "DiagnosticsSpec",
    "Direction",
    "DropoutLayer",
    "EarlyStoppingSpec",
    "Evaluate",
    "FashionMnistSpec",
    "FlattenLayer",
    "GaussianNoiseLayer",
    "LimitsSpec",
    "LintSpec",
    "MetricCatalogue",
    "MetricFacts",
    "ModelSpec",
    "Recipe",
    "Registry",
    "RunOptions",
    "Source",
    "StudySpec",
    "Task",
    "ThoracicSpec",
    "TrainSpec",
    "UnknownMetricError",
    "chance_level",
    "default_primary_metric",
    "exceeded",
    "load_study",
    "merge",
    "messages",
    "parse_dataset",
    "split_path",
    "study_evaluation",
]
