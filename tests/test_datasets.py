"""Datasets: specs, the built-in data, CSV files, Fashion-MNIST lookup/download, and splits."""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydantic
import pytest

from tricklab.base.errors import DataError, SpecError
from tricklab.data import _idx, describe_datasets, load_dataset, make_splits
from tricklab.spec import DATASETS, CsvSpec, FashionMnistSpec, ThoracicSpec, parse_dataset

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
needs_debian = pytest.mark.skipif(
    bool(_idx.missing_files(DEBIAN)),
    reason=f"{DEBIAN} lacks the Fashion-MNIST files (apt-get install dataset-fashion-mnist)",
)
EXPECTED = (
    'Expected one of: fashion_mnist, thoracic, or a table {csv = "file.csv", target = "column"}.'
)


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No $TRICKLAB_DATA_DIR, HOME and the XDG cache in tmp; only the system folder is real."""
    monkeypatch.delenv(_idx.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(_idx.URL_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    return tmp_path


@pytest.fixture
def no_system_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Pretend the Debian package is not installed."""
    absent = tmp_path / "no-system-dir"
    monkeypatch.setattr(_idx, "SYSTEM_DIRS", (absent,))
    return absent


def link_debian_files(directory: Path, skip: tuple[str, ...] = ()) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in _idx.FILES:
        if name not in skip:
            (directory / name).symlink_to(DEBIAN / name)
    return directory


def write_corrupt_labels(directory: Path) -> str:
    """A valid gzip of train-labels with one label changed; returns its SHA-256."""
    data = bytearray(gzip.decompress((DEBIAN / "train-labels-idx1-ubyte.gz").read_bytes()))
    data[-1] = (data[-1] + 1) % 10
    (directory / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(data)))
    return hashlib.sha256(bytes(data)).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving ``directory``; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- specs -----------------------------------------------------------------------------------


def test_parse_dataset_accepts_names_tables_and_specs() -> None:
    assert parse_dataset("thoracic") == ThoracicSpec(name="thoracic", keep_id=False, test=0.2)
    assert parse_dataset({"name": "thoracic", "keep_id": True}).keep_id is True
    assert parse_dataset({"name": "fashion_mnist", "limit": 500}) == FashionMnistSpec(
        name="fashion_mnist", limit=500
    )
    csv = parse_dataset({"csv": "a.csv", "target": "y"})
    assert csv == CsvSpec(csv="a.csv", target="y")
    assert (csv.header, csv.delimiter, csv.test, csv.task, csv.standardize, csv.limit) == (
        True, ",", 0.2, "auto", True, None,
    )  # fmt: skip
    assert (csv.max_categories, csv.text_columns) == (None, ())
    listed = parse_dataset({"csv": "a.csv", "target": "y", "text_columns": ["zip", 3]})
    assert listed.text_columns == ("zip", 3) and hash(listed)  # a tuple: the spec stays hashable
    spec = ThoracicSpec(name="thoracic", test=0.3)
    assert parse_dataset(spec) is spec
    assert DATASETS.names() == ["fashion_mnist", "thoracic"]
    assert DATASETS.get("fashion_mnist") == FashionMnistSpec(name="fashion_mnist")
    assert "thoracic" in DATASETS


def test_specs_are_frozen_and_hashable() -> None:
    spec = parse_dataset("thoracic")
    with pytest.raises(pydantic.ValidationError):
        spec.keep_id = True  # type: ignore[misc]
    assert hash(spec) == hash(parse_dataset({"name": "thoracic"}))


@pytest.mark.parametrize(
    ("value", "problems"),
    [
        ("x", [f"unknown dataset 'x'. {EXPECTED}"]),
        ("thorasic", [f"unknown dataset 'thorasic'. Did you mean 'thoracic'? {EXPECTED}"]),
        ({"name": "mnist"}, [f"unknown dataset 'mnist'. {EXPECTED}"]),
        (
            {"name": "thoracic", "kep_id": True},
            ["unknown key 'kep_id'. Did you mean 'keep_id'? Expected one of: keep_id, name, test."],
        ),
        (
            {"name": "thoracic", "keep_id": "yes", "test": 1.5},
            [
                "keep_id: must be a bool. Received: keep_id='yes'.",
                "test: must be a float in (0, 1). Received: test=1.5.",
            ],
        ),
        (
            {"name": "fashion_mnist", "limit": 0},
            ["limit: must be an int >= 1. Received: limit=0."],
        ),
        ({"csv": "a.csv"}, ["target: is required."]),
        (
            {"csv": "a.csv", "target": "y", "header": False},
            [
                "target: must be a 0-based column index (an int) when header = false. "
                "Received: target='y'."
            ],
        ),
        (
            {"csv": "", "target": -1, "delimiter": ";;", "task": "guess"},
            [
                "csv: must be a non-empty string (the CSV file's path). Received: csv=''.",
                "target: must be a column name (a string) or a 0-based column index "
                "(an int >= 0). Received: target=-1.",
                "delimiter: must be a single character. Received: delimiter=';;'.",
                "task: must be one of 'auto', 'classification', 'regression'. "
                "Received: task='guess'.",
            ],
        ),
        (
            {"csv": "a.csv", "target": "y", "max_categories": 0, "text_columns": "zip"},
            [
                "max_categories: must be an int >= 1. Received: max_categories=0.",
                "text_columns: must be a list of column names (strings) or 0-based column "
                "indices (ints >= 0). Received: text_columns='zip'.",
            ],
        ),
        (
            {"csv": "a.csv", "target": "y", "max_categories": 2.5, "text_columns": ["a", -1]},
            [
                "max_categories: must be an int >= 1. Received: max_categories=2.5.",
                "text_columns: must be a list of column names (strings) or 0-based column "
                "indices (ints >= 0). Received: text_columns=['a', -1].",
            ],
        ),
        (
            {"csv": "a.csv", "target": 1, "header": False, "text_columns": [0, "zip"]},
            [
                "text_columns: must hold 0-based column indices (ints) when header = false. "
                "Received: text_columns=[0, 'zip']."
            ],
        ),
        (5, [f"must be a dataset name or a table. {EXPECTED} Received: 5."]),
    ],
)
def test_parse_dataset_errors(value: object, problems: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        parse_dataset(value)
    assert info.value.problems == problems
    located = info.value.located(file="s.toml", where="dataset")
    assert located.lines()[0] == f"s.toml: dataset: {problems[0]}"


def test_reading_a_spec_imports_no_heavy_library() -> None:
    code = (
        "import sys, tricklab.spec as s; s.parse_dataset('thoracic'); "
        "print(sorted(m for m in ('keras', 'jax', 'tensorflow', 'sklearn', 'pandas') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- thoracic --------------------------------------------------------------------------------


def test_thoracic_built_in() -> None:
    data = load_dataset("thoracic")
    assert (data.name, data.task, data.n_classes) == ("thoracic", "binary", 2)
    assert data.x.shape == (470, 16) and data.x.dtype == np.float32
    assert data.y.dtype == np.int64 and int(data.y.sum()) == 70
    assert data.majority_fraction() == pytest.approx(0.851, abs=5e-4)
    assert data.feature_names[0] == "DGN" and data.feature_names[-1] == "AGE"
    assert data.class_names == ("survived", "died")
    assert data.x_test is None and data.test_fraction == 0.2 and data.standardize
    assert data.input_shape == (16,)
    assert "Zięba" in (data.citation or "")
    assert not data.x.flags.writeable  # shared through the cache
    assert load_dataset("thoracic") is data


def test_thoracic_keep_id_keeps_the_identifier_column() -> None:
    data = load_dataset({"name": "thoracic", "keep_id": True})
    assert data.x.shape == (470, 17) and data.feature_names[0] == "id"
    assert data.x[0, 0] == 293  # first row of the file
    assert sorted(data.x[:, 0].astype(int)) == list(range(1, 471))
    assert data.fingerprint != load_dataset("thoracic").fingerprint


# --- splits ----------------------------------------------------------------------------------


def _ids(x: np.ndarray, splits: object) -> set[int]:
    """Undo the standardisation of column 0 (the id): the raw ids of a split."""
    raw = x[:, 0] * splits.feature_std[0] + splits.feature_mean[0]  # type: ignore[attr-defined]
    return set(np.rint(raw).astype(int).tolist())


def test_splits_partition_the_rows_stratified() -> None:
    data = load_dataset({"name": "thoracic", "keep_id": True})
    splits = make_splits(data, validation=0.2, seed=1)
    assert splits.sizes() == {"train": 300, "validation": 76, "test": 94}
    train, val, test = (_ids(x, splits) for x in (splits.x_train, splits.x_val, splits.x_test))
    assert len(train) == 300 and len(val) == 76 and len(test) == 94
    assert train | val | test == set(range(1, 471))
    assert int(splits.y_test.sum()) == 14  # 20 % of the 70 positives
    assert int(splits.y_val.sum()) in (11, 12)
    assert not splits.validation_is_test


def test_splits_depend_on_the_seed_only() -> None:
    data = load_dataset("thoracic")
    a, b = make_splits(data, validation=0.2, seed=3), make_splits(data, validation=0.2, seed=3)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    c = make_splits(data, validation=0.2, seed=4)
    assert not np.array_equal(a.x_test, c.x_test)
    assert not np.array_equal(a.x_val, c.x_val)


def test_standardisation_uses_training_statistics_only() -> None:
    data = load_dataset("thoracic")
    splits = make_splits(data, validation=0.25, seed=0)
    assert np.allclose(splits.x_train.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(splits.x_train.std(axis=0), 1, atol=1e-4)
    # The stats are the raw training part's: undoing them gives back rows of the raw data.
    assert splits.feature_mean is not None and splits.feature_std is not None
    raw_train = splits.x_train * splits.feature_std + splits.feature_mean
    assert np.allclose(splits.feature_mean, raw_train.mean(axis=0), atol=1e-3)
    assert not np.allclose(splits.feature_mean, data.x.mean(axis=0), atol=1e-3)
    raw_rows = {tuple(np.round(row, 2)) for row in data.x}
    for part in (splits.x_val, splits.x_test):
        raw = part * splits.feature_std + splits.feature_mean
        assert all(tuple(np.round(row, 2)) in raw_rows for row in raw)
        assert not np.allclose(part.mean(axis=0), 0, atol=1e-5)
    assert splits.x_train.flags.writeable and splits.x_train.dtype == np.float32


def test_validation_test_reuses_the_test_split() -> None:
    data = load_dataset("thoracic")
    splits = make_splits(data, validation="test", seed=0)
    assert splits.validation_is_test
    assert splits.sizes() == {"train": 376, "validation": 94, "test": 94}
    assert np.array_equal(splits.x_val, splits.x_test)
    assert np.array_equal(splits.y_val, splits.y_test)


def test_make_splits_rejects_a_bad_validation_argument() -> None:
    with pytest.raises(ValueError, match="validation"):
        make_splits(load_dataset("thoracic"), validation=1.0, seed=0)


# --- fashion-mnist ---------------------------------------------------------------------------


@needs_debian
def test_fashion_mnist_from_the_debian_package(isolated: Path) -> None:
    data = load_dataset("fashion_mnist")
    assert data.source == str(DEBIAN)
    assert data.x.shape == (60000, 28, 28) and data.x.dtype == np.float32
    assert data.x_test is not None and data.y_test is not None
    assert data.x_test.shape == (10000, 28, 28)
    assert data.x.min() == 0.0 and data.x.max() == 1.0
    assert np.bincount(data.y).tolist() == [6000] * 10
    assert np.bincount(data.y_test).tolist() == [1000] * 10
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"
    assert (data.task, data.n_classes, data.input_shape) == ("multiclass", 10, (28, 28))
    assert not data.standardize and data.test_fraction is None


@needs_debian
def test_fashion_mnist_limit_is_a_stratified_sample(isolated: Path) -> None:
    data = load_dataset({"name": "fashion_mnist", "limit": 1000})
    assert np.bincount(data.y).tolist() == [100] * 10
    assert data.x_test is not None and data.x_test.shape == (10000, 28, 28)
    splits = make_splits(data, validation=0.1, seed=0)
    assert splits.sizes() == {"train": 900, "validation": 100, "test": 10000}
    assert np.bincount(splits.y_val).tolist() == [10] * 10
    assert splits.feature_mean is None  # images are only scaled to [0, 1]
    assert np.array_equal(splits.x_test, data.x_test)


@needs_debian
def test_lookup_order(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = isolated / "home"
    keras = link_debian_files(home / ".keras" / "datasets" / "fashion-mnist")
    assert _idx.find_local() == keras  # Keras's cache before the system folder
    cache = link_debian_files(isolated / "xdg-cache" / "tricklab" / "fashion-mnist")
    assert _idx.find_local() == cache  # tricklab's cache before Keras's
    nested = link_debian_files(isolated / "nested" / "fashion-mnist")
    monkeypatch.setenv(_idx.DATA_DIR_ENV, str(isolated / "nested"))
    assert _idx.find_local() == nested  # the fashion-mnist/ subfolder of $TRICKLAB_DATA_DIR
    direct = link_debian_files(isolated / "mine")
    monkeypatch.setenv(_idx.DATA_DIR_ENV, str(direct))
    assert load_dataset("fashion_mnist").source == str(direct)  # $TRICKLAB_DATA_DIR wins


@needs_debian
def test_a_folder_counts_only_with_all_four_files(isolated: Path, monkeypatch: pytest.MonkeyPatch):
    partial = link_debian_files(isolated / "partial", skip=("t10k-labels-idx1-ubyte.gz",))
    monkeypatch.setenv(_idx.DATA_DIR_ENV, str(partial))
    assert _idx.find_local() == DEBIAN


@needs_debian
def test_download_into_the_user_cache(
    isolated: Path, no_system_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = link_debian_files(isolated / "served")
    calls: list[tuple[str, int, int | None]] = []
    with serve(served) as url:
        monkeypatch.setenv(_idx.URL_ENV, url)
        data = load_dataset("fashion_mnist", progress=lambda *a: calls.append(a))
    cache = isolated / "xdg-cache" / "tricklab" / "fashion-mnist"
    assert data.source == str(cache)
    assert sorted(p.name for p in cache.iterdir()) == sorted(_idx.FILES)  # no temporary files
    assert data.x.shape == (60000, 28, 28)
    done = {name: (n, total) for name, n, total in calls}
    assert done["t10k-labels-idx1-ubyte.gz"] == (5125, 5125)
    # Later runs find the cached copy; the server is gone.
    monkeypatch.setenv(_idx.URL_ENV, closed_port_url())
    assert _idx.find_local() == cache


@needs_debian
def test_download_checksum_mismatch(
    isolated: Path, no_system_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = link_debian_files(isolated / "served", skip=("train-labels-idx1-ubyte.gz",))
    actual = write_corrupt_labels(served)
    with serve(served) as url:
        monkeypatch.setenv(_idx.URL_ENV, url)
        with pytest.raises(DataError) as info:
            load_dataset("fashion_mnist")
    message = str(info.value)
    assert message.startswith(f"{url}train-labels-idx1-ubyte.gz: checksum mismatch for ")
    assert _idx.CHECKSUMS["train-labels-idx1-ubyte"] in message and actual in message
    cache = isolated / "xdg-cache" / "tricklab" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == ["train-images-idx3-ubyte.gz"]


@needs_debian
def test_local_file_checksum_mismatch(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = link_debian_files(isolated / "mine", skip=("train-labels-idx1-ubyte.gz",))
    actual = write_corrupt_labels(mine)
    monkeypatch.setenv(_idx.DATA_DIR_ENV, str(mine))
    with pytest.raises(DataError) as info:
        load_dataset("fashion_mnist")
    expected = _idx.CHECKSUMS["train-labels-idx1-ubyte"]
    assert str(info.value).startswith(
        f"{mine / 'train-labels-idx1-ubyte.gz'}: checksum mismatch for train-labels-idx1-ubyte: "
        f"SHA-256 of the decompressed data is {actual}, expected {expected}."
    )


def test_offline_error_lists_every_place(
    isolated: Path, no_system_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = closed_port_url()
    monkeypatch.setenv(_idx.URL_ENV, url)
    partial = isolated / "partial"
    partial.mkdir()
    (partial / "train-images-idx3-ubyte.gz").write_bytes(b"")
    monkeypatch.setenv(_idx.DATA_DIR_ENV, str(partial))
    with pytest.raises(DataError) as info:
        load_dataset("fashion_mnist")
    message = str(info.value)
    assert message.startswith("Fashion-MNIST not found locally and the download failed.")
    cache = isolated / "xdg-cache" / "tricklab" / "fashion-mnist"
    keras = isolated / "home" / ".keras" / "datasets" / "fashion-mnist"
    for place in (partial, partial / "fashion-mnist", cache, keras, no_system_dir):
        assert f"  - {place} (" in message
    assert "missing train-labels-idx1-ubyte.gz, t10k-images" in message  # the partial folder
    assert f"  - {url}train-images-idx3-ubyte.gz: " in message
    assert "set TRICKLAB_DATA_DIR" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert not cache.exists() or not any(cache.iterdir())


def test_describe_datasets_never_downloads(
    isolated: Path, no_system_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_idx.URL_ENV, closed_port_url())
    rows = {row["name"]: row for row in describe_datasets()}
    cache = isolated / "xdg-cache" / "tricklab" / "fashion-mnist"
    assert rows["fashion_mnist"]["source"] == (
        f"not found locally; downloads to {cache} on first use"
    )
    assert (rows["fashion_mnist"]["n_train"], rows["fashion_mnist"]["n_test"]) == (60000, 10000)
    thoracic = rows["thoracic"]
    assert (thoracic["task"], thoracic["input_shape"], thoracic["n_classes"]) == (
        "binary", (16,), 2,
    )  # fmt: skip
    assert (thoracic["n_train"], thoracic["n_test"]) == (376, 94)
    assert not cache.exists()


def test_idx_header_gives_the_shape() -> None:
    data = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, *range(6)])
    array = _idx.parse_idx(data, source="t")
    assert array.shape == (2, 3) and array.dtype == np.uint8 and array[1, 2] == 5
    wide = bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 1, 0, 0, 2])  # big-endian int16
    assert _idx.parse_idx(wide, source="t").tolist() == [256, 2]
    with pytest.raises(DataError, match="t: not an IDX file"):
        _idx.parse_idx(b"\x1f\x8b\x08\x00", source="t")
    with pytest.raises(DataError, match=r"announces shape \(2, 3\)"):
        _idx.parse_idx(data[:-1], source="t")


# --- csv -------------------------------------------------------------------------------------


def test_csv_one_hot_encodes_text_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path / "people.csv",
        "age,colour,smoker,outcome\n30,red,yes,ok\n41,green,no,ill\n52,blue,no,ok\n"
        "28,red,yes,ill\n",
    )
    data = load_dataset({"csv": "people.csv", "target": "outcome"}, base_dir=tmp_path)
    assert data.name == "people.csv" and data.source == str(path.resolve())
    assert data.feature_names == (
        "age", "colour=blue", "colour=green", "colour=red", "smoker=no", "smoker=yes",
    )  # fmt: skip
    assert data.x.dtype == np.float32
    assert data.x[0].tolist() == [30, 0, 0, 1, 0, 1]
    assert (data.task, data.class_names, data.y.tolist()) == ("binary", ("ill", "ok"), [1, 0, 1, 0])
    assert data.standardize and data.test_fraction == 0.2 and data.x_test is None


def test_csv_target_kinds(tmp_path: Path) -> None:
    write(tmp_path / "m.csv", "a,b,y\n" + "".join(f"{i},{i % 5},{i % 3}\n" for i in range(30)))
    multi = load_dataset({"csv": "m.csv", "target": "y"}, base_dir=tmp_path)
    assert (multi.task, multi.class_names) == ("multiclass", ("0", "1", "2"))
    assert multi.majority_fraction() == pytest.approx(10 / 30)
    write(tmp_path / "r.csv", "a,y\n" + "".join(f"{i},{i * 0.5 + 0.1}\n" for i in range(30)))
    reg = load_dataset({"csv": "r.csv", "target": "y"}, base_dir=tmp_path)
    assert (reg.task, reg.class_names, reg.n_classes) == ("regression", (), 0)
    assert reg.y.dtype == np.float32 and reg.majority_fraction() is None
    splits = make_splits(reg, validation=0.2, seed=0)
    assert splits.sizes() == {"train": 19, "validation": 5, "test": 6}
    forced = load_dataset({"csv": "m.csv", "target": "y", "task": "regression"}, base_dir=tmp_path)
    assert forced.task == "regression"


def test_csv_without_header_uses_column_indices(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "n.csv", "1;2.5;a\n3;4.5;b\n5;6.5;a\n7;8.5;b\n")
    monkeypatch.chdir(tmp_path)  # no base_dir: relative to the working directory
    data = load_dataset({"csv": "n.csv", "target": 2, "header": False, "delimiter": ";"})
    assert data.feature_names == ("0", "1")
    assert data.x.tolist() == [[1, 2.5], [3, 4.5], [5, 6.5], [7, 8.5]]
    assert data.class_names == ("a", "b")


def test_csv_limit_is_a_stratified_sample(tmp_path: Path) -> None:
    rows = "".join(f"{i},{int(i % 4 == 0)}\n" for i in range(400))
    write(tmp_path / "big.csv", "x,y\n" + rows)
    data = load_dataset({"csv": "big.csv", "target": "y", "limit": 40}, base_dir=tmp_path)
    assert len(data.y) == 40 and int(data.y.sum()) == 10
    again = load_dataset({"csv": "big.csv", "target": "y", "limit": 40}, base_dir=tmp_path)
    assert again.fingerprint == data.fingerprint


def test_csv_cache_notices_a_changed_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "a,y\n1,0\n2,1\n")
    first = load_dataset({"csv": "c.csv", "target": "y"}, base_dir=tmp_path)
    assert load_dataset({"csv": "c.csv", "target": "y"}, base_dir=tmp_path) is first
    write(path, "a,y\n1,0\n2,1\n3,1\n")
    assert len(load_dataset({"csv": "c.csv", "target": "y"}, base_dir=tmp_path).y) == 3


@pytest.mark.parametrize(
    ("text", "extra", "message"),
    [
        (None, {}, "{f}: no such file."),
        ("", {}, "{f}: the file is empty; expected a header row and at least 2 data rows."),
        (
            "a,y\n",
            {},
            "{f}: the file has a header but no rows; expected at least 2 data rows after the "
            "header.",
        ),
        ("a,y\n1,0\n", {}, "{f}: only 1 data row; at least 2 are needed."),
        ("a,b\n1,0\n2,1\n", {}, "{f}: target column 'y' not found. Columns: a, b."),
        (
            "a,b,target\n1,0,1\n2,1,0\n",
            {"target": "targte"},
            "{f}: target column 'targte' not found. Did you mean 'target'? Columns: a, b, target.",
        ),
        (
            "1,0\n2,1\n",
            {"target": 2, "header": False},
            "{f}: target column 2 not found; the file has 2 columns (0-based indices 0-1). "
            "Columns: 0, 1.",
        ),
        (
            "name,age,y\nann,30,0\nbob,41,1\ncid,,1\ndan,50,0\n",
            {},
            "{f}: line 4, column 'age': missing value. Fill or drop the row, or set impute = "
            '"median" (or "mean", "most_frequent") in the dataset table.',
        ),
        (
            "name,age,y\nann,30,0\n\nbob,,1\ncid,,1\ndan,50,\n",
            {},
            "{f}: line 4, column 'age': missing value (and 2 more missing values, on lines 5, 6). "
            'Fill or drop the rows, or set impute = "median" (or "mean", "most_frequent") in the '
            "dataset table.",
        ),
        (
            "1,2,0\n3,,1\n",
            {"target": 2, "header": False},
            "{f}: line 2, column 1: missing value. Fill or drop the row, or set impute = "
            '"median" (or "mean", "most_frequent") in the dataset table.',
        ),
        (
            "a,y\n1,x\n2,x\n3,x\n",
            {},
            "{f}: target column 'y' has a single class ('x'); classification needs at least 2.",
        ),
        (
            "a,y\n1,0.5\n2,low\n",
            {"task": "regression"},
            "{f}: task = 'regression' but target column 'y' is not numeric (line 3: 'low').",
        ),
        ("y\n1\n0\n", {}, "{f}: no feature columns besides the target 'y'."),
        (
            "a,y\n1,0\n2,1\n3,2\n",
            {"limit": 2},
            "{f}: limit = 2 is less than the number of classes (3); a sample keeps every class.",
        ),
    ],
)
def test_csv_errors(tmp_path: Path, text: str | None, extra: dict, message: str) -> None:
    path = tmp_path / "d.csv"
    if text is not None:
        write(path, text)
    with pytest.raises(DataError) as info:
        load_dataset({"csv": "d.csv", "target": "y", **extra}, base_dir=tmp_path)
    assert str(info.value) == message.format(f=path)


def test_too_few_rows_for_a_stratified_split(tmp_path: Path) -> None:
    write(tmp_path / "s.csv", "a,y\n1,no\n2,no\n3,no\n4,yes\n")
    data = load_dataset({"csv": "s.csv", "target": "y"}, base_dir=tmp_path)
    with pytest.raises(DataError) as info:
        make_splits(data, validation=0.2, seed=0)
    assert str(info.value) == (
        "s.csv: cannot hold out a stratified test split of 0.2 from 4 rows: class 'yes' has only "
        "1 row. Use more data (or a larger limit) or another fraction."
    )
    write(tmp_path / "t.csv", "a,y\n" + "".join(f"{i},{i % 3}\n" for i in range(9)))
    data = load_dataset({"csv": "t.csv", "target": "y"}, base_dir=tmp_path)
    with pytest.raises(DataError, match="the test split would have 2 rows, fewer than the 3"):
        make_splits(data, validation=0.2, seed=0)
