"""The metric catalogue: every fact tricklab uses about a metric, in one table.

A metric's direction (is a larger value better), its range, its chance level, who computes it
(Keras, compiled into the model, or tricklab, from the test outputs) and its label live here and
nowhere else: statistics, reports, search, lint and the data rules read them through
:meth:`MetricCatalogue.get`. The catalogue covers the names a run can record: ``loss``, every
metric of :data:`tricklab.spec.components.METRICS`, every loss name (Keras compiles a loss given
as a metric under its own name), the counts ``false_positives``/``false_negatives``, and the
test scores tricklab computes (:data:`COMPUTED_SCORES`). ``tests/test_metric_catalogue.py``
checks that it covers the registries.

    >>> from tricklab.spec import METRIC_CATALOGUE
    >>> METRIC_CATALOGUE.get("val_auc").direction   # a history column's val_ prefix is ignored
    <Direction.MAXIMIZE: 'maximize'>

Pure: no Keras, no numpy.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

from tricklab.base.errors import TricklabError
from tricklab.spec._validation import did_you_mean


class Direction(StrEnum):
    """Which way a metric improves; the values are Optuna's ``direction`` strings."""

    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"

    @property
    def higher_is_better(self) -> bool:
        return self is Direction.MAXIMIZE

    @property
    def better(self) -> str:
        """``"higher"`` or ``"lower"``, as in "(higher is better)"."""
        return "higher" if self is Direction.MAXIMIZE else "lower"


class Chance(StrEnum):
    """How a metric's chance level is found: what a model that learned nothing scores."""

    #: No level is known (precision, a loss, ...), or the metric is itself a baseline.
    NONE = "none"
    #: 0.5: a random ranking of positives and negatives (ROC AUC).
    AUC_HALF = "auc 0.5"
    #: The majority class's share of the test rows: always answering it (accuracy).
    MAJORITY = "majority class"
    #: 1 / classes: any constant answer (balanced accuracy).
    GUESSING = "guessing"
    #: The test MSE of always predicting the training mean (the ``mean_baseline_mse`` score).
    MEAN_MSE = "mean predictor mse"
    #: 0: the R^2 of always predicting the mean.
    MEAN_R2 = "mean predictor r2"


class Source(StrEnum):
    """Who produces a metric's values."""

    #: Compiled into the model by Keras: logged per epoch (with a ``val_`` twin) and at test.
    KERAS = "keras"
    #: Computed by tricklab from the model's test outputs (``engines._scoring.score``).
    TRICKLAB = "tricklab"
    #: A Keras metric that tricklab also computes, replacing Keras's test value on some tasks
    #: (``auc``: ROC AUC on binary targets).
    BOTH = "keras and tricklab"


@dataclass(frozen=True)
class MetricFacts:
    """One metric: its canonical ``name``, direction, range (``None``: unbounded on that side),
    chance rule, source, table ``label`` and the other names it is known by."""

    name: str
    direction: Direction
    lower: float | None
    upper: float | None
    chance: Chance
    source: Source
    label: str
    aliases: tuple[str, ...] = ()

    @property
    def higher_is_better(self) -> bool:
        return self.direction.higher_is_better

    @property
    def bounds(self) -> tuple[float, float]:
        """The range with infinities for missing bounds, for clipping intervals."""
        low = -math.inf if self.lower is None else self.lower
        high = math.inf if self.upper is None else self.upper
        return low, high


class UnknownMetricError(TricklabError, ValueError):
    """A metric name the catalogue does not know."""


class MetricCatalogue:
    """The metrics by name, with one :meth:`get` (like a Keras registry's ``get``)."""

    def __init__(self, entries: list[MetricFacts]) -> None:
        self._entries: dict[str, MetricFacts] = {}
        self._aliases: dict[str, str] = {}
        for entry in entries:
            for name in (entry.name, *entry.aliases):
                if name in self._entries or name in self._aliases:
                    raise ValueError(f"metric {name!r} is catalogued twice. Received: {name=}.")
            self._entries[entry.name] = entry
            self._aliases.update(dict.fromkeys(entry.aliases, entry.name))

    def names(self) -> list[str]:
        """The canonical names, sorted (aliases not included)."""
        return sorted(self._entries)

    def all_names(self) -> list[str]:
        """Canonical names and aliases, sorted."""
        return sorted([*self._entries, *self._aliases])

    def __iter__(self) -> Iterator[MetricFacts]:
        return iter(self._entries[name] for name in self.names())

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        plain = name.removeprefix("val_")
        return plain in self._entries or plain in self._aliases

    def get(self, name: str) -> MetricFacts:
        """The facts of ``name``: a metric, an alias or a history column (``val_`` ignored).

        Raises :class:`UnknownMetricError` for a name the catalogue does not know.
        """
        if name not in self:
            raise UnknownMetricError(
                "Unknown metric: tricklab has no direction, range or chance level for it."
                f"{did_you_mean(str(name), self.all_names())} Expected one of: "
                f"{', '.join(self.names())} (a history column may add val_). "
                f"Received: metric={name!r}."
            )
        plain = name.removeprefix("val_")
        return self._entries[self._aliases.get(plain, plain)]


_MAX, _MIN = Direction.MAXIMIZE, Direction.MINIMIZE
_KERAS, _TRICKLAB = Source.KERAS, Source.TRICKLAB
_OPEN = None  # an unbounded side of a range


def _share(name: str, label: str, chance: Chance = Chance.NONE) -> MetricFacts:
    """A share of the rows (accuracy, precision, ...): larger is better, in [0, 1]."""
    return MetricFacts(name, _MAX, 0.0, 1.0, chance, _KERAS, label)


def _error(name: str, label: str, *aliases: str, chance: Chance = Chance.NONE) -> MetricFacts:
    """An error or loss that is never negative: smaller is better, in [0, inf)."""
    return MetricFacts(name, _MIN, 0.0, _OPEN, chance, _KERAS, label, aliases)


METRIC_CATALOGUE = MetricCatalogue(
    [
        # The training loss, whatever it is: lower is better; some losses are negative.
        MetricFacts("loss", _MIN, _OPEN, _OPEN, Chance.NONE, _KERAS, "loss"),
        # -- the metric registry (components.METRICS) ----------------------------------------
        _share("accuracy", "accuracy", Chance.MAJORITY),
        MetricFacts("auc", _MAX, 0.0, 1.0, Chance.AUC_HALF, Source.BOTH, "AUC"),
        _share("precision", "precision"),
        _share("recall", "recall"),
        _share("top_k_categorical_accuracy", "top-k accuracy"),
        _share("sparse_top_k_categorical_accuracy", "top-k accuracy"),
        _error("mean_squared_error", "mean squared error", chance=Chance.MEAN_MSE),
        _error("mean_absolute_error", "mean absolute error"),
        _error("mean_absolute_percentage_error", "mean absolute % error", "mape"),
        _error("mean_squared_logarithmic_error", "mean squared log error", "msle"),
        _error("root_mean_squared_error", "root mean squared error", "rmse"),
        MetricFacts("r2_score", _MAX, _OPEN, 1.0, Chance.MEAN_R2, _KERAS, "R²"),
        # -- loss names compiled as metrics (components.LOSSES) -------------------------------
        _error("binary_crossentropy", "binary crossentropy"),
        _error("binary_focal_crossentropy", "binary focal crossentropy"),
        _error("categorical_crossentropy", "categorical crossentropy"),
        _error("categorical_focal_crossentropy", "categorical focal crossentropy"),
        _error("categorical_generalized_cross_entropy", "generalized crossentropy"),
        _error("sparse_categorical_crossentropy", "sparse categorical crossentropy"),
        # y_pred - y_true * log(y_pred): negative when both are large
        MetricFacts("poisson", _MIN, _OPEN, _OPEN, Chance.NONE, _KERAS, "Poisson deviance"),
        _error("kl_divergence", "KL divergence", "kld", "kullback_leibler_divergence"),
        _error("huber", "Huber loss", "huber_loss"),
        _error("log_cosh", "log-cosh error", "logcosh", "log_cosh_error"),
        _error("hinge", "hinge loss"),
        _error("squared_hinge", "squared hinge loss"),
        _error("categorical_hinge", "categorical hinge loss"),
        # As a metric Keras logs the similarity itself (the loss is its negative).
        MetricFacts("cosine_similarity", _MAX, -1.0, 1.0, Chance.NONE, _KERAS, "cosine similarity"),
        MetricFacts("dice", _MIN, 0.0, 1.0, Chance.NONE, _KERAS, "Dice loss"),
        MetricFacts("tversky", _MIN, 0.0, 1.0, Chance.NONE, _KERAS, "Tversky loss"),
        # -- counts of wrong answers (keras.metrics.FalsePositives, FalseNegatives) -----------
        _error("false_positives", "false positives"),
        _error("false_negatives", "false negatives"),
        # -- test scores tricklab computes (engines._scoring.score) ---------------------------
        MetricFacts(
            "balanced_accuracy", _MAX, 0.0, 1.0, Chance.GUESSING, _TRICKLAB, "balanced accuracy"
        ),
        # Average precision (the area under the precision-recall curve): chance is the positive
        # class's share of the test rows, which no chance rule gives (the majority share need
        # not be the negatives'), so none is claimed.
        MetricFacts("pr_auc", _MAX, 0.0, 1.0, Chance.NONE, _TRICKLAB, "PR AUC"),
        # F1 of the positive class at the threshold 0.5 (binary), and its mean over the classes
        # (multiclass); a constant answer scores 0 or the positives' share: no single level.
        MetricFacts("f1", _MAX, 0.0, 1.0, Chance.NONE, _TRICKLAB, "F1"),
        MetricFacts("f1_macro", _MAX, 0.0, 1.0, Chance.NONE, _TRICKLAB, "macro F1"),
        # The outputs' log loss as class probabilities (the prior's entropy is not recorded).
        MetricFacts("log_loss", _MIN, 0.0, _OPEN, Chance.NONE, _TRICKLAB, "log loss"),
        # The majority class's accuracy is itself the chance level: no chance rule of its own.
        MetricFacts("majority_baseline", _MAX, 0.0, 1.0, Chance.NONE, _TRICKLAB, "majority class"),
        MetricFacts("mse", _MIN, 0.0, _OPEN, Chance.MEAN_MSE, _TRICKLAB, "MSE"),
        MetricFacts("mae", _MIN, 0.0, _OPEN, Chance.NONE, _TRICKLAB, "MAE"),
        MetricFacts("r2", _MAX, _OPEN, 1.0, Chance.MEAN_R2, _TRICKLAB, "R²"),
        # The mean predictor's MSE: an error (smaller is better), and itself the chance level.
        MetricFacts(
            "mean_baseline_mse", _MIN, 0.0, _OPEN, Chance.NONE, _TRICKLAB, "mean predictor MSE"
        ),
    ]
)

#: Test scores the engines compute for every run of a task, besides its loss and compiled
#: metrics (``engines._scoring.score``).
COMPUTED_SCORES: Mapping[str, tuple[str, ...]] = {
    "binary": ("auc", "pr_auc", "f1", "log_loss", "balanced_accuracy", "majority_baseline"),
    "multiclass": ("balanced_accuracy", "f1_macro", "log_loss", "majority_baseline"),
    "regression": ("mse", "mae", "r2", "mean_baseline_mse"),
}
#: The primary metric of a study that names none: one every variant records, whatever its loss.
DEFAULT_PRIMARY_METRIC: Mapping[str, str] = {
    "binary": "auc",
    "multiclass": "accuracy",
    "regression": "mse",
}


def default_primary_metric(task: str) -> str:
    """The primary metric of a study on a ``task`` target that names none."""
    if task not in DEFAULT_PRIMARY_METRIC:
        raise TricklabError(
            f"Unknown task: expected one of {', '.join(DEFAULT_PRIMARY_METRIC)}. "
            f"Received: task={task!r}."
        )
    return DEFAULT_PRIMARY_METRIC[task]


def chance_level(
    metric: str,
    *,
    classes: int = 0,
    majority: float | None = None,
    mean_mse: float | None = None,
) -> tuple[float, str] | None:
    """What ``metric`` scores without learning, and that baseline's name; None when unknown.

    The data's own baselines come from the caller: ``classes`` (their number), ``majority``
    (the majority class's share of the test rows) and ``mean_mse`` (the test MSE of predicting
    the training mean).
    """
    rule = METRIC_CATALOGUE.get(metric).chance
    if rule is Chance.AUC_HALF:
        return 0.5, "AUC"
    if rule is Chance.MAJORITY and majority is not None:
        return float(majority), "majority class"
    if rule is Chance.GUESSING and classes >= 2:
        return 1 / classes, "guessing"
    if rule is Chance.MEAN_MSE and mean_mse is not None:
        return float(mean_mse), "mean predictor"
    if rule is Chance.MEAN_R2:
        return 0.0, "mean predictor"
    return None
