"""Loading a study's dataset (cached in the process)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tricklab.base.errors import DataError
from tricklab.data import _idx
from tricklab.data._builtin import fashion_dataset, load_thoracic
from tricklab.data._csv import load_csv
from tricklab.data._dataset import Dataset
from tricklab.data._images import image_folder
from tricklab.spec import (
    MAX_COLUMNS,
    DatasetSpec,
    FashionMnistSpec,
    ImageFolderSpec,
    ThoracicSpec,
    parse_dataset,
)

if TYPE_CHECKING:
    pass


def load_dataset(
    spec: DatasetSpec | str | Mapping[str, Any],
    *,
    base_dir: Path | None = None,
    progress: _idx.Progress | None = None,
    max_columns: int = MAX_COLUMNS,
) -> Dataset:
    """Read a dataset. A relative CSV or image-folder path is resolved against ``base_dir``
    (else the cwd).

    A CSV with more than ``max_columns`` columns (a study's ``[limits] max_columns``) is refused
    from its first row, before the rest is parsed.

    Fashion-MNIST is found locally or downloaded (``progress`` is called while downloading).
    Results are cached in the process, keyed by the spec and the file's path and mtime.
    """
    spec = parse_dataset(spec)
    if isinstance(spec, ThoracicSpec):
        return load_thoracic(spec)
    if isinstance(spec, FashionMnistSpec):
        return fashion_dataset(spec, _idx.load(progress=progress))
    if isinstance(spec, ImageFolderSpec):
        return image_folder(spec, _located(spec.images, base_dir))
    shown = _located(spec.csv, base_dir)
    try:
        stat = shown.stat()
    except FileNotFoundError:
        raise DataError(f"{shown}: no such file.") from None
    except OSError as exc:
        raise DataError(f"{shown}: cannot read ({exc.strerror}).") from None
    if not shown.is_file():
        raise DataError(f"{shown}: not a file.")
    return load_csv(
        spec, str(shown), str(shown.resolve()), stat.st_mtime_ns, stat.st_size, max_columns
    )


def _located(path: str, base_dir: Path | None) -> Path:
    """``path`` (``~`` expanded) relative to ``base_dir`` (the study's folder) unless absolute."""
    shown = Path(path).expanduser()
    if base_dir is not None and not shown.is_absolute():
        shown = Path(base_dir) / shown
    return shown
