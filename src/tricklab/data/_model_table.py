"""A whole table for one model (``tricklab fit``): its rows raw with a column plan whatever
its dataset table says, and the fitted record (:meth:`FittedColumns.to_json`) read back.

A MODEL_DIR (:mod:`tricklab.tools.model_dir`) stores the record of a plan fitted on every row;
:func:`fitted_from_json` turns it back into :class:`~tricklab.data._columns.FittedColumns`,
whose :meth:`~tricklab.data._columns.FittedColumns.transform` makes the model's inputs: the
fitting and transforming code of the runs, not a second one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from tricklab.base.errors import DataError
from tricklab.data._columns import (
    ColumnPlan,
    FittedColumn,
    FittedColumns,
    RawColumn,
    raw_table,
    read_date_column,
    resolve_keys,
)
from tricklab.data._csv_table import CsvTable
from tricklab.data._dates import days_since_epoch
from tricklab.spec import CsvSpec


@dataclass(frozen=True)
class ModelTable:
    """A CSV's rows as a study reads them (``limit`` included), raw, with a :class:`ColumnPlan`
    whatever its dataset table says (a plain table too: its text columns one-hot, its number
    columns scaled), for a model fitted on every row (:meth:`ColumnPlan.fit`)."""

    x: np.ndarray  # raw, float64, NaN where missing (see the module docstring)
    plan: ColumnPlan
    #: every column of the file in order, the target and dropped ones included (names, or
    #: 0-based indices as strings without a header row)
    file_columns: tuple[str, ...]
    target: str


def model_table(spec: CsvSpec, shown: str, max_columns: int) -> ModelTable:
    """The rows of the CSV of ``spec`` as :func:`tricklab.data.load_dataset` reads them (the same
    checks, the same ``limit`` sample, in the same order), raw, with their column plan."""
    table = CsvTable.read(spec, shown, max_columns)
    file_columns = tuple(str(label) for label in table.frame.columns.tolist())
    target = table.target_label()
    keys = resolve_keys(table, target)
    table.check_complete(keys.imputed)
    classification, _ = table.is_classification(target)
    forms = {label: read_date_column(table, label, form) for label, form in keys.dates.items()}
    kinds = table.check_features(target, keys.text, set(keys.dates))
    if not kinds:
        raise DataError(f"{shown}: no feature columns besides the target {table.column(target)}.")
    if spec.limit is not None and spec.limit < len(table.frame):
        labels = table.frame[target].astype(str).to_numpy() if classification else None
        table.keep(labels, spec.limit)
    made = raw_table(table, kinds, keys, forms, for_model=True)
    assert made is not None  # for_model: always a plan
    x, plan = made
    return ModelTable(x, plan, file_columns, str(target))


def number_plan(names: tuple[str, ...], dropped: tuple[str, ...] = ()) -> ColumnPlan:
    """The plan of a table of number columns without missing cells (the built-in Thoracic
    data): each column one feature, standardised."""
    columns = tuple(RawColumn(name=name, kind="number") for name in names)
    return ColumnPlan(columns, True, False, dropped, width=len(columns))


def fitted_from_json(record: dict[str, Any]) -> FittedColumns:
    """The :class:`FittedColumns` that :meth:`FittedColumns.to_json` wrote (``fill_days``, when
    present, is a date column's exact imputation value): its :meth:`~FittedColumns.transform`
    makes the same features. A text column's raw value is then the index of its value among the
    written ``levels`` (any other value: -1, all zeros)."""
    columns: list[FittedColumn] = []
    for entry in record["columns"]:
        kind = entry["kind"]
        levels = tuple(str(v) for v in entry.get("levels", ()))
        column = RawColumn(
            name=str(entry["name"]),
            kind=kind,
            levels=levels,
            impute=entry.get("impute"),
            date_format=entry.get("date_format"),
        )
        shown = entry.get("fill")
        fill: float | None = None
        if shown is not None:
            if kind == "text":
                fill = float(levels.index(str(shown)))
            elif kind == "date":
                fill = float(entry.get("fill_days", _days_of_iso(str(shown))))
            else:
                fill = float(shown)
        origin = entry.get("origin")
        columns.append(
            FittedColumn(
                column=column,
                fill=fill,
                indicator=bool(entry.get("missing_indicator", False)),
                levels=tuple(range(len(levels))),
                origin=None if origin is None else _days_of_iso(str(origin)),
            )
        )
    scaling = record.get("standardize")
    mean = std = None
    if scaling is not None:
        mean = np.asarray(scaling["mean"], dtype=np.float64)
        std = np.asarray(scaling["std"], dtype=np.float64)
    plan = ColumnPlan(
        columns=tuple(c.column for c in columns),
        standardize=scaling is not None,
        missing_indicator=any(c.indicator for c in columns),
        dropped=tuple(str(d) for d in record.get("dropped", ())),
        width=len(record["features"]),
    )
    fitted = FittedColumns(plan, tuple(columns), tuple(record["features"]), mean, std)
    made = [name for c in columns for name in c.feature_names()]
    if made != list(fitted.feature_names):
        raise ValueError(f"the record's features {fitted.feature_names} are not its columns'")
    return fitted


def exact_json(fitted: FittedColumns) -> dict[str, Any]:
    """:meth:`FittedColumns.to_json`, with each date column's imputation value also as
    ``fill_days`` (days since 1970-01-01: a mean date has a fraction of a second that the ISO
    form rounds away)."""
    record = fitted.to_json()
    for entry, column in zip(record["columns"], fitted.columns, strict=True):
        if column.column.kind == "date" and column.fill is not None:
            entry["fill_days"] = float(column.fill)
    return record


def _days_of_iso(text: str) -> float:
    return days_since_epoch(dt.datetime.fromisoformat(text))
