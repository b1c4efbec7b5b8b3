"""Train / validation / test splits per seed, standardised with the training part only."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

import numpy as np

from tricklab.base.errors import DataError
from tricklab.data._dataset import Dataset
from tricklab.data._target_scaling import TargetScaling

# --- splits ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Splits:
    """Train / validation / test arrays for one seed (fresh, writable arrays).

    ``rows`` says which rows of the dataset each part holds: ``train`` and ``validation`` index
    ``dataset.x``; ``test`` indexes ``dataset.x_test`` when the dataset has an official test
    split, else ``dataset.x``. Engines that keep one copy of the data use them (not for a table
    fitted per run, ``dataset.fitted_per_run``: its arrays are made from its raw rows).

    ``fitted``: for a table fitted per run, what was learnt from this run's training rows, as
    plain JSON (:meth:`tricklab.data._columns.FittedColumns.to_json`: per column its imputation
    value, missing indicator, one-hot levels and date origin; the feature names; the scaling);
    None otherwise (``feature_mean`` and ``feature_std`` are then the whole record).

    ``target_scaling``: a regression target's transform fitted on this run's training rows
    (``target_transform``, :mod:`tricklab.data._target_scaling`), or None. The ``y_*`` arrays
    stay on the target's own scale: what feeds the model goes through :meth:`to_model`, and
    its outputs come back through :meth:`from_model` before they are scored.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    validation_is_test: bool
    feature_mean: np.ndarray | None
    feature_std: np.ndarray | None
    rows: dict[str, np.ndarray]
    fitted: dict[str, Any] | None = None
    target_scaling: TargetScaling | None = None

    def to_model(self, y: np.ndarray) -> np.ndarray:
        """Targets on the scale the model trains on (as they are without a transform)."""
        return y if self.target_scaling is None else self.target_scaling.forward(y)

    def from_model(self, outputs: np.ndarray) -> np.ndarray:
        """The model's outputs on the target's own scale (as they are without a transform)."""
        return outputs if self.target_scaling is None else self.target_scaling.inverse(outputs)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "validation": len(self.y_val), "test": len(self.y_test)}


def make_splits(
    dataset: Dataset,
    *,
    validation: float | Literal["test"],
    seed: int,
    fold: int | None = None,
    folds: int | None = None,
) -> Splits:
    """Split ``dataset`` for one seed.

    1. test: the official test split if there is one, else a seeded hold-out of
       ``dataset.test_fraction`` (stratified for classification); under cross-validation
       (``fold`` of ``folds``), fold ``fold`` of the seeded (stratified) k-fold assignment;
    2. validation: a seeded fraction of the rest (stratified), or ``"test"``: the test arrays;
    3. standardisation (if ``dataset.standardize``) with the training part's mean and std;
       a table fitted per run (``dataset.columns``) first makes its features with what its
       training rows say (imputation, levels, date origins: :mod:`tricklab.data._columns`).
    """
    if not (validation == "test" or (isinstance(validation, float) and 0 < validation < 1)):
        raise ValueError(f"validation must be a float in (0, 1) or 'test', not {validation!r}")
    if not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int in [0, 2**32), not {seed!r}")
    everything = np.arange(len(dataset.y))
    if fold is not None:
        test = cv_folds(dataset, folds or 0, seed)[fold]
        rest = np.setdiff1d(everything, test)
        x_test_pool, y_test_pool = dataset.x, dataset.y
    elif dataset.x_test is not None and dataset.y_test is not None:
        rest, test = everything, np.arange(len(dataset.y_test))
        x_test_pool, y_test_pool = dataset.x_test, dataset.y_test
    elif dataset.test_fraction is not None:
        rest, test = _hold_out(dataset, everything, dataset.y, dataset.test_fraction, seed, "test")
        x_test_pool, y_test_pool = dataset.x, dataset.y
    else:
        raise ValueError(f"{dataset.name}: no official test split and no test_fraction")
    if validation == "test":
        train, val = rest, test
    else:
        train, val = _hold_out(dataset, rest, dataset.y[rest], validation, seed, "validation")
    rows = {"train": train, "validation": val, "test": test}
    splits = _parts(dataset, x_test_pool, y_test_pool, rows, validation == "test")
    if dataset.target_transform is None:
        return splits
    # fitted on the run's training rows, as its features are
    scaling = TargetScaling.fit(dataset.target_transform, splits.y_train)
    return dataclasses.replace(splits, target_scaling=scaling)


def _parts(
    dataset: Dataset,
    x_test_pool: np.ndarray,
    y_test_pool: np.ndarray,
    rows: dict[str, np.ndarray],
    validation_is_test: bool,
) -> Splits:
    """Each part's arrays, the features standardised (or fitted) on the training rows."""
    if dataset.columns is not None:
        return _fitted_splits(dataset, x_test_pool, y_test_pool, rows, validation_is_test)
    train, val, test = rows["train"], rows["validation"], rows["test"]
    x_train, y_train = dataset.x[train], dataset.y[train]
    x_test, y_test = x_test_pool[test], y_test_pool[test]
    mean = std = None
    if dataset.standardize:
        mean, std = _moments(x_train)
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    if validation_is_test:
        x_val, y_val = x_test, y_test
    else:
        x_val, y_val = dataset.x[val], dataset.y[val]
        if mean is not None:
            x_val = (x_val - mean) / std
    return Splits(
        x_train, y_train, x_val, y_val, x_test, y_test, validation_is_test, mean, std, rows
    )


def _fitted_splits(
    dataset: Dataset,
    x_test_pool: np.ndarray,
    y_test_pool: np.ndarray,
    rows: dict[str, np.ndarray],
    validation_is_test: bool,
) -> Splits:
    """The splits of a table fitted per run: its columns fitted on the training rows alone,
    every part made with that fit."""
    assert dataset.columns is not None
    train, val, test = rows["train"], rows["validation"], rows["test"]
    fitted = dataset.columns.fit(dataset.x[train])
    x_train = fitted.transform(dataset.x[train])
    x_test = fitted.transform(x_test_pool[test])
    if validation_is_test:
        x_val, y_val = x_test, y_test_pool[test]
    else:
        x_val, y_val = fitted.transform(dataset.x[val]), dataset.y[val]
    return Splits(
        x_train,
        dataset.y[train],
        x_val,
        y_val,
        x_test,
        y_test_pool[test],
        validation_is_test,
        fitted.mean,
        fitted.std,
        rows,
        fitted.to_json(),
    )


class _Folds(Protocol):
    """What is used of scikit-learn's KFold and StratifiedKFold (which are not annotated)."""

    def split(self, x: np.ndarray, y: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...


@functools.lru_cache(maxsize=64)
def _fold_assignment(dataset: Dataset, folds: int, seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.model_selection import KFold, StratifiedKFold

    if dataset.x_test is not None:
        raise DataError(
            f"cv: dataset '{dataset.name}' comes with an official test split, and cv draws its "
            "test folds from one table. Drop cv (use resplit = true to vary the split)."
        )
    rows = np.arange(len(dataset.y))
    # cast: scikit-learn is unannotated (mypy --strict calls no unannotated function); see _Folds.
    splitter: _Folds
    if dataset.task == "regression":
        plain = cast(Callable[..., _Folds], KFold)
        splitter = plain(n_splits=folds, shuffle=True, random_state=seed)
    else:
        counts = np.bincount(dataset.y, minlength=dataset.n_classes)
        rare = int(np.argmin(np.where(counts > 0, counts, len(counts) + len(dataset.y))))
        if counts[rare] < folds:
            raise DataError(
                f"cv.folds: dataset '{dataset.name}' has {counts[rare]} rows of class "
                f"'{dataset.class_names[rare]}', fewer than the folds; stratified folds need "
                f"at least one per fold. Received: folds={folds}."
            )
        stratified = cast(Callable[..., _Folds], StratifiedKFold)
        splitter = stratified(n_splits=folds, shuffle=True, random_state=seed)
    return tuple(test for _, test in splitter.split(rows, dataset.y))


def cv_folds(dataset: Dataset, folds: int, seed: int) -> tuple[np.ndarray, ...]:
    """The test rows of each of ``folds`` folds, assigned with ``seed`` (stratified for
    classification); every row is in exactly one fold."""
    if not isinstance(folds, int) or folds < 2 or folds > len(dataset.y):
        raise ValueError(f"folds must be an int in [2, {len(dataset.y)}], not {folds!r}")
    return _fold_assignment(dataset, folds, seed)


def _hold_out(
    dataset: Dataset, rows: np.ndarray, y: np.ndarray, fraction: float, seed: int, what: str
) -> list[np.ndarray]:
    """``[rows_keep, rows_out]``: a seeded hold-out of ``rows``, stratified for classification."""
    from sklearn.model_selection import train_test_split

    stratify = None if dataset.task == "regression" else y
    kind = "stratified " if stratify is not None else ""
    problem = _hold_out_problem(dataset, y, fraction, what) if stratify is not None else None
    if problem is None:
        try:
            kept: list[np.ndarray] = train_test_split(
                rows, test_size=fraction, stratify=stratify, random_state=seed
            )
            return kept
        except ValueError as exc:
            problem = str(exc)
    raise DataError(
        f"{dataset.name}: cannot hold out a {kind}{what} split of {fraction:g} from {len(y)} "
        f"rows: {problem}. Use more data (or a larger limit) or another fraction."
    )


def _hold_out_problem(dataset: Dataset, y: np.ndarray, fraction: float, what: str) -> str | None:
    """Why a stratified hold-out is impossible (scikit-learn's conditions), or None."""
    counts = np.bincount(y, minlength=dataset.n_classes)
    present = np.flatnonzero(counts)
    n_out = math.ceil(fraction * len(y))
    rare = [k for k in present if counts[k] < 2]
    if rare:
        return f"class {dataset.class_names[rare[0]]!r} has only 1 row"
    if n_out < len(present):
        return f"the {what} split would have {n_out} rows, fewer than the {len(present)} classes"
    if len(y) - n_out < len(present):
        return f"the rest would have {len(y) - n_out} rows, fewer than the {len(present)} classes"
    return None


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
    std = x.std(axis=0, dtype=np.float64).astype(np.float32)
    std[std == 0] = 1.0
    return mean, std
