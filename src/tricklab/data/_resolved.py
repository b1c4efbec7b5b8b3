"""The resolved study: what a study file means on its data, worked out once.

A study file says what to train; what that means depends on the data: the task (and why it was
detected), the primary metric (checked against the task and the metrics every variant logs) and
which way it improves (the metric catalogue's, :mod:`tricklab.spec`), the checkpoint whose test
scores are compared (``train.evaluate``, one for the study), the rows each run trains,
validates and tests on, and the statistics that follow from that protocol.
:func:`resolve_study` works all of it out once, from (spec, dataset, backend); the command line,
lint, the scheduler, lr-find, statistics and reports read it from here, and ``run`` stores
:meth:`ResolvedStudy.to_json` in the study's index for ``report`` to read back.

Protocols (README, "Splits and seeds"):

- ``split``: one train/validation/test split for every run (``split_seed``); runs differ by seed.
- ``resplit``: run *s* draws its own split with seed *s*.
- ``cv``: repeated (stratified) k-fold; run i tests on fold i % k of repeat r = i // k, whose
  folds and model are drawn with seed r; validation is carved from the training folds.

Under ``resplit`` and ``cv`` the training sets of the runs overlap, so the paired differences
are correlated and a plain paired t-test is too confident: comparisons use the Nadeau-Bengio
corrected resampled t-test, whose variance factor 1/J + n_test/n_train (J runs) is stored here
as ``correction`` = n_test/n_train, and the interval of each variant's mean over runs uses the
same factor. n_train counts every row outside the run's test part (its training and validation
rows: the validation rows choose the checkpoint, so they are part of training), and the ratio is
the mean over the study's runs of n_test / (n - n_test), n the rows of the run (folds of unequal
size give unequal ratios). 0 under ``split``: every run is scored on the same rows, the verdict
is about that test set, and the intervals are plain t-intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tricklab.base.errors import SpecError
from tricklab.data._dataset import Dataset, describe_intake
from tricklab.data._rules import bind_outputs, check_compatible, logged_names, primary_metric
from tricklab.data._splits import Splits, cv_folds, make_splits
from tricklab.spec import (
    METRIC_CATALOGUE,
    Direction,
    Evaluate,
    Recipe,
    bound_recipe,
    study_evaluation,
)

if TYPE_CHECKING:  # the spec imports tricklab.data for its dataset entry
    from tricklab.spec import StudySpec


@dataclass(frozen=True)
class RunSplit:
    """Where one run's rows and randomness come from."""

    split_seed: int  # seed of the split (or of the fold assignment under cv)
    model_seed: int  # seed of the weights, dropout and batch order
    fold: int | None = None
    folds: int | None = None


@dataclass(frozen=True)
class Protocol:
    """How runs are split and what the comparisons may conclude from them."""

    kind: str  # "split", "resplit" or "cv"
    validation: float | str  # fraction carved from the training rows, or "test"
    validated_on: str  # "validation split" or "test set"
    split_sizes: dict[str, int]  # rows of the first run's train / validation / test parts
    split_seed: int | None = None  # under "split"
    folds: int | None = None  # under "cv"
    repeats: int | None = None
    #: Nadeau-Bengio's n_test / n_train: the mean over the runs of n_test / (n - n_test), n the
    #: rows of the run (train + validation + test); 0 under "split"
    correction: float = 0.0

    def describe(self) -> str:
        """One sentence for the run header and the report."""
        sizes = self.split_sizes
        rows = f"{sizes['train']} train / {sizes['validation']} validation / {sizes['test']} test"
        corrected = (
            "; Nadeau-Bengio corrected t-tests and intervals (runs share training rows; "
            f"n_test/n_train {self.correction:.3g})"
        )
        if self.kind == "cv":
            return (
                f"{self.repeats} x {self.folds}-fold cross-validation ({rows} rows per run; "
                f"repeat r draws its folds and models with seed r){corrected}"
            )
        if self.kind == "resplit":
            return f"each seed draws its own split ({rows} rows){corrected}"
        return (
            f"one split for every run, drawn with seed {self.split_seed} ({rows} rows); "
            "paired t-tests and t-intervals"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "validation": self.validation,
            "validated_on": self.validated_on,
            "split_sizes": self.split_sizes,
            "resplit": self.kind == "resplit",
            "split_seed": self.split_seed,
            "folds": self.folds,
            "repeats": self.repeats,
            "correction": self.correction,
            "description": self.describe(),
        }


@dataclass(frozen=True, eq=False)
class ResolvedStudy:
    """A study on its data: built once by :func:`resolve_study`, read by every consumer."""

    spec: StudySpec
    dataset: Dataset
    backend: str
    primary_metric: str
    protocol: Protocol
    #: Per variant, the history columns its runs log (loss, metrics and their val_ twins).
    metrics: dict[str, list[str]]
    #: Why the study cannot run on this data (:meth:`check` raises them); empty when it can.
    problems: tuple[SpecError, ...] = ()
    #: The checkpoint whose test scores the study compares ("best" or "last"), one for every
    #: variant (:func:`tricklab.spec.study_evaluation`); stored as ``evaluate``.
    evaluate: Evaluate = "last"
    _splits: dict[tuple[int, int | None], Splits] = field(default_factory=dict, repr=False)

    @property
    def task(self) -> str:
        return self.dataset.task

    @property
    def task_reason(self) -> str:
        intake = self.dataset.intake
        if intake is None:  # the loaders record it; a Dataset made otherwise may not
            raise AttributeError(f"dataset '{self.dataset.name}' records no intake")
        return intake.task_reason

    @property
    def primary_direction(self) -> Direction | None:
        """Which way the primary metric improves (the metric catalogue's); None when the study
        has no valid primary metric (see :attr:`problems`)."""
        if self.primary_metric not in METRIC_CATALOGUE:
            return None
        return METRIC_CATALOGUE.get(self.primary_metric).direction

    def check(self) -> ResolvedStudy:
        """Raise the first :class:`SpecError` of :attr:`problems` (variants that cannot train on
        the data, listed together; then a primary metric the runs do not record)."""
        if self.problems:
            raise self.problems[0]
        return self

    def bind(self, recipe: Recipe) -> Recipe:
        """A recipe made outside the study file (a search trial) as the study's variants are:
        its builder located from the study's folder and told this data's output units."""
        return bind_outputs(bound_recipe(recipe, self.spec.base_dir), self.dataset)

    def run_split(self, seed: int) -> RunSplit:
        """The split and model seeds of run ``seed`` (its number under cv)."""
        return _run_split(self.spec, seed)

    def splits(self, seed: int) -> Splits:
        """The rows of run ``seed``, drawn once per split."""
        where = self.run_split(seed)
        key = (where.split_seed, where.fold)
        if key not in self._splits:
            self._splits[key] = _draw(self.spec, self.dataset, where)
        return self._splits[key]

    def test_rows(self, seed: int) -> int:
        """How many rows run ``seed`` tests on (without drawing its arrays)."""
        where = self.run_split(seed)
        if where.fold is not None:
            return len(cv_folds(self.dataset, where.folds or 0, where.split_seed)[where.fold])
        return self.protocol.split_sizes["test"]

    def to_json(self) -> dict[str, Any]:
        """What the study's index stores (``study.json``: ``resolved``)."""
        direction = self.primary_direction
        return {
            "task": self.task,
            "task_reason": self.task_reason,
            "primary_metric": self.primary_metric,
            # stored so that report reads the direction the study ran with ("maximize", ...)
            "primary_metric_direction": None if direction is None else direction.value,
            # the checkpoint the report compares ("best" or "last"), as the study resolved it
            "evaluate": self.evaluate,
            "protocol": self.protocol.to_json(),
            "metrics": self.metrics,
            "backend": self.backend,
            "dataset": {
                "name": self.dataset.name,
                "classes": list(self.dataset.class_names),
                "features": len(self.dataset.feature_names),
                "feature_names": list(self.dataset.feature_names),
                "input_shape": list(self.dataset.input_shape),
                "source": self.dataset.source,
                "citation": self.dataset.citation,
                "majority_fraction": self.dataset.majority_fraction(),
                "intake": describe_intake(self.dataset),
                # a table fitted per run: its raw columns (feature_names) and how each run
                # makes its features; what a run fitted is on its Splits (``fitted``)
                "columns": None
                if self.dataset.columns is None
                else self.dataset.columns.describe(),
            },
        }


def resolve_study(spec: StudySpec, dataset: Dataset, *, backend: str) -> ResolvedStudy:
    """Work out what ``spec`` means on ``dataset``; its :attr:`~ResolvedStudy.problems` say why
    it cannot run there (:meth:`~ResolvedStudy.check` raises them), so lint can still read it.
    """
    # a builder is told the output units this data needs (recorded in each run's spec.json)
    bound = {name: bind_outputs(recipe, dataset) for name, recipe in spec.variants.items()}
    if bound != spec.variants:
        spec = spec.model_copy(update={"variants": bound})
    problems: list[SpecError] = []
    incompatible = [
        f"variants.{name}: {problem}"
        for name, recipe in spec.variants.items()
        for problem in check_compatible(recipe, dataset)
    ]
    if incompatible:
        problems.append(SpecError(incompatible, file=spec.source))
    try:
        metric = primary_metric(spec, dataset)
    except SpecError as exc:
        problems.append(exc)
        metric = spec.primary_metric or ""
    evaluate: Evaluate = "last"
    try:
        evaluate = study_evaluation(spec.variants)
    except SpecError as exc:
        problems.append(exc.located(file=spec.source))
    # The protocol reports the first run's split sizes: draw that split once, and keep it.
    where = _run_split(spec, spec.seeds[0])
    first = _draw(spec, dataset, where)
    return ResolvedStudy(
        spec=spec,
        dataset=dataset,
        backend=backend,
        primary_metric=metric,
        protocol=_protocol(spec, first, dataset),
        metrics={name: logged_names(r, dataset) for name, r in spec.variants.items()},
        problems=tuple(problems),
        evaluate=evaluate,
        _splits={(where.split_seed, where.fold): first},
    )


def _run_split(spec: StudySpec, seed: int) -> RunSplit:
    if spec.cv is not None:
        repeat, fold = divmod(seed, spec.cv.folds)
        return RunSplit(repeat, repeat, fold, spec.cv.folds)
    return RunSplit(seed if spec.resplit else spec.split_seed, seed)


def _draw(spec: StudySpec, dataset: Dataset, where: RunSplit) -> Splits:
    return make_splits(
        dataset,
        validation=spec.validation,
        seed=where.split_seed,
        fold=where.fold,
        folds=where.folds,
    )


def _protocol(spec: StudySpec, first: Splits, dataset: Dataset) -> Protocol:
    cv = spec.cv
    sizes = first.sizes()
    validated_on = "test set" if first.validation_is_test else "validation split"
    kind = "cv" if cv is not None else "resplit" if spec.resplit else "split"
    correction = _correction(_run_rows(spec, dataset, first)) if kind != "split" else 0.0
    return Protocol(
        kind=kind,
        validation=spec.validation,
        validated_on=validated_on,
        split_sizes=sizes,
        split_seed=spec.split_seed if kind == "split" else None,
        folds=cv.folds if cv else None,
        repeats=cv.repeats if cv else None,
        correction=correction,
    )


def _run_rows(spec: StudySpec, dataset: Dataset, first: Splits) -> list[tuple[int, int]]:
    """``(n_test, n)`` of every run of the study: its test rows and all its rows (train +
    validation + test; validation rows that are the test rows counted once). Under cv from each
    run's fold (folds may differ by a row); otherwise every run has the first run's sizes (a
    hold-out fraction, or the official test split, fixes them)."""
    if spec.cv is None:
        sizes = first.sizes()
        validation = 0 if first.validation_is_test else sizes["validation"]
        return [(sizes["test"], sizes["train"] + validation + sizes["test"])] * len(spec.seeds)
    rows = []
    for seed in spec.seeds:
        where = _run_split(spec, seed)
        fold = cv_folds(dataset, where.folds or 0, where.split_seed)[where.fold or 0]
        rows.append((len(fold), len(dataset.y)))
    return rows


def _correction(runs: list[tuple[int, int]]) -> float:
    """Nadeau-Bengio's n_test / n_train over the runs ``(n_test, n)``: the mean of the runs'
    n_test / (n - n_test), every row outside the test part counting as training."""
    return sum(test / (rows - test) for test, rows in runs) / len(runs)
