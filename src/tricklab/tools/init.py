"""``tricklab init DATA.csv --target COL``: a starter study for a user's own table.

What a new user would otherwise find out one error at a time, read from the file at once:

1. the delimiter (Python's ``csv.Sniffer`` among ``, ; tab |``) and whether the first row is a
   header (it is when it holds the target's name);
2. per feature column, what the intake would refuse and the dataset key that handles it:
   a row id or free text -> ``drop``; dates -> ``dates`` (with ``date_format`` when a column is
   not ISO); missing cells -> ``impute`` per column (median for numbers, most frequent for
   text) with ``missing_indicator = true``;
3. the task, as the intake decides it (the study is read back through :func:`load_dataset`, so
   what it says is what ``run`` will do), and for a classifier its class balance;
4. the protocol: repeated 5-fold cross-validation for tables up to :data:`CV_ROWS` rows (the
   README's measurement: it decides more per run than a resplit), one split above;
5. a model sized to the data: one relu layer of about twice the input width (16 to 128 units),
   early stopping that restores the best weights, and the lecture's tricks as variants
   (dropout, an L2 penalty, a larger learning rate; ``class_weight = "balanced"`` when the
   classes are imbalanced).

The file is then linted as ``tricklab lint`` would; :func:`starter_study` refuses to leave a
file with an error or a warning (that would be a bug here, not the user's).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tricklab.base.errors import DataError, TricklabError
from tricklab.data import load_dataset, read_csv_text, suggested_transform
from tricklab.spec import MAX_LEVELS, MIN_ROWS_FOR_LEVELS, NUMBER_PERCENT, load_study
from tricklab.tools.lint import MIN_ID_ROWS, Finding, active, format_findings, lint

if TYPE_CHECKING:
    import pandas as pd

    from tricklab.data import Dataset

__all__ = ["CV_ROWS", "StarterStudy", "starter_study"]

#: Tables with at most this many rows get ``cv = {folds = 5, repeats = 2}``; larger ones one
#: fixed split with 3 seeds.
CV_ROWS = 10_000
#: A minority class under this share of the rows gets a ``class_weight = "balanced"`` variant.
IMBALANCE = 0.25
DELIMITERS = ",;\t|"
#: Date forms tried in order; a column is dates when one form reads every non-empty cell.
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y")
ISO_DATE = "%Y-%m-%d"


@dataclass
class StarterStudy:
    """What :func:`starter_study` wrote and why (each ``notes`` line is printed by the CLI)."""

    path: Path
    name: str
    task: str
    task_reason: str
    delimiter: str
    header: bool
    rows: int
    variants: list[str]
    protocol: str
    notes: list[str] = field(default_factory=list)


@dataclass
class _Column:
    """One feature column: how it is handled, and why (the comment beside its entry)."""

    name: str
    drop: str | None = None  # why it is dropped
    date_format: str | None = None
    ambiguous: bool = False  # day-first and month-first both read every cell
    impute: str | None = None
    missing: int = 0


def starter_study(
    *, csv_path: str | Path, target: str, out: str | Path | None = None, force: bool = False
) -> StarterStudy:
    """Write a study for ``csv_path`` predicting column ``target``; its path and decisions.

    ``out`` defaults to ``<csv stem>.toml`` beside the CSV; an existing file is refused unless
    ``force``. Raises :class:`DataError` (one line) for a file or target it cannot use.
    """
    import pandas as pd

    csv_path = Path(csv_path)
    out = Path(out) if out is not None else csv_path.with_suffix(".toml")
    if out.exists() and not force:
        raise TricklabError(
            f"{out}: already exists; init does not overwrite a study. Received: -o {out}. "
            "Choose another path with -o, or pass --force to replace it."
        )
    text = read_csv_text(csv_path)
    delimiter, header = _sniff(csv_path, text, target)
    frame = pd.read_csv(io.StringIO(text), sep=delimiter, header=0 if header else None)
    if not header:
        frame.columns = [str(i) for i in range(len(frame.columns))]
    if target not in frame.columns:
        shown = ", ".join(repr(str(c)) for c in frame.columns[:10])
        raise DataError(
            f"{csv_path}: no column {target!r} (the target). Received: --target {target}. "
            f"The columns are: {shown}{', ...' if len(frame.columns) > 10 else ''}."
        )
    missing_target = int(frame[target].isna().sum())
    if missing_target:
        raise DataError(
            f"{csv_path}: column {target!r} (the target) has {missing_target} empty cells; a "
            "target cannot be imputed. Remove those rows, or choose another target."
        )
    columns = [_column(frame[name], str(name)) for name in frame.columns if name != target]
    dataset = _dataset_table(csv_path, out, target, delimiter, header, columns)
    loaded = _read_back(csv_path, dataset)
    transform, why_transform = _target_transform(loaded)
    if transform is not None:  # a regression target far from the scale a network starts at
        dataset["target_transform"] = transform
        loaded = _read_back(csv_path, dataset)
    rows = len(frame)
    name = _study_name(csv_path.stem)
    header_lines = [
        f"# A starter study for {csv_path.name}, written by `tricklab init`: predict {target!r}.",
        f"# Task: {loaded.task} ({loaded.intake.task_reason if loaded.intake else ''}).",
        "# Every entry below is a proposal; edit freely, then `tricklab lint` and `tricklab run`.",
        f'name = "{name}"',
        f'description = "Starter study for {csv_path.name} (tricklab init)."',
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    for training in (TRAINING, FEW_VALIDATION_ROWS):
        top, body, variants, protocol, notes = _study_body(
            loaded, rows, sum(c.drop is None for c in columns), training
        )
        said = _dataset_lines(dataset, columns, why_transform)
        lines = [*header_lines, *top, *said, *body]
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        findings = _findings(out)
        if not any(f.code == "TL016" for f in findings):
            break
    if findings:  # a study init wrote must lint clean: this is init's bug, not the user's
        raise AssertionError(f"init wrote {out} with lint findings: {format_findings(findings)}")
    if training is FEW_VALIDATION_ROWS:
        notes.append('few validation rows: evaluated at the last weights (train.evaluate = "last")')
    return StarterStudy(
        path=out,
        name=name,
        task=loaded.task,
        task_reason=loaded.intake.task_reason if loaded.intake else "",
        delimiter=delimiter,
        header=header,
        rows=rows,
        variants=variants,
        protocol=protocol,
        notes=[
            *_column_notes(columns),
            *([f"target_transform = {transform!r}: {why_transform}"] if transform else []),
            *notes,
        ],
    )


# -- the file -----------------------------------------------------------------------------------
def _sniff(path: Path, text: str, target: str) -> tuple[str, bool]:
    """The delimiter (csv.Sniffer among ``, ; tab |``) and whether row 1 is a header (it holds
    the target's name; a target given as a column number means no header)."""
    sample = "\n".join(text.splitlines()[:50])
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        delimiter = ","  # one column, or no delimiter tells itself apart: read as written
    first = next(csv.reader(io.StringIO(sample), delimiter=delimiter), [])
    if target in [cell.strip() for cell in first]:
        return delimiter, True
    if target.isdigit() and int(target) < len(first):
        return delimiter, False
    raise DataError(
        f"{path}: no column {target!r} in the first row (read with delimiter "
        f"{delimiter!r}). Received: --target {target}. The first row holds: "
        f"{', '.join(repr(c) for c in first[:10])}{', ...' if len(first) > 10 else ''}. "
        "Give the target's name as written in the header, or its 0-based column number for "
        "a file without a header."
    )


def _column(series: pd.Series, name: str) -> _Column:
    """What the intake needs to be told about one feature column."""
    import pandas as pd

    column = _Column(name, missing=int(series.isna().sum()))
    present = series.dropna()
    rows = len(series)
    numbers = pd.to_numeric(present, errors="coerce")
    numeric = len(present) > 0 and numbers.notna().mean() * 100 >= NUMBER_PERCENT
    if numeric and _is_row_id(numbers, rows):
        column.drop = f"the unique integers {int(numbers.min())}..{int(numbers.max())}: a row id"
        return column
    if not numeric and present.map(lambda v: isinstance(v, bool)).all() and len(present):
        numeric = True  # true/false cells
    if not numeric:
        texts = present.astype(str)
        form, ambiguous = _date_form(texts)
        if form is not None:
            column.date_format, column.ambiguous = form, ambiguous
        else:
            levels = texts.nunique()
            if rows >= MIN_ROWS_FOR_LEVELS and (levels > MAX_LEVELS or levels > rows / 2):
                every = "every value differs" if levels == len(texts) else f"{levels} values"
                column.drop = f"{every}: an identifier or free text, not a category"
                return column
    if column.missing:
        column.impute = "median" if numeric or column.date_format else "most_frequent"
    return column


def _is_row_id(numbers: pd.Series, rows: int) -> bool:
    """Unique whole numbers filling a range, one per row (lint's TL006)."""
    if numbers.isna().any() or len(numbers) != rows or rows < MIN_ID_ROWS:
        return False
    whole = bool((numbers == numbers.round()).all())
    return whole and numbers.nunique() == rows and numbers.max() - numbers.min() + 1 == rows


def _date_form(texts: pd.Series) -> tuple[str | None, bool]:
    """The first form of :data:`DATE_FORMATS` that reads every cell, and whether the other
    order (day-first vs month-first) reads them too."""
    import pandas as pd

    if not len(texts) or not texts.str.contains(r"\d", regex=True).all():
        return None, False
    readable = [
        form
        for form in DATE_FORMATS
        if pd.to_datetime(texts, format=form, errors="coerce").notna().all()
    ]
    if not readable:
        return None, False
    form = readable[0]
    swapped = form.replace("%d", "%D").replace("%m", "%d").replace("%D", "%m")
    return form, swapped != form and swapped in readable


def _dataset_table(
    csv_path: Path, out: Path, target: str, delimiter: str, header: bool, columns: list[_Column]
) -> dict[str, Any]:
    relative = os.path.relpath(csv_path.resolve(), out.resolve().parent)
    table: dict[str, Any] = {"csv": Path(relative).as_posix()}
    table["target"] = target if header else int(target)
    if delimiter != ",":
        table["delimiter"] = delimiter
    if not header:
        table["header"] = False
    kept = [c for c in columns if c.drop is None]
    if len(kept) < len(columns):
        table["drop"] = [c.name if header else int(c.name) for c in columns if c.drop]
    dates = [c for c in kept if c.date_format is not None]
    if dates:
        table["dates"] = [c.name for c in dates]
        formats = {c.name: c.date_format for c in dates if c.date_format != ISO_DATE}
        if formats:
            table["date_format"] = formats
    imputed = {c.name: c.impute for c in kept if c.impute}
    if imputed:
        table["impute"] = imputed
        table["missing_indicator"] = True
    return table


def _target_transform(dataset: Dataset) -> tuple[str | None, str]:
    """``target_transform`` for a regression target far from unit scale, and a comment."""
    if dataset.task != "regression":
        return None, ""
    transform, why = suggested_transform(dataset.y)
    if transform is None:
        return None, ""
    trained = "its log" if transform == "log" else "it standardized per run"
    return transform, f"{why}: trained on {trained}; scores stay on its scale"


def _read_back(csv_path: Path, dataset: dict[str, Any]) -> Dataset:
    """The dataset as ``run`` will read it (the CSV path as seen from here)."""
    try:
        return load_dataset({**dataset, "csv": str(csv_path)})
    except DataError as exc:
        raise DataError(
            f"{exc} (init proposed this dataset table: {json.dumps(dataset)})"
        ) from None


def _dataset_lines(
    dataset: dict[str, Any], columns: list[_Column], why_transform: str = ""
) -> list[str]:
    """The ``[dataset]`` table, one key per line, with a comment per proposed entry."""
    why = {c.name: c for c in columns}
    lines = ["", "[dataset]"]
    for key, value in dataset.items():
        lines.append(f"{key} = {_toml(value)}")
        if key == "drop":
            lines += [f"#   {name}: {why[str(name)].drop}" for name in value]
        if key == "date_format":
            lines += [
                f"#   {name}: day-first and month-first both read every cell; check this one"
                for name in value
                if why[name].ambiguous
            ]
        if key == "impute":
            lines += [f"#   {name}: {why[name].missing} empty cells" for name in value]
        if key == "target_transform":
            lines.append(f"#   {why_transform}")
        if key == "dates":
            lines.append(
                "#   each becomes year, month, weekday and days since the first training date"
            )
    return lines


#: How long and at which weights a starter study trains: early stopping that restores the best
#: weights; on a validation split too small to pick an epoch on (lint's TL016), the weights
#: training ends with instead.
TRAINING = [
    "epochs = 100",
    'early_stopping = {monitor = "val_loss", patience = 10, restore_best_weights = true}',
]
FEW_VALIDATION_ROWS = [
    "epochs = 100",
    'early_stopping = {monitor = "val_loss", patience = 10}',
    'evaluate = "last"  # too few validation rows to pick the best epoch on (lint TL016)',
]


def _study_body(
    dataset: Dataset, rows: int, width: int, training: list[str]
) -> tuple[list[str], list[str], list[str], str, list[str]]:
    """The top-level keys (protocol, baseline), then ``[model]``, ``[train]`` and the variants;
    the variants' names, the protocol in words, and notes for the terminal."""
    notes: list[str] = []
    units = min(128, max(16, 1 << max(0, (2 * width - 1).bit_length())))
    top: list[str] = []
    if rows <= CV_ROWS:
        top.append("cv = {folds = 5, repeats = 2}       # repeated 5-fold: small table")
        protocol = f"cv 5 folds x 2 repeats ({rows:,} rows, at most {CV_ROWS:,})"
    else:
        top.append("seeds = 3                           # one split, 3 seeds: a large table")
        protocol = f"one split x 3 seeds ({rows:,} rows, more than {CV_ROWS:,})"
    if dataset.task == "binary":
        output, loss = '{type = "dense", units = 1, activation = "sigmoid"}', "binary_crossentropy"
    elif dataset.task == "multiclass":
        classes = len(dataset.class_names)
        output = f'{{type = "dense", units = {classes}, activation = "softmax"}}'
        loss = "sparse_categorical_crossentropy"
        share = dataset.majority_fraction()
        if share is not None and share >= 0.8:  # accuracy would mostly score the majority
            top.append('primary_metric = "balanced_accuracy"  # the majority class is 80 %+')
    else:
        output, loss = '{type = "dense", units = 1}', "mean_squared_error"
    hidden = f'{{type = "dense", units = {units}, activation = "relu"}}'
    top.append('baseline = "baseline"')
    lines = [
        "",
        "[model]",
        f"layers = [\n  {hidden},\n  {output},\n]",
        "",
        "[train]",
        f'loss = "{loss}"',
        'optimizer = "adam"',
        f"batch_size = {32 if rows <= CV_ROWS else 128}",
        *training,
        "",
        "[variants.baseline]",
        "",
        "[variants.dropout]",
        f'"model.layers" = [\n  {hidden},\n  {{type = "dropout", rate = 0.3}},\n  {output},\n]',
        "",
        "[variants.l2]",
        '"model.layers[0].kernel_regularizer" = {name = "l2", l2 = 0.001}',
        "",
        '[variants."learning_rate=0.01"]',
        '"train.optimizer" = {name = "adam", learning_rate = 0.01}',
    ]
    variants = ["baseline", "dropout", "l2", "learning_rate=0.01"]
    minority = _minority_share(dataset)
    if minority is not None and minority < IMBALANCE:
        lines += ["", "[variants.class_weight]", '"train.class_weight" = "balanced"']
        variants.append("class_weight")
        notes.append(
            f"imbalance: the smallest class is {minority:.1%} of the rows; added a "
            'class_weight = "balanced" variant'
        )
    notes.append(
        f"model: dense {units} relu for {width} feature columns; variants: {', '.join(variants)}"
    )
    return top, lines, variants, protocol, notes


def _minority_share(dataset: Dataset) -> float | None:
    import numpy as np

    if dataset.task not in ("binary", "multiclass"):
        return None
    counts = np.bincount(np.asarray(dataset.y, dtype=np.int64))
    counts = counts[counts > 0]
    return float(counts.min() / counts.sum()) if len(counts) > 1 else None


def _column_notes(columns: list[_Column]) -> list[str]:
    notes = [f"drop: {c.name} ({c.drop})" for c in columns if c.drop]
    for c in columns:
        if c.drop is None and c.date_format is not None:
            check = "; day-first and month-first both fit: check it" if c.ambiguous else ""
            notes.append(f"dates: {c.name} ({c.date_format}{check})")
    notes += [
        f"impute: {c.name} {c.impute} ({c.missing} empty cells, with a missing indicator)"
        for c in columns
        if c.drop is None and c.impute
    ]
    return notes


def _findings(path: Path) -> list[Finding]:
    """The errors and warnings ``tricklab lint`` reports for the study at ``path``."""
    from tricklab.data import resolve

    spec = load_study(path)
    return [f for f in active(lint(resolve(spec))) if f.severity in ("error", "warning")]


def _study_name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.=-]+", "-", stem).strip("-")[:100]
    return name or "study"


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)
