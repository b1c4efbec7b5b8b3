"""Integer sequences in a CSV: ``dataset = {csv = ..., target = ..., sequence = ["c0", ...]}``.

The ``sequence`` columns, in the order listed, are the features and nothing else is: each row
is one sequence of token ids (integers >= 0) of length T = ``len(sequence)``, for an
``embedding`` layer and recurrent layers. They are not scaled (standardisation is off) and are
fed as int32, sample shape (T,). Any other column besides the target is an error naming it, as
is a cell that is not an integer >= 0 (naming its line, column and value).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tricklab.base.errors import DataError
from tricklab.data._dataset import Dataset, Intake, make_dataset

if TYPE_CHECKING:
    from tricklab.data._csv_table import CsvTable

#: The largest token id int32 holds.
MAX_TOKEN = int(np.iinfo(np.int32).max)


def sequence_dataset(
    table: CsvTable, target: Any, classification: bool, reason: str, source: str
) -> Dataset:
    """The dataset of a CSV whose features are the token columns ``table.spec.sequence``."""
    spec = table.spec
    labels = token_labels(table, target)
    _check_tokens(table, labels)
    rows = len(table.frame)
    sampled = table.sample(target, classification)
    x = np.ascontiguousarray(table.frame[labels].to_numpy(dtype=np.float64).astype(np.int32))
    y, class_names, task = table.target(target, classification)
    first, last = table.column(labels[0]), table.column(labels[-1])
    span = first if len(labels) == 1 else f"{first} to {last}"
    return make_dataset(
        name=Path(table.shown).name,
        task=task,
        x=x,
        y=y,
        test_fraction=spec.test,
        standardize=False,
        feature_names=tuple(str(label) for label in labels),
        class_names=class_names,
        source=source,
        citation=None,
        intake=Intake(
            rows=rows,
            columns=len(table.frame.columns),
            task_reason=reason,
            target=table.column(target),
            sampled=sampled,
            note=(
                f"sequence = {span}: token ids {int(x.min())}-{int(x.max())} as int32, not scaled"
            ),
        ),
    )


def token_labels(table: CsvTable, target: Any) -> list[Any]:
    """The column labels ``sequence`` names, in its order; checked: present, not the target,
    and no other feature column in the file."""
    columns = table.frame.columns.tolist()
    labels = []
    for ref in table.spec.sequence:
        label = table.label("sequence", ref)
        if label == target:
            raise DataError(
                f"{table.shown}: sequence names the target column {table.column(target)}; it "
                "lists the token columns (the features)."
            )
        labels.append(label)
    if len(set(labels)) < len(labels):  # a name and the index of the same column
        raise DataError(f"{table.shown}: sequence names a column twice; each token column once.")
    others = [c for c in columns if c != target and c not in labels]
    if others:
        extra = f" (and {len(others) - 1} more)" if len(others) > 1 else ""
        raise DataError(
            f"{table.shown}: column {table.column(others[0])}{extra} is neither the target nor a "
            "sequence column; with sequence, the features are exactly the token columns. "
            "Remove it from the file, or list it in sequence."
        )
    return labels


def _check_tokens(table: CsvTable, labels: list[Any]) -> None:
    """Every token cell an integer in [0, 2**31 - 1]; else the first bad cell in file order
    (line, column, value)."""
    import pandas as pd

    values = np.empty((len(table.frame), len(labels)), dtype=np.float64)
    for i, label in enumerate(labels):
        series = table.frame[label]
        if pd.api.types.is_bool_dtype(series):
            values[:, i] = np.nan  # true/false are not token ids
        else:
            values[:, i] = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (values != np.round(values)) | (values < 0)
        bad |= values > MAX_TOKEN
    if not bad.any():
        return
    row, col = (int(i) for i in np.argwhere(bad)[0])  # row-major: the first in file order
    label = labels[col]
    cell = table.frame[label].iloc[row]
    where = f"{table.shown}: line {table.line(row)}, column {table.column(label)}"
    if pd.isna(cell):
        raise DataError(f"{where}: missing value; a sequence column holds a token id in every row.")
    shown = cell.item() if isinstance(cell, np.generic) else cell
    raise DataError(
        f"{where}: {shown!r} is not a token id; sequence columns hold integers from 0 to "
        f"{MAX_TOKEN} (the ids an embedding layer looks up)."
    )
