"""A loaded dataset, and what intake did to it (for the run header and reports)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tricklab.spec import Task

if TYPE_CHECKING:
    pass


# --- loaded data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Intake:
    """What loading did to the data, for display (:func:`describe_intake`).

    ``rows``: data rows read; ``columns``: columns read (the target included), or None for
    images; ``one_hot``: text column -> its number of levels (= one-hot features), in column
    order; ``numeric``: feature columns used as numbers (true/false as 0/1); ``sampled``: rows
    kept by ``limit`` (None: all); ``task_reason``: why the task is what it is; ``target``: the
    target column as messages name it (``'y'``, or ``2`` without a header row).
    """

    rows: int
    columns: int | None
    task_reason: str
    target: str | None = None
    numeric: int = 0
    one_hot: Mapping[str, int] = field(default_factory=dict)
    sampled: int | None = None
    note: str | None = None


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset. Arrays are read-only (they are shared through the in-process cache)."""

    name: str
    task: Task
    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    test_fraction: float | None
    standardize: bool
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    source: str
    citation: str | None
    fingerprint: str
    raw_scale: float = 1.0  # x = raw values * raw_scale (images: 1/255); undone by exported models
    intake: Intake | None = None  # what loading did (rows, columns, one-hot, why this task)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def majority_fraction(self) -> float | None:
        """Share of the most common class in ``y`` (the accuracy of always guessing it)."""
        if self.task == "regression" or len(self.y) == 0:
            return None
        return float(np.bincount(self.y, minlength=self.n_classes).max() / len(self.y))


def make_dataset(
    *,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    salt: str = "",
    **fields: Any,
) -> Dataset:
    """A :class:`Dataset` with read-only arrays and its fingerprint: a digest of the arrays,
    and of ``salt`` when given (what else the data depends on: an image folder's file bytes
    and options)."""
    arrays = (x, y, x_test, y_test)
    for array in arrays:
        if array is not None:
            array.setflags(write=False)
    fingerprint = _fingerprint(*arrays)
    if salt:
        fingerprint = hashlib.sha256(f"{fingerprint};{salt}".encode()).hexdigest()
    return Dataset(x=x, y=y, x_test=x_test, y_test=y_test, fingerprint=fingerprint, **fields)


def _fingerprint(*arrays: np.ndarray | None) -> str:
    digest = hashlib.sha256()
    for label, array in zip(("x", "y", "x_test", "y_test"), arrays, strict=True):
        if array is None:
            digest.update(f"{label}:none;".encode())
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{label}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.data)  # its buffer (numpy declares __buffer__ from Python 3.12)
    return digest.hexdigest()


# --- intake ----------------------------------------------------------------------------------


def describe_intake(dataset: Dataset) -> list[str]:
    """What loading did to ``dataset``, as lines a user reads (for a run header or
    ``tricklab datasets --describe``): rows and columns read, how the features were made
    (numbers as they are, text one-hot with its level counts) and why the task is what it is.

    ``["data.csv: 200 rows, 4 columns (target 'y')", "features: 6 = 1 numeric column + one-hot
    colour (3 levels), smoker (2 levels)", "task: binary, 2 classes; why: integer target with 2
    distinct values -> classification"]``
    """
    intake = dataset.intake
    features = len(dataset.feature_names) or math.prod(dataset.input_shape)
    if intake is None:
        return [
            f"{dataset.name}: {len(dataset.y)} rows",
            f"features: {features}",
            f"task: {_task_with_classes(dataset)}",
        ]
    unit = "rows" if dataset.feature_names else "training images"
    head = f"{dataset.name}: {intake.rows} {unit}"
    if intake.columns is not None:
        head += f", {intake.columns} columns"
    if intake.target is not None:
        head += f" (target {intake.target})"
    lines = [head]
    if intake.sampled is not None:
        kind = "random" if dataset.task == "regression" else "stratified"
        lines.append(f"limit: a {kind} sample of {intake.sampled} of the {intake.rows} {unit}")
    if not dataset.feature_names:
        shape = "x".join(map(str, dataset.input_shape))
        lines.append(f"features: {features} (input shape {shape})")
    elif intake.one_hot:
        levels = ", ".join(f"{name} ({n} levels)" for name, n in intake.one_hot.items())
        numeric = [_count(intake.numeric, "numeric column")] if intake.numeric else []
        lines.append(f"features: {features} = {' + '.join([*numeric, f'one-hot {levels}'])}")
    else:
        lines.append(f"features: {_count(features, 'numeric column')}, no one-hot encoding")
    if intake.note:
        lines.append(f"note: {intake.note}")
    lines.append(f"task: {_task_with_classes(dataset)}; why: {intake.task_reason}")
    return lines


def _task_with_classes(dataset: Dataset) -> str:
    if dataset.task == "regression":
        return "regression"
    return f"{dataset.task}, {dataset.n_classes} classes"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
