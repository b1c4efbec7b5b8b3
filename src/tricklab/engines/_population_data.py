"""What the population's program reads: one copy of the data on the device, and per cohort
its targets and its members' rows, standardisation and class weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tricklab.data import Dataset, Splits
from tricklab.engines._scoring import class_weight_vector, class_weights


def device_data(dataset: Dataset, cohorts: Sequence[Any]) -> dict[str, Any]:
    """One copy of the data on the device, and each cohort's targets, and its members' rows,
    standardisation and class weights."""
    import jax.numpy as jnp

    # float32 as fit feeds it; integer inputs (token ids) keep their dtype, as fit keeps them
    pool = jnp.asarray(dataset.x, dtype=_input_dtype(dataset.x))
    has_test_pool = dataset.x_test is not None
    test_pool = pool
    if has_test_pool:
        test_pool = jnp.asarray(dataset.x_test, dtype=_input_dtype(dataset.x_test))
    y_test_pool = dataset.y_test if has_test_pool else dataset.y
    assert y_test_pool is not None  # official test arrays come in pairs (x_test, y_test)
    out: dict[str, Any] = {"pool": pool, "test_pool": test_pool, "cohorts": []}
    for cohort in cohorts:
        splits = [m.task.splits for m in cohort.members]
        standardize = splits[0].feature_mean is not None
        cohort.train_rows = np.stack([s.rows["train"] for s in splits])
        # fit's class_weight, per member (a cohort shares its recipe, not its training rows)
        vectors = [
            class_weight_vector(
                class_weights(m.task.plan.recipe, dataset, m.task.splits),
                cohort.target.n_classes,
            )
            for m in cohort.members
        ]
        weights = [v for v in vectors if v is not None]
        weighted = len(weights) == len(vectors)  # one recipe: all members, or none
        out["cohorts"].append(
            {
                "y": _targets(cohort, splits, dataset.y),
                "y_test": _targets(cohort, splits, y_test_pool),
                "mean": jnp.asarray([s.feature_mean for s in splits]) if standardize else None,
                "std": jnp.asarray([s.feature_std for s in splits]) if standardize else None,
                "val_rows": jnp.asarray([s.rows["validation"] for s in splits]),
                "test_rows": jnp.asarray([s.rows["test"] for s in splits]),
                "class_weights": jnp.asarray(np.stack(weights)) if weighted else None,
                "labels": jnp.asarray(dataset.y, dtype="int32") if weighted else None,
            }
        )
    return out


def _targets(cohort: Any, splits: list[Splits], y: np.ndarray) -> Any:
    """The targets ``y`` as the cohort's model reads them: (rows, ...) shared by its members,
    or (members, rows, ...) when each member has its own target scale."""
    import jax.numpy as jnp

    encode = cohort.target.encode
    if cohort.y_per_member:
        return jnp.asarray(np.stack([encode(s.to_model(y)) for s in splits]))
    return jnp.asarray(encode(y))  # no transform: one copy for all


def _input_dtype(x: Any) -> str | None:
    """float32 for real-valued inputs; None (keep it) for integer or boolean ones."""
    return None if np.asarray(x[:0]).dtype.kind in "iub" else "float32"
