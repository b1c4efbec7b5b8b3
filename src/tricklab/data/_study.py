"""A study on its data: load the dataset a study asks for, and resolve the study on it."""

from __future__ import annotations

from tricklab.base import backend as _backend
from tricklab.base.errors import DataError
from tricklab.data._dataset import Dataset
from tricklab.data._load import load_dataset
from tricklab.data._resolved import ResolvedStudy, resolve_study
from tricklab.spec import StudySpec


def load_data(spec: StudySpec) -> Dataset:
    """The study's dataset; a data problem is reported with the study file that asked for it."""
    try:
        return load_dataset(
            spec.dataset, base_dir=spec.base_dir, max_columns=spec.limits.max_columns
        )
    except DataError as exc:
        prefix = f"{spec.source}: dataset: " if spec.source else "dataset: "
        raise DataError(prefix + str(exc)) from None


def resolve(
    spec: StudySpec, dataset: Dataset | None = None, *, backend: str | None = None
) -> ResolvedStudy:
    """The study on its data (loaded if not given): task, primary metric, protocol, splits.

    Every command reads the study through this one object (:mod:`tricklab.data._resolved`).
    It is not checked: :meth:`~tricklab.data.ResolvedStudy.check` raises its problems.
    """
    data = dataset if dataset is not None else load_data(spec)
    try:
        return resolve_study(spec, data, backend=backend or _backend.name())
    except DataError as exc:  # the rows a protocol asks for (cv folds) do not exist
        raise DataError(f"{spec.source}: {exc}" if spec.source else str(exc)) from None
