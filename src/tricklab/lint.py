"""``tricklab lint``: recipes that train, but not the way their author thinks.

A study file can be valid and still hold a mistake the lecture makes or warns about: a Dense
layer without activation before the output layer, a regression loss on class labels, validating
on the test set, an id column among the features. :func:`lint` finds these without training
and without importing Keras (a study is linted in well under a second). Rules that need the data
(TL003, TL004, TL006, TL011, and TL010's exact list of logged names) run only when a loaded
:class:`~tricklab.datasets.Dataset` is passed.

Each :class:`Finding` has a code (see :data:`RULES`), a severity (``"warning"``, or ``"hint"``
for advice the lecture gives but a study may knowingly ignore), the variant it concerns, the
field path as written in a study file, a message that states the rule and the received value,
and a one-line fix.

Variants. Recipe rules run on every variant's merged recipe. A finding that every variant has,
identically (typically inherited from the base recipe in ``[model]``/``[train]``), is reported
once with ``variant=None``; its line says ``all variants``. A finding only some variants have is
reported once per variant (``variants.mse: train.loss: ...``). Study-level findings (validation,
dataset, primary metric) also have ``variant=None``; their paths lie outside ``model.``/``train.``
and their lines name no variant.

Silencing. ``[lint] ignore = {TL003 = "the lecture compares losses on purpose"}`` keeps the
findings of a rule but marks them ``ignored`` with that reason; :func:`active` drops them. An
unknown code there is an error. Findings are ordered by code, then by variant order::

    spec = load_study("studies/thoracic-losses.toml")
    findings = lint(spec, load_dataset(spec.dataset, base_dir=spec.base_dir))
    print("\\n".join(format_findings(active(findings))))
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tricklab.build import logged_names
from tricklab.components import ONE_HOT_LOSSES, REGRESSION_LOSSES
from tricklab.datasets import Dataset, ThoracicSpec
from tricklab.errors import SpecError
from tricklab.registry import Component
from tricklab.spec import (
    ActivationLayer,
    BatchNormLayer,
    DenseLayer,
    DropoutLayer,
    FlattenLayer,
    GaussianNoiseLayer,
    Recipe,
    StudySpec,
)

__all__ = ["RULES", "SEVERITIES", "Finding", "active", "format_findings", "lint"]

#: Rule code -> what it finds, in one line (the README and ``tricklab lint`` list these).
RULES: dict[str, str] = {
    "TL001": "a Dense layer without activation feeds another Dense layer: the two collapse into "
    "one linear map",
    "TL002": "the output does not fit the loss: softmax or a categorical loss on one unit, or "
    "sigmoid on several units with a categorical loss",
    "TL003": "a regression loss (mean_squared_error, ...) on a classification target",
    "TL004": "mean_absolute_percentage_error on targets that are 0 (it divides by the target)",
    "TL005": 'validation = "test": the chosen epoch and early stopping peek at the test set',
    "TL006": "a feature column that is a row id (unique integers filling a range)",
    "TL007": "an L2 kernel_regularizer together with the optimizer's weight decay: the same "
    "penalty twice",
    "TL008": "an L2 kernel_regularizer and a max-norm kernel_constraint on one layer: either one "
    "is enough",
    "TL009": "dropout after the output layer, or a dropout rate of 1 (drops everything)",
    "TL010": "early stopping or the checkpoint monitors a value the run does not log",
    "TL011": "accuracy is the primary metric while one class has 80% or more of the targets",
}
#: Rule code -> severity; rules not listed are warnings.
SEVERITIES: dict[str, str] = {code: "warning" for code in RULES} | {"TL008": "hint"}

#: Layers that pass a linear map through unchanged in kind (inference-time affine or identity).
_PASS_THROUGH = (DropoutLayer, FlattenLayer, GaussianNoiseLayer, BatchNormLayer)
#: Output activations that normalise over the units, and what they output on a single unit.
_NORMALISING = {"softmax": "1.0", "sparsemax": "1.0", "log_softmax": "0.0"}
#: Losses that expect one probability distribution over the classes per row.
_CATEGORICAL_LOSSES = frozenset(
    {
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
        "categorical_focal_crossentropy",
    }
)
_MAX_NORM_CONSTRAINTS = frozenset({"max_norm", "min_max_norm"})
#: Keras defaults of the arguments these rules read (checked against Keras by tests/test_lint.py).
KERAS_DEFAULTS = {
    ("regularizer", "l2", "l2"): 0.01,
    ("regularizer", "l1_l2", "l2"): 0.0,
    ("optimizer", "adamw", "weight_decay"): 0.004,
}
#: The fewest rows for which a unique, gap-free integer column counts as an id (TL006).
MIN_ID_ROWS = 10
#: Majority share from which accuracy as the primary metric is flagged (TL011).
MAJORITY_LIMIT = 0.8
_RECIPE_ROOTS = ("model.", "train.")


@dataclass(frozen=True)
class Finding:
    """One problem found in a study; ``variant`` is None for study-level or all-variant ones."""

    code: str
    severity: str
    variant: str | None
    path: str
    message: str
    fix: str
    ignored: str | None = None

    @property
    def scope(self) -> str | None:
        """``variants.NAME``, ``all variants`` (a recipe finding every variant has), or None."""
        if self.variant is not None:
            return f"variants.{self.variant}"
        return "all variants" if self.path.startswith(_RECIPE_ROOTS) else None

    def line(self) -> str:
        """``TL003 warning variants.mse: train.loss: <message> Fix: <fix>``."""
        scope = f"{self.scope}: " if self.scope else ""
        return f"{self.code} {self.severity} {scope}{self.path}: {self.message} Fix: {self.fix}"


def lint(spec: StudySpec, dataset: Dataset | None = None) -> list[Finding]:
    """Every finding for ``spec``, silenced ones included (with ``ignored`` set).

    Rules that need the data are skipped when ``dataset`` is None. Raises :class:`SpecError`
    when ``[lint] ignore`` names an unknown rule.
    """
    _check_ignore(spec.lint.ignore)
    study = list(_study_findings(spec, dataset))
    per_variant = [
        (name, finding)
        for name, recipe in spec.variants.items()
        for finding in _recipe_findings(recipe, dataset)
    ]
    findings = study + _collapse(per_variant, list(spec.variants))
    findings.sort(key=lambda f: f.code)  # stable: variant order within a code
    ignore = spec.lint.ignore
    return [replace(f, ignored=ignore[f.code]) if f.code in ignore else f for f in findings]


def active(findings: Iterable[Finding]) -> list[Finding]:
    """The findings not silenced by ``[lint] ignore``."""
    return [f for f in findings if f.ignored is None]


def format_findings(findings: Iterable[Finding]) -> list[str]:
    """One plain line per finding; silenced ones end with ``(ignored: <reason>)``."""
    return [
        f.line() + (f" (ignored: {f.ignored})" if f.ignored is not None else "") for f in findings
    ]


# -- plumbing -----------------------------------------------------------------------------------
def _check_ignore(ignore: dict[str, str]) -> None:
    unknown = [code for code in ignore if code not in RULES]
    if unknown:
        expected = ", ".join(RULES)
        raise SpecError(
            [f"unknown rule '{code}'. Expected one of: {expected}." for code in unknown],
            where="lint.ignore",
        )


def _finding(code: str, path: str, message: str, fix: str, variant: str | None = None) -> Finding:
    return Finding(code, SEVERITIES[code], variant, path, message, fix)


def _collapse(per_variant: list[tuple[str, Finding]], variants: list[str]) -> list[Finding]:
    """Per-variant findings; one every variant has identically becomes a single all-variant one."""
    holders: dict[Finding, set[str]] = {}
    for name, finding in per_variant:
        holders.setdefault(finding, set()).add(name)
    out: list[Finding] = []
    emitted: set[Finding] = set()
    for name, finding in per_variant:
        if len(holders[finding]) == len(variants):
            if finding not in emitted:
                emitted.add(finding)
                out.append(finding)
        else:
            out.append(replace(finding, variant=name))
    return out


# -- study-level rules ----------------------------------------------------------------------------
def _study_findings(spec: StudySpec, dataset: Dataset | None) -> Iterator[Finding]:
    if spec.validation == "test":
        yield _finding(
            "TL005",
            "validation",
            'validation = "test" picks the best epoch and makes every early-stopping decision '
            "on the test set, so the test scores are optimistic.",
            "set validation = 0.1 (a fraction of the training data) and keep the test set for "
            "the final score.",
        )
    if dataset is None:
        return
    yield from _id_columns(spec, dataset)
    yield from _majority_accuracy(spec, dataset)


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
        yield _finding(
            "TL006",
            "dataset.keep_id" if thoracic else "dataset",
            f"feature column '{name}' (column {column}) of dataset '{dataset.name}' holds the "
            f"unique integers {int(low[column])}..{int(high[column])}, one per row: a row id, "
            "which the model can memorise but which says nothing about new rows.",
            "set keep_id = false in the dataset table."
            if thoracic
            else f"drop the column '{name}' from the CSV file.",
        )


def _majority_accuracy(spec: StudySpec, dataset: Dataset) -> Iterator[Finding]:
    """TL011: accuracy as the primary metric on data where guessing the majority scores 80%+."""
    share = dataset.majority_fraction()
    if share is None or share < MAJORITY_LIMIT:
        return
    metric = spec.primary_metric
    if metric is None:
        if dataset.task != "multiclass":
            return  # the default primary metric is ROC AUC for binary targets
        chosen = "accuracy is the default primary metric for a multiclass target"
    elif metric.removeprefix("val_").removeprefix("test_") == "accuracy":
        chosen = f'primary_metric = "{metric}"'
    else:
        return
    majority = dataset.class_names[int(np.bincount(dataset.y).argmax())]
    fix = (
        'set primary_metric = "auc" (or "balanced_accuracy").'
        if dataset.task == "binary"
        else 'set primary_metric = "balanced_accuracy".'
    )
    yield _finding(
        "TL011",
        "primary_metric",
        f"{chosen}, but {share:.0%} of the targets of dataset '{dataset.name}' are class "
        f"'{majority}': always guessing it scores {share:.2f}, so accuracy near that says "
        "nothing.",
        fix,
    )


# -- recipe rules ---------------------------------------------------------------------------------
def _recipe_findings(recipe: Recipe, dataset: Dataset | None) -> Iterator[Finding]:
    yield from _linear_stacks(recipe)
    yield from _output_activation(recipe)
    yield from _weight_penalties(recipe)
    yield from _dropout(recipe)
    yield from _monitors(recipe, dataset)
    if dataset is not None:
        yield from _regression_loss(recipe, dataset)
        yield from _percentage_error(recipe, dataset)


def _is_linear(activation: Component | None) -> bool:
    return activation is None or (activation.name == "linear" and not activation.args)


def _linear_stacks(recipe: Recipe) -> Iterator[Finding]:
    """TL001: a Dense layer without activation whose output goes (almost) straight to a Dense."""
    layers = recipe.model.layers
    for index, layer in enumerate(layers):
        if not isinstance(layer, DenseLayer) or not _is_linear(layer.activation):
            continue
        shown = "linear activation" if layer.activation else "no activation"
        path = f"model.layers[{index}].activation"
        fix = 'add an activation, e.g. activation = "relu" (or remove the layer).'
        if layer.repeat > 1:
            yield _finding(
                "TL001",
                path,
                f"Dense layer with {shown} (units={layer.units}) repeated {layer.repeat} times: "
                "consecutive copies collapse into one linear map, so the extra copies add "
                "parameters but no capacity.",
                fix,
            )
            continue
        following = _next_dense(layers, index)
        if following is not None:
            yield _finding(
                "TL001",
                path,
                f"Dense layer with {shown} (units={layer.units}) feeds the Dense layer "
                f"model.layers[{following}]: the two collapse into one linear map, so this layer "
                "adds parameters but no capacity.",
                fix,
            )


def _next_dense(layers: tuple[Any, ...], index: int) -> int | None:
    for later in range(index + 1, len(layers)):
        layer = layers[later]
        if isinstance(layer, DenseLayer):
            return later
        if isinstance(layer, ActivationLayer) and _is_linear(layer.activation):
            continue
        if not isinstance(layer, _PASS_THROUGH):
            return None
    return None


def _output_activation(recipe: Recipe) -> Iterator[Finding]:
    """TL002: an output activation that cannot express the target."""
    layers = recipe.model.layers
    index, output = recipe.model.output_layer()
    where, activation = index, output.activation
    for later in range(index + 1, len(layers)):
        if isinstance(layers[later], ActivationLayer):
            where, activation = later, layers[later].activation
    loss = recipe.train.loss.name
    if loss in ONE_HOT_LOSSES and output.units == 1:
        yield _finding(
            "TL002",
            "train.loss",
            f"'{loss}' on a single output unit: Keras normalises the predictions over the "
            "output units, which makes one unit always 1.0, so the loss is constant and the "
            "model cannot learn.",
            "use binary_crossentropy with 1 sigmoid unit, or softmax with one unit per class.",
        )
    if activation is None:
        return
    path = f"model.layers[{where}].activation"
    if activation.name in _NORMALISING and output.units == 1:
        yield _finding(
            "TL002",
            path,
            f"{activation.name} on a single output unit always outputs "
            f"{_NORMALISING[activation.name]}, so the model cannot learn.",
            "use sigmoid with 1 unit, or softmax with one unit per class.",
        )
    if activation.name == "sigmoid" and output.units > 1 and loss in _CATEGORICAL_LOSSES:
        yield _finding(
            "TL002",
            path,
            f"sigmoid on {output.units} output units with loss '{loss}': each unit is an "
            "independent probability, so the outputs do not form the one distribution over "
            "classes that a categorical loss expects.",
            'use activation = "softmax" on the output layer (sigmoid on several units is for '
            "multi-label targets with binary_crossentropy).",
        )


def _show_l2(regularizer: Component, l2: float) -> str:
    if "l2" in regularizer.args:
        return f"kernel_regularizer {regularizer}"
    return f"kernel_regularizer {regularizer} (l2={l2:g}, the Keras default)"


def _l2_strength(regularizer: Component | None) -> float:
    if regularizer is None or regularizer.name not in ("l2", "l1_l2"):
        return 0.0
    default = KERAS_DEFAULTS[("regularizer", regularizer.name, "l2")]
    return float(regularizer.args.get("l2", default))


def _weight_decay(optimizer: Component) -> tuple[float, bool]:
    """(decoupled weight decay of the optimizer, whether it is the Keras default)."""
    given = optimizer.args.get("weight_decay")
    if given is not None:
        return float(given), False
    return KERAS_DEFAULTS.get(("optimizer", optimizer.name, "weight_decay"), 0.0), True


def _weight_penalties(recipe: Recipe) -> Iterator[Finding]:
    """TL007 (L2 plus optimizer weight decay) and TL008 (L2 plus a max-norm constraint)."""
    optimizer = recipe.train.optimizer
    decay, default = _weight_decay(optimizer)
    for index, layer in enumerate(recipe.model.layers):
        if not isinstance(layer, DenseLayer):
            continue
        l2 = _l2_strength(layer.kernel_regularizer)
        if l2 <= 0:
            continue
        path = f"model.layers[{index}].kernel_regularizer"
        if decay > 0:
            source = " (the Keras default)" if default else ""
            yield _finding(
                "TL007",
                path,
                f"{_show_l2(layer.kernel_regularizer, l2)} together with "
                f"optimizer '{optimizer.name}' weight_decay={decay:g}{source}: both shrink the "
                "same weights toward 0, so the penalty is applied twice.",
                "remove the kernel_regularizer, or set the optimizer's "
                "weight_decay = 0"
                + (' (or use optimizer = "adam").' if optimizer.name == "adamw" else "."),
            )
        constraint = layer.kernel_constraint
        if constraint is not None and constraint.name in _MAX_NORM_CONSTRAINTS:
            yield _finding(
                "TL008",
                path,
                f"{_show_l2(layer.kernel_regularizer, l2)} together with "
                f"kernel_constraint {constraint} on the same layer: weight decay and a weight "
                "constraint serve the same purpose, and the lecture notes one is enough.",
                "remove the kernel_regularizer or the kernel_constraint (or compare the two "
                "as variants).",
            )


def _dropout(recipe: Recipe) -> Iterator[Finding]:
    """TL009: dropout after the output layer, or a rate that drops everything."""
    layers = recipe.model.layers
    output = recipe.model.output_layer()[0]
    for index, layer in enumerate(layers):
        if not isinstance(layer, DropoutLayer):
            continue
        if layer.rate >= 1:
            yield _finding(
                "TL009",
                f"model.layers[{index}].rate",
                f"dropout rate={layer.rate:g} drops every input, so nothing reaches the next "
                "layer while training.",
                "use a rate below 1, e.g. rate = 0.5 as in the lecture.",
            )
        elif index > output:
            yield _finding(
                "TL009",
                f"model.layers[{index}]",
                f"dropout (rate={layer.rate:g}) after the output layer model.layers[{output}] "
                "zeroes predictions while training, so the loss punishes outputs the model "
                "never made.",
                "move the dropout layer before the output Dense layer.",
            )


def _monitors(recipe: Recipe, dataset: Dataset | None) -> Iterator[Finding]:
    """TL010: early stopping / checkpoint monitors that the run does not log."""
    train = recipe.train
    if dataset is not None:
        logged = logged_names(recipe, dataset)
    else:
        metrics = (
            [m.name for m in train.metrics]
            if train.metrics is not None
            else ["accuracy", "mean_absolute_error"]  # the defaults for classes / regression
        )
        names = ["loss", *metrics]
        logged = names + [f"val_{n}" for n in names]
    checks = []
    if train.early_stopping is not None:
        checks.append(("train.early_stopping.monitor", "early stopping", train.early_stopping))
    if train.checkpoint.monitor is not None:
        checks.append(("train.checkpoint.monitor", "the best-weights checkpoint", train.checkpoint))
    for path, what, part in checks:
        monitor = part.monitor
        if monitor in logged:
            continue
        close = difflib.get_close_matches(monitor, logged, n=1, cutoff=0.7)
        suggestion = close[0] if close else "val_loss"
        data = f" on dataset '{dataset.name}'" if dataset is not None else ""
        yield _finding(
            "TL010",
            path,
            f"{what} monitors {monitor!r}, which this run does not log{data} (it logs "
            f"{', '.join(logged)}), so it can never act on it.",
            f'monitor = "{suggestion}", or add the metric to train.metrics.',
        )


def _regression_loss(recipe: Recipe, dataset: Dataset) -> Iterator[Finding]:
    """TL003: a loss for real-valued targets on class labels."""
    loss = recipe.train.loss.name
    if dataset.task == "regression" or loss not in REGRESSION_LOSSES:
        return
    fix = (
        "use binary_crossentropy with one sigmoid output unit."
        if dataset.task == "binary"
        else "use sparse_categorical_crossentropy with one softmax output unit per class."
    )
    yield _finding(
        "TL003",
        "train.loss",
        f"regression loss '{loss}' on the {dataset.n_classes}-class target of dataset "
        f"'{dataset.name}': it treats the class labels as real numbers and its gradient fades "
        "where the output saturates, so it usually trains worse than a crossentropy.",
        fix,
    )


def _percentage_error(recipe: Recipe, dataset: Dataset) -> Iterator[Finding]:
    """TL004: MAPE (loss or metric) on targets that are 0."""
    name = "mean_absolute_percentage_error"
    paths = ["train.loss"] if recipe.train.loss.name == name else []
    paths += [
        f"train.metrics[{i}]" for i, m in enumerate(recipe.train.metrics or ()) if m.name == name
    ]
    if not paths:
        return
    targets = [dataset.y] + ([dataset.y_test] if dataset.y_test is not None else [])
    zeros = sum(int(np.count_nonzero(y == 0)) for y in targets)
    total = sum(len(y) for y in targets)
    if not zeros:
        return
    for path in paths:
        yield _finding(
            "TL004",
            path,
            f"{name} divides by the target, and {zeros} of {total} targets of dataset "
            f"'{dataset.name}' are 0: Keras divides by a tiny epsilon there, so those rows "
            "dominate the value.",
            "use mean_absolute_error (or shift the target so that no value is 0).",
        )
