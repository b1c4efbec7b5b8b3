"""Mid-run checkpoints as data, never code: arrays in a ``.npz`` file, everything else as JSON.

Part of :mod:`tricklab.store`. A checkpoint is the training state of one run or population
(nested dicts, lists and tuples of arrays, numbers, strings, booleans and None). It is written
as one ``.npz`` archive, read with ``allow_pickle=False``:

- ``__meta__``: JSON (as bytes) ``{"format": 1, "keys": [run keys]}``, so a commit can find
  and delete every checkpoint that holds its run without reading the arrays;
- ``__tree__``: JSON (as bytes) of the state, each array replaced by ``{"__array__": i}`` (a
  numpy scalar by ``{"__scalar__": i}``),
  each tuple by ``{"__tuple__": [...]}`` and each dict by ``{"__dict__": [[key, value], ...]}``
  (keys may be ints; JSON objects could not say so);
- ``a0``, ``a1``, ...: the arrays, numpy scalars included (as 0-d arrays).

Loading a checkpoint builds Python values and numpy arrays only: a file planted in a shared
store cannot run code, unlike the pickles earlier versions wrote (``.pkl``; never loaded).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 1
FOLDER = ".checkpoints"  # under the study's store
SUFFIX = ".npz"
LEGACY_SUFFIX = ".pkl"


class CheckpointError(ValueError):
    """A checkpoint file is not one this module wrote (damaged, or something else)."""


def encode(keys: list[str], state: Any) -> bytes:
    """The ``.npz`` bytes of ``state``, the checkpoint of the runs ``keys``."""
    arrays: list[np.ndarray] = []
    tree = _encode(state, arrays)
    members = {f"a{i}": array for i, array in enumerate(arrays)}
    members["__meta__"] = _json_bytes({"format": FORMAT, "keys": list(keys)})
    members["__tree__"] = _json_bytes(tree)
    out = io.BytesIO()
    np.savez(out, allow_pickle=False, **members)
    return out.getvalue()


def decode(data: bytes) -> Any:
    """The state :func:`encode` wrote; raises :class:`CheckpointError` for anything else."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            meta = _json_value(archive["__meta__"])
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise CheckpointError(f"unknown checkpoint format {meta!r}")
            arrays = {name: archive[name] for name in archive.files if name.startswith("a")}
            tree = _json_value(archive["__tree__"])
        return _decode(tree, arrays)
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile) as exc:
        raise CheckpointError(str(exc) or type(exc).__name__) from None


def path_for(folder: Path, keys: Sequence[str], suffix: str = SUFFIX) -> Path:
    """The checkpoint file of exactly the runs ``keys`` (one run, or one population)."""
    unit = hashlib.sha256(",".join(sorted(keys)).encode()).hexdigest()[:16]
    return folder / f"{unit}{suffix}"


def drop_holding(folder: Path, keys: Collection[str]) -> None:
    """Delete every checkpoint in ``folder`` that holds one of the runs ``keys`` (they are
    committed): also those of a population that another call formed differently."""
    if not keys:
        return
    for path in folder.glob(f"*{SUFFIX}"):
        if any(key in keys for key in keys_of(path)):
            path.unlink(missing_ok=True)


def keys_of(path: Path) -> list[str]:
    """The run keys a checkpoint file holds (read from its small ``__meta__`` member only)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = _json_value(archive["__meta__"])
        keys = meta.get("keys") if isinstance(meta, dict) else None
        return [str(k) for k in keys] if isinstance(keys, list) else []
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
        return []


def _json_bytes(value: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(value).encode("utf-8"), dtype=np.uint8)


def _json_value(array: np.ndarray) -> Any:
    if array.dtype != np.uint8 or array.ndim != 1:
        raise CheckpointError("metadata is not JSON bytes")
    return json.loads(array.tobytes().decode("utf-8"))


def _encode(value: Any, arrays: list[np.ndarray]) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value  # JSON keeps inf and nan (as Infinity and NaN)
    if isinstance(value, np.ndarray | np.generic) or hasattr(value, "__array__"):
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise TypeError(f"a checkpoint holds numbers, not Python objects: {array.dtype}")
        arrays.append(array)
        # A numpy scalar comes back as one (EarlyStopping compares its "best" with it).
        return {"__scalar__" if isinstance(value, np.generic) else "__array__": len(arrays) - 1}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str | int) or isinstance(key, bool):
                raise TypeError(f"a checkpoint's dict keys are str or int. Received: {key!r}")
        return {"__dict__": [[k, _encode(v, arrays)] for k, v in value.items()]}
    raise TypeError(f"a checkpoint cannot hold {type(value).__name__} values")


def _decode(node: Any, arrays: dict[str, np.ndarray]) -> Any:
    if node is None or isinstance(node, bool | int | float | str):
        return node
    if isinstance(node, list):
        return [_decode(v, arrays) for v in node]
    if isinstance(node, dict) and len(node) == 1:
        ((tag, body),) = node.items()
        if tag == "__array__" and isinstance(body, int):
            return arrays[f"a{body}"]
        if tag == "__scalar__" and isinstance(body, int):
            return arrays[f"a{body}"][()]
        if tag == "__tuple__" and isinstance(body, list):
            return tuple(_decode(v, arrays) for v in body)
        if tag == "__dict__" and isinstance(body, list):
            return {_key(pair): _decode(pair[1], arrays) for pair in body}
    raise CheckpointError(f"unexpected node {str(node)[:80]!r}")


def _key(pair: Any) -> str | int:
    if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str | int)):
        raise CheckpointError(f"unexpected dict entry {str(pair)[:80]!r}")
    return pair[0]
