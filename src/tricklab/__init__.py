"""tricklab: know which Keras training trick helps on your data.

A study trains variants of a base recipe over several seeds and reports, with honest
statistics, which tricks made a difference. Importing tricklab does not import Keras.
"""

from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("tricklab")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

from tricklab.datasets import DATASETS, Dataset, Splits, load_dataset, make_splits
from tricklab.errors import DataError, SpecError, StoreError, TricklabError
from tricklab.result import RunPlan, RunResult
from tricklab.spec import Recipe, StudySpec, load_study
from tricklab.store import RunStore
from tricklab.study import StudyRun, run_study

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "Recipe",
    "RunPlan",
    "RunResult",
    "RunStore",
    "SpecError",
    "Splits",
    "StoreError",
    "StudyRun",
    "StudySpec",
    "TricklabError",
    "__version__",
    "load_dataset",
    "load_study",
    "make_splits",
    "run_study",
]
