"""Datasets: the ``dataset`` entry of a study, loading it, and splitting it per seed.

A study names a built-in dataset (``"thoracic"``, ``"fashion_mnist"``, or a table with options)
or a CSV file (``{csv = "file.csv", target = "column"}``). :func:`parse_dataset` checks the entry
without reading any data; :func:`load_dataset` reads it into a :class:`Dataset` (cached in the
process); :func:`make_splits` draws the train / validation / test split for one seed and
standardises tabular features with statistics of the training part only.

Importing this module stays cheap: pandas and scikit-learn are imported when data is read.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import importlib.resources
import io
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tricklab import _idx, _validation
from tricklab.errors import DataError, SpecError, not_utf8

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DATASETS",
    "CsvSpec",
    "Dataset",
    "DatasetRegistry",
    "DatasetSpec",
    "FashionMnistSpec",
    "Intake",
    "Splits",
    "ThoracicSpec",
    "describe_datasets",
    "describe_intake",
    "load_dataset",
    "make_splits",
    "parse_dataset",
]

Task = Literal["binary", "multiclass", "regression"]

THORACIC_COLUMNS: tuple[str, ...] = (
    "id", "DGN", "PRE4", "PRE5", "PRE6", "PRE7", "PRE8", "PRE9", "PRE10", "PRE11",
    "PRE14", "PRE17", "PRE19", "PRE25", "PRE30", "PRE32", "AGE",
)  # fmt: skip
THORACIC_CLASSES: tuple[str, str] = ("survived", "died")
THORACIC_CITATION = (
    'M. Zięba, J. M. Tomczak, M. Lubicz, J. Świątek (2014), "Boosted SVM for extracting rules '
    "from imbalanced data in application to prediction of the post-operative life expectancy in "
    'the lung cancer patients", Applied Soft Computing 14, 99-108. Data: UCI Machine Learning '
    "Repository, Thoracic Surgery Data (CC BY 4.0)."
)
FASHION_CITATION = (
    'H. Xiao, K. Rasul, R. Vollgraf (2017), "Fashion-MNIST: a Novel Image Dataset for '
    'Benchmarking Machine Learning Algorithms", arXiv:1708.07747. Data: Zalando SE (MIT licence).'
)
#: Targets with at most this many distinct integer values are classes when ``task = "auto"``.
MAX_AUTO_CLASSES = 20
#: A CSV feature column with at least this percentage of numbers must be all numbers.
NUMBER_PERCENT = 90
#: Without ``max_categories``, a text feature column of a table with at least
#: ``MIN_ROWS_FOR_LEVELS`` rows may have at most ``MAX_LEVELS`` distinct values, and at most
#: half as many as the table has rows.
MAX_LEVELS = 50
MIN_ROWS_FOR_LEVELS = 50
_FLOAT32_MAX = float(np.finfo(np.float32).max)

# --- specs -----------------------------------------------------------------------------------

_CONFIG = ConfigDict(frozen=True, extra="forbid", strict=True)
Fraction = Annotated[float, Field(gt=0, lt=1)]


class ThoracicSpec(BaseModel):
    """The built-in Thoracic Surgery data (470 patients, binary: died within one year)."""

    model_config = _CONFIG
    name: Literal["thoracic"]
    keep_id: bool = False
    test: Fraction = 0.2


class FashionMnistSpec(BaseModel):
    """Fashion-MNIST; ``limit`` keeps a stratified sample of the training images (seed 0)."""

    model_config = _CONFIG
    name: Literal["fashion_mnist"]
    limit: int | None = Field(default=None, ge=1)


class CsvSpec(BaseModel):
    """A CSV file; ``target`` is a column name, or a 0-based column index.

    ``max_categories`` allows text feature columns with up to that many distinct values (each
    becomes a one-hot feature); ``text_columns`` names feature columns to read as text (one-hot)
    even though they hold numbers.
    """

    model_config = _CONFIG
    csv: str
    target: str | int
    header: bool = True
    delimiter: str = ","
    test: Fraction = 0.2
    task: Literal["auto", "classification", "regression"] = "auto"
    standardize: bool = True
    limit: int | None = Field(default=None, ge=1)
    max_categories: int | None = Field(default=None, ge=1)
    text_columns: tuple[str | int, ...] = ()

    @field_validator("csv", mode="before")
    @classmethod
    def _csv_path(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise _validation.own_error(
                f"must be a non-empty string (the CSV file's path). Received: "
                f"csv={_validation.show(value)}."
            )
        return value

    @field_validator("target", mode="before")
    @classmethod
    def _target_kind(cls, value: Any) -> Any:
        ok_int = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        if not (ok_int or (isinstance(value, str) and value)):
            raise _validation.own_error(
                "must be a column name (a string) or a 0-based column index (an int >= 0). "
                f"Received: target={_validation.show(value)}."
            )
        return value

    @field_validator("text_columns", mode="before")
    @classmethod
    def _column_list(cls, value: Any) -> Any:
        items = value if isinstance(value, list | tuple) else None
        if items is None or not all(_is_column_ref(item) for item in items):
            raise _validation.own_error(
                "must be a list of column names (strings) or 0-based column indices "
                f"(ints >= 0). Received: text_columns={_validation.show(value)}."
            )
        return tuple(items)

    @field_validator("delimiter", mode="before")
    @classmethod
    def _one_char(cls, value: Any) -> Any:
        if not isinstance(value, str) or len(value) != 1:
            raise _validation.own_error(
                f"must be a single character. Received: delimiter={_validation.show(value)}."
            )
        return value

    @model_validator(mode="after")
    def _index_without_header(self) -> CsvSpec:
        if not self.header and isinstance(self.target, str):
            raise _validation.own_error(
                "must be a 0-based column index (an int) when header = false. "
                f"Received: target={_validation.show(self.target)}.",
                at="target",
            )
        names = [c for c in self.text_columns if isinstance(c, str)]
        if not self.header and names:
            raise _validation.own_error(
                "must hold 0-based column indices (ints) when header = false. "
                f"Received: text_columns={_validation.show(list(self.text_columns))}.",
                at="text_columns",
            )
        return self


def _is_column_ref(value: Any) -> bool:
    """A column name (a non-empty string) or a 0-based index (an int >= 0, not a bool)."""
    if isinstance(value, str):
        return bool(value)
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


DatasetSpec = ThoracicSpec | FashionMnistSpec | CsvSpec
_BUILTIN: dict[str, type[ThoracicSpec] | type[FashionMnistSpec]] = {
    "fashion_mnist": FashionMnistSpec,
    "thoracic": ThoracicSpec,
}
_EXPECTED = (
    f"Expected one of: {', '.join(sorted(_BUILTIN))}, "
    'or a table {csv = "file.csv", target = "column"}.'
)


def parse_dataset(value: Any) -> DatasetSpec:
    """Check a study's ``dataset`` entry: a name, a table, or a spec. Raises :class:`SpecError`.

    Messages are relative to the dataset table (``"test: must be a float in (0, 1). ..."``).
    """
    if isinstance(value, ThoracicSpec | FashionMnistSpec | CsvSpec):
        return value
    if isinstance(value, str):
        return _validate(_builtin_class(value), {"name": value})
    if isinstance(value, Mapping):
        table = dict(value)
        if "csv" in table:
            return _validate(CsvSpec, table)
        if "name" in table:
            return _validate(_builtin_class(table["name"]), table)
        raise SpecError(
            "a dataset table needs name = (a built-in dataset) or csv = (a file) with target = "
            f"(a column). {_EXPECTED} Received: {_validation.show(table)}."
        )
    raise SpecError(
        f"must be a dataset name or a table. {_EXPECTED} Received: {_validation.show(value)}."
    )


def _builtin_class(name: Any) -> type[ThoracicSpec] | type[FashionMnistSpec]:
    if isinstance(name, str) and name in _BUILTIN:
        return _BUILTIN[name]
    hint = _validation.did_you_mean(name, list(_BUILTIN)) if isinstance(name, str) else ""
    shown = f"'{name}'" if isinstance(name, str) else _validation.show(name)
    raise SpecError(f"unknown dataset {shown}.{hint} {_EXPECTED}")


def _validate(model: type[BaseModel], table: dict[str, Any]) -> Any:
    try:
        return model.model_validate(table)
    except ValidationError as exc:
        raise SpecError(_validation.translate(exc, model, table)) from None


class DatasetRegistry:
    """The built-in datasets by name; :meth:`get` accepts whatever :func:`parse_dataset` does."""

    def names(self) -> list[str]:
        return sorted(_BUILTIN)

    def get(self, value: Any) -> DatasetSpec:
        return parse_dataset(value)

    def __contains__(self, name: object) -> bool:
        return name in _BUILTIN


DATASETS = DatasetRegistry()

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


def _dataset(
    *,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    **fields: Any,
) -> Dataset:
    arrays = (x, y, x_test, y_test)
    for array in arrays:
        if array is not None:
            array.setflags(write=False)
    return Dataset(
        x=x, y=y, x_test=x_test, y_test=y_test, fingerprint=_fingerprint(*arrays), **fields
    )


def _fingerprint(*arrays: np.ndarray | None) -> str:
    digest = hashlib.sha256()
    for label, array in zip(("x", "y", "x_test", "y_test"), arrays, strict=True):
        if array is None:
            digest.update(f"{label}:none;".encode())
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{label}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array)
    return digest.hexdigest()


def load_dataset(
    spec: DatasetSpec | str | Mapping[str, Any],
    *,
    base_dir: Path | None = None,
    progress: _idx.Progress | None = None,
) -> Dataset:
    """Read a dataset. A relative CSV path is resolved against ``base_dir`` (else the cwd).

    Fashion-MNIST is found locally or downloaded (``progress`` is called while downloading).
    Results are cached in the process, keyed by the spec and the file's path and mtime.
    """
    spec = parse_dataset(spec)
    if isinstance(spec, ThoracicSpec):
        return _load_thoracic(spec)
    if isinstance(spec, FashionMnistSpec):
        return _fashion_dataset(spec, _idx.load(progress=progress))
    shown = Path(spec.csv).expanduser()
    if base_dir is not None and not shown.is_absolute():
        shown = Path(base_dir) / shown
    try:
        stat = shown.stat()
    except FileNotFoundError:
        raise DataError(f"{shown}: no such file.") from None
    except OSError as exc:
        raise DataError(f"{shown}: cannot read ({exc.strerror}).") from None
    if not shown.is_file():
        raise DataError(f"{shown}: not a file.")
    return _load_csv(spec, str(shown), str(shown.resolve()), stat.st_mtime_ns, stat.st_size)


# --- thoracic --------------------------------------------------------------------------------


def _thoracic_resource() -> Any:
    return importlib.resources.files("tricklab") / "resources" / "thoracic.csv"


@functools.lru_cache(maxsize=4)
def _load_thoracic(spec: ThoracicSpec) -> Dataset:
    resource = _thoracic_resource()
    table = np.loadtxt(io.StringIO(resource.read_text(encoding="utf-8")), delimiter=",", ndmin=2)
    if table.shape[1] != len(THORACIC_COLUMNS) + 1:
        raise DataError(f"{resource}: expected 18 columns, found {table.shape[1]}.")
    first = 0 if spec.keep_id else 1
    return _dataset(
        name="thoracic",
        task="binary",
        x=np.ascontiguousarray(table[:, first : len(THORACIC_COLUMNS)], dtype=np.float32),
        y=table[:, -1].astype(np.int64),
        test_fraction=spec.test,
        standardize=True,
        feature_names=THORACIC_COLUMNS[first:],
        class_names=THORACIC_CLASSES,
        source=str(resource),
        citation=THORACIC_CITATION,
        intake=Intake(
            rows=len(table),
            columns=table.shape[1],
            task_reason="built in: the outcome, whether the patient died within one year",
            target="'Risk1Yr'",
            numeric=len(THORACIC_COLUMNS) - first,
            note=None if spec.keep_id else "the id column is dropped (keep_id = true keeps it)",
        ),
    )


# --- fashion-mnist ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _fashion_dataset(spec: FashionMnistSpec, raw: _idx.RawFashion) -> Dataset:
    x, y = raw.x_train, raw.y_train
    sampled = None
    if spec.limit is not None and spec.limit < len(y):
        keep = _stratified_sample(y, spec.limit, source="fashion_mnist")
        x, y = x[keep], y[keep]
        sampled = len(y)
    return _dataset(
        name="fashion_mnist",
        task="multiclass",
        x=_scale(x),
        y=y.astype(np.int64),
        x_test=_scale(raw.x_test),
        y_test=raw.y_test.astype(np.int64),
        test_fraction=None,
        standardize=False,
        feature_names=(),
        class_names=_idx.CLASS_NAMES,
        source=str(raw.directory),
        citation=FASHION_CITATION,
        raw_scale=1 / 255.0,
        intake=Intake(
            rows=len(raw.y_train),
            columns=None,
            task_reason=f"built in: {len(_idx.CLASS_NAMES)} kinds of clothing",
            sampled=sampled,
            note=f"official test split of {len(raw.y_test)} images; pixels scaled to [0, 1]",
        ),
    )


def _scale(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / np.float32(255.0)


def _stratified_sample(labels: np.ndarray, limit: int, *, source: str) -> np.ndarray:
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
    quota = np.minimum(counts, np.maximum(1, np.floor(ideal).astype(np.int64)))
    while quota.sum() < limit:
        k = int(np.argmax(np.where(quota < counts, ideal - quota, -np.inf)))
        quota[k] += 1
    while quota.sum() > limit:
        k = int(np.argmax(np.where(quota > 1, quota - ideal, -np.inf)))
        quota[k] -= 1
    return quota


# --- csv -------------------------------------------------------------------------------------


def read_csv_text(path: str | Path) -> str:
    """A CSV file's text: UTF-8, a leading byte-order mark dropped. Raises :class:`DataError`
    naming the file when it is missing, a directory, unreadable or not UTF-8."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory; expected a CSV file.") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror}).") from None
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: {not_utf8(exc, skipped=bom)}. tricklab reads CSV files as UTF-8; "
            "save it as UTF-8."
        ) from None


@functools.lru_cache(maxsize=8)
def _load_csv(spec: CsvSpec, shown: str, resolved: str, mtime_ns: int, size: int) -> Dataset:
    del mtime_ns, size  # cache key only
    table = _CsvTable.read(spec, shown)
    target = table.target_label()
    table.check_complete()
    text = table.text_labels(target)
    classification, reason = table.is_classification(target)
    kinds = table.check_features(target, text)
    rows = len(table.frame)
    sampled = None
    if spec.limit is not None and spec.limit < len(table.frame):
        labels = table.frame[target].astype(str).to_numpy() if classification else None
        table.keep(labels, spec.limit)
        sampled = len(table.frame)
    x, feature_names, one_hot = table.features(target, kinds)
    if classification:
        y, class_names = table.classes(target)
        task: Task = "binary" if len(class_names) == 2 else "multiclass"
    else:
        y, class_names, task = table.values(target), (), "regression"
    return _dataset(
        name=Path(shown).name,
        task=task,
        x=x,
        y=y,
        test_fraction=spec.test,
        standardize=spec.standardize,
        feature_names=feature_names,
        class_names=class_names,
        source=resolved,
        citation=None,
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


_Kind = Literal["number", "bool", "text"]


@dataclass
class _CsvTable:
    """A CSV file read by pandas, with each row's line number in the file for messages."""

    spec: CsvSpec
    shown: str
    frame: pd.DataFrame
    first_line: int  # line number of data row 0

    @classmethod
    def read(cls, spec: CsvSpec, shown: str) -> _CsvTable:
        import pandas as pd

        empty = (
            f"{shown}: the file is empty; expected a header row and at least 2 data rows."
            if spec.header
            else f"{shown}: the file is empty; expected at least 2 data rows."
        )
        text = read_csv_text(shown)
        if not text.strip():
            raise DataError(empty)
        options: dict[str, Any] = {"sep": spec.delimiter, "skip_blank_lines": False}
        try:
            frame = pd.read_csv(
                io.StringIO(text),
                header=0 if spec.header else None,
                dtype=dict.fromkeys(spec.text_columns, str),  # the cells as written
                **options,
            )
            if spec.header:
                _check_unique_names(shown, text, options)
        except pd.errors.EmptyDataError:
            raise DataError(empty) from None
        except pd.errors.ParserError as exc:
            raise DataError(f"{shown}: cannot parse as CSV: {exc}") from None
        table = cls(spec, shown, frame, 2 if spec.header else 1)
        table.drop_blank_lines(text.splitlines())
        if len(table.frame) == 0:
            raise DataError(empty)
        if len(table.frame) < 2:
            raise DataError(f"{shown}: only 1 data row; at least 2 are needed.")
        return table

    def drop_blank_lines(self, lines: list[str]) -> None:
        """With ``skip_blank_lines=False`` a blank line is an all-missing row: drop those."""
        all_missing = self.frame.isna().all(axis=1).to_numpy()
        blank = [
            row
            for row in np.flatnonzero(all_missing)
            if (line := row + self.first_line - 1) < len(lines) and not lines[line].strip()
        ]
        self.frame = self.frame.drop(index=self.frame.index[blank])

    def line(self, position: int) -> int:
        return int(self.frame.index[position]) + self.first_line

    def column(self, label: Any) -> str:
        return f"'{label}'" if self.spec.header else str(label)

    def target_label(self) -> Any:
        columns = list(self.frame.columns)
        target = self.spec.target
        listed = ", ".join(str(c) for c in columns)
        if isinstance(target, int):
            if target < len(columns):
                return columns[target]
            raise DataError(
                f"{self.shown}: target column {target} not found; the file has {len(columns)} "
                f"columns (0-based indices 0-{len(columns) - 1}). Columns: {listed}."
            )
        if target in columns:
            return target
        hint = _validation.did_you_mean(target, [str(c) for c in columns])
        raise DataError(
            f"{self.shown}: target column '{target}' not found.{hint} Columns: {listed}."
        )

    def text_labels(self, target: Any) -> set[Any]:
        """The column labels that ``text_columns`` names (checked: present, not the target)."""
        columns = list(self.frame.columns)
        listed = ", ".join(str(c) for c in columns)
        labels = set()
        for ref in self.spec.text_columns:
            if isinstance(ref, int):
                if ref >= len(columns):
                    raise DataError(
                        f"{self.shown}: text_columns: column {ref} not found; the file has "
                        f"{len(columns)} columns (0-based indices 0-{len(columns) - 1})."
                    )
                label = columns[ref]
            elif ref in columns:
                label = ref
            else:
                hint = _validation.did_you_mean(ref, [str(c) for c in columns])
                raise DataError(
                    f"{self.shown}: text_columns: column '{ref}' not found.{hint} "
                    f"Columns: {listed}."
                )
            if label == target:
                raise DataError(
                    f"{self.shown}: text_columns names the target column {self.column(target)}; "
                    'it lists feature columns. For text classes set task = "classification".'
                )
            labels.add(label)
        return labels

    def check_complete(self) -> None:
        missing = self.frame.isna().to_numpy()
        if not missing.any():
            return
        rows, cols = np.nonzero(missing)
        where = f"line {self.line(rows[0])}, column {self.column(self.frame.columns[cols[0]])}"
        more = len(rows) - 1
        if more:
            lines = sorted({self.line(r) for r in rows[1:]})
            listed = ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")
            s = "s" if more > 1 else ""
            raise DataError(
                f"{self.shown}: {where}: missing value (and {more} more missing value{s}, "
                f"on line{'s' if len(lines) > 1 else ''} {listed}). tricklab does not impute; "
                "fill or drop the rows."
            )
        raise DataError(
            f"{self.shown}: {where}: missing value. tricklab does not impute; fill or drop the row."
        )

    def is_classification(self, target: Any) -> tuple[bool, str]:
        """Whether the target is classes, and why (for :func:`describe_intake`)."""
        import pandas as pd

        series = self.frame[target]
        numeric = _is_number_column(series)
        if self.spec.task == "regression":
            if not numeric:
                bad = _first_non_number(series)
                raise DataError(
                    f"{self.shown}: task = 'regression' but target column {self.column(target)} "
                    f"is not numeric (line {self.line(bad)}: {_plain(series.iloc[bad])!r})."
                )
            return False, 'task = "regression" in the dataset table'
        if self.spec.task == "classification":
            return True, 'task = "classification" in the dataset table'
        if pd.api.types.is_bool_dtype(series):
            return True, "true/false target -> classification"
        if not numeric:
            return True, "text target -> classification"
        values = series.to_numpy(dtype=np.float64)
        if not bool(np.all(np.isfinite(values)) and np.all(values == np.round(values))):
            return False, "float target -> regression"
        distinct = len(np.unique(values))
        if distinct <= MAX_AUTO_CLASSES:
            return True, f"integer target with {distinct} distinct values -> classification"
        return False, (
            f"more than {MAX_AUTO_CLASSES} distinct integer values ({distinct}) -> regression "
            '(set task = "classification" to override)'
        )

    def check_features(self, target: Any, text: set[Any]) -> dict[Any, _Kind]:
        """How each feature column is used, after the intake rules (on every row, before
        ``limit``): a column that is mostly numbers must be all numbers; numbers must fit in
        float32; a text column must not have too many distinct values."""
        import pandas as pd

        kinds: dict[Any, _Kind] = {}
        for label in self.frame.columns:
            if label == target:
                continue
            series = self.frame[label]
            if label in text:
                kinds[label] = "text"
            elif pd.api.types.is_bool_dtype(series):
                kinds[label] = "bool"
            elif _is_number_column(series):
                kinds[label] = "number"
            else:
                numbers = pd.to_numeric(series, errors="coerce")
                bad = np.flatnonzero(numbers.isna().to_numpy())
                if len(bad) == 0:  # numbers pandas kept as text (integers beyond int64)
                    self.frame[label] = numbers.astype(np.float64)
                    kinds[label] = "number"
                elif (len(series) - len(bad)) * 100 >= NUMBER_PERCENT * len(series):
                    self._mostly_numbers(label, bad)
                else:
                    kinds[label] = "text"
            if kinds[label] == "number":
                self._check_finite(self.frame[label].to_numpy(dtype=np.float64), label)
            elif kinds[label] == "text":
                self._check_levels(label)
        return kinds

    def _mostly_numbers(self, label: Any, bad: np.ndarray) -> None:
        series = self.frame[label]
        cells = ", ".join(
            f"line {self.line(row)}: {str(series.iloc[row])!r}" for row in bad[:5]
        ) + (", ..." if len(bad) > 5 else "")
        ref = f'"{label}"' if self.spec.header else str(self.frame.columns.get_loc(label))
        raise DataError(
            f"{self.shown}: column {self.column(label)}: {len(bad)} of {len(series)} cells are "
            f"not numbers: {cells}. A column that is {NUMBER_PERCENT}% numbers or more is read "
            "as numbers; fix these cells, or make the column text on purpose with "
            f"text_columns = [{ref}] in the dataset table."
        )

    def _check_levels(self, label: Any) -> None:
        rows = len(self.frame)
        levels = int(self.frame[label].astype(str).nunique())
        limit = self.spec.max_categories
        where = f"{self.shown}: column {self.column(label)}: {levels} distinct text values"
        if limit is not None:
            if levels > limit:
                raise DataError(
                    f"{where}, more than max_categories = {limit}; each value becomes a one-hot "
                    f"feature. Drop the column, or set max_categories = {levels} in the "
                    "dataset table."
                )
            return
        if rows >= MIN_ROWS_FOR_LEVELS and (levels > MAX_LEVELS or levels > rows / 2):
            raise DataError(
                f"{where} in {rows} rows; each value becomes a one-hot feature, and a text "
                f"column may have at most {MAX_LEVELS} values and at most half as many as rows "
                f"({rows // 2}). Drop the column (an identifier or free text?), or allow it with "
                f"max_categories = {levels} in the dataset table."
            )

    def keep(self, labels: np.ndarray | None, limit: int) -> None:
        if labels is None:
            rng = np.random.default_rng(0)
            rows = np.sort(rng.choice(len(self.frame), size=limit, replace=False))
        else:
            rows = _stratified_sample(labels, limit, source=self.shown)
        self.frame = self.frame.iloc[rows]

    def features(
        self, target: Any, kinds: dict[Any, _Kind]
    ) -> tuple[np.ndarray, tuple[str, ...], dict[str, int]]:
        """Numeric columns as they are, booleans as 0/1, text columns one-hot (``col=value``);
        and the one-hot columns with their number of levels."""
        import pandas as pd

        parts: list[np.ndarray] = []
        names: list[str] = []
        one_hot: dict[str, int] = {}
        for label, kind in kinds.items():
            series = self.frame[label]
            if kind == "text":
                dummies = pd.get_dummies(series.astype(str), prefix=str(label), prefix_sep="=")
                parts.append(dummies.to_numpy(dtype=np.float64))
                names.extend(str(c) for c in dummies.columns)
                one_hot[str(label)] = dummies.shape[1]
            else:
                parts.append(series.to_numpy(dtype=np.float64)[:, None])
                names.append(str(label))
        if not parts:
            raise DataError(
                f"{self.shown}: no feature columns besides the target {self.column(target)}."
            )
        return np.hstack(parts).astype(np.float32), tuple(names), one_hot

    def _check_finite(self, values: np.ndarray, label: Any) -> None:
        """Every value finite, and finite in float32 (1e300 would become inf)."""
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raise DataError(
                f"{self.shown}: line {self.line(bad[0])}, column {self.column(label)}: "
                f"{values[bad[0]]} is not a finite number."
            )
        huge = np.flatnonzero(np.abs(values) > _FLOAT32_MAX)
        if len(huge):
            raise DataError(
                f"{self.shown}: line {self.line(huge[0])}, column {self.column(label)}: "
                f"{float(values[huge[0]])!r} is outside the range of float32 (about "
                f"±{_FLOAT32_MAX:.1e}), which tricklab trains in. Rescale the column (change "
                "its unit) so every value fits."
            )

    def classes(self, target: Any) -> tuple[np.ndarray, tuple[str, ...]]:
        """Labels 0..K-1 in sorted class order, and the class names."""
        series = self.frame[target]
        if _is_number_column(series):
            values = series.to_numpy(dtype=np.float64)
            names_of = _number_name
        else:
            values = series.astype(str).to_numpy()
            names_of = str
        classes, labels = np.unique(values, return_inverse=True)
        names = tuple(names_of(c) for c in classes)
        if len(names) < 2:
            raise DataError(
                f"{self.shown}: target column {self.column(target)} has a single class "
                f"({names[0]!r}); classification needs at least 2."
            )
        return labels.astype(np.int64).reshape(-1), names

    def values(self, target: Any) -> np.ndarray:
        values = self.frame[target].to_numpy(dtype=np.float64)
        self._check_finite(values, target)
        return values.astype(np.float32)


def _check_unique_names(shown: str, text: str, options: dict[str, Any]) -> None:
    """Column names as written in the header (pandas renames a repeated ``a`` to ``a.1``)."""
    import pandas as pd

    header = pd.read_csv(
        io.StringIO(text), header=None, nrows=1, dtype=str, keep_default_na=False, **options
    )
    names = [str(name) for name in header.iloc[0]] if len(header) else []
    for name in dict.fromkeys(names):
        where = [i for i, other in enumerate(names) if other == name]
        if name and len(where) > 1:
            times = "twice" if len(where) == 2 else f"{len(where)} times"
            at = ", ".join(map(str, where[:-1])) + f" and {where[-1]}"
            raise DataError(
                f"{shown}: line 1: column name '{name}' appears {times} (0-based columns {at}); "
                "column names must be unique. Rename or drop the repeats."
            )


def _is_number_column(series: pd.Series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _first_non_number(series: pd.Series) -> int:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return 0
    bad = np.flatnonzero(pd.to_numeric(series, errors="coerce").isna().to_numpy())
    return int(bad[0]) if len(bad) else 0


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (for messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _number_name(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


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


# --- splits ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Splits:
    """Train / validation / test arrays for one seed (fresh, writable arrays).

    ``rows`` says which rows of the dataset each part holds: ``train`` and ``validation`` index
    ``dataset.x``; ``test`` indexes ``dataset.x_test`` when the dataset has an official test
    split, else ``dataset.x``. Engines that keep one copy of the data use them.
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

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "validation": len(self.y_val), "test": len(self.y_test)}


def make_splits(dataset: Dataset, *, validation: float | Literal["test"], seed: int) -> Splits:
    """Split ``dataset`` for one seed.

    1. test: the official test split if there is one, else a seeded hold-out of
       ``dataset.test_fraction`` (stratified for classification);
    2. validation: a seeded fraction of the rest (stratified), or ``"test"``: the test arrays;
    3. standardisation (if ``dataset.standardize``) with the training part's mean and std.
    """
    if not (validation == "test" or (isinstance(validation, float) and 0 < validation < 1)):
        raise ValueError(f"validation must be a float in (0, 1) or 'test', not {validation!r}")
    if not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int in [0, 2**32), not {seed!r}")
    everything = np.arange(len(dataset.y))
    if dataset.x_test is not None and dataset.y_test is not None:
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
    x_train, y_train = dataset.x[train], dataset.y[train]
    x_test, y_test = x_test_pool[test], y_test_pool[test]
    mean = std = None
    if dataset.standardize:
        mean, std = _moments(x_train)
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    if validation == "test":
        x_val, y_val = x_test, y_test
    else:
        x_val, y_val = dataset.x[val], dataset.y[val]
        if mean is not None:
            x_val = (x_val - mean) / std
    rows = {"train": train, "validation": val, "test": test}
    return Splits(
        x_train, y_train, x_val, y_val, x_test, y_test, validation == "test", mean, std, rows
    )


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
            return train_test_split(rows, test_size=fraction, stratify=stratify, random_state=seed)
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


# --- listing ---------------------------------------------------------------------------------


def describe_datasets() -> list[dict[str, Any]]:
    """One row per built-in dataset for ``tricklab datasets``; never downloads anything."""
    return [_describe_fashion(), _describe_thoracic()]


def _describe_fashion() -> dict[str, Any]:
    directory = _idx.find_local()
    if directory is None:
        counts = {"train": 60000, "test": 10000}
        where = f"not found locally; downloads to {_idx.cache_dir()} on first use"
    else:
        where = str(directory)
        try:
            counts = _idx.header_counts(directory)
        except (OSError, EOFError, struct.error) as exc:
            counts = {"train": 60000, "test": 10000}
            where += f" (unreadable: {exc})"
    return {
        "name": "fashion_mnist",
        "task": "multiclass",
        "input_shape": (28, 28),
        "n_train": counts["train"],
        "n_test": counts["test"],
        "test_split": "official",
        "n_classes": len(_idx.CLASS_NAMES),
        "classes": list(_idx.CLASS_NAMES),
        "source": where,
        "citation": FASHION_CITATION,
    }


def _describe_thoracic() -> dict[str, Any]:
    spec = ThoracicSpec(name="thoracic")
    data = _load_thoracic(spec)
    n_test = math.ceil(spec.test * len(data.y))
    return {
        "name": "thoracic",
        "task": data.task,
        "input_shape": data.input_shape,
        "n_train": len(data.y) - n_test,
        "n_test": n_test,
        "test_split": f"{spec.test:.0%} stratified hold-out, the `test` option",
        "n_classes": data.n_classes,
        "classes": list(data.class_names),
        "source": f"built in: {data.source}",
        "citation": data.citation,
    }
