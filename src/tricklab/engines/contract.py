"""The run format: what one run is asked to do, and what it produced.

Every training engine (:mod:`tricklab.engines`: solo, population) turns a :class:`RunPlan` into a
:class:`RunResult` and the run's weights; the store writes results the same way whatever engine
made them, and statistics and reports read only this format.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from tricklab.spec import Recipe

#: Bump when the meaning of stored results changes; older results are then retrained.
#: 3: every run also stores its test-set predictions (predictions.npy).
RESULT_SCHEMA = 3


@dataclass(frozen=True)
class RunPlan:
    """One variant x seed of a study, fully resolved."""

    study: str
    variant: str
    seed: int
    recipe: Recipe
    dataset: dict[str, Any]  # the dataset spec as data
    data_fingerprint: str
    validation: float | str  # a fraction of the training data, or "test"
    split_seed: int  # the seed the train/validation/test split was drawn with
    backend: str
    diagnostics: dict[str, Any] | None = None  # DiagnosticsSpec as data, when measured
    engine: str = "solo"  # "solo" or "population": part of the key, as the numbers may differ
    #: Cross-validation (``cv`` in the study): this run tests on fold ``fold`` of ``folds`` of
    #: the fold assignment drawn with ``split_seed``; None under a train/test split.
    fold: int | None = None
    folds: int | None = None
    #: Seeds weight initialisation, dropout and batch order: the run's seed, except under cv,
    #: where every fold of repeat r trains with seed r (``split_seed``).
    model_seed: int | None = None

    @property
    def init_seed(self) -> int:
        """The seed the engines train with."""
        return self.seed if self.model_seed is None else self.model_seed

    @property
    def split_id(self) -> str:
        """Names the rows this run trains, validates and tests on (runs sharing it share them)."""
        return split_id(self.split_seed, self.fold, self.folds)

    def resolved(self) -> dict[str, Any]:
        """Everything that determines this run's numbers (spec.json)."""
        cv = {}
        if self.fold is not None:  # absent otherwise, so runs stored before cv keep their keys
            cv = {"fold": self.fold, "folds": self.folds, "model_seed": self.init_seed}
        return {
            **cv,
            "study": self.study,
            "variant": self.variant,
            "seed": self.seed,
            "recipe": self.recipe.model_dump(mode="json", exclude_none=True),
            "dataset": self.dataset,
            "data_fingerprint": self.data_fingerprint,
            "validation": self.validation,
            "split_seed": self.split_seed,
            "backend": self.backend,
            "diagnostics": self.diagnostics,
            "engine": self.engine,
            "result_schema": RESULT_SCHEMA,
        }

    @property
    def key(self) -> str:
        """Hash of what determines the numbers (the engine included), not the names."""
        content = {k: v for k, v in self.resolved().items() if k not in ("study", "variant")}
        # train.evaluate picks which stored scores a report compares: no number of the run
        # depends on it, so changing it retrains nothing
        recipe = content["recipe"]
        train = {k: v for k, v in recipe["train"].items() if k != "evaluate"}
        content["recipe"] = {**recipe, "train": train}
        bound = recipe["model"].get("bound")
        if bound is not None:  # where the builder file lives is no number: the store can move
            model = {**recipe["model"], "bound": {k: v for k, v in bound.items() if k != "file"}}
            content["recipe"]["model"] = model
        blob = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def split_id(split_seed: int, fold: int | None = None, folds: int | None = None) -> str:
    """:attr:`RunPlan.split_id` from the fields of a run's spec.json."""
    if fold is None:
        return f"split-{split_seed}"
    return f"cv{folds}-{split_seed}-fold-{fold}"


class ResultStatus(StrEnum):
    """How a finished run ended; ``result.json`` stores the value ("ok", "diverged")."""

    OK = "ok"
    #: The loss became NaN/inf: a result all the same (its epochs and scores up to then).
    DIVERGED = "diverged"


@dataclass
class RunResult:
    """What a finished run produced (``result.json`` plus ``history.csv``)."""

    key: str
    study: str
    variant: str
    seed: int
    status: ResultStatus  # a string ("ok", "diverged") is taken as its ResultStatus
    test: dict[str, dict[str, float | None]]  # {"best": {...}, "last": {...}} by Keras metric name
    epochs_run: int
    best_epoch: int | None  # 1-based epoch of the best checkpoint
    monitor: str
    best_monitor_value: float | None
    params: int
    seconds_per_epoch: float
    first_epoch_seconds: float
    seconds_total: float
    backend: str
    engine: str
    versions: dict[str, str]
    validated_on: str  # "validation split" or "test set"
    split_sizes: dict[str, int]
    confusion_matrix: list[list[int]] | None = None  # best weights, rows = true class
    #: the same of the last weights (None in results stored before it was kept)
    confusion_matrix_last: list[list[int]] | None = None
    input_shape: list[int] = field(default_factory=list)
    #: How raw inputs became model inputs: {"scale": s} and/or {"mean": [...], "std": [...]}
    #: (standardisation with training-split statistics); exported models include it.
    preprocessing: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    #: Per hidden layer and epoch (diagnostics.csv), when the study asks for diagnostics.
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    diagnostics_seconds: float = 0.0  # of seconds_total, the time diagnostics took
    finished_at: str = ""
    schema: int = RESULT_SCHEMA

    def __post_init__(self) -> None:
        # result.json holds the value; anything but a ResultStatus value is a ValueError
        self.status = ResultStatus(self.status)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status.value  # a plain string, as result.json has always held
        out.pop("history")
        out.pop("diagnostics")
        finite: dict[str, Any] = _finite(out)  # a dict stays a dict
        return finite

    @classmethod
    def from_json(
        cls,
        data: dict[str, Any],
        history: dict[str, list[float]],
        diagnostics: list[dict[str, Any]] | None = None,
    ) -> RunResult:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "history": history, "diagnostics": diagnostics or []})


def _finite(value: Any) -> Any:
    """JSON has no NaN: non-finite numbers are stored as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
