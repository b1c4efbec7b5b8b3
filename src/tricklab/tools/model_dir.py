"""A MODEL_DIR: one model fitted on a whole table (``tricklab fit``), and its predictions.

A MODEL_DIR holds two files, and no pickle:

- ``model.keras``: the bare trained Keras model (``keras.saving.load_model`` loads it); it takes
  the features below, already imputed, encoded and scaled;
- ``tricklab-model.json``: what turns a raw row into those features, and what made the model.
  Its presence tells a MODEL_DIR from a RUN_DIR (``runs/<study>/<variant>/seed-<n>``).

``tricklab-model.json`` (format 1) is one JSON object:

- ``format``: ``"tricklab-model"``; ``version``: 1;
- ``study``, ``variant``, ``seed``; ``epochs`` and ``epochs_reason`` (the median best epoch of the
  variant's stored runs, or the recipe's epochs); ``checkpoint``: the study's ("best"/"last");
- ``task``: "binary", "multiclass" or "regression"; ``classes``: the class names as the data
  writes them, in the order of the model's outputs (empty for regression);
- ``csv``: how new rows are read: ``delimiter``, ``header`` (whether the file had a header
  row), ``columns`` (every column of the training file in order, the target and dropped ones
  included; 0-based indices as strings without a header), ``target``; ``dataset``: the study's
  dataset entry;
- ``columns``: the fitted record of :mod:`tricklab.data._columns` (fitted on every row):
  ``columns`` (per feature column: ``name``, ``kind`` number/bool/text/date; text: ``levels``;
  date: ``date_format`` ("ISO" or a strptime format) and ``origin`` (its first date, ISO);
  imputed ones: ``impute``, ``fill`` as the file writes it (dates also ``fill_days``, days since
  1970-01-01) and ``missing_indicator``), ``dropped`` (feature columns left out),
  ``features`` (the model's inputs in order: ``col``, ``col=level``, ``col:year``, ...,
  ``col:missing``), ``standardize`` (``mean`` and ``std`` per feature, or null);
- ``target``: a regression target's ``target_transform`` fitted on every row (``{"transform":
  "standardize" or "log", "mean": ..., "std": ...}``: of the target, or of its log), or null:
  the model's outputs are on that scale, and predictions are mapped back (``* std + mean``,
  then ``exp`` of a log);
- ``study_file``: the absolute path of the study file fit read, or null when fit was given a
  study without a file; ``store``: the absolute path of the store directory (``--out``) holding
  the study's runs (``tricklab mlflow MODEL_DIR`` reads both);
- ``input_shape``; ``versions``: tricklab, keras, the backend and its version.

A raw row becomes features as the run's training rows did: number cells as numbers, true/false
as 1/0, a text cell one-hot over ``levels`` (a value not among them: all zeros, as
``OneHotEncoder(handle_unknown="ignore")``), a date as year, month, weekday (Monday 0) and days
since ``origin``; a missing cell takes ``fill`` (and its indicator 1) where the column is
imputed; then ``(x - mean) / std``.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tricklab.base.errors import DataError, StoreError
from tricklab.data import (
    FittedColumns,
    TargetScaling,
    days_since_epoch,
    fitted_from_json,
    parse_date,
    read_csv_text,
)

MARKER = "tricklab-model.json"
MODEL_FILE = "model.keras"
FORMAT = "tricklab-model"
VERSION = 1

#: Says where a cell is: (0-based row, column name) -> "file: line 3, column 'fee'".
Where = Callable[[int, str], str]


def is_model_dir(path: str | Path) -> bool:
    return (Path(path) / MARKER).is_file()


def write_model_dir(path: Path, model: Any, record: dict[str, Any]) -> None:
    """Write ``model.keras`` and ``tricklab-model.json`` into ``path`` (made if needed)."""
    path.mkdir(parents=True, exist_ok=True)
    model.save(path / MODEL_FILE)
    text = json.dumps(record, indent=2, allow_nan=False) + "\n"
    (path / MARKER).write_text(text, encoding="utf-8")


def read_record(path: str | Path) -> dict[str, Any]:
    """The ``tricklab-model.json`` of a MODEL_DIR, checked for its format and version."""
    file = Path(path) / MARKER
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(
            f"{path}: not a MODEL_DIR (no {MARKER}); `tricklab fit` writes one."
        ) from None
    except json.JSONDecodeError as exc:
        raise StoreError(f"{file}: not JSON ({exc.msg}, line {exc.lineno}).") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise StoreError(f"{file}: not a tricklab model record (format is not {FORMAT!r}).")
    if record.get("version") != VERSION:
        raise StoreError(
            f"{file}: written in model format {record.get('version')}; this tricklab reads "
            f"format {VERSION}. Run `tricklab fit` again to rewrite it."
        )
    return record


@dataclass
class FittedModel:
    """A MODEL_DIR loaded (or a run fitted on its own training rows, rebuilt by
    :func:`tricklab.tools.export.raw_rows_model`, its model given as ``_model``): :meth:`predict`
    takes raw rows (a DataFrame of the training CSV's columns) and returns ``row``,
    ``prediction`` and ``p(<class>)`` per class."""

    path: Path
    record: dict[str, Any]
    columns: FittedColumns
    _model: Any = field(default=None, repr=False)

    @property
    def model(self) -> Any:
        """The bare Keras model (loaded on first use)."""
        if self._model is None:
            from tricklab.base import backend as _backend

            keras = _backend.keras()
            self._model = keras.saving.load_model(self.path / MODEL_FILE, compile=False)
        return self._model

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.record["classes"]]

    def features(self, frame: pd.DataFrame, where: Where | None = None) -> np.ndarray:
        """The model's inputs (float32) of raw rows; a bad cell raises a located DataError."""
        return self.columns.transform(raw_matrix(frame, self.record, self.columns, where))

    def predict(self, frame: pd.DataFrame, where: Where | None = None) -> pd.DataFrame:
        """Predictions of raw rows: ``row`` (1-based), ``prediction`` (the class as written
        in the data, or the value), ``p(<class>)`` per class (none for regression)."""
        x = self.features(frame, where)
        outputs = np.asarray(self.model.predict(x, verbose=0)) if len(x) else np.zeros((0, 1))
        if self.record.get("target"):  # back from the scale the model was trained on
            outputs = TargetScaling.from_json(self.record["target"]).inverse(outputs)
        return prediction_frame(outputs, self.record["task"], self.classes)


def prediction_frame(
    outputs: np.ndarray, task: str, classes: list[str], extra: dict[str, list[str]] | None = None
) -> pd.DataFrame:
    """``row`` (1-based), the ``extra`` columns, ``prediction`` and ``p(<class>)`` of a model's
    outputs (regression: ``row``, ``prediction``)."""
    frame = pd.DataFrame({"row": np.arange(1, len(outputs) + 1), **(extra or {})})
    # float32, the model's own precision: printed as CSV, each value reads back exactly
    outputs = outputs.astype(np.float32)
    if task == "regression" or not classes:
        frame["prediction"] = outputs[:, 0]
        return frame
    if outputs.shape[-1] == 1:
        probabilities = np.column_stack([1 - outputs[:, 0], outputs[:, 0]])
    else:
        probabilities = outputs
    frame["prediction"] = [classes[i] for i in probabilities.argmax(axis=1)]
    for i, name in enumerate(classes):
        frame[f"p({name})"] = probabilities[:, i]
    return frame


def load_model(path: str | Path) -> FittedModel:
    """The model of a MODEL_DIR (``tricklab fit``'s output), ready for raw rows."""
    path = Path(path)
    record = read_record(path)
    if not (path / MODEL_FILE).is_file():
        raise StoreError(f"{path}: no {MODEL_FILE} next to {MARKER}; run `tricklab fit` again.")
    return FittedModel(path, record, fitted_from_json(record["columns"]))


def same_scaling(fitted: FittedColumns, preprocessing: dict[str, Any]) -> bool:
    """Whether columns fitted again scale as a run did (its ``preprocessing``, to a relative
    1e-5): :func:`tricklab.tools.export.raw_rows_model` checks it rebuilt the run's fit."""
    if fitted.mean is None or fitted.std is None:
        return "mean" not in preprocessing
    if "mean" not in preprocessing:
        return False
    mean, std = np.asarray(preprocessing["mean"]), np.asarray(preprocessing["std"])
    return mean.shape == fitted.mean.shape and bool(
        np.allclose(mean, fitted.mean, rtol=1e-5) and np.allclose(std, fitted.std, rtol=1e-5)
    )


# --- raw rows ----------------------------------------------------------------------------------


def _row_where(row: int, column: str) -> str:
    return f"row {row + 1}, column '{column}'"


def raw_matrix(
    frame: pd.DataFrame, record: dict[str, Any], fitted: FittedColumns, where: Where | None = None
) -> np.ndarray:
    """The raw values (float64, NaN where a cell is missing and imputed) of the feature columns
    of ``frame``, as :mod:`tricklab.data._columns` holds a table: numbers, true/false as 1/0,
    text as the index of the value among the fitted levels (-1: not among them), dates as days
    since 1970-01-01. A missing or unknown column, a cell that is not a number, true/false or
    a date, or a missing cell of a column that is not imputed: a located DataError."""
    where = where or _row_where
    csv = record["csv"]
    known = {str(c) for c in csv["columns"]}
    labels = {str(label): label for label in frame.columns}
    unknown = [name for name in labels if name not in known]
    if unknown:
        raise DataError(
            f"unknown column(s) {', '.join(repr(n) for n in unknown)}; the model was trained on "
            f"a table with columns {', '.join(map(str, csv['columns']))}."
        )
    needed = [c.column.name for c in fitted.columns]
    missing = [name for name in needed if name not in labels]
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(repr(n) for n in missing)}; the model reads "
            f"{', '.join(needed)} (dropped columns and the target may be left out)."
        )
    parts = [
        _raw_column(frame[labels[c.column.name]], c.column.kind, c, where) for c in fitted.columns
    ]
    return np.column_stack(parts) if parts else np.zeros((len(frame), 0))


def _raw_column(series: pd.Series, kind: str, fitted: Any, where: Where) -> np.ndarray:
    name = fitted.column.name
    cells = series.tolist()
    out = np.full(len(cells), np.nan)
    levels = {level: i for i, level in enumerate(fitted.column.levels)}
    for row, cell in enumerate(cells):
        if _is_missing(cell):
            if fitted.fill is None:
                raise DataError(
                    f"{where(row, name)}: missing value; the model was trained without "
                    "imputing this column (no impute for it in the dataset table, or its "
                    "training rows had no missing cells and impute did not name it). Fill it."
                )
            continue
        value = _value(cell, kind, fitted, levels)
        if value is None:
            raise DataError(f"{where(row, name)}: {_shown(cell)}: {_expected(kind, fitted)}.")
        out[row] = value
    return out


def _is_missing(cell: Any) -> bool:
    if cell is None:
        return True
    if isinstance(cell, float) and math.isnan(cell):
        return True
    if isinstance(cell, str) and not cell.strip():
        return True
    return bool(cell is pd.NaT) or (
        not isinstance(cell, str | bool | int | float) and pd.isna(cell)
    )


def _value(cell: Any, kind: str, fitted: Any, levels: dict[str, int]) -> float | None:
    if kind == "text":
        text = cell if isinstance(cell, str) else str(_plain(cell))
        return float(levels.get(text, -1))  # unseen: all zeros
    if kind == "bool":
        if isinstance(cell, bool | np.bool_):
            return float(bool(cell))
        word = str(cell).strip().lower()
        return {"true": 1.0, "false": 0.0}.get(word)
    if kind == "date":
        if isinstance(cell, pd.Timestamp):
            return days_since_epoch(cell.to_pydatetime())
        return parse_date(str(cell), fitted.column.date_format or "ISO")
    if isinstance(cell, bool | np.bool_):
        return None
    try:
        number = float(cell)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _expected(kind: str, fitted: Any) -> str:
    if kind == "date":
        form = fitted.column.date_format or "ISO"
        shown = "ISO 8601 (2021-03-31)" if form == "ISO" else repr(form)
        return f"not a date in the form the column was trained with, {shown}"
    if kind == "bool":
        return "not true/false, which the column held in training"
    return "not a number, which the column held in training"


def _shown(cell: Any) -> str:
    return repr(_plain(cell))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# --- a CSV of raw rows -------------------------------------------------------------------------


def read_rows(
    path: str | Path, record: dict[str, Any], delimiter: str | None, header: bool | None
) -> tuple[pd.DataFrame, Where]:
    """The rows of a CSV of raw rows as text cells (empty: missing), read with the training
    CSV's delimiter and header setting unless given; and where each cell is in the file."""
    path = Path(path)
    csv = record["csv"]
    sep = csv["delimiter"] if delimiter is None else delimiter
    has_header = bool(csv["header"]) if header is None else header
    text = read_csv_text(path)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=0 if has_header else None,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty.") from None
    except pd.errors.ParserError as exc:
        reason = " ".join(str(exc).split()).rstrip(".")
        raise DataError(f"{path}: cannot parse as CSV: {reason}.") from None
    columns = [str(c) for c in csv["columns"]]
    if has_header:
        frame.columns = [str(c) for c in frame.columns]
    else:
        given = frame.shape[1]
        if given == len(columns):
            frame.columns = columns
        elif given == len(columns) - 1:  # without the target
            frame.columns = [c for c in columns if c != str(csv["target"])]
        else:
            raise DataError(
                f"{path}: {given} columns without a header row; the model reads the training "
                f"file's {len(columns)} columns in order (or all but the target)."
            )
    lines = _line_numbers(text, has_header, len(frame))

    def where(row: int, column: str) -> str:
        at = f"line {lines[row]}" if lines is not None else f"data row {row + 1}"
        shown = f"'{column}'" if has_header else f"{column} (0-based)"
        return f"{path}: {at}, column {shown}"

    return frame, where


def _line_numbers(text: str, header: bool, rows: int) -> list[int] | None:
    filled = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    data = filled[1:] if header else filled
    return data if len(data) == rows else None


def predict_file(
    model_dir: str | Path,
    csv_path: str | Path,
    *,
    delimiter: str | None = None,
    header: bool | None = None,
) -> pd.DataFrame:
    """The predictions of a MODEL_DIR for every row of a CSV of raw rows (see
    :meth:`FittedModel.predict`); errors name the file, line, column and value."""
    return predict_rows(load_model(model_dir), csv_path, delimiter=delimiter, header=header)


def predict_rows(
    model: FittedModel,
    csv_path: str | Path,
    *,
    delimiter: str | None = None,
    header: bool | None = None,
) -> pd.DataFrame:
    """:func:`predict_file` with a model already made (a MODEL_DIR's, or a run's rebuilt by
    :func:`tricklab.tools.export.raw_rows_model`)."""
    frame, where = read_rows(csv_path, model.record, delimiter, header)
    try:
        return model.predict(frame, where)
    except DataError as exc:
        text = str(exc)
        if text.startswith(("unknown column", "missing column")):
            raise DataError(f"{csv_path}: {text}") from None
        raise
