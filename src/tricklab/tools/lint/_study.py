"""Study-level rules: validation, the dataset, the primary metric."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from tricklab.data import Dataset, ResolvedStudy, suggested_transform
from tricklab.spec import (
    METRIC_CATALOGUE,
    Chance,
    Component,
    CsvSpec,
    StudySpec,
    ThoracicSpec,
    default_primary_metric,
)
from tricklab.tools.lint._findings import (
    MAJORITY_LIMIT,
    MIN_ID_ROWS,
    MIN_VALIDATION_CLASS_ROWS,
    MIN_VALIDATION_ROWS,
    Finding,
    finding,
)


# -- study-level rules ----------------------------------------------------------------------------
def study_findings(spec: StudySpec, resolved: ResolvedStudy | None) -> Iterator[Finding]:
    yield from _losses_on_their_own_scales(spec)
    if spec.validation == "test":
        yield finding(
            "TL005",
            "validation",
            'validation = "test" picks the best epoch and makes every early-stopping decision '
            "on the test set, so the test scores are optimistic.",
            "set validation = 0.1 (a fraction of the training data) and keep the test set for "
            "the final score.",
        )
    if resolved is None:
        return
    yield from _id_columns(spec, resolved.dataset)
    yield from _target_scale(spec, resolved.dataset)
    yield from _majority_accuracy(spec, resolved.dataset)
    yield from _one_cycle_steps(spec, resolved)
    yield from _best_on_few_rows(spec, resolved)


def _target_scale(spec: StudySpec, dataset: Dataset) -> Iterator[Finding]:
    """TL021: a regression target a network would start far from, without target_transform
    (a CSV's key; the built-in data have class targets)."""
    if dataset.task != "regression" or not isinstance(spec.dataset, CsvSpec):
        return
    if spec.dataset.target_transform is not None:
        return
    transform, why = suggested_transform(dataset.y)
    if transform is None:
        return
    yield finding(
        "TL021",
        "dataset.target_transform",
        f"the target is {why}; an untrained network predicts near 0, so the loss starts near "
        f"{float(np.mean(np.square(np.asarray(dataset.y, dtype=np.float64)))):.3g} and the first "
        "updates chase the scale, not the pattern.",
        f'set target_transform = "{transform}" in the dataset table (scores and predictions '
        "stay on the target's own scale).",
    )


def _losses_on_their_own_scales(spec: StudySpec) -> Iterator[Finding]:
    """TL013: comparing variants by their loss while they train different losses."""
    losses = {name: recipe.train.loss for name, recipe in spec.variants.items()}
    if spec.primary_metric != "loss" or len({str(loss.to_dict()) for loss in losses.values()}) < 2:
        return
    shown = ", ".join(sorted({loss.name for loss in losses.values()}))
    yield finding(
        "TL013",
        "primary_metric",
        f'primary_metric = "loss", but the variants train with different losses ({shown}): '
        "each variant is judged on its own loss, and those values are not comparable.",
        "choose a metric every variant records, e.g. auc or accuracy (classification) or mse "
        "(regression, the default).",
    )


def _one_cycle_steps(spec: StudySpec, resolved: ResolvedStudy) -> Iterator[Finding]:
    """TL014: a one_cycle schedule whose cycle ends before or after the training does."""
    rows = resolved.protocol.split_sizes["train"]  # the first run's, as runs draw it
    for name, recipe in spec.variants.items():
        schedule = recipe.train.optimizer.args.get("learning_rate")
        if not isinstance(schedule, Component) or schedule.name != "one_cycle":
            continue
        train = recipe.train
        steps = train.epochs * math.ceil(rows / train.batch_size)
        total: int = schedule.args["total_steps"]  # required: the registry checked it
        if total == steps:
            continue
        yield finding(
            "TL014",
            "train.optimizer.learning_rate.total_steps",
            f"one_cycle runs over total_steps={total}, but {train.epochs} epochs of "
            f"ceil({rows} training rows / batch {train.batch_size}) steps are {steps}: the "
            + (
                "cycle ends early and the rest trains at its tiny final rate."
                if total < steps
                else "training stops before the rate comes down."
            ),
            f"set total_steps = {steps}.",
            variant=name,
        )


def _best_on_few_rows(spec: StudySpec, resolved: ResolvedStudy) -> Iterator[Finding]:
    """TL016: the best checkpoint is what the comparisons use, chosen on a validation split of
    under 50 rows or under 10 rows of some class (the first run's split, as runs draw it)."""
    if resolved.evaluate != "best":
        return
    dataset = resolved.dataset
    rows = resolved.protocol.split_sizes["validation"]
    few: list[str] = []
    if dataset.task in ("binary", "multiclass"):
        y_val = resolved.splits(spec.seeds[0]).y_val
        counts = np.bincount(y_val.astype(np.int64), minlength=len(dataset.class_names))
        few = [
            f"{int(n)} of class '{dataset.class_names[c]}'"
            for c, n in enumerate(counts)
            if n < MIN_VALIDATION_CLASS_ROWS
        ]
    if rows >= MIN_VALIDATION_ROWS and not few:
        return
    declared = any(r.train.evaluate is not None for r in spec.variants.values())
    chosen = (
        'train.evaluate = "best"'
        if declared
        else 'train.evaluate is "best" by default (early stopping restores the best weights)'
    )
    shown = f"{rows} validation rows" + (f", {', '.join(few)}" if few else "")
    yield finding(
        "TL016",
        "train.evaluate",
        f"{chosen}: each run's scores are those of the epoch that looked best on {shown} "
        f"(fewer than {MIN_VALIDATION_ROWS} rows, or {MIN_VALIDATION_CLASS_ROWS} of a class): "
        "on so few rows that choice is mostly noise, and it can change the verdicts.",
        'set train.evaluate = "last" in [train], or validate on more rows (a larger '
        "validation fraction).",
    )


def _id_columns(spec: StudySpec, dataset: Dataset) -> Iterator[Finding]:
    """TL006: columns of unique integers that fill a range, in any order (row ids)."""
    x = dataset.x
    n = len(x)
    if x.ndim != 2 or n < MIN_ID_ROWS or x.shape[1] != len(dataset.feature_names):
        return
    values = np.asarray(x, dtype=np.float64)
    finite = np.isfinite(values).all(axis=0)
    whole = finite & (values == np.round(values)).all(axis=0)
    low, high = values.min(axis=0), values.max(axis=0)
    for column in np.flatnonzero(whole & (high - low + 1 == n)):
        if len(np.unique(values[:, column])) != n:
            continue
        name = dataset.feature_names[column]
        thoracic = isinstance(spec.dataset, ThoracicSpec)
        yield finding(
            "TL006",
            "dataset.keep_id" if thoracic else "dataset",
            f"feature column '{name}' (column {column}) of dataset '{dataset.name}' holds the "
            f"unique integers {int(low[column])}..{int(high[column])}, one per row: a row id, "
            "which the model can memorise but which says nothing about new rows.",
            "set keep_id = false in the dataset table."
            if thoracic
            else f'add drop = ["{name}"] to the dataset table.',
        )


def _majority_accuracy(spec: StudySpec, dataset: Dataset) -> Iterator[Finding]:
    """TL011: a primary metric whose chance level is the majority class (accuracy), on data
    where guessing the majority scores 80%+."""
    share = dataset.majority_fraction()
    if share is None or share < MAJORITY_LIMIT:
        return
    metric = spec.primary_metric or default_primary_metric(dataset.task)
    if metric not in METRIC_CATALOGUE:
        return  # an unknown primary metric is an error of the study itself
    if METRIC_CATALOGUE.get(metric).chance is not Chance.MAJORITY:
        return
    if spec.primary_metric is None:
        chosen = f"{metric} is the default primary metric for a {dataset.task} target"
    else:
        chosen = f'primary_metric = "{metric}"'
    majority = dataset.class_names[int(np.bincount(dataset.y).argmax())]
    fix = (
        'set primary_metric = "auc" (or "balanced_accuracy").'
        if dataset.task == "binary"
        else 'set primary_metric = "balanced_accuracy".'
    )
    yield finding(
        "TL011",
        "primary_metric",
        f"{chosen}, but {share:.0%} of the targets of dataset '{dataset.name}' are class "
        f"'{majority}': always guessing it scores {share:.2f}, so {metric} near that says "
        "nothing.",
        fix,
    )
