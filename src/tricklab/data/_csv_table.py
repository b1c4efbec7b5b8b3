"""A CSV file as pandas read it, checked column by column; each refusal names the file, line
and column (:mod:`._csv` decides what the table becomes)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from tricklab.base.errors import DataError
from tricklab.data._csv_text import (
    check_unique_names,
    delimiter_hint,
    first_row,
    read_csv_text,
)
from tricklab.data._dates import read_dates
from tricklab.data._sampling import stratified_sample
from tricklab.spec import (
    FLOAT32_MAX,
    MAX_AUTO_CLASSES,
    MAX_LEVELS,
    MIN_ROWS_FOR_LEVELS,
    NUMBER_PERCENT,
    CsvSpec,
    Task,
    exceeded,
    messages,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    import pandas as pd

_Kind = Literal["number", "bool", "text", "date"]


@dataclass
class CsvTable:
    """A CSV file read by pandas, with each row's line number in the file for messages."""

    spec: CsvSpec
    shown: str
    frame: pd.DataFrame
    first_line: int  # line number of data row 0
    #: `` The header holds ';': set delimiter = ";" ...`` when the first row is one cell that
    #: holds another common delimiter; added to the messages of columns not found.
    hint: str = ""

    @classmethod
    def read(cls, spec: CsvSpec, shown: str, max_columns: int) -> CsvTable:
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
        hint = ""
        try:
            # The first row bounds the columns (a longer row is a parse error): it is checked
            # before the rest is parsed.
            first = first_row(text, options)
            hint = delimiter_hint(first, spec.delimiter, spec.header)
            if len(first) > max_columns:
                limit = exceeded("columns", len(first), max_columns, "max_columns")
                raise DataError(f"{shown}: {limit}")
            if spec.header:
                check_unique_names(shown, first)
            frame = pd.read_csv(
                io.StringIO(text),
                header=0 if spec.header else None,
                # the cells as written; no dict when empty: pandas then wraps every column
                dtype=dict.fromkeys([*spec.text_columns, *spec.dates], str) or None,
                **options,
            )
        except pd.errors.EmptyDataError:
            raise DataError(empty) from None
        except pd.errors.ParserError as exc:
            reason = " ".join(str(exc).split()).rstrip(".")  # pandas ends it with a newline
            raise DataError(f"{shown}: cannot parse as CSV: {reason}.{hint}") from None
        # pandas keeps one block per column; copying consolidates them, else every frame-wide
        # step of a 100,000-column table loops over 100,000 blocks (seconds each).
        table = cls(spec, shown, frame.copy(), 2 if spec.header else 1, hint)
        table.drop_blank_lines(text.splitlines())
        if len(table.frame) == 0:
            if spec.header:  # a header row, then nothing (or blank lines)
                raise DataError(
                    f"{shown}: the file has a header but no rows; expected at least 2 data "
                    "rows after the header."
                )
            raise DataError(empty)
        if len(table.frame) < 2:
            raise DataError(f"{shown}: only 1 data row; at least 2 are needed.")
        return table

    def drop_blank_lines(self, lines: list[str]) -> None:
        """With ``skip_blank_lines=False`` a blank line is an all-missing row: drop those."""
        all_missing = self.frame.isna().all(axis=1).to_numpy()
        blank = [
            int(row)
            for row in np.flatnonzero(all_missing)
            if (line := row + self.first_line - 1) < len(lines) and not lines[line].strip()
        ]
        self.frame = self.frame.drop(index=self.frame.index[blank])

    def line(self, position: int) -> int:
        return int(self.frame.index[position]) + self.first_line

    def column(self, label: Any) -> str:
        return f"'{label}'" if self.spec.header else str(label)

    def target_label(self) -> Any:
        columns = self.frame.columns.tolist()
        target = self.spec.target
        if isinstance(target, int):
            if target < len(columns):
                return columns[target]
            raise DataError(
                f"{self.shown}: target column {target} not found; the file has {len(columns)} "
                f"columns (0-based indices 0-{len(columns) - 1}). Columns: {_listed(columns)}."
                f"{self.hint}"
            )
        if target in columns:
            return target
        hint = messages.did_you_mean(target, [str(c) for c in columns])
        raise DataError(
            f"{self.shown}: target column '{target}' not found.{hint} Columns: "
            f"{_listed(columns)}.{self.hint}"
        )

    def label(self, key: str, ref: str | int) -> Any:
        """The column label a dataset key names by name or 0-based index; a located error
        when the file has no such column."""
        columns = self.frame.columns.tolist()
        if isinstance(ref, int):
            if ref >= len(columns):
                raise DataError(
                    f"{self.shown}: {key}: column {ref} not found; the file has "
                    f"{len(columns)} columns (0-based indices 0-{len(columns) - 1}).{self.hint}"
                )
            return columns[ref]
        if ref in columns:
            return ref
        hint = messages.did_you_mean(ref, [str(c) for c in columns])
        raise DataError(
            f"{self.shown}: {key}: column '{ref}' not found.{hint} "
            f"Columns: {_listed(columns)}.{self.hint}"
        )

    def text_labels(self, target: Any) -> set[Any]:
        """The column labels that ``text_columns`` names (checked: present, not the target)."""
        labels = set()
        for ref in self.spec.text_columns:
            label = self.label("text_columns", ref)
            if label == target:
                raise DataError(
                    f"{self.shown}: text_columns names the target column {self.column(target)}; "
                    'it lists feature columns. For text classes set task = "classification".'
                )
            labels.add(label)
        return labels

    def check_complete(self, imputed: Collection[Any] = ()) -> None:
        """Every cell present, but in the ``imputed`` columns (the dataset table's impute)."""
        frame = self.frame.drop(columns=list(imputed)) if imputed else self.frame
        missing = frame.isna().to_numpy()
        if not missing.any():
            return
        rows, cols = np.nonzero(missing)
        label = frame.columns[cols[0]]
        where = f"line {self.line(rows[0])}, column {self.column(label)}"
        if self.spec.impute is not None:
            self._not_imputed(label, where, len(rows))
        more = len(rows) - 1
        rows_ = "rows" if more else "row"
        fix = (
            f"The target is never imputed; fill or drop the {rows_}."
            if label == self.target_label()
            else f'Fill or drop the {rows_}, or set impute = "median" (or "mean", '
            '"most_frequent") in the dataset table.'
        )
        if more:
            lines = sorted({self.line(r) for r in rows[1:]})
            listed = ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")
            s = "s" if more > 1 else ""
            raise DataError(
                f"{self.shown}: {where}: missing value (and {more} more missing value{s}, "
                f"on line{'s' if len(lines) > 1 else ''} {listed}). {fix}"
            )
        raise DataError(f"{self.shown}: {where}: missing value. {fix}")

    def _not_imputed(self, label: Any, where: str, count: int) -> None:
        """A missing cell where impute is set: in the target, or a column impute leaves out."""
        more = f" (and {count - 1} more)" if count > 1 else ""
        if label == self.target_label():
            raise DataError(
                f"{self.shown}: {where}: missing value{more} in the target column; the target "
                "is never imputed. Fill or drop the rows."
            )
        raise DataError(
            f"{self.shown}: {where}: missing value{more}, and impute does not name the column. "
            f'Add it to the impute table ({{{label} = "median"}}, or "mean", "most_frequent"), '
            "or fill the cells."
        )

    def is_classification(self, target: Any) -> tuple[bool, str]:
        """Whether the target is classes, and why (for :func:`describe_intake`)."""
        import pandas as pd

        series = self.frame[target]
        numeric = _is_number_dtype(series.dtype)
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

    def check_features(
        self, target: Any, text: set[Any], dates: Collection[Any] = ()
    ) -> dict[Any, _Kind]:
        """How each feature column is used, after the intake rules (on every row, before
        ``limit``): a column that is mostly numbers must be all numbers; numbers must fit in
        float32; a text column must not have too many distinct values."""
        import pandas as pd

        kinds: dict[Any, _Kind] = {}
        slow: list[Any] = []  # columns judged one by one: text, or cells pandas kept as text
        by_dtype: dict[Any, _Kind] = {}  # a wide table has 100,000 columns but few dtypes
        columns = self.frame.columns.tolist()  # iterating the Index itself is slower
        for label, dtype in zip(columns, self.frame.dtypes.tolist(), strict=True):
            if label == target:
                continue
            if label in dates:  # read by read_date_column
                kinds[label] = "date"
                continue
            if dtype not in by_dtype:
                is_bool = pd.api.types.is_bool_dtype(dtype)
                by_dtype[dtype] = (
                    "bool" if is_bool else "number" if _is_number_dtype(dtype) else "text"
                )
            kinds[label] = "text" if label in text else by_dtype[dtype]
            if kinds[label] == "text":
                slow.append(label)
        # Numeric columns are checked all at once (a wide table has 100,000 of them); the
        # first bad one is still reported in column order among the other columns' problems.
        bad = self._first_bad_number([label for label, kind in kinds.items() if kind == "number"])
        order = {label: i for i, label in enumerate(kinds)} if bad is not None else {}
        for label in slow:
            if bad is not None and order[bad] < order[label]:
                break
            if label not in text:
                kinds[label] = self._text_or_number(label)
            if kinds[label] == "text" and self._is_bool_with_gaps(label):
                kinds[label] = "bool"
                continue
            if kinds[label] == "number":
                self._check_finite(self.frame[label].to_numpy(dtype=np.float64), label)
            else:
                self._check_levels(label)
        if bad is not None:
            self._check_finite(self.frame[bad].to_numpy(dtype=np.float64), bad)
        return kinds

    def _text_or_number(self, label: Any) -> _Kind:
        """A column pandas kept as text: numbers it could not hold, text, or an error."""
        import pandas as pd

        series = self.frame[label]
        numbers = pd.to_numeric(series, errors="coerce")
        # a missing cell is not a bad one (impute fills it; else check_complete refused it)
        bad = np.flatnonzero((numbers.isna() & series.notna()).to_numpy())
        if len(bad) == 0:  # numbers pandas kept as text (integers beyond int64)
            self.frame[label] = numbers.astype(np.float64)
            return "number"
        if (len(series) - len(bad)) * 100 >= NUMBER_PERCENT * len(series):
            self._mostly_numbers(label, bad)
        return "text"

    def _is_bool_with_gaps(self, label: Any) -> bool:
        """true/false cells with missing ones (pandas then keeps the column as objects)."""
        series = self.frame[label]
        present = series.dropna()
        return bool(series.isna().any()) and all(isinstance(v, bool) for v in present.tolist())

    def _first_bad_number(self, labels: list[Any]) -> Any:
        """The first of ``labels`` holding a value that is not finite in float32, or None.

        Vectorised over blocks of columns of about 4M cells (bounded memory for tall tables).
        """
        step = max(1, (1 << 22) // max(len(self.frame), 1))
        for start in range(0, len(labels), step):
            block = labels[start : start + step]
            values = self.frame[block].to_numpy(dtype=np.float64)
            with np.errstate(invalid="ignore"):  # NaN: a missing cell that impute fills
                bad = np.isinf(values) | (np.abs(values) > FLOAT32_MAX)
            columns = np.flatnonzero(bad.any(axis=0))
            if len(columns):
                return block[columns[0]]
        return None

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
        levels = int(self.frame[label].dropna().astype(str).nunique())
        limit = self.spec.max_categories
        where = f"{self.shown}: column {self.column(label)}: {levels} distinct text values"
        ref = f'"{label}"' if self.spec.header else str(label)
        if limit is not None:
            if levels > limit:
                raise DataError(
                    f"{where}, more than max_categories = {limit}; each value becomes a one-hot "
                    f"feature. Leave the column out with drop = [{ref}], or set "
                    f"max_categories = {levels} in the dataset table."
                )
            return
        if rows >= MIN_ROWS_FOR_LEVELS and (levels > MAX_LEVELS or levels > rows / 2):
            dates = f", read it as dates with dates = [{ref}]" if self._dates_like(label) else ""
            raise DataError(
                f"{where} in {rows} rows; each value becomes a one-hot feature, and a text "
                f"column may have at most {MAX_LEVELS} values and at most half as many as rows "
                f"({rows // 2}). Leave the column out with drop = [{ref}] (an identifier or free "
                f"text?){dates}, or allow it with max_categories = {levels} in the dataset table."
            )

    def _dates_like(self, label: Any) -> bool:
        """Whether 90% or more of the first 200 distinct values read as dates in one form."""
        values = self.frame[label].dropna().astype(str).unique()[:200].tolist()
        _, days = read_dates(values, None)
        read = sum(d is not None for d in days)
        return bool(values) and read * 100 >= NUMBER_PERCENT * len(values)

    def sample(self, target: Any, classification: bool) -> int | None:
        """Keep ``spec.limit`` rows (stratified by the target's classes, seed 0), if set and
        fewer than the table has; how many rows were kept, or None."""
        limit = self.spec.limit
        if limit is None or limit >= len(self.frame):
            return None
        labels = self.frame[target].astype(str).to_numpy() if classification else None
        self.keep(labels, limit)
        return len(self.frame)

    def keep(self, labels: np.ndarray | None, limit: int) -> None:
        if labels is None:
            rng = np.random.default_rng(0)
            rows = np.sort(rng.choice(len(self.frame), size=limit, replace=False))
        else:
            rows = stratified_sample(labels, limit, source=self.shown)
        self.frame = self.frame.iloc[rows]

    def target(self, target: Any, classification: bool) -> tuple[np.ndarray, tuple[str, ...], Task]:
        """The target as model targets: class indices and class names, or values."""
        if classification:
            y, class_names = self.classes(target)
            return y, class_names, "binary" if len(class_names) == 2 else "multiclass"
        return self.values(target), (), "regression"

    def features(
        self, target: Any, kinds: dict[Any, _Kind]
    ) -> tuple[np.ndarray, tuple[str, ...], dict[str, int]]:
        """Numeric columns as they are, booleans as 0/1, text columns one-hot (``col=value``);
        and the one-hot columns with their number of levels."""
        import pandas as pd

        parts: list[np.ndarray] = []
        names: list[str] = []
        one_hot: dict[str, int] = {}
        block: list[Any] = []  # consecutive numeric and true/false columns, converted at once

        def flush() -> None:
            if block:
                parts.append(self.frame[block].to_numpy(dtype=np.float64))
                names.extend(str(label) for label in block)
                block.clear()

        for label, kind in kinds.items():
            if kind != "text":
                block.append(label)
                continue
            flush()
            series = self.frame[label]
            dummies = pd.get_dummies(series.astype(str), prefix=str(label), prefix_sep="=")
            parts.append(dummies.to_numpy(dtype=np.float64))
            names.extend(str(c) for c in dummies.columns)
            one_hot[str(label)] = dummies.shape[1]
        flush()
        if not parts:
            raise DataError(
                f"{self.shown}: no feature columns besides the target {self.column(target)}."
            )
        return np.hstack(parts).astype(np.float32), tuple(names), one_hot

    def _check_finite(self, values: np.ndarray, label: Any) -> None:
        """Every value finite, and finite in float32 (1e300 would become inf). NaN is a missing
        cell, which impute fills (without impute, check_complete refused it)."""
        bad = np.flatnonzero(np.isinf(values))
        if len(bad):
            raise DataError(
                f"{self.shown}: line {self.line(bad[0])}, column {self.column(label)}: "
                f"{values[bad[0]]} is not a finite number."
            )
        huge = np.flatnonzero(np.abs(values) > FLOAT32_MAX)
        if len(huge):
            raise DataError(
                f"{self.shown}: line {self.line(huge[0])}, column {self.column(label)}: "
                f"{float(values[huge[0]])!r} is outside the range of float32 (about "
                f"±{FLOAT32_MAX:.1e}), which tricklab trains in. Rescale the column (change "
                "its unit) so every value fits."
            )

    def classes(self, target: Any) -> tuple[np.ndarray, tuple[str, ...]]:
        """Labels 0..K-1 in sorted class order, and the class names."""
        series = self.frame[target]
        if _is_number_dtype(series.dtype):
            values = series.to_numpy(dtype=np.float64)
            names_of: Callable[[Any], str] = _number_name
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
        values: np.ndarray = self.frame[target].to_numpy(dtype=np.float64)
        self._check_finite(values, target)
        return values.astype(np.float32)


def _listed(columns: list[Any]) -> str:
    # a tab shown as \t: a terminal would print it as spaces (a tab-separated header)
    return ", ".join(str(c).replace("\t", "\\t") for c in columns)


def _is_number_dtype(dtype: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


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
