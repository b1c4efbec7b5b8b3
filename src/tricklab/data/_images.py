"""A folder of images, one sub-folder per class: read into memory with Pillow, scaled to [0, 1].

The layout is the one Keras's ``image_dataset_from_directory`` reads (``root/<class>/*.png``);
``root/train/<class>`` and ``root/test/<class>`` together are the official test split. Class
names are the sub-folder names, sorted; every image is resized to ``image_size`` (bilinear) and
converted to ``color_mode``. ``limit`` keeps a stratified sample of the training images,
drawn from the file list before any image is decoded; the official test split stays whole.
:func:`image_files` and :func:`read_image` read images for ``tricklab predict`` the same way.
Pillow is imported when images are read.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tricklab.base.errors import DataError
from tricklab.data._dataset import Dataset, Intake, make_dataset
from tricklab.data._sampling import stratified_sample
from tricklab.spec import IMAGE_SUFFIXES, ImageFolderSpec

_KINDS = "PNG, JPEG, BMP or GIF"
_EXPECTED_LAYOUT = (
    "expected one sub-folder of images per class (folder/<class>/*.png), "
    "or folder/train/<class> and folder/test/<class>"
)


@dataclass(frozen=True)
class _Part:
    """The image files of one folder (the whole data, or its train or test part), by class."""

    folder: Path
    classes: tuple[str, ...]
    files: tuple[tuple[Path, ...], ...]  # per class, sorted

    @property
    def count(self) -> int:
        return sum(len(f) for f in self.files)


def image_folder(spec: ImageFolderSpec, folder: Path) -> Dataset:
    """Load the image folder ``folder`` (already resolved against the study's folder)."""
    try:
        if not folder.is_dir():
            what = "not a folder" if folder.exists() else "no such folder"
            raise DataError(f"images: {folder}: {what}; {_EXPECTED_LAYOUT}.")
        train, test = folder / "train", folder / "test"
        parts: tuple[_Part, ...]
        if train.is_dir() and test.is_dir():
            parts = (_scan(train), _scan(test))
            if parts[1].classes != parts[0].classes:
                raise DataError(
                    f"images: {test}: class sub-folders {_names(parts[1].classes)}; expected the "
                    f"same as {train}: {_names(parts[0].classes)}."
                )
        else:
            parts = (_scan(folder),)
        total = parts[0].count
        if spec.limit is not None and spec.limit < total:
            parts = (_sample(parts[0], spec.limit), *parts[1:])
        signature = tuple(
            (str(path), stat.st_mtime_ns, stat.st_size)
            for part in parts
            for files in part.files
            for path in files
            for stat in (path.stat(),)
        )
    except OSError as exc:
        where = exc.filename or folder
        raise DataError(f"images: {where}: cannot read ({exc.strerror}).") from None
    _check_memory(spec, folder, sum(part.count for part in parts))
    return _load(spec, str(folder.resolve()), parts, total, signature)


def _scan(folder: Path) -> _Part:
    classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and _visible(p)))
    if not classes:
        raise DataError(f"images: {folder}: no class sub-folders; {_EXPECTED_LAYOUT}.")
    if len(classes) < 2:
        raise DataError(
            f"images: {folder}: 1 class sub-folder ({_names(classes)}); expected at least 2 "
            "(one per class)."
        )
    files = []
    for name in classes:
        found = tuple(
            sorted(
                p
                for p in (folder / name).rglob("*")
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and _visible(p)
            )
        )
        if not found:
            raise DataError(
                f"images: {folder / name}: no images; expected {_KINDS} files "
                f"({', '.join(IMAGE_SUFFIXES)})."
            )
        files.append(found)
    return _Part(folder, classes, tuple(files))


def _sample(part: _Part, limit: int) -> _Part:
    """``limit`` of the part's files, each class in proportion (seed 0), as ``limit`` samples
    a table's rows (:func:`~tricklab.data._sampling.stratified_sample`)."""
    labels = np.repeat(np.arange(len(part.files)), [len(f) for f in part.files])
    keep = stratified_sample(labels, limit, source=f"images: {part.folder}")
    flat = [path for files in part.files for path in files]
    files = tuple(tuple(flat[i] for i in keep[labels[keep] == k]) for k in range(len(part.files)))
    return _Part(part.folder, part.classes, files)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _names(classes: tuple[str, ...]) -> str:
    return ", ".join(f"'{c}'" for c in classes)


def available_memory() -> int:
    """Bytes of memory available now (psutil)."""
    import psutil

    return int(psutil.virtual_memory().available)


def _check_memory(spec: ImageFolderSpec, folder: Path, count: int) -> None:
    height, width = spec.image_size
    need = count * height * width * spec.channels * 4
    available = available_memory()
    if need > available:
        raise DataError(
            f"images: {folder}: {count} images of {height}x{width}x{spec.channels} need "
            f"{_size(need)} as float32, more than the {_size(available)} of memory available; "
            "expected a smaller image_size, grayscale, or fewer images."
        )


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError  # pragma: no cover


@functools.lru_cache(maxsize=2)  # images are large: keep few
def _load(
    spec: ImageFolderSpec,
    resolved: str,
    parts: tuple[_Part, ...],
    total: int,
    signature: tuple[tuple[str, int, int], ...],
) -> Dataset:
    del signature  # cache key only: the files' paths, mtimes and sizes
    digest = hashlib.sha256(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode())
    arrays = [_read_part(spec, part, digest) for part in parts]
    (x, y), test = arrays[0], arrays[1] if len(arrays) > 1 else (None, None)
    classes = parts[0].classes
    height, width = spec.image_size
    size = f"{height}x{width} {spec.color_mode} (resized to image_size), pixels scaled to [0, 1]"
    if test[1] is not None:
        split = f"test images per class: {_per_class(classes, test[1])} (the official split, test/)"
    else:
        split = f"no train/ and test/ sub-folders: the study's split holds out test = {spec.test:g}"
    return make_dataset(
        name=Path(resolved).name,
        task="binary" if len(classes) == 2 else "multiclass",
        x=x,
        y=y,
        x_test=test[0],
        y_test=test[1],
        test_fraction=None if test[1] is not None else spec.test,
        standardize=False,
        feature_names=(),
        class_names=classes,
        source=resolved,
        citation=None,
        raw_scale=1 / 255.0,
        intake=Intake(
            rows=total,
            columns=None,
            task_reason=f"one sub-folder per class: {len(classes)} classes",
            sampled=len(y) if len(y) < total else None,
            note=f"images per class: {_per_class(classes, y)}; {split}; {size}",
        ),
        salt=digest.hexdigest(),
    )


def _per_class(classes: tuple[str, ...], y: np.ndarray) -> str:
    counts = np.bincount(y, minlength=len(classes))
    return ", ".join(f"{name} {n}" for name, n in zip(classes, counts, strict=True))


def _read_part(
    spec: ImageFolderSpec, part: _Part, digest: hashlib._Hash
) -> tuple[np.ndarray, np.ndarray]:
    height, width = spec.image_size
    x = np.empty((part.count, height, width, spec.channels), dtype=np.float32)
    y = np.empty(part.count, dtype=np.int64)
    row = 0
    for label, files in enumerate(part.files):
        for path in files:
            data = _read_bytes(path)
            digest.update(f"{path.relative_to(part.folder.parent)}:{len(data)};".encode())
            digest.update(data)
            x[row] = _decode(data, path, spec)
            y[row] = label
            row += 1
    return x, y


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"images: {path}: cannot read ({exc.strerror}).") from None


def _decode(data: bytes, path: Path, spec: ImageFolderSpec) -> np.ndarray:
    return decode_pixels(data, path, spec.image_size, spec.channels) / np.float32(255.0)


def image_files(path: Path) -> list[Path]:
    """``path`` if it is an image file, else the image files under the folder ``path`` (any
    depth, hidden ones skipped), sorted; none is an error."""
    try:
        if path.is_file():
            return [path]
        if not path.is_dir():
            raise DataError(f"{path}: no such file or folder.")
        found = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and _visible(p)
        )
    except OSError as exc:
        raise DataError(f"{exc.filename or path}: cannot read ({exc.strerror}).") from None
    if not found:
        raise DataError(
            f"{path}: no images; expected {_KINDS} files ({', '.join(IMAGE_SUFFIXES)})."
        )
    return found


def read_image(path: Path, image_size: tuple[int, int], channels: int) -> np.ndarray:
    """One image file as training read it, before scaling: float32 pixel values in [0, 255]
    of shape (height, width, channels), converted to grayscale (1 channel) or RGB (3) and
    resized (bilinear). An unreadable file is a :class:`DataError` naming it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror}).") from None
    return decode_pixels(data, path, image_size, channels, where="")


def decode_pixels(
    data: bytes, path: Path, image_size: tuple[int, int], channels: int, where: str = "images: "
) -> np.ndarray:
    """``data`` (the bytes of the file ``path``) decoded as :func:`read_image` says; errors
    start with ``where`` and the path."""
    from PIL import Image, UnidentifiedImageError

    height, width = image_size
    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = opened.convert("L" if channels == 1 else "RGB")
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.float32)
    except UnidentifiedImageError:
        raise DataError(f"{where}{path}: not a readable image; expected a {_KINDS} file.") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"{where}{path}: cannot read the image ({exc}); expected a {_KINDS} file."
        ) from None
    return pixels.reshape(height, width, channels)
