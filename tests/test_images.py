"""Image folders: ``dataset = {images = "path/", image_size = [h, w], color_mode = ...}``.

Every folder is built here from a few generated 8x8 PNGs: class ``zebra`` is bright and class
``ant`` is dark (created in that order, so sorting the sub-folder names is visible). One study
trains (1 epoch); everything else only loads or lints.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tricklab.base.errors import SpecError
from tricklab.cli import main
from tricklab.data import _images, load_dataset, resolve
from tricklab.spec import ImageFolderSpec, load_study, parse_dataset

LEVELS = {"zebra": 220, "ant": 30}  # bright vs dark: a signal one dense layer learns at once


def png(path: Path, level: int, seed: int, mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(seed).integers(-20, 20, (8, 8))
    pixels = np.clip(level + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels) if mode == "L" else Image.new("RGB", (8, 8), (255, 0, 0))
    image.save(path)


def folder(root: Path, per_class: int = 6) -> Path:
    for name, level in LEVELS.items():
        for i in range(per_class):
            png(root / name / f"{i}.png", level, seed=i + level)
    return root


def study(tmp_path: Path, images: str = "imgs", **extra: object) -> Path:
    options = "".join(f", {k} = {v}" for k, v in extra.items())
    path = tmp_path / "s.toml"
    path.write_text(
        f'name = "imgs"\nseeds = [0]\nvalidation = 0.25\n'
        f'dataset = {{images = "{images}", image_size = [8, 8], color_mode = "grayscale"'
        f"{options}}}\n"
        "[model]\n"
        'layers = [{type = "flatten"}, {type = "dense", units = 1, activation = "sigmoid"}]\n'
        "[train]\n"
        'loss = "binary_crossentropy"\nepochs = 1\nbatch_size = 4\n'
        'optimizer = {name = "adam", learning_rate = 0.05}\n',
        encoding="utf-8",
    )
    return path


def test_an_image_folder_trains_and_the_report_names_its_classes(tmp_path: Path) -> None:
    from tricklab.api import run_study

    folder(tmp_path / "imgs")
    path = study(tmp_path, test=0.25)
    outcome = run_study(load_study(path), out=tmp_path / "runs", engine="solo")
    assert outcome.trained == 1 and not outcome.failed
    (result,) = outcome.results
    assert result.confusion_matrix is not None
    assert np.sum(result.confusion_matrix) == 3  # 25% of 12 images, held out by the study
    report = outcome.report()
    assert report.facts.classes == ("ant", "zebra")  # the sub-folder names, sorted
    ax = outcome.figures()["confusion_matrix"].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ant", "zebra"]
    assert "2 classes: ant, zebra" in report.markdown.read_text(encoding="utf-8")


def test_train_and_test_sub_folders_are_the_official_split(tmp_path: Path) -> None:
    folder(tmp_path / "imgs" / "train", per_class=5)
    folder(tmp_path / "imgs" / "test", per_class=2)
    resolved = resolve(load_study(study(tmp_path)))
    data = resolved.dataset
    assert (len(data.y), data.x_test is not None and len(data.x_test)) == (10, 4)
    assert resolved.protocol.split_sizes == {"train": 7, "validation": 3, "test": 4}
    assert data.class_names == ("ant", "zebra") and data.test_fraction is None
    assert list(data.y_test) == [0, 0, 1, 1]
    # without the split, the study's test fraction holds out rows of the one folder
    folder(tmp_path / "flat", per_class=5)
    flat = resolve(load_study(study(tmp_path, images="flat"))).protocol.split_sizes
    assert flat["test"] == 2 and sum(flat.values()) == 10


def test_the_describe_command_says_what_was_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder(tmp_path / "imgs" / "train", per_class=3)
    folder(tmp_path / "imgs" / "test", per_class=1)
    assert main(["datasets", "--describe", str(study(tmp_path))]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "imgs: 6 training images",
        "features: 64 (input shape 8x8x1)",
        "note: images per class: ant 3, zebra 3; test images per class: ant 1, zebra 1 (the "
        "official split, test/); 8x8 grayscale (resized to image_size), pixels scaled to [0, 1]",
        "task: binary, 2 classes; why: one sub-folder per class: 2 classes",
    ]
    assert main(["lint", str(study(tmp_path))]) == 0  # the rules read the image input shape


@pytest.mark.parametrize(
    ("mode", "size", "shape", "first"),
    [
        ("grayscale", [8, 8], (8, 8, 1), [0.299]),  # Pillow's luma of pure red
        ("rgb", [8, 8], (8, 8, 3), [1.0, 0.0, 0.0]),
        ("rgb", [4, 6], (4, 6, 3), [1.0, 0.0, 0.0]),  # resized to image_size
    ],
)
def test_color_mode_and_image_size_give_the_shape(
    tmp_path: Path, mode: str, size: list[int], shape: tuple[int, ...], first: list[float]
) -> None:
    for name in ("a", "b"):
        png(tmp_path / "imgs" / name / "red.png", 0, 0, mode="RGB")
    spec = {"images": "imgs", "image_size": size, "color_mode": mode}
    data = load_dataset(spec, base_dir=tmp_path)
    assert data.input_shape == shape and data.x.dtype == np.float32
    assert data.x[0, 0, 0] == pytest.approx(first, abs=0.005)
    assert data.x.min() >= 0.0 and data.x.max() <= 1.0


def test_the_fingerprint_covers_the_image_bytes_and_the_options(tmp_path: Path) -> None:
    folder(tmp_path / "imgs", per_class=2)
    spec = {"images": "imgs", "image_size": [8, 8], "color_mode": "grayscale"}
    first = load_dataset(spec, base_dir=tmp_path).fingerprint
    assert load_dataset({**spec, "test": 0.5}, base_dir=tmp_path).fingerprint != first
    target = tmp_path / "imgs" / "ant" / "0.png"
    before = load_dataset(spec, base_dir=tmp_path).x.copy()
    info = PngInfo()
    info.add_text("comment", "same pixels, new bytes")
    with Image.open(target) as image:
        image.load()
    image.save(target, pnginfo=info)
    changed = load_dataset(spec, base_dir=tmp_path)
    assert np.array_equal(changed.x, before)  # the arrays alone would not tell
    assert changed.fingerprint != first


def _make(root: Path, layout: dict[str, bytes | None]) -> None:
    for name, content in layout.items():
        path = root / name
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)


def _png_bytes(tmp_path: Path) -> bytes:
    png(tmp_path / "one.png", 100, 0)
    return (tmp_path / "one.png").read_bytes()


GOOD = b"PNG"  # replaced by a real PNG in the test
ERRORS: list[tuple[str, dict[str, bytes | None], str]] = [
    ("missing-folder", {}, "images: {root}: no such folder; expected one sub-folder of images per "
     "class (folder/<class>/*.png), or folder/train/<class> and folder/test/<class>."),
    ("no-class-folders", {"imgs/x.png": GOOD}, "images: {root}: no class sub-folders; expected "
     "one sub-folder of images per class (folder/<class>/*.png), or folder/train/<class> and "
     "folder/test/<class>."),
    ("one-class", {"imgs/cat/1.png": GOOD}, "images: {root}: 1 class sub-folder ('cat'); "
     "expected at least 2 (one per class)."),
    ("empty-class", {"imgs/cat/1.png": GOOD, "imgs/dog/notes.txt": b"hi"}, "images: {root}/dog: "
     "no images; expected PNG, JPEG, BMP or GIF files (.bmp, .gif, .jpeg, .jpg, .png)."),
    ("unreadable-image", {"imgs/cat/1.png": GOOD, "imgs/dog/2.jpg": b"not an image"},
     "images: {root}/dog/2.jpg: not a readable image; expected a PNG, JPEG, BMP or GIF file."),
    ("test-classes-differ", {"imgs/train/cat/1.png": GOOD, "imgs/train/dog/1.png": GOOD,
     "imgs/test/cat/1.png": GOOD, "imgs/test/cow/1.png": GOOD}, "images: {root}/test: class "
     "sub-folders 'cat', 'cow'; expected the same as {root}/train: 'cat', 'dog'."),
    ("too-big", {"imgs/cat/1.png": GOOD, "imgs/dog/1.png": GOOD}, "images: {root}: 2 images of "
     "8x8x1 need 512 bytes as float32, more than the 100 bytes of memory available; expected a "
     "smaller image_size, grayscale, or fewer images."),
]  # fmt: skip


@pytest.mark.parametrize(
    ("layout", "expected"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS]
)
def test_a_bad_image_folder_is_one_located_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    layout: dict[str, bytes | None],
    expected: str,
) -> None:
    good = _png_bytes(tmp_path)
    _make(tmp_path, {k: good if v == GOOD else v for k, v in layout.items()})
    memory = 100 if "8x8x1 need" in expected else 2**40
    monkeypatch.setattr(_images, "available_memory", lambda: memory)
    path = study(tmp_path)
    assert main(["lint", str(path)]) == 2
    err = capsys.readouterr().err
    root = tmp_path / "imgs"
    assert err.splitlines() == [f"error: {path}: dataset: " + expected.replace("{root}", str(root))]


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ('{images = "imgs", image_size = [8]}', "image_size: must be [height, width], two ints "
         ">= 1. Received: image_size=[8]."),
        ('{images = "imgs", image_size = [8, 8], color_mode = "cmyk"}', "color_mode: must be "
         "one of 'grayscale', 'rgb'. Received: color_mode='cmyk'."),
    ],
)  # fmt: skip
def test_image_options_are_checked_without_data(dataset: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_dataset(tomllib.loads(f"d = {dataset}")["d"])
    assert str(caught.value) == message


# -- limit --------------------------------------------------------------------------------------
def test_limit_samples_training_images_per_class_before_decoding_and_keeps_test_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(8):
        png(tmp_path / "imgs" / "train" / "zebra" / f"{i}.png", 220, seed=i)
    for i in range(4):
        png(tmp_path / "imgs" / "train" / "ant" / f"{i}.png", 30, seed=i)
    folder(tmp_path / "imgs" / "test", per_class=2)
    decoded: list[Path] = []
    decode = _images._decode

    def counting(data: bytes, path: Path, spec: ImageFolderSpec) -> np.ndarray:
        decoded.append(path)
        return decode(data, path, spec)

    monkeypatch.setattr(_images, "_decode", counting)
    spec = {"images": "imgs", "image_size": [8, 8], "color_mode": "grayscale"}
    data = load_dataset({**spec, "limit": 6}, base_dir=tmp_path)
    assert list(np.bincount(data.y)) == [2, 4]  # ant 4 and zebra 8, in proportion
    assert data.x_test is not None and data.y_test is not None
    assert list(np.bincount(data.y_test)) == [2, 2]  # the official test split stays whole
    assert len(decoded) == 6 + 4  # the images left out are never decoded
    assert data.intake is not None and (data.intake.rows, data.intake.sampled) == (12, 6)
    whole = load_dataset(spec, base_dir=tmp_path)
    assert whole.fingerprint != data.fingerprint and len(whole.y) == 12
    kept = {bytes(row) for row in data.x.reshape(6, -1).view(np.uint8)}
    assert kept <= {bytes(row) for row in whole.x.reshape(12, -1).view(np.uint8)}
    everything = load_dataset({**spec, "limit": 12}, base_dir=tmp_path)  # no fewer: no sample
    assert everything.intake is not None and everything.intake.sampled is None
    assert main(["datasets", "--describe", str(study(tmp_path, limit=6))]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [
        "imgs: 12 training images",
        "limit: a stratified sample of 6 of the 12 training images",
    ]
    assert "images per class: ant 2, zebra 4; test images per class: ant 2, zebra 2" in out[3]
    path = study(tmp_path, limit=1)
    assert main(["lint", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {path}: dataset: images: {tmp_path / 'imgs' / 'train'}: limit = 1 is less than "
        "the number of classes (2); a sample keeps every class."
    ]


def test_limit_on_one_folder_samples_before_the_study_split(tmp_path: Path) -> None:
    folder(tmp_path / "flat", per_class=8)
    resolved = resolve(load_study(study(tmp_path, images="flat", limit=12, test=0.25)))
    assert list(np.bincount(resolved.dataset.y)) == [6, 6]
    assert resolved.protocol.split_sizes == {"train": 6, "validation": 3, "test": 3}


def test_image_limit_is_checked_without_data() -> None:
    with pytest.raises(SpecError) as caught:
        parse_dataset({"images": "imgs", "image_size": [8, 8], "limit": 0})
    assert str(caught.value) == "limit: must be an int >= 1. Received: limit=0."


# -- predict on images --------------------------------------------------------------------------
def test_predict_reads_image_files_as_training_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run's stored test predictions (made in memory while it trained) are what
    ``tricklab predict`` prints for the test images' files; a larger image is resized."""
    from tricklab.api import run_study
    from tricklab.store import RunStore
    from tricklab.tools.export import predict_images

    folder(tmp_path / "imgs" / "train", per_class=4)
    folder(tmp_path / "imgs" / "test", per_class=3)
    outcome = run_study(load_study(study(tmp_path)), out=tmp_path / "runs", engine="solo")
    assert outcome.trained == 1
    store = RunStore(tmp_path / "runs" / "imgs")
    run_dir = store.run_dir("baseline", 0)
    loaded = store.load_predictions("baseline", 0, "last")
    assert loaded is not None
    y_true, stored = loaded
    assert list(y_true) == [0, 0, 0, 1, 1, 1]  # the test files, class by class, sorted
    assert main(["predict", str(run_dir), str(tmp_path / "imgs" / "test")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "row,file,prediction,p(ant),p(zebra)"
    rows = [line.split(",") for line in lines[1:]]
    assert [r[1] for r in rows] == [f"{c}/{i}.png" for c in ("ant", "zebra") for i in range(3)]
    assert [int(r[0]) for r in rows] == list(range(1, 7))
    np.testing.assert_allclose([float(r[4]) for r in rows], stored, rtol=1e-4, atol=1e-5)
    assert [r[2] for r in rows] == ["zebra" if p > 0.5 else "ant" for p in stored]

    big = tmp_path / "big.png"  # 16x16 RGB: converted to grayscale and resized to 8x8
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(big)
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(tmp_path / "small.png")
    one = predict_images(run_dir, big)
    assert list(one["file"]) == ["big.png"]
    small = predict_images(run_dir, tmp_path / "small.png")
    np.testing.assert_allclose(one["p(zebra)"], small["p(zebra)"], rtol=1e-5)

    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert main(["predict", str(run_dir), str(tmp_path / "broken.png")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"error: {tmp_path / 'broken.png'}: not a readable image; expected a PNG, JPEG, BMP or "
        "GIF file."
    ]
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(run_dir), str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'empty'}: no images; expected")
