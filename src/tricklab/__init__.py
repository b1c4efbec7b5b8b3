"""tricklab: know which Keras training trick helps on your data.

A study trains variants of a base recipe over several seeds and reports, with honest
statistics, which tricks made a difference. Importing tricklab does not import Keras.
"""

from __future__ import annotations

from tricklab.base.errors import DataError, SpecError, StoreError, TricklabError
from tricklab.base.version import __version__
from tricklab.data import Dataset, ResolvedStudy, Splits, load_dataset, make_splits, resolve
from tricklab.engines.contract import RunPlan, RunResult
from tricklab.spec import DATASETS, Recipe, StudySpec, load_study
from tricklab.store import RunStore, load_result

# Loaded on first use: they pull in matplotlib, scipy or Keras, and `import tricklab` (and the
# command line's --help) should stay quick.
_LAZY = {
    "StudyRun": "tricklab.api",
    "run_study": "tricklab.api",
    "Report": "tricklab.report",
    "build_report": "tricklab.report",
    "export_model": "tricklab.tools.export",
    "predict_csv": "tricklab.tools.export",
    "load_model": "tricklab.tools.model_dir",
    "fit_variant": "tricklab.tools.fit",
    "lint": "tricklab.tools.lint",
    "lr_find": "tricklab.tools.lrfind",
    "plot_activations": "tricklab.tools.activations",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tricklab' has no attribute {name!r}")


__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "Recipe",
    "Report",
    "ResolvedStudy",
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
    "build_report",
    "export_model",
    "fit_variant",
    "lint",
    "load_dataset",
    "load_model",
    "load_result",
    "load_study",
    "lr_find",
    "make_splits",
    "plot_activations",
    "predict_csv",
    "resolve",
    "run_study",
]
