"""A user's CSV: read as UTF-8, checked cell by cell, features made numeric (one-hot text)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from tricklab.data._columns import (
    describe_plan,
    raw_table,
    read_date_column,
    resolve_keys,
)
from tricklab.data._csv_table import CsvTable
from tricklab.data._dataset import Dataset, Intake, make_dataset
from tricklab.data._target_scaling import with_target_transform
from tricklab.spec import CsvSpec


def load_csv(
    spec: CsvSpec, shown: str, resolved: str, mtime_ns: int, size: int, max_columns: int
) -> Dataset:
    """The dataset of a CSV file (cached in the process: keyed by the spec and the file's
    path, mtime and size)."""
    return _load_csv(_SpecKey(spec), shown, resolved, mtime_ns, size, max_columns)


class _SpecKey:
    """A :class:`CsvSpec` as a cache key (``impute`` and ``date_format`` may be tables, which
    a frozen pydantic model cannot hash)."""

    def __init__(self, spec: CsvSpec) -> None:
        self.spec, self._json = spec, spec.model_dump_json()

    def __hash__(self) -> int:
        return hash(self._json)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _SpecKey) and other._json == self._json


@functools.lru_cache(maxsize=8)
def _load_csv(
    key: _SpecKey, shown: str, resolved: str, mtime_ns: int, size: int, max_columns: int
) -> Dataset:
    del mtime_ns, size  # cache key only
    table = CsvTable.read(key.spec, shown, max_columns)
    target = table.target_label()
    return with_target_transform(_dataset(table, target, resolved), table, target)


def _dataset(table: CsvTable, target: Any, resolved: str) -> Dataset:
    spec = table.spec
    if spec.fits_columns:  # drop, columns, impute, dates (data/_columns.py)
        return _fitted_columns(table, target, resolved)
    table.check_complete()
    text = table.text_labels(target)
    classification, reason = table.is_classification(target)
    if spec.sequence:  # token columns: integer ids as int32 (data/_sequences.py)
        from tricklab.data._sequences import sequence_dataset

        return sequence_dataset(table, target, classification, reason, resolved)
    kinds = table.check_features(target, text)
    rows = len(table.frame)
    sampled = table.sample(target, classification)
    x, feature_names, one_hot = table.features(target, kinds)
    y, class_names, task = table.target(target, classification)
    return _made(
        table,
        resolved,
        task=task,
        x=x,
        y=y,
        feature_names=feature_names,
        class_names=class_names,
        intake=Intake(
            rows=rows,
            columns=len(table.frame.columns),
            task_reason=reason,
            target=table.column(target),
            numeric=sum(kind != "text" for kind in kinds.values()),
            one_hot=one_hot,
            sampled=sampled,
        ),
    )


def _fitted_columns(table: CsvTable, target: Any, resolved: str) -> Dataset:
    """A table whose dataset entry uses the column keys: columns left out, missing cells
    allowed where imputed, dates read; what is learnt from the data is fitted per run."""
    keys = resolve_keys(table, target)
    table.check_complete(keys.imputed)
    classification, reason = table.is_classification(target)
    date_forms = {label: read_date_column(table, label, form) for label, form in keys.dates.items()}
    kinds = table.check_features(target, keys.text, set(keys.dates))
    rows = len(table.frame)
    sampled = table.sample(target, classification)
    raw = raw_table(table, kinds, keys, date_forms)
    if raw is None:  # numbers only, none missing: nothing to fit besides scaling
        x, feature_names, one_hot = table.features(target, kinds)
        plan, salt = None, ""
    else:
        x, plan = raw
        feature_names = tuple(c.name for c in plan.columns)
        one_hot = {c.name: len(c.levels) for c in plan.columns if c.kind == "text"}
        salt = json.dumps(plan.describe(), sort_keys=True)
    y, class_names, task = table.target(target, classification)
    return _made(
        table,
        resolved,
        task=task,
        x=x,
        y=y,
        feature_names=feature_names,
        class_names=class_names,
        salt=salt,
        columns=plan,
        intake=Intake(
            rows=rows,
            columns=keys.columns_read,
            task_reason=reason,
            target=table.column(target),
            numeric=sum(kind in ("number", "bool") for kind in kinds.values()),
            one_hot=one_hot,
            sampled=sampled,
            note=describe_plan(plan) if plan is not None else _left_out(keys.dropped),
        ),
    )


def _made(table: CsvTable, resolved: str, **fields: Any) -> Dataset:
    """The dataset of a table: what every CSV's dataset takes from its spec and path."""
    return make_dataset(
        name=Path(table.shown).name,
        test_fraction=table.spec.test,
        standardize=table.spec.standardize,
        source=resolved,
        citation=None,
        **fields,
    )


def _left_out(dropped: list[Any]) -> str | None:
    return f"left out {', '.join(map(str, dropped))}" if dropped else None
