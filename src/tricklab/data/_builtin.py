"""The built-in datasets: the lecture's Thoracic Surgery table and Fashion-MNIST."""

from __future__ import annotations

import functools
import importlib.resources
import io
import math
import struct
from typing import TYPE_CHECKING, Any

import numpy as np

from tricklab.base.errors import DataError
from tricklab.data import _idx
from tricklab.data._dataset import Dataset, Intake, make_dataset
from tricklab.data._sampling import stratified_sample
from tricklab.spec import (
    FASHION_CITATION,
    THORACIC_CITATION,
    THORACIC_CLASSES,
    THORACIC_COLUMNS,
    FashionMnistSpec,
    ThoracicSpec,
)

if TYPE_CHECKING:
    pass


# --- thoracic --------------------------------------------------------------------------------


def _thoracic_resource() -> Any:
    return importlib.resources.files("tricklab") / "resources" / "thoracic.csv"


@functools.lru_cache(maxsize=4)
def load_thoracic(spec: ThoracicSpec) -> Dataset:
    resource = _thoracic_resource()
    table = np.loadtxt(io.StringIO(resource.read_text(encoding="utf-8")), delimiter=",", ndmin=2)
    if table.shape[1] != len(THORACIC_COLUMNS) + 1:
        raise DataError(f"{resource}: expected 18 columns, found {table.shape[1]}.")
    first = 0 if spec.keep_id else 1
    return make_dataset(
        name="thoracic",
        task="binary",
        x=np.ascontiguousarray(table[:, first : len(THORACIC_COLUMNS)], dtype=np.float32),
        y=table[:, -1].astype(np.int64),
        test_fraction=spec.test,
        standardize=True,
        feature_names=THORACIC_COLUMNS[first:],
        class_names=THORACIC_CLASSES,
        source=str(resource),
        citation=THORACIC_CITATION,
        intake=Intake(
            rows=len(table),
            columns=table.shape[1],
            task_reason="built in: the outcome, whether the patient died within one year",
            target="'Risk1Yr'",
            numeric=len(THORACIC_COLUMNS) - first,
            note=None if spec.keep_id else "the id column is dropped (keep_id = true keeps it)",
        ),
    )


# --- fashion-mnist ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def fashion_dataset(spec: FashionMnistSpec, raw: _idx.RawFashion) -> Dataset:
    x, y = raw.x_train, raw.y_train
    sampled = None
    if spec.limit is not None and spec.limit < len(y):
        keep = stratified_sample(y, spec.limit, source="fashion_mnist")
        x, y = x[keep], y[keep]
        sampled = len(y)
    return make_dataset(
        name="fashion_mnist",
        task="multiclass",
        x=_scale(x),
        y=y.astype(np.int64),
        x_test=_scale(raw.x_test),
        y_test=raw.y_test.astype(np.int64),
        test_fraction=None,
        standardize=False,
        feature_names=(),
        class_names=_idx.CLASS_NAMES,
        source=str(raw.directory),
        citation=FASHION_CITATION,
        raw_scale=1 / 255.0,
        intake=Intake(
            rows=len(raw.y_train),
            columns=None,
            task_reason=f"built in: {len(_idx.CLASS_NAMES)} kinds of clothing",
            sampled=sampled,
            note=f"official test split of {len(raw.y_test)} images; pixels scaled to [0, 1]",
        ),
    )


def _scale(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / np.float32(255.0)


# --- listing ---------------------------------------------------------------------------------


def describe_datasets() -> list[dict[str, Any]]:
    """One row per built-in dataset for ``tricklab datasets``; never downloads anything."""
    return [_describe_fashion(), _describe_thoracic()]


def _describe_fashion() -> dict[str, Any]:
    directory = _idx.find_local()
    if directory is None:
        counts = {"train": 60000, "test": 10000}
        where = f"not found locally; downloads to {_idx.cache_dir()} on first use"
    else:
        where = str(directory)
        try:
            counts = _idx.header_counts(directory)
        except (OSError, EOFError, struct.error) as exc:
            counts = {"train": 60000, "test": 10000}
            where += f" (unreadable: {exc})"
    return {
        "name": "fashion_mnist",
        "task": "multiclass",
        "input_shape": (28, 28),
        "n_train": counts["train"],
        "n_test": counts["test"],
        "test_split": "official",
        "n_classes": len(_idx.CLASS_NAMES),
        "classes": list(_idx.CLASS_NAMES),
        "source": where,
        "citation": FASHION_CITATION,
    }


def _describe_thoracic() -> dict[str, Any]:
    spec = ThoracicSpec(name="thoracic")
    data = load_thoracic(spec)
    n_test = math.ceil(spec.test * len(data.y))
    return {
        "name": "thoracic",
        "task": data.task,
        "input_shape": data.input_shape,
        "n_train": len(data.y) - n_test,
        "n_test": n_test,
        "test_split": f"{spec.test:.0%} stratified hold-out, the `test` option",
        "n_classes": data.n_classes,
        "classes": list(data.class_names),
        "source": f"built in: {data.source}",
        "citation": data.citation,
    }
