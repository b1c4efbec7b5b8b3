"""Datasets: loading a study's ``dataset`` entry, splitting it per run, and the resolved study.

:func:`load_dataset` reads the entry (checked without data by :func:`tricklab.spec.parse_dataset`)
into a :class:`Dataset` (cached in the process), saying what intake did (:func:`describe_intake`);
:func:`make_splits` draws the train / validation / test split of one run (or its cv fold) and
standardises tabular features with statistics of the training part only;
:func:`resolve_study` works out what a study means on its data (:class:`ResolvedStudy`).

One concept per module: ``_dataset`` (loaded data and intake), ``_builtin`` (Thoracic,
Fashion-MNIST), ``_idx`` (Fashion-MNIST's files), ``_csv`` (a user's table; ``_csv_text``, its
text and first row; ``_sequences``, its token columns), ``_images`` (an image folder; also
read for ``tricklab predict``), ``_splits`` (splits and cv folds), ``_target_scaling`` (a
regression target's transform), ``_load``, ``_rules`` (what a recipe needs from the data:
target encoding, compatibility, primary metric) and ``_resolved`` (the resolved study).
Importing this package stays cheap: pandas, scikit-learn and Pillow are imported when data is
read.
"""

from __future__ import annotations

from tricklab.data._builtin import describe_datasets
from tricklab.data._columns import ColumnPlan, FittedColumns
from tricklab.data._csv_text import read_csv_text
from tricklab.data._dataset import Dataset, Intake, describe_intake
from tricklab.data._dates import days_since_epoch, parse_date
from tricklab.data._images import image_files, read_image
from tricklab.data._load import load_dataset
from tricklab.data._model_table import (
    ModelTable,
    exact_json,
    fitted_from_json,
    model_table,
    number_plan,
)
from tricklab.data._resolved import Protocol, ResolvedStudy, RunSplit, resolve_study
from tricklab.data._rules import (
    Target,
    check_compatible,
    logged_names,
    metrics_for,
    primary_metric,
    primary_metric_choices,
    target_for,
)
from tricklab.data._splits import Splits, cv_folds, make_splits
from tricklab.data._study import load_data, resolve
from tricklab.data._target_scaling import TargetScaling, suggested_transform

__all__ = [
    "ColumnPlan",
    "Dataset",
    "FittedColumns",
    "Intake",
    "ModelTable",
    "Protocol",
    "ResolvedStudy",
    "RunSplit",
    "Splits",
    "Target",
    "TargetScaling",
    "check_compatible",
    "cv_folds",
    "days_since_epoch",
    "describe_datasets",
    "describe_intake",
    "exact_json",
    "fitted_from_json",
    "image_files",
    "load_data",
    "load_dataset",
    "logged_names",
    "make_splits",
    "metrics_for",
    "model_table",
    "number_plan",
    "parse_date",
    "primary_metric",
    "primary_metric_choices",
    "read_csv_text",
    "read_image",
    "resolve",
    "resolve_study",
    "suggested_transform",
    "target_for",
]
