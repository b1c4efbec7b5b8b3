"""The ``dataset`` entry of a study: built-in names, CSV and image-folder options, checked
without data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tricklab.base.errors import SpecError
from tricklab.spec import _validation

if TYPE_CHECKING:
    pass


Task = Literal["binary", "multiclass", "regression"]

THORACIC_COLUMNS: tuple[str, ...] = (
    "id", "DGN", "PRE4", "PRE5", "PRE6", "PRE7", "PRE8", "PRE9", "PRE10", "PRE11",
    "PRE14", "PRE17", "PRE19", "PRE25", "PRE30", "PRE32", "AGE",
)  # fmt: skip
THORACIC_CLASSES: tuple[str, str] = ("survived", "died")
THORACIC_CITATION = (
    'M. Zięba, J. M. Tomczak, M. Lubicz, J. Świątek (2014), "Boosted SVM for extracting rules '
    "from imbalanced data in application to prediction of the post-operative life expectancy in "
    'the lung cancer patients", Applied Soft Computing 14, 99-108. Data: UCI Machine Learning '
    "Repository, Thoracic Surgery Data (CC BY 4.0)."
)
FASHION_CITATION = (
    'H. Xiao, K. Rasul, R. Vollgraf (2017), "Fashion-MNIST: a Novel Image Dataset for '
    'Benchmarking Machine Learning Algorithms", arXiv:1708.07747. Data: Zalando SE (MIT licence).'
)
#: Targets with at most this many distinct integer values are classes when ``task = "auto"``.
MAX_AUTO_CLASSES = 20
#: A CSV feature column with at least this percentage of numbers must be all numbers.
NUMBER_PERCENT = 90
#: Without ``max_categories``, a text feature column of a table with at least
#: ``MIN_ROWS_FOR_LEVELS`` rows may have at most ``MAX_LEVELS`` distinct values, and at most
#: half as many as the table has rows.
MAX_LEVELS = 50
MIN_ROWS_FOR_LEVELS = 50
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: How ``impute`` fills a missing feature cell (scikit-learn's ``SimpleImputer`` strategies).
ImputeStrategy = Literal["mean", "median", "most_frequent"]
IMPUTE_STRATEGIES: tuple[str, ...] = ("mean", "median", "most_frequent")
#: How a regression target is fed to the model (scores stay on the target's own scale).
TargetTransform = Literal["standardize", "log"]

# --- specs -----------------------------------------------------------------------------------

_CONFIG = ConfigDict(frozen=True, extra="forbid", strict=True)
Fraction = Annotated[float, Field(gt=0, lt=1)]


class ThoracicSpec(BaseModel):
    """The built-in Thoracic Surgery data (470 patients, binary: died within one year)."""

    model_config = _CONFIG
    name: Literal["thoracic"]
    keep_id: bool = False
    test: Fraction = 0.2


class FashionMnistSpec(BaseModel):
    """Fashion-MNIST; ``limit`` keeps a stratified sample of the training images (seed 0)."""

    model_config = _CONFIG
    name: Literal["fashion_mnist"]
    limit: int | None = Field(default=None, ge=1)


class CsvSpec(BaseModel):
    """A CSV file; ``target`` is a column name, or a 0-based column index.

    ``max_categories`` allows text feature columns with up to that many distinct values (each
    becomes a one-hot feature); ``text_columns`` names feature columns to read as text (one-hot)
    even though they hold numbers.
    """

    model_config = _CONFIG
    csv: str
    target: str | int
    header: bool = True
    delimiter: str = ","
    test: Fraction = 0.2
    task: Literal["auto", "classification", "regression"] = "auto"
    standardize: bool = True
    limit: int | None = Field(default=None, ge=1)
    max_categories: int | None = Field(default=None, ge=1)
    text_columns: tuple[str | int, ...] = ()
    #: Token columns, in order: the features are exactly these (integer ids >= 0, not scaled,
    #: fed as int32, sample shape (len(sequence),)); empty: an ordinary table.
    sequence: tuple[str | int, ...] = ()
    #: Feature columns to leave out (names, or 0-based indices without a header row); or
    #: ``columns``: the only feature columns to use. Never both.
    drop: tuple[str | int, ...] = ()
    columns: tuple[str | int, ...] | None = None
    #: How missing feature cells are filled: one strategy for every column, or a table
    #: ``{column = strategy}``; fitted on each run's training rows.
    impute: ImputeStrategy | dict[str, ImputeStrategy] | None = None
    #: A 0/1 feature per imputed column that had missing cells in the run's training rows.
    missing_indicator: bool = False
    #: Date columns: year, month, weekday and days since the first training date.
    dates: tuple[str | int, ...] = ()
    #: The strptime format of the date columns, or ``{column = format}``; ISO 8601 and the
    #: common day-first and month-first forms are recognised without it.
    date_format: str | dict[str, str] | None = None
    #: A regression target fed to the model standardised (with each run's training rows' mean
    #: and std) or as its natural log; predictions are mapped back, so every test score, the
    #: stored predictions and ``predict`` are on the target's own scale.
    target_transform: TargetTransform | None = None

    @field_validator("csv", mode="before")
    @classmethod
    def _csv_path(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise _validation.own_error(
                f"must be a non-empty string (the CSV file's path). Received: "
                f"csv={_validation.show(value)}."
            )
        return value

    @field_validator("target", mode="before")
    @classmethod
    def _target_kind(cls, value: Any) -> Any:
        ok_int = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        if not (ok_int or (isinstance(value, str) and value)):
            raise _validation.own_error(
                "must be a column name (a string) or a 0-based column index (an int >= 0). "
                f"Received: target={_validation.show(value)}."
            )
        return value

    @field_validator("text_columns", mode="before")
    @classmethod
    def _column_list(cls, value: Any) -> Any:
        items = value if isinstance(value, list | tuple) else None
        if items is None or not all(_is_column_ref(item) for item in items):
            raise _validation.own_error(
                "must be a list of column names (strings) or 0-based column indices "
                f"(ints >= 0). Received: text_columns={_validation.show(value)}."
            )
        return tuple(items)

    @field_validator("sequence", mode="before")
    @classmethod
    def _sequence_columns(cls, value: Any) -> Any:
        items = value if isinstance(value, list | tuple) else None
        if not items or not all(_is_column_ref(item) for item in items):
            raise _validation.own_error(
                "must be a non-empty list of the token columns, in order: column names "
                "(strings) or 0-based column indices (ints >= 0). "
                f"Received: sequence={_validation.show(value)}."
            )
        repeated = next((item for i, item in enumerate(items) if item in items[:i]), None)
        if repeated is not None:
            raise _validation.own_error(
                f"lists column {_validation.show(repeated)} twice; each token column once. "
                f"Received: sequence={_validation.show(value)}."
            )
        return tuple(items)

    @model_validator(mode="after")
    def _sequence_options(self) -> CsvSpec:
        if not self.sequence:
            return self
        if not self.header and any(isinstance(c, str) for c in self.sequence):
            raise _validation.own_error(
                "must hold 0-based column indices (ints) when header = false. "
                f"Received: sequence={_validation.show(list(self.sequence))}.",
                at="sequence",
            )
        if self.text_columns:
            raise _validation.own_error(
                "cannot be used with sequence: sequence columns are integer token ids, and "
                "a sequence table has no other feature columns. "
                f"Received: text_columns={_validation.show(list(self.text_columns))}.",
                at="text_columns",
            )
        if self.standardize and "standardize" in self.model_fields_set:
            raise _validation.own_error(
                "cannot be true with sequence: token ids are not scaled. Drop standardize "
                "from the dataset table.",
                at="standardize",
            )
        return self

    @field_validator("delimiter", mode="before")
    @classmethod
    def _one_char(cls, value: Any) -> Any:
        if not isinstance(value, str) or len(value) != 1:
            raise _validation.own_error(
                f"must be a single character. Received: delimiter={_validation.show(value)}."
            )
        return value

    @model_validator(mode="after")
    def _index_without_header(self) -> CsvSpec:
        if not self.header and isinstance(self.target, str):
            raise _validation.own_error(
                "must be a 0-based column index (an int) when header = false. "
                f"Received: target={_validation.show(self.target)}.",
                at="target",
            )
        names = [c for c in self.text_columns if isinstance(c, str)]
        if not self.header and names:
            raise _validation.own_error(
                "must hold 0-based column indices (ints) when header = false. "
                f"Received: text_columns={_validation.show(list(self.text_columns))}.",
                at="text_columns",
            )
        return self

    @field_validator("drop", "columns", "dates", mode="before")
    @classmethod
    def _column_refs(cls, value: Any, info: ValidationInfo) -> Any:
        items = value if isinstance(value, list | tuple) else None
        name = info.field_name
        if items is None or not all(_is_column_ref(item) for item in items):
            raise _validation.own_error(
                "must be a list of column names (strings) or 0-based column indices "
                f"(ints >= 0). Received: {name}={_validation.show(value)}."
            )
        if name == "columns" and not items:
            raise _validation.own_error(
                "must list at least one feature column to keep. Received: columns=[]."
            )
        repeated = next((item for i, item in enumerate(items) if item in items[:i]), None)
        if repeated is not None:
            raise _validation.own_error(
                f"lists column {_validation.show(repeated)} twice. "
                f"Received: {name}={_validation.show(value)}."
            )
        return tuple(items)

    @field_validator("impute", mode="before")
    @classmethod
    def _impute(cls, value: Any) -> Any:
        strategies = ", ".join(f'"{s}"' for s in IMPUTE_STRATEGIES)
        if isinstance(value, str) and value in IMPUTE_STRATEGIES:
            return value
        if isinstance(value, Mapping) and value:
            bad = next(((k, v) for k, v in value.items() if v not in IMPUTE_STRATEGIES), None)
            if bad is None:
                return dict(value)
            hint = _validation.did_you_mean(bad[1], list(IMPUTE_STRATEGIES))
            raise _validation.own_error(
                f"unknown strategy {_validation.show(bad[1])} for column '{bad[0]}'.{hint} "
                f"Expected one of: {strategies}.",
                at=str(bad[0]),
            )
        hint = (
            _validation.did_you_mean(value, list(IMPUTE_STRATEGIES))
            if isinstance(value, str)
            else ""
        )
        raise _validation.own_error(
            f"must be one of {strategies}, or a table {{column = strategy}}.{hint} "
            f"Received: impute={_validation.show(value)}."
        )

    @field_validator("date_format", mode="before")
    @classmethod
    def _date_format(cls, value: Any) -> Any:
        if isinstance(value, Mapping) and value:
            for column, form in value.items():
                _check_date_format(form, f"date_format.{column}")
            return dict(value)
        _check_date_format(value, "date_format")
        return value

    @model_validator(mode="after")
    def _column_keys(self) -> CsvSpec:
        if self.drop and self.columns is not None:
            raise _validation.own_error(
                "cannot be used with drop: columns keeps only the listed feature columns, "
                "drop leaves out the listed ones; use one of them. "
                f"Received: columns={_validation.show(list(self.columns))}, "
                f"drop={_validation.show(list(self.drop))}.",
                at="columns",
            )
        if not self.header:
            for key in ("drop", "columns", "dates"):
                refs = getattr(self, key) or ()
                if any(isinstance(c, str) for c in refs):
                    raise _validation.own_error(
                        "must hold 0-based column indices (ints) when header = false. "
                        f"Received: {key}={_validation.show(list(refs))}.",
                        at=key,
                    )
        if self.missing_indicator and self.impute is None:
            raise _validation.own_error(
                "needs impute: a missing indicator marks the cells impute filled. Set "
                'impute = "median" (or "mean", "most_frequent") in the dataset table.',
                at="missing_indicator",
            )
        if self.date_format is not None and not self.dates:
            raise _validation.own_error(
                "needs dates: it says how the date columns listed in dates = [...] are written.",
                at="date_format",
            )
        if isinstance(self.date_format, dict):
            listed = {str(c) for c in self.dates}
            other = next((c for c in self.date_format if c not in listed), None)
            if other is not None:
                raise _validation.own_error(
                    f"names column '{other}', which dates does not list. "
                    f"Received: dates={_validation.show(list(self.dates))}.",
                    at=f"date_format.{other}",
                )
        if self.target_transform is not None and self.task == "classification":
            raise _validation.own_error(
                'is for a regression target, and task = "classification". Drop '
                'target_transform, or set task = "regression". '
                f"Received: target_transform={_validation.show(self.target_transform)}.",
                at="target_transform",
            )
        if getattr(self, "sequence", ()) and self.fits_columns:
            raise _validation.own_error(
                "cannot be used with drop, columns, impute, missing_indicator or dates: a "
                "sequence table's features are exactly its token columns.",
                at="sequence",
            )
        return self

    @property
    def fits_columns(self) -> bool:
        """Whether the table uses the column keys (``drop``, ``columns``, ``impute``,
        ``missing_indicator``, ``dates``): then everything learnt from the data is fitted on
        each run's training rows."""
        return bool(self.drop or self.columns is not None or self.impute is not None or self.dates)


def _check_date_format(value: Any, key: str) -> None:
    """A strptime format with a day, month or year directive that reads back what it writes."""
    import datetime as dt

    ok = isinstance(value, str) and any(d in value for d in _DATE_DIRECTIVES)
    if ok:
        sample = dt.datetime(2001, 2, 3, 4, 5, 6)
        try:
            dt.datetime.strptime(sample.strftime(value), value)
        except ValueError:
            ok = False
    if not ok:
        raise _validation.own_error(
            'must be a strptime format such as "%d/%m/%Y" (day/month/year) or "%m/%d/%Y", '
            f"with %d, %m, %Y, %y, %b or %B. Received: {key}={_validation.show(value)}."
        )


_DATE_DIRECTIVES = ("%d", "%m", "%Y", "%y", "%b", "%B", "%j")


#: The image files an image folder may hold (as Keras's ``image_dataset_from_directory``).
IMAGE_SUFFIXES: tuple[str, ...] = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


class ImageFolderSpec(BaseModel):
    """A folder of images, one sub-folder per class (optionally under ``train/`` and
    ``test/``: the official split); read into memory at ``image_size`` (height, width), as
    ``color_mode`` (1 or 3 channels), pixels scaled to [0, 1]."""

    model_config = _CONFIG
    images: str
    image_size: tuple[int, int]
    color_mode: Literal["grayscale", "rgb"] = "rgb"
    test: Fraction = 0.2
    #: A stratified sample of this many training images (seed 0), drawn before decoding;
    #: the official test/ split stays whole.
    limit: int | None = Field(default=None, ge=1)

    @field_validator("images", mode="before")
    @classmethod
    def _images_path(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise _validation.own_error(
                f"must be a non-empty string (the image folder's path). Received: "
                f"images={_validation.show(value)}."
            )
        return value

    @field_validator("image_size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        items = value if isinstance(value, list | tuple) else None
        if (
            items is None
            or len(items) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in items)
        ):
            raise _validation.own_error(
                "must be [height, width], two ints >= 1. "
                f"Received: image_size={_validation.show(value)}."
            )
        return tuple(items)

    @property
    def channels(self) -> int:
        return 1 if self.color_mode == "grayscale" else 3


def _is_column_ref(value: Any) -> bool:
    """A column name (a non-empty string) or a 0-based index (an int >= 0, not a bool)."""
    if isinstance(value, str):
        return bool(value)
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


DatasetSpec = ThoracicSpec | FashionMnistSpec | CsvSpec | ImageFolderSpec
_BUILTIN: dict[str, type[ThoracicSpec] | type[FashionMnistSpec]] = {
    "fashion_mnist": FashionMnistSpec,
    "thoracic": ThoracicSpec,
}
_M = TypeVar("_M", bound=BaseModel)
_EXPECTED = (
    f"Expected one of: {', '.join(sorted(_BUILTIN))}, "
    'or a table {csv = "file.csv", target = "column"}.'
)


def parse_dataset(value: Any) -> DatasetSpec:
    """Check a study's ``dataset`` entry: a name, a table, or a spec. Raises :class:`SpecError`.

    Messages are relative to the dataset table (``"test: must be a float in (0, 1). ..."``).
    """
    if isinstance(value, ThoracicSpec | FashionMnistSpec | CsvSpec | ImageFolderSpec):
        return value
    if isinstance(value, str):
        return _validate(_builtin_class(value), {"name": value})
    if isinstance(value, Mapping):
        table = dict(value)
        if "csv" in table:
            return _validate(CsvSpec, table)
        if "images" in table:
            return _validate(ImageFolderSpec, table)
        if "name" in table:
            return _validate(_builtin_class(table["name"]), table)
        raise SpecError(
            "a dataset table needs name = (a built-in dataset) or csv = (a file) with target = "
            f"(a column). {_EXPECTED} Received: {_validation.show(table)}."
        )
    raise SpecError(
        f"must be a dataset name or a table. {_EXPECTED} Received: {_validation.show(value)}."
    )


def _builtin_class(name: Any) -> type[ThoracicSpec] | type[FashionMnistSpec]:
    if isinstance(name, str) and name in _BUILTIN:
        return _BUILTIN[name]
    hint = _validation.did_you_mean(name, list(_BUILTIN)) if isinstance(name, str) else ""
    shown = f"'{name}'" if isinstance(name, str) else _validation.show(name)
    raise SpecError(f"unknown dataset {shown}.{hint} {_EXPECTED}")


def _validate(model: type[_M], table: dict[str, Any]) -> _M:
    try:
        return model.model_validate(table)
    except ValidationError as exc:
        raise SpecError(_validation.translate(exc, model, table)) from None


class DatasetRegistry:
    """The built-in datasets by name; :meth:`get` accepts whatever :func:`parse_dataset` does."""

    def names(self) -> list[str]:
        return sorted(_BUILTIN)

    def get(self, value: Any) -> DatasetSpec:
        return parse_dataset(value)

    def __contains__(self, name: object) -> bool:
        return name in _BUILTIN


DATASETS = DatasetRegistry()
