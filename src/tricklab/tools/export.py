"""Trained models out of the store: a ``.keras`` file plain Keras loads, and predictions.

The exported model holds the weights of the checkpoint the study is evaluated at
(``train.evaluate``: "best" or "last", as its index stores it; :func:`checkpoint`) and starts
with the preprocessing the run was trained with (rescaling of pixels, standardisation with the
training split's mean and std), so it takes raw feature values, and ends with the inverse of a
regression target's ``target_transform`` (``* std + mean``, then ``exp`` of a log), so it
predicts on the target's own scale:

    >>> model = keras.saving.load_model("model.keras")      # no tricklab needed
    >>> model.predict(raw_rows)

:func:`predict_csv` predicts the rows of a CSV of raw features (token ids for a run on a CSV's
``sequence`` columns); :func:`predict_images` predicts image files for a run on images (an image
folder, or Fashion-MNIST), read as training read them; :func:`predict_path` picks one by
the run and the path. A run whose table was fitted on its own training rows (the column keys:
imputation, one-hot levels, dates) has no raw-row model to export; :func:`predict_csv` reads
raw rows in its training CSV's own format, its columns fitted again (:func:`raw_rows_model`).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from tricklab.base import backend as _backend
from tricklab.base.errors import DataError, StoreError, TricklabError
from tricklab.data import (
    image_files,
    load_data,
    make_splits,
    read_csv_text,
    read_image,
)
from tricklab.engines.build import build_model
from tricklab.engines.contract import RunResult
from tricklab.spec import EVALUATE_CHOICES, IMAGE_SUFFIXES, Recipe, StudySpec
from tricklab.store import RunStore, StudyIndex
from tricklab.tools.fit import raw_table_of
from tricklab.tools.model_dir import FittedModel, predict_rows, prediction_frame, same_scaling


def load_run(run_dir: str | Path) -> tuple[RunResult, Recipe, StudyIndex]:
    """A finished run's result, its recipe and its study index (``run_dir`` =
    ``runs/<study>/<variant>/seed-<n>``)."""
    store, variant, seed = RunStore.of_run(run_dir)
    result, spec = store.load_run(variant, seed)
    try:
        index = store.read_index()
    except StoreError:  # a run copied out of its study: predict reads what the index adds
        index = StudyIndex(study="")
    return result, Recipe.model_validate(spec["recipe"]), index


def checkpoint(index: StudyIndex, recipe: Recipe) -> str:
    """Which weights of a run export and predict use: the study's checkpoint (``evaluate`` in
    its index's ``resolved``); "best" in an index written before ``train.evaluate`` existed
    (what those versions used); for a run copied out of its study (no index), its recipe's."""
    if not index.resolved:
        return recipe.train.evaluation()
    stored = index.resolved.get("evaluate") or "best"
    if stored not in EVALUATE_CHOICES:
        raise StoreError(
            f"the study index's checkpoint must be one of {', '.join(EVALUATE_CHOICES)}. "
            f"Received: evaluate={stored!r}. Run `tricklab run STUDY.toml` to rewrite it."
        )
    return str(stored)


def fitted_per_run(index: StudyIndex) -> bool:
    """Whether the study's table is fitted on each run's training rows (its column keys:
    impute, dates, one-hot levels per run), as its index says."""
    return bool((index.resolved.get("dataset") or {}).get("columns"))


def takes_raw_rows(run_dir: str | Path) -> bool:
    """Whether ``tricklab predict RUN_DIR`` reads raw rows in the training CSV's own format
    (as from a MODEL_DIR): the run's table is fitted per run (:func:`raw_rows_model`)."""
    return fitted_per_run(load_run(run_dir)[2])


def check_raw_inputs(index: StudyIndex, run_dir: str | Path) -> None:
    """Refuse a bare model of a run whose features were fitted on its own training rows: what
    turns raw rows into its inputs (imputation, levels, dates, scaling) is not a Keras layer,
    so a ``.keras`` file of it cannot take raw rows; ``tricklab predict RUN_DIR`` rebuilds it
    (:func:`raw_rows_model`), and ``tricklab fit`` makes a MODEL_DIR that keeps it."""
    if fitted_per_run(index):
        raise TricklabError(
            f"{run_dir}: this run's features were fitted on its own training rows (the dataset's "
            "column keys: drop/impute/dates/...), so a bare .keras model of it cannot take raw "
            f"rows. Predict raw rows with `tricklab predict {run_dir} new.csv`, or train a model "
            "for use with `tricklab fit STUDY --variant NAME -o MODEL_DIR`."
        )


def trained_model(run_dir: str | Path) -> Any:
    """The run's weights at the study's checkpoint (:func:`checkpoint`) in a Keras model that
    takes raw inputs (see module docstring)."""
    keras = _backend.keras()
    result, recipe, index = load_run(run_dir)
    check_raw_inputs(index, run_dir)
    shape = tuple(result.input_shape)
    core = _core_model(run_dir, result, recipe, index)
    layers: list[Any] = [keras.Input(shape=shape)]
    prep = result.preprocessing
    if "scale" in prep:
        layers.append(keras.layers.Rescaling(prep["scale"], name="rescale_raw_inputs"))
    if "mean" in prep:
        std = np.asarray(prep["std"], dtype="float32")
        layers.append(
            keras.layers.Normalization(
                mean=np.asarray(prep["mean"], dtype="float32"),
                variance=std**2,
                name="standardize_with_training_statistics",
            )
        )
    layers.append(core)
    if "target" in prep:  # a transformed target: the outputs back on the target's own scale
        layers += _target_inverse(keras, prep["target"])
    return keras.Sequential(layers, name=f"{result.variant}_seed{result.seed}")


def _core_model(run_dir: str | Path, result: RunResult, recipe: Recipe, index: StudyIndex) -> Any:
    """The run's own model (what it trained: no preprocessing layers) with its weights at the
    study's checkpoint."""
    store, variant, seed = RunStore.of_run(run_dir)
    core = build_model(recipe, tuple(result.input_shape))
    weights = checkpoint(index, recipe)
    path = store.weights_path(variant, seed, weights)
    if weights == "last" and not path.is_file():
        raise StoreError(
            f'{run_dir}: the study is evaluated at the last weights (train.evaluate = "last"), '
            f"but this run has no {path.name}: it was trained before tricklab kept the last "
            "weights. Retrain it (delete the folder, then `tricklab run STUDY.toml`), or set "
            'train.evaluate = "best" and run `tricklab run STUDY.toml` (nothing retrains).'
        )
    core.load_weights(str(path))
    return core


def _target_inverse(keras: Any, record: dict[str, Any]) -> list[Any]:
    """The layers that undo ``target_transform`` (:mod:`tricklab.data._target_scaling`):
    ``y * std + mean``, then ``exp`` for a log target."""
    scale = float(record["std"])
    layers = [keras.layers.Rescaling(scale, offset=float(record["mean"]), name="target_scale")]
    if record["transform"] == "log":
        layers.append(keras.layers.Activation("exponential", name="target_from_log"))
    return layers


def export_model(run_dir: str | Path, path: str | Path | None = None) -> Path:
    """Write the run's model (:func:`trained_model`) as a ``.keras`` file (default:
    ``<run_dir>/model.keras``)."""
    target = Path(path) if path is not None else Path(run_dir) / "model.keras"
    if target.suffix != ".keras":
        raise StoreError(f"{target}: the model file name must end in .keras.")
    target.parent.mkdir(parents=True, exist_ok=True)
    trained_model(run_dir).save(target)
    return target


def predict_path(
    run_dir: str | Path,
    path: str | Path,
    *,
    header: bool | None = None,
    delimiter: str | None = None,
) -> pd.DataFrame:
    """:func:`predict_images` when ``path`` is an image file (.png, .jpg, ...), or a folder
    and the run takes images; else :func:`predict_csv`."""
    path = Path(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return predict_images(run_dir, path)
    if path.is_dir():
        result, _, index = load_run(run_dir)
        if _takes_images(index, tuple(result.input_shape)):
            return predict_images(run_dir, path)
    return predict_csv(run_dir, path, header=header, delimiter=delimiter)


def predict_csv(
    run_dir: str | Path,
    csv_path: str | Path,
    *,
    header: bool | None = None,
    delimiter: str | None = None,
) -> pd.DataFrame:
    """Predictions of the run's model (:func:`trained_model`) for every row of a CSV of raw
    features (a header row and ``,`` unless told): columns ``row`` (1-based), ``prediction``
    and, for classes, ``p(<class>)``. A run fitted on its own training rows reads raw rows in
    its training CSV's own format, its delimiter and header setting unless told, as a MODEL_DIR
    does (:func:`raw_rows_model`)."""
    result, _, index = load_run(run_dir)
    if fitted_per_run(index):
        model = raw_rows_model(run_dir)
        return predict_rows(model, csv_path, delimiter=delimiter, header=header)
    tokens = bool((index.spec.get("dataset") or {}).get("sequence"))
    features = _features(
        Path(csv_path),
        index,
        result.input_shape,
        header is not False,
        tokens=tokens,
        delimiter=delimiter or ",",
    )
    return _predictions(run_dir, index, features, {})


def raw_rows_model(run_dir: str | Path) -> FittedModel:
    """A run fitted on its own training rows, as a MODEL_DIR's model (:meth:`FittedModel.predict`
    takes raw rows): the run keeps no record of what it fitted, so its columns are fitted again,
    as the run fitted them, on its training rows of its training CSV (the split its
    ``spec.json`` records); the run's data fingerprint and input size say it is the same fit.
    The bare model has the run's weights at the study's checkpoint (the columns scale), and
    predictions are mapped back through the run's target transform."""
    result, recipe, index = load_run(run_dir)
    store, variant, seed = RunStore.of_run(run_dir)
    stored = store.load_run(variant, seed)[1]
    spec = _study_of(index, stored, variant, recipe)
    try:
        dataset = load_data(spec)
    except DataError as exc:
        raise DataError(
            f"{run_dir}: predicting raw rows fits this run's columns again on its training rows, "
            f"but its training CSV cannot be read: {exc}"
        ) from None
    changed = f"{run_dir}: the training CSV changed since the run: "
    retrain = (
        " Retrain the run (`tricklab run STUDY.toml`), or train a model for use on the data as "
        "it is now (`tricklab fit STUDY --variant NAME -o MODEL_DIR`)."
    )
    if dataset.fingerprint != stored.get("data_fingerprint"):
        raise DataError(
            changed + f"{_training_csv(spec)} is not the data the run was trained on (its "
            "fingerprint differs), so what the run fitted (imputation, levels, scaling) cannot "
            "be rebuilt." + retrain
        )
    table = raw_table_of(spec, dataset)
    train = make_splits(
        dataset,
        validation=stored["validation"],
        seed=int(stored["split_seed"]),
        fold=stored.get("fold"),
        folds=stored.get("folds"),
    ).rows["train"]
    fitted = table.plan.fit(table.x[train])
    shape = [int(n) for n in result.input_shape]
    if [len(fitted.feature_names)] != shape or not same_scaling(fitted, result.preprocessing):
        raise DataError(
            changed + "fitted again on the run's training rows, its columns do not make the "
            f"run's features ({len(fitted.feature_names)} features for the run's input shape "
            f"{tuple(shape)}, or scaled otherwise)." + retrain
        )
    record = {
        "study": index.study,
        "variant": variant,
        "seed": seed,
        "checkpoint": checkpoint(index, recipe),
        "task": dataset.task,
        "classes": list(dataset.class_names),
        "csv": table.csv,
        "dataset": stored["dataset"],
        "target": result.preprocessing.get("target"),
        "input_shape": shape,
    }
    return FittedModel(Path(run_dir), record, fitted, _core_model(run_dir, result, recipe, index))


def _study_of(index: StudyIndex, stored: dict[str, Any], variant: str, recipe: Recipe) -> StudySpec:
    """The study as its index stores it, with the run's own dataset entry and recipe (as
    dumped: its unset keys, None or empty, left out again so that the entry reads back)."""
    dataset = {k: v for k, v in stored["dataset"].items() if v is not None and v != []}
    source = (index.resolved.get("dataset") or {}).get("source")
    if source:  # the CSV as the run found it, whatever the current folder is now
        dataset["csv"] = source
    raw = {**index.spec, "dataset": dataset, "variants": {variant: recipe}}
    if raw.get("cv"):  # seeds and split settings follow from cv (StudySpec refuses them)
        raw = {k: v for k, v in raw.items() if k not in ("seeds", "resplit", "split_seed")}
    try:
        return StudySpec.model_validate(raw)
    except ValidationError as exc:  # an index written by another version of tricklab
        problem = " ".join(str(exc.errors()[0]["msg"]).split())
        raise StoreError(
            f"{index.study}: the study index (study.json) does not read back as a study "
            f"({problem}). Run `tricklab run STUDY.toml` to rewrite it (nothing retrains)."
        ) from None


def _training_csv(spec: StudySpec) -> str:
    given = Path(str(getattr(spec.dataset, "csv", spec.name))).expanduser()
    if spec.base_dir is not None and not given.is_absolute():
        given = spec.base_dir / given
    return str(given)


def predict_images(run_dir: str | Path, path: str | Path) -> pd.DataFrame:
    """Predictions of the run's model for an image file, or every image file under a folder
    (sorted by path), read as training read its images (converted to the run's channels and
    resized to its input size; the model rescales the pixels): columns ``row``, ``file`` (the
    path under the folder, or the file's name), then as :func:`predict_csv`."""
    result, _, index = load_run(run_dir)
    path = Path(path)
    shape = tuple(result.input_shape)
    if not _takes_images(index, shape):
        raise DataError(
            f"{path}: images, but this run's model takes rows of features "
            f"(input shape {shape}); give a CSV of raw feature values."
        )
    channels = shape[2] if len(shape) == 3 else 1
    files = image_files(path)
    pixels = np.stack([read_image(file, (shape[0], shape[1]), channels) for file in files])
    names = [file.name if file == path else file.relative_to(path).as_posix() for file in files]
    return _predictions(run_dir, index, pixels.reshape(-1, *shape), {"file": names})


def _takes_images(index: StudyIndex, shape: tuple[int, ...]) -> bool:
    """Whether the run was trained on images: no feature names, shape (h, w) (Fashion-MNIST)
    or (h, w, 1 or 3) (an image folder)."""
    return not index.feature_names and (len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3)))


def _predictions(
    run_dir: str | Path, index: StudyIndex, features: np.ndarray, extra: dict[str, list[str]]
) -> pd.DataFrame:
    outputs = np.asarray(trained_model(run_dir).predict(features, verbose=0))
    return prediction_frame(outputs, index.task or "", list(index.classes), extra)


def _features(
    path: Path,
    index: StudyIndex,
    input_shape: list[int],
    header: bool,
    *,
    tokens: bool = False,
    delimiter: str = ",",
) -> np.ndarray:
    text = read_csv_text(path)
    names = index.feature_names
    try:
        columns: list[str] = (
            [
                str(c)
                for c in pd.read_csv(io.StringIO(text), sep=delimiter, header=0, nrows=0).columns
            ]
            if header
            else []
        )
        levels = _one_hot_levels(names, columns) if names else {}
        table = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            header=0 if header else None,
            dtype=dict.fromkeys(levels, str),  # text columns as written, as in training
        )
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc}).") from None
    lines = _line_numbers(text, header, len(table))
    size = math.prod(input_shape)
    if names and header:
        _check_levels(path, table, levels, lines)
        table = _named_columns(path, table, names)
    elif table.shape[1] != size:
        raise DataError(
            f"{path}: expected {size} feature columns"
            + (f" ({', '.join(names)})" if names else "")
            + f", found {table.shape[1]}. Give a header row with the feature names to select "
            "columns by name." * bool(names)
        )
    numbers = _numbers(path, table, lines, header)
    if tokens:
        return _token_ids(path, table, numbers, lines, header)
    return numbers.reshape(-1, *input_shape)


def _token_ids(
    path: Path, table: pd.DataFrame, numbers: np.ndarray, lines: np.ndarray | None, header: bool
) -> np.ndarray:
    """A sequence run's features: integers >= 0, as int32; else the first bad cell."""
    bad = (numbers != np.round(numbers)) | (numbers < 0) | (numbers >= 2**31)
    if not bad.any():
        return numbers.astype(np.int32)
    row, position = (int(i) for i in np.argwhere(bad)[0])
    label = table.columns[position]
    where = _where(path, lines, row, f"'{label}'" if header else f"{position} (0-based)")
    raise DataError(
        f"{where}: not a token id; the model reads integers >= 0 (the ids of its sequence "
        f"columns). Received: {_plain(table[label].iloc[row])!r}."
    )


def _line_numbers(text: str, header: bool, rows: int) -> np.ndarray | None:
    """The line of the file (1-based, the header is a line) each row was read from; None when
    a row spans lines (a quoted cell with a line break) and the lines cannot be told."""
    filled = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    data = filled[1:] if header else filled  # pandas skips blank lines
    return np.asarray(data) if len(data) == rows else None


def _where(path: Path, lines: np.ndarray | None, row: int, column: str) -> str:
    at = f"line {lines[row]}" if lines is not None else f"data row {row + 1}"
    return f"{path}: {at}, column {column}"


def _numbers(path: Path, table: pd.DataFrame, lines: np.ndarray | None, header: bool) -> np.ndarray:
    """The features as float32; the first missing or non-numeric cell (in file order) is an
    error naming its line and column."""
    numbers: dict[Any, pd.Series] = {}
    first: tuple[int, int, Any] | None = None  # (row, position, label) of the first bad cell
    for position, (label, series) in enumerate(table.items()):
        if pd.api.types.is_bool_dtype(series):
            number = series.astype("float32")
        else:
            number = pd.to_numeric(series, errors="coerce")
        bad = number.isna().to_numpy()
        if bad.any() and (first is None or int(np.argmax(bad)) < first[0]):
            first = (int(np.argmax(bad)), position, label)
        numbers[label] = number
    if first is not None:
        row, position, label = first
        where = _where(path, lines, row, f"'{label}'" if header else f"{position} (0-based)")
        value = table[label].iloc[row]
        if pd.isna(value):
            raise DataError(
                f"{where}: missing value. tricklab does not impute; fill the cell or drop the row."
            )
        raise DataError(f"{where}: not a number; features must be numbers. Received: {value!r}.")
    return pd.DataFrame(numbers).to_numpy(dtype="float32")


def _one_hot_levels(names: list[str], columns: Any) -> dict[str, list[str]]:
    """Text column -> the values it had in training, from the ``col=value`` feature names
    (a name that is itself a column of the file is a plain numeric feature)."""
    levels: dict[str, list[str]] = {}
    for name in names:
        column, equals, value = name.partition("=")
        if equals and name not in columns and column in columns:
            levels.setdefault(column, []).append(value)
    return levels


def _check_levels(
    path: Path, table: pd.DataFrame, levels: dict[str, list[str]], lines: np.ndarray | None
) -> None:
    """Every value of a one-hot column was seen in training (else its features are all zero)."""
    for column, known in levels.items():
        values = table[column]
        unseen = values.isna().to_numpy() | ~values.isin(known).to_numpy()
        if not unseen.any():
            continue
        row = int(np.argmax(unseen))
        shown = ", ".join(repr(v) for v in known[:10]) + (
            f", ... ({len(known)} in all)" if len(known) > 10 else ""
        )
        where = _where(path, lines, row, f"'{column}'")
        if values.isna().iloc[row]:
            raise DataError(
                f"{where}: missing value; the model knows {shown}. tricklab does not impute; "
                "fill the cell."
            )
        raise DataError(
            f"{where}: {values.iloc[row]!r} was not seen in training; the model knows {shown}. "
            "Use one of these, or retrain on data that has this value."
        )


def _named_columns(path: Path, table: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The model's features by name, as written (:func:`_numbers` checks them); ``col=value``
    features are rebuilt from column ``col``."""
    out = {}
    missing = []
    for name in names:
        column, _, value = name.partition("=")
        if name in table.columns:
            out[name] = table[name]
        elif value and column in table.columns:
            out[name] = (table[column].astype(str) == value).astype("float32")
        else:
            missing.append(name)
    if missing:
        raise DataError(
            f"{path}: missing feature column(s): {', '.join(missing)}. "
            f"The model was trained on: {', '.join(names)}."
        )
    return pd.DataFrame(out)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (for messages)."""
    return value.item() if isinstance(value, np.generic) else value
