"""Datasets: the ``dataset`` entry of a study, loading it, and splitting it per seed.

A study names a built-in dataset (``"thoracic"``, ``"fashion_mnist"``, or a table with options)
or a CSV file (``{csv = "file.csv", target = "column"}``). :func:`parse_dataset` checks the entry
without reading any data; :func:`load_dataset` reads it into a :class:`Dataset` (cached in the
process), saying what intake did (:func:`describe_intake`); :func:`make_splits` draws the train /
validation / test split for one seed and standardises tabular features with statistics of the
training part only.

One concept per module: ``_specs`` (the study's entry), ``_dataset`` (loaded data and intake),
``_builtin`` (Thoracic, Fashion-MNIST), ``_idx`` (Fashion-MNIST's files), ``_csv`` (a user's
table), ``_splits``, ``_load``. Importing this package stays cheap: pandas and scikit-learn are
imported when data is read.
"""

from __future__ import annotations

from tricklab.data._builtin import describe_datasets
from tricklab.data._csv import read_csv_text
from tricklab.data._dataset import Dataset, Intake, describe_intake
from tricklab.data._load import load_dataset
from tricklab.data._specs import (
    DATASETS,
    MAX_AUTO_CLASSES,
    CsvSpec,
    DatasetRegistry,
    DatasetSpec,
    FashionMnistSpec,
    ThoracicSpec,
    parse_dataset,
)
from tricklab.data._splits import Splits, make_splits

__all__ = [
    "DATASETS",
    "MAX_AUTO_CLASSES",
    "CsvSpec",
    "Dataset",
    "DatasetRegistry",
    "DatasetSpec",
    "FashionMnistSpec",
    "Intake",
    "Splits",
    "ThoracicSpec",
    "describe_datasets",
    "describe_intake",
    "load_dataset",
    "make_splits",
    "parse_dataset",
    "read_csv_text",
]
