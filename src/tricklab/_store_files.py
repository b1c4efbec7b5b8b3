"""The files of a run directory: their names, their formats (CSV tables, ``.npy`` arrays), the
atomic write every store file goes through, and reading a finished run (:func:`load_result`).

Part of :mod:`tricklab.store`, which owns where files are and when they are written; this module
turns data into file contents and back, and tells a whole file from a torn or damaged one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from tricklab.errors import StoreError
from tricklab.result import RunResult

RESULT = "result.json"
SPEC = "spec.json"
HISTORY = "history.csv"
WEIGHTS = "best.weights.h5"
DIAGNOSTICS = "diagnostics.csv"
PREDICTIONS = "predictions.npy"
#: What a finished run holds besides result.json.
RUN_FILES = (SPEC, HISTORY, WEIGHTS)
#: What it may hold: diagnostics.csv with diagnostics; predictions.npy from result schema 3 on.
OPTIONAL_FILES = (DIAGNOSTICS, PREDICTIONS)


def load_result(run_dir: Path) -> RunResult | None:
    """A run directory's result, or None if it has not finished.

    Raises :class:`StoreError` naming the file when a finished run's files are damaged.
    """
    path = run_dir / RESULT
    if not path.exists():
        return None
    data = read_json(path)
    if not isinstance(data, dict) or "key" not in data:
        raise StoreError(f"{path}: damaged (not a tricklab result).")
    for name in RUN_FILES:
        if not (run_dir / name).exists():
            raise StoreError(f"{run_dir / name}: missing (the run's files are incomplete).")
    try:
        history = read_history(run_dir / HISTORY)
        diagnostics_path = run_dir / DIAGNOSTICS
        diagnostics = read_rows(diagnostics_path) if diagnostics_path.exists() else []
        result = RunResult.from_json(data, history, diagnostics)
    except (OSError, ValueError, TypeError, KeyError, csv.Error) as exc:
        raise StoreError(f"{run_dir}: damaged ({exc}).") from None
    predictions = run_dir / PREDICTIONS
    if predictions.exists():  # checked from its header and size: reading it is left to readers
        try:
            shape = npy_shape(predictions)
        except (OSError, ValueError) as exc:
            raise StoreError(f"{predictions}: damaged ({exc}).") from None
        tested = result.split_sizes.get("test")
        if shape[:1] != (tested,):
            rows = shape[0] if shape else 0
            raise StoreError(f"{predictions}: damaged ({rows} rows; the run tested on {tested}).")
    return result


def history_csv(history: dict[str, list[float]]) -> str:
    columns = ["loss", "val_loss", *sorted(k for k in history if k not in ("loss", "val_loss"))]
    columns = [c for c in columns if c in history]
    epochs = len(history.get("loss", []))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["epoch", *columns])
    for epoch in range(epochs):
        writer.writerow([epoch + 1, *(repr(float(history[c][epoch])) for c in columns)])
    return out.getvalue()


def read_history(path: Path) -> dict[str, list[float]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {}
    return {c: [float(r[c]) for r in rows] for c in rows[0] if c != "epoch"}


def rows_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV with numbers parsed (text columns stay text)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _number(text: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as the contents of a ``.npy`` file (no pickled objects)."""
    out = io.BytesIO()
    np.save(out, np.ascontiguousarray(array), allow_pickle=False)
    return out.getvalue()


def npy_shape(path: Path) -> tuple[int, ...]:
    """The shape of a whole ``.npy`` file, read from its header without loading the data.

    Raises ValueError (or OSError) when the header is unreadable or the file is not exactly as
    long as its header says: a file torn by a crash or cut short is caught here.
    """
    with path.open("rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
        if dtype.hasobject:
            raise ValueError("holds Python objects, not numbers")
        expected = handle.tell() + math.prod(shape) * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        raise ValueError(f"{size} bytes where its header announces {expected}")
    return tuple(shape)


def read_npy(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def write_bytes(path: Path, data: bytes) -> None:
    """Write atomically and durably: a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"{path}: damaged or unreadable ({exc}).") from None


def read_claim(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        claim = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # a claim torn by a crash holds nothing
    return claim if isinstance(claim, dict) else None
