"""A stratified sample of rows (``limit`` in a dataset entry): each class kept in proportion."""

from __future__ import annotations

import numpy as np

from tricklab.base.errors import DataError


def stratified_sample(labels: np.ndarray, limit: int, *, source: str) -> np.ndarray:
    """Sorted row indices of ``limit`` rows, each class kept in proportion (seed 0).

    Every class keeps at least one row, so ``limit`` must be at least the number of classes.
    """
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if limit < len(classes):
        raise DataError(
            f"{source}: limit = {limit} is less than the number of classes ({len(classes)}); "
            "a sample keeps every class."
        )
    rng = np.random.default_rng(0)
    keep = [
        rng.choice(np.flatnonzero(inverse == k), size=quota, replace=False)
        for k, quota in enumerate(_quotas(counts, limit))
    ]
    return np.sort(np.concatenate(keep))


def _quotas(counts: np.ndarray, limit: int) -> np.ndarray:
    """Rows to keep per class: proportional (largest remainder), at least 1, summing to limit."""
    ideal = counts * limit / counts.sum()
    quota: np.ndarray = np.minimum(counts, np.maximum(1, np.floor(ideal).astype(np.int64)))
    while quota.sum() < limit:
        k = int(np.argmax(np.where(quota < counts, ideal - quota, -np.inf)))
        quota[k] += 1
    while quota.sum() > limit:
        k = int(np.argmax(np.where(quota > 1, quota - ideal, -np.inf)))
        quota[k] -= 1
    return quota
