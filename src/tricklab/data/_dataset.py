"""A loaded dataset, and what intake did to it (for the run header and reports)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tricklab.spec import TargetTransform, Task

if TYPE_CHECKING:
    from tricklab.data._columns import ColumnPlan


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
    #: A table whose columns are fitted per run (:mod:`tricklab.data._columns`): then ``x`` is
    #: the raw table (float64, NaN where missing; one column per feature column, named by
    #: ``feature_names``) and each run's features are made by :func:`make_splits` from its
    #: training rows. None: ``x`` holds the features.
    columns: ColumnPlan | None = None
    #: A regression target fed to the model standardised or as its log, each run fitting it on
    #: its training rows (:mod:`tricklab.data._target_scaling`); None: as it is.
    target_transform: TargetTransform | None = None

    @property
    def fitted_per_run(self) -> bool:
        """Whether each run makes its own features (``columns``): its arrays are not rows of
        ``x``, and engines that keep one copy of ``x`` (populations) cannot train it."""
        return self.columns is not None

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input; a table fitted per run: the most features a run can have
        (each run has those of its training rows: ``splits.x_train.shape[1:]``)."""
        if self.columns is not None:
            return (self.columns.width,)
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
    elif dataset.columns is not None:  # fitted per run (data/_columns.py)
        lines.append(f"features: {_per_run_features(dataset.columns, intake)}")
    elif np.issubdtype(dataset.x.dtype, np.integer):  # a CSV's sequence columns
        lines.append(f"features: a sequence of {features} token ids (int32, not scaled)")
    elif intake.one_hot:
        levels = ", ".join(f"{name} ({n} levels)" for name, n in intake.one_hot.items())
        numeric = [_count(intake.numeric, "numeric column")] if intake.numeric else []
        lines.append(f"features: {features} = {' + '.join([*numeric, f'one-hot {levels}'])}")
    else:
        lines.append(f"features: {_count(features, 'numeric column')}, no one-hot encoding")
    if intake.note:
        lines.append(f"note: {intake.note}")
    if dataset.target_transform is not None:
        lines.append(f"target: {_TARGET_TRANSFORMS[dataset.target_transform]}")
    lines.append(f"task: {_task_with_classes(dataset)}; why: {intake.task_reason}")
    return lines


_TARGET_TRANSFORMS = {
    "standardize": "standardized for the model with each run's training mean and std; "
    "curves on that scale, test scores and predictions on the target's own",
    "log": "fed to the model as its natural log; curves on that scale, test scores and "
    "predictions on the target's own",
}


def _per_run_features(plan: ColumnPlan, intake: Intake) -> str:
    """``up to 12 per run = 3 numeric columns + one-hot plan (3 levels) + date signup (4) +
    2 missing indicators``: the levels of the whole file; a run has those of its training
    rows."""
    parts = [_count(intake.numeric, "numeric column")] if intake.numeric else []
    if intake.one_hot:
        parts.append(
            "one-hot " + ", ".join(f"{name} ({n} levels)" for name, n in intake.one_hot.items())
        )
    dates = [c.name for c in plan.columns if c.kind == "date"]
    if dates:
        parts.append("date " + ", ".join(f"{name} (4)" for name in dates))
    if plan.missing_indicator:
        imputed = sum(c.impute is not None for c in plan.columns)
        parts.append(_count(imputed, "missing indicator"))
    return f"up to {plan.width} per run = {' + '.join(parts)}"


def _task_with_classes(dataset: Dataset) -> str:
    if dataset.task == "regression":
        return "regression"
    return f"{dataset.task}, {dataset.n_classes} classes"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
