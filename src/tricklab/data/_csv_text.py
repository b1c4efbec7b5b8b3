"""A CSV file's text, and its first row: read before pandas parses anything else.

A file's columns are counted and its header names checked on the first row alone, in linear
time, so a file over ``[limits] max_columns`` is refused before its rows are parsed.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections import Counter
from pathlib import Path
from typing import Any

from tricklab.base.errors import DataError, not_utf8


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


def first_row(text: str, options: dict[str, Any]) -> list[str]:
    """The cells of the first row as written, without parsing the rows after it.

    Python's csv module splits one row in linear time; pandas takes seconds for the header of
    a 100,000-column file. A cell over the csv module's size limit falls back to pandas.
    """
    try:
        return next(csv.reader(io.StringIO(text), delimiter=options["sep"]), [])
    except csv.Error:
        import pandas as pd

        row = pd.read_csv(
            io.StringIO(text), header=None, nrows=1, dtype=str, keep_default_na=False, **options
        )
        return [str(cell) for cell in row.iloc[0]] if len(row) else []


def check_unique_names(shown: str, names: list[str]) -> None:
    """Column names as written in the header (pandas renames a repeated ``a`` to ``a.1``).

    Linear in the columns: a Counter finds the first repeated name, one pass its positions.
    """
    counts = Counter(names)  # in order of first appearance
    name = next((name for name, n in counts.items() if name and n > 1), None)
    if name is None:
        return
    where = [i for i, other in enumerate(names) if other == name]
    times = "twice" if len(where) == 2 else f"{len(where)} times"
    at = ", ".join(map(str, where[:-1])) + f" and {where[-1]}"
    raise DataError(
        f"{shown}: line 1: column name '{name}' appears {times} (0-based columns {at}); "
        "column names must be unique. Rename or drop the repeats."
    )


#: Delimiters a CSV file is often written with, as ``delimiter =`` takes them in a study file.
OTHER_DELIMITERS = {",": '","', ";": '";"', "\t": '"\\t"', "|": '"|"'}
_SHOWN = {",": "','", ";": "';'", "\t": "a tab", "|": "'|'"}


def delimiter_hint(first: list[str], delimiter: str, header: bool) -> str:
    """`` The header holds ';': set delimiter = ";" in the dataset table.`` when the first row
    is a single cell holding another common delimiter (a ``;``- or tab-separated file read with
    the default ``,``, or the reverse); else ``""``."""
    if len(first) != 1:
        return ""
    found = next((d for d in OTHER_DELIMITERS if d != delimiter and d in first[0]), None)
    if found is None:
        return ""
    row = "header" if header else "first row"
    return (
        f" The {row} holds {_SHOWN[found]}: set delimiter = {OTHER_DELIMITERS[found]} in the "
        "dataset table."
    )
