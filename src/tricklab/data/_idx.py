"""Fashion-MNIST's four IDX files: find them, download them if needed, check and parse them.

Lookup order: ``$TRICKLAB_DATA_DIR`` (the files directly in it, or in a ``fashion-mnist/``
subfolder), the user cache (``$XDG_CACHE_HOME`` or ``~/.cache``)``/tricklab/fashion-mnist``,
Keras's cache ``~/.keras/datasets/fashion-mnist``, then :data:`SYSTEM_DIRS` (Debian's package
``dataset-fashion-mnist``). A folder counts only if it holds all four files. Otherwise the files
are downloaded into the user cache (temporary file, then rename). Every file is checked against
the SHA-256 of its decompressed content, so recompressed copies (Debian's) are accepted.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import logging
import math
import os
import struct
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPResponse
from pathlib import Path
from typing import BinaryIO

import numpy as np

from tricklab.base.errors import DataError

log = logging.getLogger("tricklab.data")

#: Decompressed file name -> SHA-256 of its content.
CHECKSUMS: dict[str, str] = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FILES: tuple[str, ...] = tuple(f"{name}.gz" for name in CHECKSUMS)

BASE_URLS: tuple[str, ...] = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
)
URL_ENV = "TRICKLAB_FASHION_MNIST_URL"
DATA_DIR_ENV = "TRICKLAB_DATA_DIR"
#: Folders installed by system packages, searched last (Debian: ``dataset-fashion-mnist``).
SYSTEM_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets/fashion-mnist"),)
TIMEOUT_S = 30.0

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: ``progress(file_name, bytes_done, bytes_total_or_None)``, called while downloading.
Progress = Callable[[str, int, int | None], None]

_IDX_TYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


@dataclass(frozen=True)
class Place:
    """A folder searched for the files, and why it is searched."""

    path: Path
    why: str


@dataclass(frozen=True, eq=False)
class RawFashion:
    """The four arrays as stored: uint8 images (n, 28, 28) and uint8 labels (n,).

    Compared and hashed by identity (it keys a cache; the loader caches one per folder).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    directory: Path


# --- where to look ---------------------------------------------------------------------------


def cache_dir() -> Path:
    """The user cache folder that downloads go to."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tricklab" / "fashion-mnist"


def places() -> list[Place]:
    """The folders searched, in order."""
    found: list[Place] = []
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir:
        found.append(Place(Path(data_dir), f"${DATA_DIR_ENV}"))
        found.append(Place(Path(data_dir) / "fashion-mnist", f"${DATA_DIR_ENV}/fashion-mnist"))
    found.append(Place(cache_dir(), "tricklab's download cache"))
    found.append(Place(Path.home() / ".keras" / "datasets" / "fashion-mnist", "Keras's cache"))
    found.extend(Place(p, "system package dataset-fashion-mnist") for p in SYSTEM_DIRS)
    return found


def missing_files(directory: Path) -> list[str]:
    """The four file names that are not (regular files) in ``directory``."""
    return [name for name in FILES if not (directory / name).is_file()]


def find_local() -> Path | None:
    """The first folder holding all four files, or None."""
    for place in places():
        if not missing_files(place.path):
            return place.path
    return None


def header_counts(directory: Path) -> dict[str, int]:
    """Number of training and test images, read from the IDX headers only (cheap)."""
    counts: dict[str, int] = {}
    for split, name in (
        ("train", "train-images-idx3-ubyte.gz"),
        ("test", "t10k-images-idx3-ubyte.gz"),
    ):
        with gzip.open(directory / name, "rb") as fh:
            head = fh.read(8)
        counts[split] = struct.unpack(">I", head[4:8])[0]
    return counts


# --- reading -------------------------------------------------------------------------------


def parse_idx(data: bytes, *, source: str) -> np.ndarray:
    """An IDX file's array, with the shape and type given by its header."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DataError(f"{source}: not an IDX file (bad magic number {data[:4].hex() or 'none'}).")
    ndim = data[3]
    start = 4 + 4 * ndim
    if len(data) < start:
        raise DataError(f"{source}: IDX header truncated.")
    dims = struct.unpack(f">{ndim}I", data[4:start])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    count = math.prod(dims)
    if len(data) - start != count * dtype.itemsize:
        raise DataError(
            f"{source}: IDX header announces shape {dims} ({count * dtype.itemsize} bytes) "
            f"but {len(data) - start} bytes follow."
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=start).reshape(dims)
    return array.astype(dtype.newbyteorder("="))


def read_verified(path: Path) -> bytes:
    """The decompressed content of ``path``, checked against its known SHA-256."""
    name = path.name.removesuffix(".gz")
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot decompress ({exc}); expected a gzip IDX file.") from None
    check_digest(data, name=name, source=str(path))
    return data


def check_digest(data: bytes, *, name: str, source: str) -> None:
    """Raise a :class:`DataError` unless ``data`` is the original Fashion-MNIST ``name``."""
    expected = CHECKSUMS[name]
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise DataError(
            f"{source}: checksum mismatch for {name}: SHA-256 of the decompressed data is "
            f"{actual}, expected {expected}. The file is damaged or not the original "
            "Fashion-MNIST; delete it (a fresh copy is downloaded) or replace it."
        )


@functools.lru_cache(maxsize=2)
def _load_dir(directory: Path, stamp: tuple[tuple[int, int], ...]) -> RawFashion:
    del stamp  # part of the cache key only: a changed file is read again
    arrays = [
        parse_idx(read_verified(directory / name), source=str(directory / name)) for name in FILES
    ]
    x_train, y_train, x_test, y_test = arrays
    for images, labels, split in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(
                f"{directory}: {split} images {images.shape} and labels {labels.shape} "
                "do not match."
            )
    for array in arrays:
        array.setflags(write=False)
    return RawFashion(x_train, y_train, x_test, y_test, directory)


def load(*, progress: Progress | None = None) -> RawFashion:
    """The four arrays, from the first complete local folder, else downloaded into the cache."""
    directory = find_local() or download(progress=progress)
    stamp = tuple((s.st_mtime_ns, s.st_size) for s in (os.stat(directory / n) for n in FILES))
    return _load_dir(directory, stamp)


# --- downloading -----------------------------------------------------------------------------


def base_urls() -> tuple[str, ...]:
    """Where to download from: ``$TRICKLAB_FASHION_MNIST_URL`` alone if set, else the mirrors."""
    override = os.environ.get(URL_ENV)
    urls = (override,) if override else BASE_URLS
    return tuple(u if u.endswith("/") else u + "/" for u in urls)


class _Mismatch(Exception):
    """A downloaded file decompressed fine but is not the expected content."""


def download(*, progress: Progress | None = None) -> Path:
    """Download the missing files into :func:`cache_dir`; one :class:`DataError` if impossible."""
    target = cache_dir()
    tried: list[tuple[str, str]] = []
    for name in missing_files(target):
        ok = False
        for base in base_urls():
            url = base + name
            try:
                _fetch(url, target / name, progress)
            except _Mismatch as exc:
                raise DataError(f"{url}: {exc}") from None
            except (OSError, ValueError, DataError) as exc:
                tried.append((url, _reason(exc)))
                continue
            ok = True
            break
        if not ok:
            raise DataError(_not_found_message(tried))
    return target


def _fetch(url: str, dest: Path, progress: Progress | None) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s to %s", url, dest)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            _copy(resp, out, dest.name, progress)
        name = dest.name.removesuffix(".gz")
        try:
            data = gzip.decompress(tmp.read_bytes())
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise DataError(f"the server did not send a gzip file ({exc})") from None
        try:
            check_digest(data, name=name, source=url)
        except DataError as exc:
            raise _Mismatch(str(exc).removeprefix(f"{url}: ")) from None
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _copy(resp: HTTPResponse, out: BinaryIO, name: str, progress: Progress | None) -> None:
    length = resp.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    done = 0
    while chunk := resp.read(1 << 16):
        out.write(chunk)
        done += len(chunk)
        if progress is not None:
            progress(name, done, total)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    if isinstance(exc, TimeoutError):
        return f"timed out after {TIMEOUT_S:g} s"
    return str(exc)


def _not_found_message(tried: list[tuple[str, str]]) -> str:
    lines = ["Fashion-MNIST not found locally and the download failed."]
    lines.append("Looked for " + ", ".join(FILES) + " in:")
    if not os.environ.get(DATA_DIR_ENV):
        lines.append(f"  - ${DATA_DIR_ENV} (not set)")
    for place in places():
        lines.append(f"  - {place.path} ({place.why}): {_state(place.path)}")
    lines.append("Tried to download:")
    lines.extend(f"  - {url}: {reason}" for url, reason in tried)
    lines.append(
        f"To provide the files: put the four files in a folder and set {DATA_DIR_ENV} to it, "
        "or install them with `apt-get install dataset-fashion-mnist`, "
        "or retry with internet access."
    )
    return "\n".join(lines)


def _state(directory: Path) -> str:
    if not directory.is_dir():
        return "no such folder"
    missing = missing_files(directory)
    if len(missing) == len(FILES):
        return "none of the files"
    return "missing " + ", ".join(missing) if missing else "complete"
