"""Dates in a table's cells: the forms they are read in, and days since 1970-01-01
(:mod:`tricklab.data._columns` reads date columns with them; ``tricklab predict`` reads the
date cells of new rows with the form training used)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

EPOCH = dt.date(1970, 1, 1)


def days_since_epoch(value: dt.datetime) -> float:
    """A date (and time) as days since 1970-01-01."""
    delta = value.replace(tzinfo=None) - dt.datetime(1970, 1, 1)
    return delta.total_seconds() / 86400


# --- reading dates -----------------------------------------------------------------------------

#: The forms a date column is read in without ``date_format``: ISO 8601, then day-first and
#: month-first with ``/``, ``-`` or ``.`` between the parts and a 4-digit year.
DAY_FIRST = tuple(f"%d{sep}%m{sep}%Y" for sep in "/-.")
MONTH_FIRST = tuple(f"%m{sep}%d{sep}%Y" for sep in "/-.")
ACCEPTED_DATES = (
    "ISO 8601 (2021-03-31), day-first (31/03/2021) or month-first (03/31/2021) with / - or . "
    'between the parts, or any form given as date_format = "%d/%m/%Y" in the dataset table'
)


def parse_date(text: str, form: str) -> float | None:
    """``text`` as days since 1970-01-01 when it is a date in ``form`` ("ISO" or a strptime
    format), else None."""
    text = text.strip()
    try:
        if form == "ISO":
            if len(text) < 10 or text[4] != "-":
                return None
            return days_since_epoch(dt.datetime.fromisoformat(text))
        return days_since_epoch(dt.datetime.strptime(text, form))
    except ValueError:
        return None


def read_dates(values: list[str], date_format: str | None) -> tuple[list[str], list[float | None]]:
    """The forms the distinct cell texts ``values`` may be dates in, and each one as days in the
    first of them (None where it is not a date in that form); the caller reports those cells,
    and ambiguity (more than one form).

    With ``date_format``, that form. Else ISO 8601 when every value is one, else each form of
    :data:`DAY_FIRST` and :data:`MONTH_FIRST` that reads every value (a column whose values all
    read day-first and month-first, ``03/04/2021``, has two); when none does, the form reading
    the most values.
    """
    if date_format is not None:
        return [date_format], [parse_date(v, date_format) for v in values]
    best: tuple[int, str, list[float | None]] | None = None
    complete: list[tuple[str, list[float | None]]] = []
    for form in ("ISO", *DAY_FIRST, *MONTH_FIRST):
        days = [parse_date(v, form) for v in values]
        read = sum(d is not None for d in days)
        if read == len(values):
            if form == "ISO":
                return [form], days
            complete.append((form, days))
        if best is None or read > best[0]:
            best = (read, form, days)
    if complete:
        return [form for form, _ in complete], complete[0][1]
    assert best is not None
    return [best[1]], best[2]


def date_features(days: np.ndarray, origin: float) -> np.ndarray:
    """year, month, weekday (Monday 0) and days since ``origin`` of days since 1970-01-01."""
    whole = np.floor(days).astype(np.int64)
    dates = whole.astype("datetime64[D]")
    year = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    month = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    weekday = (whole + 3) % 7  # 1970-01-01 was a Thursday
    return np.column_stack([year, month, weekday, days - origin]).astype(np.float64)


def iso_date(days: float | None) -> str | None:
    """Days since 1970-01-01 as an ISO date (whole days; a fraction is a time of day)."""
    if days is None or not math.isfinite(days):
        return None
    whole = math.floor(days)
    date = (EPOCH + dt.timedelta(days=whole)).isoformat()
    rest = days - whole
    if rest:
        seconds = round(rest * 86400)
        date += f"T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return date
