"""A table's columns fitted per run: imputation, one-hot levels, dates and scaling.

A CSV study that uses the column keys of its dataset table (``drop``, ``columns``, ``impute``,
``missing_indicator``, ``dates``) and has anything to learn from the data besides scaling (text
columns, missing cells, dates) keeps its table raw: :class:`Dataset.x <tricklab.data.Dataset>`
holds one float64 column per feature column, NaN where a cell is missing (number columns as
read, true/false as 0/1, text as the index of the value among the file's sorted values, dates
as days since 1970-01-01), and :class:`ColumnPlan` says what each column is.

:meth:`ColumnPlan.fit` learns, from one run's training rows only, everything that depends on the
data: the imputation value of each imputed column, whether it gets a missing indicator (it had
missing cells among the training rows), the one-hot levels of each text column (the values seen
in training; a value seen only in validation or test rows encodes as all zeros, as scikit-learn's
``OneHotEncoder(handle_unknown="ignore")``), each date column's origin (its first training date)
and the mean and standard deviation of every feature. The result, :class:`FittedColumns`, turns
any rows into the run's features (:meth:`FittedColumns.transform`) and says what was fitted as
plain JSON (:meth:`FittedColumns.to_json`: no pickles).

The imputation values are those of scikit-learn's ``SimpleImputer`` (mean, median, most
frequent: the smallest of equally frequent values), and the scaling that of the runs without
column keys (mean and population standard deviation; a constant feature keeps std 1), computed
in float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from tricklab.base.errors import DataError
from tricklab.data._dates import (
    ACCEPTED_DATES,
    DAY_FIRST,
    MONTH_FIRST,
    date_features,
    iso_date,
    read_dates,
)
from tricklab.spec import messages

if TYPE_CHECKING:
    from tricklab.data._csv_table import CsvTable

ColumnKind = Literal["number", "bool", "text", "date"]
Strategy = Literal["mean", "median", "most_frequent"]
#: The features a date column becomes, in order (``col:year``, ...).
DATE_FEATURES = ("year", "month", "weekday", "days")


@dataclass(frozen=True)
class RawColumn:
    """One feature column of a raw table (:mod:`tricklab.data._columns`)."""

    name: str
    kind: ColumnKind
    #: text: every value in the file, sorted (the raw column holds the index of the value)
    levels: tuple[str, ...] = ()
    #: how missing cells are filled; None: the column has none (intake checked it)
    impute: Strategy | None = None
    #: dates: the strptime format the cells were read with ("ISO" for ISO 8601)
    date_format: str | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "text":
            out["file_levels"] = len(self.levels)
        if self.impute is not None:
            out["impute"] = self.impute
        if self.date_format is not None:
            out["date_format"] = self.date_format
        return out


@dataclass(frozen=True)
class ColumnPlan:
    """What each raw column of a dataset is, and how its features are made for one run."""

    columns: tuple[RawColumn, ...]
    standardize: bool
    missing_indicator: bool
    #: feature columns the dataset table's ``drop`` or ``columns`` removed, as written
    dropped: tuple[str, ...] = ()
    #: the file, for messages
    source: str = ""
    #: the most features a run can have (every level of the file, every possible indicator)
    width: int = 0

    def describe(self) -> dict[str, Any]:
        """The plan as JSON (the dataset's fingerprint includes it)."""
        return {
            "columns": [c.describe() for c in self.columns],
            "standardize": self.standardize,
            "missing_indicator": self.missing_indicator,
            "dropped": list(self.dropped),
        }

    def fit(self, x_train: np.ndarray) -> FittedColumns:
        """Fit every column on the raw training rows ``x_train`` (and only on them)."""
        if x_train.ndim != 2 or x_train.shape[1] != len(self.columns):
            raise ValueError(f"expected {len(self.columns)} raw columns, got {x_train.shape}")
        fitted = tuple(
            _fit_column(column, x_train[:, j], self.missing_indicator, self.source)
            for j, column in enumerate(self.columns)
        )
        names = tuple(name for f in fitted for name in f.feature_names())
        partial = FittedColumns(self, fitted, names, None, None)
        if not self.standardize:
            return partial
        mean, std = _moments(partial.encode(x_train))
        return FittedColumns(self, fitted, names, mean, std)


@dataclass(frozen=True)
class FittedColumn:
    """What one column learnt from a run's training rows."""

    column: RawColumn
    #: the value a missing cell takes (a raw value: a number, a text level's index, days)
    fill: float | None
    #: whether the column gets a 0/1 missing indicator (it had missing training cells)
    indicator: bool
    #: text: the indices of the levels seen in training (sorted, as their values)
    levels: tuple[int, ...] = ()
    #: dates: the first training date, in days since 1970-01-01
    origin: float | None = None

    def feature_names(self) -> list[str]:
        name = self.column.name
        if self.column.kind == "text":
            names = [f"{name}={self.column.levels[i]}" for i in self.levels]
        elif self.column.kind == "date":
            names = [f"{name}:{part}" for part in DATE_FEATURES]
        else:
            names = [name]
        return names + ([f"{name}:missing"] if self.indicator else [])

    def encode(self, raw: np.ndarray) -> np.ndarray:
        """This column's features of the raw cells ``raw`` (n,) as an (n, k) float64 array."""
        missing = np.isnan(raw)
        values = np.where(missing, self.fill, raw) if self.fill is not None else raw
        kind = self.column.kind
        if kind == "text":
            codes = np.asarray(self.levels, dtype=np.float64)
            parts = (values[:, None] == codes[None, :]).astype(np.float64)
        elif kind == "date":
            parts = date_features(values, self.origin or 0.0)
        else:
            parts = values[:, None]
        if self.indicator:
            parts = np.column_stack([parts, missing.astype(np.float64)])
        return parts

    def to_json(self) -> dict[str, Any]:
        column = self.column
        out: dict[str, Any] = {"name": column.name, "kind": column.kind}
        if column.kind == "text":
            out["levels"] = [column.levels[i] for i in self.levels]
        if column.kind == "date":
            out["date_format"] = column.date_format
            out["origin"] = iso_date(self.origin)
        if column.impute is not None:
            out["impute"] = column.impute
            out["fill"] = self.shown_fill()
            out["missing_indicator"] = self.indicator
        return out

    def shown_fill(self) -> Any:
        """The imputation value as the file writes it (a number, a text value, a date)."""
        if self.fill is None:
            return None
        if self.column.kind == "text":
            return self.column.levels[int(self.fill)]
        if self.column.kind == "date":
            return iso_date(self.fill)
        if self.column.kind == "bool":
            return float(self.fill)
        return float(self.fill)


@dataclass(frozen=True)
class FittedColumns:
    """A :class:`ColumnPlan` fitted on one run's training rows."""

    plan: ColumnPlan
    columns: tuple[FittedColumn, ...]
    feature_names: tuple[str, ...]
    mean: np.ndarray | None
    std: np.ndarray | None

    def encode(self, raw: np.ndarray) -> np.ndarray:
        """The features of raw rows before scaling (float64): imputed and encoded."""
        parts = [f.encode(raw[:, j]) for j, f in enumerate(self.columns)]
        return np.hstack(parts) if parts else np.zeros((len(raw), 0))

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """The run's features (float32) of raw rows: imputed, encoded and (when the dataset is
        standardised) scaled with the training rows' mean and std (in float64: a year is 2021,
        and float32 would lose its fraction of a standard deviation)."""
        x = self.encode(raw)
        if self.mean is not None and self.std is not None:
            x = (x - self.mean) / self.std
        return x.astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        """What was fitted, as plain JSON: per column its imputation value, missing indicator,
        levels and date origin; the features in order; the scaling (mean and std per feature,
        or None)."""
        scaling = None
        if self.mean is not None and self.std is not None:
            scaling = {
                "mean": [float(v) for v in self.mean],
                "std": [float(v) for v in self.std],
            }
        return {
            "columns": [f.to_json() for f in self.columns],
            "dropped": list(self.plan.dropped),
            "features": list(self.feature_names),
            "standardize": scaling,
        }


def _fit_column(column: RawColumn, raw: np.ndarray, indicator: bool, source: str) -> FittedColumn:
    missing = np.isnan(raw)
    present = raw[~missing]
    fill = None
    if column.impute is not None:
        if not len(present):
            raise DataError(
                f"{source}: column '{column.name}': every training row of this run is missing "
                f'it, so impute = "{column.impute}" has nothing to learn from. Drop the column '
                f'(drop = ["{column.name}"] in the dataset table) or fill it.'
            )
        fill = _impute_value(column.impute, present)
    filled = np.where(missing, fill, raw) if fill is not None else raw
    levels: tuple[int, ...] = ()
    origin = None
    if column.kind == "text":
        levels = tuple(int(c) for c in np.unique(filled[~np.isnan(filled)]))
    elif column.kind == "date" and len(present):
        origin = float(np.floor(present.min()))
    return FittedColumn(
        column=column,
        fill=fill,
        indicator=bool(indicator and column.impute is not None and missing.any()),
        levels=levels,
        origin=origin,
    )


def _impute_value(strategy: Strategy, present: np.ndarray) -> float:
    """SimpleImputer's statistic of the non-missing training values ``present``."""
    if strategy == "mean":
        return float(np.mean(present))
    if strategy == "median":
        return float(np.median(present))
    values, counts = np.unique(present, return_counts=True)
    return float(values[int(np.argmax(counts))])  # the smallest of the most frequent


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and (population) standard deviation of each feature, float64; a constant
    feature keeps std 1."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0
    return mean, std


# --- intake: the column keys of a CSV's dataset table ------------------------------------------


@dataclass
class ColumnKeys:
    """The column keys of a dataset table resolved against a CSV's columns (pandas labels)."""

    text: set[Any]  # text_columns
    dropped: list[Any]  # feature columns drop / columns leave out
    dates: dict[Any, str | None]  # date column -> its date_format (None: recognised)
    imputed: dict[Any, Strategy]  # feature column -> strategy (impute's columns)
    per_column: bool  # impute is a table {column = strategy}
    columns_read: int  # columns in the file, the target and dropped ones included


def resolve_keys(table: CsvTable, target: Any) -> ColumnKeys:
    """Resolve ``drop`` / ``columns``, ``text_columns``, ``dates``, ``date_format`` and
    ``impute`` against the file's columns, and leave the dropped ones out of ``table``.
    Every reference is checked (found, not the target, not dropped) in one located line."""
    spec, shown = table.spec, table.shown
    text = table.text_labels(target)
    labels = table.frame.columns.tolist()

    def find(ref: str | int, key: str) -> Any:
        if isinstance(ref, int):
            if ref < len(labels):
                return labels[ref]
            raise DataError(
                f"{shown}: {key}: column {ref} not found; the file has {len(labels)} columns "
                f"(0-based indices 0-{len(labels) - 1}).{table.hint}"
            )
        if ref in labels:
            return ref
        hint = messages.did_you_mean(ref, [str(c) for c in labels])
        listed = ", ".join(str(c).replace("\t", "\\t") for c in labels)
        raise DataError(f"{shown}: {key}: column '{ref}' not found.{hint} Columns: {listed}.")

    if spec.columns is not None:
        keep = {find(ref, "columns") for ref in spec.columns}
        dropped = [label for label in labels if label not in keep and label != target]
        how = "columns"
    else:
        dropped = [find(ref, "drop") for ref in spec.drop]
        how = "drop"
        if target in dropped:
            raise DataError(
                f"{shown}: drop names the target column {table.column(target)}; drop lists "
                "feature columns to leave out."
            )
    gone = set(dropped)

    def feature(label: Any, key: str) -> Any:
        if label == target:
            raise DataError(
                f"{shown}: {key} names the target column {table.column(target)}; it lists "
                "feature columns."
            )
        if label in gone:
            leaves = "does not keep" if how == "columns" else "leaves out"
            raise DataError(
                f"{shown}: {key} names column {table.column(label)}, which {how} {leaves}."
            )
        return label

    for label in text:
        feature(label, "text_columns")
    dates: dict[Any, str | None] = {}
    for ref in spec.dates:
        label = feature(find(ref, "dates"), "dates")
        if label in text:
            raise DataError(
                f"{shown}: column {table.column(label)} is in both text_columns and dates; "
                "a column is read one way."
            )
        form = spec.date_format
        dates[label] = form.get(str(ref)) if isinstance(form, dict) else form
    imputed: dict[Any, Strategy] = {}
    if isinstance(spec.impute, dict):
        for key, strategy in spec.impute.items():
            named: str | int = int(key) if not spec.header and key.isdigit() else key
            imputed[feature(find(named, f"impute.{key}"), f"impute.{key}")] = strategy
    elif spec.impute is not None:
        imputed = {label: spec.impute for label in labels if label != target and label not in gone}
    table.frame = table.frame.drop(columns=dropped)
    return ColumnKeys(text, dropped, dates, imputed, isinstance(spec.impute, dict), len(labels))


def read_date_column(table: CsvTable, label: Any, date_format: str | None) -> str:
    """Replace the cells of date column ``label`` with days since 1970-01-01 (NaN where
    missing); return the form they were read in. A cell that is not a date, or a column whose
    dates read both day-first and month-first without ``date_format``, is a located error."""
    import pandas as pd

    series = table.frame[label]
    present = series.notna().to_numpy()
    texts = series[present].astype(str).to_numpy()
    distinct = sorted(set(texts.tolist()))
    forms, days = read_dates(distinct, date_format)
    where = f"{table.shown}: line {{line}}, column {table.column(label)}"
    rows = np.flatnonzero(present)
    if len(forms) > 1:
        day_first = next(f for f in forms if f in DAY_FIRST)
        month_first = next(f for f in forms if f in MONTH_FIRST)
        raise DataError(
            where.format(line=table.line(int(rows[0])))
            + f": {texts[0]!r}: every date of the column reads both day-first ({day_first}) and "
            f'month-first ({month_first}); set date_format = "{day_first}" (or '
            f'"{month_first}") in the dataset table.'
        )
    lookup = dict(zip(distinct, days, strict=True))
    bad = [i for i, text in enumerate(texts) if lookup[text] is None]
    if bad:
        first = bad[0]
        more = f" (and {len(bad) - 1} more cells)" if len(bad) > 1 else ""
        line = where.format(line=table.line(int(rows[first])))
        if date_format is not None:
            raise DataError(
                f"{line}: {texts[first]!r} is not a date in date_format {date_format!r}{more}."
            )
        raise DataError(
            f"{line}: {texts[first]!r} is not a date{more}. Accepted: {ACCEPTED_DATES}."
        )
    values = np.full(len(series), np.nan)
    values[present] = [lookup[text] for text in texts]
    table.frame[label] = pd.Series(values, index=table.frame.index)
    return forms[0]


def raw_table(
    table: CsvTable,
    kinds: dict[Any, Any],
    keys: ColumnKeys,
    date_forms: dict[Any, str],
    *,
    for_model: bool = False,
) -> tuple[np.ndarray, ColumnPlan] | None:
    """The raw table (float64, NaN where missing) and its :class:`ColumnPlan`; None when there
    is nothing to fit besides scaling (number and true/false columns without missing cells),
    so that the features are made as without the column keys.

    ``for_model`` (``tricklab fit``): always the plan, and every column ``impute`` names keeps
    its strategy even without missing cells, so that a model fills the missing cells of new
    rows (the features of the table's own rows are the same: a fill is used where a cell is
    missing, and a missing indicator only where the training rows had missing cells)."""
    spec, shown = table.spec, table.shown
    columns: list[RawColumn] = []
    parts: list[np.ndarray] = []
    for label, kind in kinds.items():
        series = table.frame[label]
        missing = series.isna().to_numpy()
        strategy = keys.imputed.get(label) if missing.any() or for_model else None
        if strategy is not None and missing.all():
            raise DataError(
                f"{shown}: column {table.column(label)} has no values, only missing cells; "
                f'there is nothing to impute from. Leave it out (drop = ["{label}"]).'
            )
        levels: tuple[str, ...] = ()
        if kind == "text":
            if strategy in ("mean", "median"):
                if keys.per_column:
                    raise DataError(
                        f'{shown}: impute.{label}: "{strategy}" needs numbers, and column '
                        f'{table.column(label)} is text. Use "most_frequent".'
                    )
                strategy = "most_frequent"  # impute = "mean" fills text with its commonest
            words = series[~missing].astype(str).to_numpy()
            found = np.unique(words)
            levels = tuple(str(w) for w in found)
            values = np.full(len(series), np.nan)
            values[~missing] = np.searchsorted(found, words)
        elif kind == "bool":
            values = series.map({True: 1.0, False: 0.0}).to_numpy(dtype=np.float64)
        else:
            values = series.to_numpy(dtype=np.float64)
        parts.append(values)
        columns.append(
            RawColumn(
                name=str(label),
                kind=kind,
                levels=levels,
                impute=strategy,
                date_format=date_forms.get(label),
            )
        )
    if not for_model and not any(
        c.kind in ("text", "date") or c.impute is not None for c in columns
    ):
        return None
    indicators = spec.missing_indicator
    width = sum(
        (len(c.levels) if c.kind == "text" else 4 if c.kind == "date" else 1)
        + (1 if indicators and c.impute is not None else 0)
        for c in columns
    )
    plan = ColumnPlan(
        columns=tuple(columns),
        standardize=spec.standardize,
        missing_indicator=indicators,
        dropped=tuple(str(label) for label in keys.dropped),
        source=shown,
        width=width,
    )
    return np.column_stack(parts), plan


def describe_plan(plan: ColumnPlan) -> str:
    """One line for the intake's note: what the column keys do, fitted per run."""
    said = []
    if plan.dropped:
        said.append(f"left out {', '.join(plan.dropped)}")
    imputed = [c for c in plan.columns if c.impute is not None]
    if imputed:
        ways = ", ".join(f"{c.name} ({c.impute})" for c in imputed)
        said.append(
            f"imputed {ways}" + (" with missing indicators" if plan.missing_indicator else "")
        )
    dates = [c for c in plan.columns if c.kind == "date"]
    if dates:
        said.append(
            f"dates {', '.join(f'{c.name} ({c.date_format})' for c in dates)} -> year, month, "
            "weekday, days since the first training date"
        )
    said.append(
        "imputation values, one-hot levels, date origins and scaling are fitted on each run's "
        "training rows"
    )
    return "; ".join(said)
