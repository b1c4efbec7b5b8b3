"""The files of a run directory: their names, their formats (CSV tables, ``.npy`` arrays), the
atomic write every store file goes through, and reading a finished run (:func:`load_result`).

Part of :mod:`tricklab.store`, which owns where files are and when they are written; this module
turns data into file contents and back, and tells a whole file from a torn or damaged one.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import math
import os
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from tricklab.base.errors import StoreError
from tricklab.engines import WeightsFile
from tricklab.engines.contract import RESULT_SCHEMA, RunResult

RESULT = "result.json"
SPEC = "spec.json"
HISTORY = "history.csv"
WEIGHTS = "best.weights.h5"
DIAGNOSTICS = "diagnostics.csv"
PREDICTIONS = "predictions.npy"
FAILED = "failed.json"  # the last failure of a run that has not finished
#: What a finished run holds besides result.json (predictions.npy: from result schema 3 on).
RUN_FILES = (SPEC, HISTORY, WEIGHTS, PREDICTIONS)
#: The weights training ended with and their test outputs (runs trained since train.evaluate).
LAST_WEIGHTS = "last.weights.h5"
LAST_PREDICTIONS = "last.predictions.npy"
#: What it may hold: diagnostics.csv when the study asks for diagnostics; the last weights.
OPTIONAL_FILES = (DIAGNOSTICS, LAST_WEIGHTS, LAST_PREDICTIONS)


class Damaged(StoreError):
    """A finished run's ``file`` (relative to its run directory) is missing or damaged."""

    def __init__(self, run_dir: Path, file: str, reason: str) -> None:
        self.file, self.reason = file, reason
        super().__init__(f"{run_dir / file}: {reason}")


#: The first bytes of every HDF5 file (the weights).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def load_result(run_dir: Path) -> RunResult | None:
    """A run directory's result, or None if it has not finished.

    A run is finished only when every file it needs is whole; raises :class:`Damaged` naming
    the first file that is not: result.json and spec.json parse, history.csv has one row per
    epoch run, the weights file is HDF5 holding exactly the run's parameters, predictions.npy
    has one row per test row. (The split's labels live outside the run: the store checks them.)
    """
    path = run_dir / RESULT
    if not path.exists():
        return None
    data = _json_file(run_dir, RESULT)
    if not isinstance(data, dict) or "key" not in data:
        raise Damaged(run_dir, RESULT, "not a tricklab result")
    for name in RUN_FILES:
        if not (run_dir / name).exists():
            raise Damaged(run_dir, name, "missing")
    spec = _json_file(run_dir, SPEC)
    if not isinstance(spec, dict) or not isinstance(spec.get("recipe"), dict):
        raise Damaged(run_dir, SPEC, "not a run spec (no recipe)")
    try:
        history = read_history(run_dir / HISTORY)
    except (OSError, ValueError, TypeError, KeyError, csv.Error) as exc:
        raise Damaged(run_dir, HISTORY, f"unreadable ({exc})") from None
    try:
        diagnostics_path = run_dir / DIAGNOSTICS
        diagnostics = read_rows(diagnostics_path) if diagnostics_path.exists() else []
    except (OSError, ValueError, TypeError, csv.Error) as exc:
        raise Damaged(run_dir, DIAGNOSTICS, f"unreadable ({exc})") from None
    try:
        result = RunResult.from_json(data, history, diagnostics)
    except (ValueError, TypeError, KeyError) as exc:
        raise Damaged(run_dir, RESULT, f"not a tricklab result ({exc})") from None
    rows = len(history.get("loss", []))
    if rows != result.epochs_run or any(len(v) != rows for v in history.values()):
        raise Damaged(
            run_dir, HISTORY, f"{rows} rows where the run trained {result.epochs_run} epochs"
        )
    _check_weights(run_dir, result.params)
    try:  # checked from its header and size: reading it is left to readers
        shape = npy_shape(run_dir / PREDICTIONS)
    except (OSError, ValueError) as exc:
        raise Damaged(run_dir, PREDICTIONS, f"unreadable ({exc})") from None
    tested = result.split_sizes.get("test")
    if shape[:1] != (tested,):
        found = shape[0] if shape else 0
        raise Damaged(run_dir, PREDICTIONS, f"{found} rows; the run tested on {tested}")
    return result


def _json_file(run_dir: Path, name: str) -> Any:
    try:
        return json.loads((run_dir / name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Damaged(run_dir, name, f"unreadable ({exc})") from None


def _check_weights(run_dir: Path, params: int) -> None:
    """The weights file is HDF5, every array in it reads whole, and they hold ``params``
    numbers: the variables of the model the run's spec builds (Keras's ``count_params``)."""
    h5py = _h5py()
    path = run_dir / WEIGHTS
    try:
        with path.open("rb") as handle:
            signature = handle.read(len(HDF5_SIGNATURE))
        if signature != HDF5_SIGNATURE:
            raise Damaged(run_dir, WEIGHTS, "not an HDF5 file")
        arrays: list[Any] = []
        with h5py.File(path, "r") as weights:
            weights.visititems(lambda _, item: arrays.append(item[()]) if _is_array(item) else None)
    except Damaged:
        raise
    except Exception as exc:  # h5py raises OSError, KeyError, RuntimeError... on torn files
        raise Damaged(run_dir, WEIGHTS, f"unreadable ({_one_line(exc)})") from None
    stored = sum(int(np.size(a)) for a in arrays)
    if stored != params:
        raise Damaged(run_dir, WEIGHTS, f"{stored} parameters where the model has {params}")


def weights_bytes(weights: WeightsFile) -> bytes:
    """``weights`` as the contents of an HDF5 file (best.weights.h5): each group of
    ``weights.groups`` with its string attributes, then each array of ``weights.arrays`` as a
    dataset at its path, stored as h5py stores them by default (contiguous, uncompressed), as
    Keras's ``save_weights`` does. Built in memory: nothing touches the disk here."""
    h5py = _h5py()
    name = f"{uuid.uuid4().hex}.weights.h5"  # never created (no backing store)
    with h5py.File(name, "w", driver="core", backing_store=False) as h5:
        for path, attrs in weights.groups.items():
            group = h5.require_group(path)
            for key, value in attrs.items():
                group.attrs[key] = value
        for path, array in weights.arrays.items():
            h5.create_dataset(path, data=np.asarray(array))
        h5.flush()
        image: bytes = h5.id.get_file_image()
    return image


def _is_array(item: Any) -> bool:
    return isinstance(item, _h5py().Dataset)


def _h5py() -> Any:
    """h5py, imported when first needed (its names are not typed for mypy: used as Any)."""
    return importlib.import_module("h5py")


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def labels_damage(path: Path, run_dir: Path, result: RunResult) -> tuple[str, str] | None:
    """(``path`` relative to ``run_dir``, why) when a run's split labels at ``path`` are not
    whole: missing, torn, or not one label per test row of ``result``."""
    file = os.path.relpath(path, run_dir)
    if not path.exists():
        return file, "missing"
    try:
        shape = npy_shape(path)
    except (OSError, ValueError) as exc:
        return file, f"unreadable ({exc})"
    tested = result.split_sizes.get("test")
    if shape[:1] != (tested,):
        return file, f"{shape[0] if shape else 0} labels; the run tested on {tested}"
    return None


def out_of_date(path: Path, key: str | None) -> bool:
    """result.json is whole JSON of another key or result schema than planned: its run is
    retrained as planned, whatever its other files hold (an older tricklab's runs included)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False  # damaged: the full check names it
    if key is None or not isinstance(data, dict):
        return False
    return data.get("key") != key or data.get("schema", RESULT_SCHEMA) != RESULT_SCHEMA


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
    array: np.ndarray = np.load(path, allow_pickle=False)
    return array


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
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None:  # a full disk on write() names no file: say which
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_unsynced(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, a file of a worker's own staging folder, without fsync: the
    commit makes a batch of them durable at once (:func:`fsync_all`)."""
    try:
        with path.open("wb") as handle:
            handle.write(data)
    except OSError as exc:
        if exc.filename is None:  # as write_bytes: say which file met the full disk
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


def fsync_all(paths: Sequence[Path]) -> dict[Path, OSError]:
    """fsync every file of ``paths`` at once, from a few threads, so that the file system can
    group them; the errors, by file (none: all durable)."""

    def one(path: Path) -> OSError | None:
        try:
            fsync(path)
        except OSError as exc:
            return exc
        return None

    if not paths:
        return {}
    with ThreadPoolExecutor(min(8, len(paths)), thread_name_prefix="fsync") as pool:
        errors = list(pool.map(one, paths))
    return {path: exc for path, exc in zip(paths, errors, strict=True) if exc is not None}


def write_json(path: Path, data: Any) -> None:
    """``data`` as indented JSON, written with :func:`write_bytes`."""
    write_bytes(path, (json.dumps(data, indent=1) + "\n").encode("utf-8"))


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
