"""``tricklab fit``: one variant of a study trained on every row of its table, as a MODEL_DIR.

The study compared recipes; ``fit`` trains the chosen one for use. It trains the variant's
recipe on all rows of the dataset (no validation or test split), seeded as a solo run of the
given seed, with everything learnt from data (imputation values, one-hot levels, date origins,
scaling, a regression target's ``target_transform``) fitted on all rows
(:mod:`tricklab.data._columns`), for a fixed number of epochs:

- the study compares its variants at the best checkpoint (``train.evaluate`` resolved to
  "best"): the median best epoch (rounded half up) of the variant's finished stored runs; with
  none stored, :func:`fit_variant` refuses ("run the study first");
- else the recipe's ``train.epochs``.

Early stopping and the checkpoint are replaced by that fixed count; ``class_weight`` is the
recipe's (``"balanced"`` on all rows). What is written is described in
:mod:`tricklab.tools.model_dir`; the record also says where the model came from, so that
``tricklab mlflow MODEL_DIR`` can log it later as ``fit --mlflow`` does (it reads the study's
first raw rows for the signature, and its default tracking URI is beside the store):

- ``study_file``: the absolute path of the study file fit read (the study's ``source``), or
  null when fit was given a study without a file;
- ``store``: the absolute path of the store directory (``out``) holding the study's runs.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tricklab.base import backend as _backend
from tricklab.base.errors import DataError, SpecError, StoreError
from tricklab.base.version import __version__
from tricklab.data import (
    ColumnPlan,
    Dataset,
    ResolvedStudy,
    Splits,
    TargetScaling,
    exact_json,
    load_data,
    model_table,
    number_plan,
    resolve,
    target_for,
)
from tricklab.engines import class_weights
from tricklab.engines.build import build_model, compile_model
from tricklab.spec import THORACIC_COLUMNS, CsvSpec, StudySpec, ThoracicSpec, load_study
from tricklab.store import RunStore
from tricklab.study import make_plan
from tricklab.tools.model_dir import FORMAT, MARKER, MODEL_FILE, VERSION, write_model_dir


@dataclass(frozen=True)
class Fitted:
    """What :func:`fit_variant` did."""

    path: Path
    epochs: int
    #: why that many: "median best epoch of 3 stored runs (4, 5, 7)" or "the recipe's epochs"
    reason: str
    record: dict[str, Any]
    model: Any


@dataclass(frozen=True)
class RawTable:
    """A table's rows raw (:mod:`tricklab.data._columns`), its plan, and how its CSV is read
    (``csv`` of a MODEL_DIR's record)."""

    x: np.ndarray  # raw rows (data/_columns.py)
    plan: ColumnPlan
    csv: dict[str, Any]


def fit_variant(
    study: str | Path | StudySpec,
    variant: str,
    path: str | Path,
    *,
    seed: int = 0,
    out: str | Path = "runs",
    force: bool = False,
) -> Fitted:
    """Train ``variant`` of ``study`` on every row of its table and write a MODEL_DIR at
    ``path`` (refused when ``path`` exists, unless ``force``); ``out`` is the store holding
    the study's runs (their median best epoch)."""
    spec = study if isinstance(study, StudySpec) else load_study(study)
    target_dir = Path(path)
    _check_target(target_dir, force)
    if variant not in spec.variants:
        names = ", ".join(spec.variants)
        raise SpecError(
            f"--variant: no variant {variant!r} in study {spec.name!r}; it has {names}."
        )
    if not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise SpecError(f"--seed must be an int in [0, 2**32). Received: seed={seed!r}.")
    _check_supported(spec)  # before loading: images may be a download away
    dataset = load_data(spec)
    table = raw_table_of(spec, dataset)
    resolved = resolve(spec, dataset).check()
    recipe = resolved.spec.variants[variant]
    epochs, reason = _epochs(resolved, recipe.train.epochs, Path(out) / spec.name, variant)

    fitted = table.plan.fit(table.x)
    x = fitted.transform(table.x)
    y = dataset.y
    if len(y) != len(x):  # the table was read twice: the same rows, or a bug
        raise AssertionError(f"{len(x)} raw rows for {len(y)} labels")
    scaling = None  # a regression target's transform, fitted on every row as the columns are
    if dataset.target_transform is not None:
        scaling = TargetScaling.fit(dataset.target_transform, y)
    keras = _backend.keras()
    target = target_for(recipe, dataset)
    # seeded as a solo run (engines._scoring.seed_everything): initial weights, batch order
    keras.utils.set_random_seed(make_plan(resolved, variant, seed).init_seed)
    model = build_model(recipe, x.shape[1:])
    compile_model(model, recipe, dataset, target)
    everything = _all_rows(x, y)
    model.fit(
        x,
        target.encode(scaling.forward(y) if scaling is not None else y),
        batch_size=recipe.train.batch_size,
        epochs=epochs,
        shuffle=recipe.train.shuffle,
        class_weight=class_weights(recipe, dataset, everything),
        callbacks=[keras.callbacks.TerminateOnNaN()],
        verbose=0,
    )
    record = {
        "format": FORMAT,
        "version": VERSION,
        "study": spec.name,
        "variant": variant,
        "seed": seed,
        "epochs": epochs,
        "epochs_reason": reason,
        "checkpoint": resolved.evaluate,
        "task": dataset.task,
        "classes": list(dataset.class_names),
        "rows": len(y),
        "csv": table.csv,
        "dataset": spec.dataset.model_dump(mode="json"),
        "study_file": str(Path(spec.source).resolve()) if spec.source else None,
        "store": str(Path(out).resolve()),
        "columns": exact_json(fitted),
        "target": scaling.to_json() if scaling is not None else None,
        "input_shape": [int(n) for n in x.shape[1:]],
        "versions": {"tricklab": __version__, "backend": _backend.name(), **_backend.versions()},
        "files": {"model": MODEL_FILE},
    }
    write_model_dir(target_dir, model, record)
    return Fitted(target_dir, epochs, reason, record, model)


def _check_target(path: Path, force: bool) -> None:
    if path.exists() and not path.is_dir():
        raise StoreError(f"{path}: exists and is not a folder; MODEL_DIR is a folder.")
    if path.is_dir() and any(path.iterdir()) and not force:
        what = "a MODEL_DIR" if (path / MARKER).is_file() else "a folder that is not empty"
        raise StoreError(
            f"{path}: already exists ({what}); pass --force to overwrite it, or name another."
        )


def _epochs(
    resolved: ResolvedStudy, recipe_epochs: int, root: Path, variant: str
) -> tuple[int, str]:
    """How many epochs, and why (see the module docstring). A stored run counts when it is
    up to date: its key is the study's for its seed and engine (not a run of a recipe the
    study file has changed since, or of `tricklab run --epochs N`)."""
    evaluate = resolved.evaluate
    if evaluate != "best":
        return recipe_epochs, f'the recipe\'s epochs (the study evaluates the "{evaluate}" weights)'
    best = sorted(
        (r.seed, int(r.best_epoch))
        for r in RunStore(root).results()
        if r.variant == variant
        and r.best_epoch is not None
        and r.key == make_plan(resolved, variant, r.seed, engine=r.engine).key
    )
    if not best:
        raise StoreError(
            f"{root}: no finished run of variant {variant!r} (of the study as its file says "
            "now); the study evaluates its best checkpoint, and fit trains for the median best "
            "epoch of the stored runs: run the study first (`tricklab run STUDY.toml`, with "
            "--out if the store is elsewhere)."
        )
    epochs = [e for _, e in best]
    median = statistics.median(epochs)
    chosen = max(1, math.floor(median + 0.5))
    shown = ", ".join(map(str, epochs))
    runs = f"{len(epochs)} stored run{'s' if len(epochs) > 1 else ''}"
    return chosen, f"median best epoch of {runs} ({shown})"


def _all_rows(x: np.ndarray, y: np.ndarray) -> Splits:
    """Every row as the training part (what class weights read)."""
    empty = x[:0]
    rows = {"train": np.arange(len(y)), "validation": np.arange(0), "test": np.arange(0)}
    return Splits(x, y, empty, y[:0], empty, y[:0], False, None, None, rows)


def _check_supported(spec: StudySpec) -> None:
    """fit supports tables: a CSV of features, the built-in thoracic data; else one line."""
    data = spec.dataset
    if isinstance(data, CsvSpec) and data.sequence:
        raise DataError(
            f"{spec.source or spec.name}: fit supports tables of features; this dataset reads "
            "sequence columns (token ids). Use `tricklab export RUN_DIR` for a model of one run."
        )
    if not isinstance(data, CsvSpec | ThoracicSpec):
        raise DataError(
            f"{spec.source or spec.name}: fit supports tables (a CSV, the built-in thoracic "
            f"data); this study's dataset is images ({data.model_dump().get('name', 'images')}). "
            "Use `tricklab export RUN_DIR` for a model of one run, which predicts image files."
        )


def raw_table_of(spec: StudySpec, dataset: Dataset) -> RawTable:
    """The study's rows raw, with a plan for every kind of table fit supports (also how
    ``tricklab predict RUN_DIR`` rebuilds a run fitted on its own training rows)."""
    data = spec.dataset
    if isinstance(data, CsvSpec):
        shown = Path(data.csv).expanduser()
        if spec.base_dir is not None and not shown.is_absolute():
            shown = Path(spec.base_dir) / shown
        table = model_table(data, str(shown), spec.limits.max_columns)
        csv = {
            "delimiter": data.delimiter,
            "header": data.header,
            "columns": list(table.file_columns),
            "target": table.target,
        }
        return RawTable(table.x, table.plan, csv)
    if isinstance(data, ThoracicSpec):
        dropped = () if data.keep_id else ("id",)
        columns = [*THORACIC_COLUMNS, "Risk1Yr"]
        csv = {"delimiter": ",", "header": True, "columns": columns, "target": "Risk1Yr"}
        plan = number_plan(dataset.feature_names, dropped)
        return RawTable(np.asarray(dataset.x, dtype=np.float64), plan, csv)
    raise AssertionError(f"unsupported dataset {data!r}")  # _check_supported refused it
