"""One catalogue of metric facts: stats, search, report, lint and the data rules agree on every
metric's direction, chance level and the default primary metric, because they all read it.

Agreement is checked through each consumer's own function (never the catalogue twice), and the
"catalogue swap" tests change an entry and check that every consumer follows: a consumer with a
rule of its own fails them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import made_up_result

from tricklab.base.errors import StoreError
from tricklab.data import Dataset, Target, load_dataset, resolve_study
from tricklab.engines._scoring import score
from tricklab.engines.contract import RunResult
from tricklab.report import Report, chance_level, make_report, study_facts
from tricklab.report._figures import title_and_caption
from tricklab.report._format import estimate
from tricklab.report._plots import metric_intervals
from tricklab.spec import (
    COMPUTED_SCORES,
    DEFAULT_PRIMARY_METRIC,
    METRIC_CATALOGUE,
    Chance,
    Direction,
    StudySpec,
    UnknownMetricError,
    components,
)
from tricklab.stats import higher_is_better
from tricklab.store import StudyIndex
from tricklab.tools.lint import lint
from tricklab.tools.search import infer_direction

#: Every name a run can record: loss, the metric registry, loss names compiled as metrics, the
#: counts of mistakes and the computed scores.
NAMES = sorted(
    {"loss", "false_positives", "false_negatives"}
    | set(components.METRICS.names())
    | set(components.LOSSES.names())
    | {
        alias
        for name in components.LOSSES.names()
        for alias in components.LOSSES.entry(name).aliases
    }
    | {score for scores in COMPUTED_SCORES.values() for score in scores}
)
SEEDS = (0, 1, 2)
BINARY_LAYERS = [
    {"type": "dense", "units": 8, "activation": "relu"},
    {"type": "dense", "units": 1, "activation": "sigmoid"},
]


def _spec(dataset: Any = "thoracic", layers: list[Any] | None = None, **top: Any) -> StudySpec:
    return StudySpec.from_dict(
        {
            "name": "catalogue",
            "dataset": dataset,
            "model": {"layers": layers or BINARY_LAYERS},
            "train": {"loss": top.pop("loss", "binary_crossentropy")},
            **top,
        }
    )


def _result(variant: str, seed: int, best: dict[str, float]) -> RunResult:
    loss = [0.7, 0.5, 0.4]
    history = {"loss": loss, "val_loss": [v + 0.05 for v in loss]}
    return made_up_result(variant, seed, best, history, study="catalogue")


def _report(root: Path, metric: str, resolved: dict[str, Any] | None = None) -> Report:
    """Two variants whose ``metric`` is low (0.3) and high (0.6); the data's baselines are a
    majority class of 0.85 and a mean predictor's MSE of 2.0."""
    results = [
        _result(variant, seed, {"majority_baseline": 0.85, "mean_baseline_mse": 2.0, metric: value})
        for variant, value in (("low", 0.3), ("high", 0.6))
        for seed in SEEDS
    ]
    index = {
        "study": "catalogue",
        "variants": ["low", "high"],
        "seeds": list(SEEDS),
        "baseline": "low",
        "resolved": resolved
        or {
            "task": "binary",
            "primary_metric": metric,
            "dataset": {"name": "made-up", "classes": ["no", "yes"], "majority_fraction": 0.85},
            "protocol": {"validation": 0.1, "validated_on": "validation split"},
        },
    }
    return make_report(root, StudyIndex.from_json(index), results)


@pytest.fixture(scope="module")
def thoracic() -> Dataset:
    return load_dataset("thoracic")  # 85 % of its targets are one class


@pytest.fixture
def datasets(tmp_path: Path, thoracic: Dataset) -> Iterator[dict[str, tuple[Dataset, Any]]]:
    """A dataset and its study's output layers per task (multiclass: 85 % one class)."""
    rng = np.random.default_rng(0)
    multi = tmp_path / "multi.csv"
    y = [0] * 34 + [1] * 3 + [2] * 3
    multi.write_text(
        "a,y\n" + "".join(f"{a:.3f},{c}\n" for a, c in zip(rng.normal(size=40), y, strict=True))
    )
    reg = tmp_path / "reg.csv"
    reg.write_text("a,y\n" + "".join(f"{a:.3f},{a * 2 + 1:.3f}\n" for a in rng.normal(size=30)))
    softmax = [{"type": "dense", "units": 3, "activation": "softmax"}]
    linear = [{"type": "dense", "units": 1}]
    yield {
        "binary": (thoracic, ("thoracic", BINARY_LAYERS, "binary_crossentropy")),
        "multiclass": (
            load_dataset(_spec({"csv": str(multi), "target": "y"}, softmax).dataset),
            ({"csv": str(multi), "target": "y"}, softmax, "sparse_categorical_crossentropy"),
        ),
        "regression": (
            load_dataset(_spec({"csv": str(reg), "target": "y"}, linear).dataset),
            ({"csv": str(reg), "target": "y"}, linear, "mean_squared_error"),
        ),
    }


def _tl011(thoracic: Dataset, metric: str | None) -> bool:
    spec = _spec(primary_metric=metric) if metric else _spec()
    return "TL011" in [f.code for f in lint(spec, thoracic)]


# -- the catalogue covers the registries ----------------------------------------------------------


def _facts(resolved: dict[str, Any], root: Path) -> Any:
    """What the report reads from an index holding only ``resolved``."""
    return study_facts(StudyIndex.from_json({"resolved": resolved}), root)


def test_every_registry_name_and_computed_score_is_catalogued() -> None:
    assert [name for name in NAMES if name not in METRIC_CATALOGUE] == []
    for task, scores in COMPUTED_SCORES.items():
        assert DEFAULT_PRIMARY_METRIC[task] in METRIC_CATALOGUE
        assert all(METRIC_CATALOGUE.get(s).source.value != "keras" for s in scores), task


@pytest.mark.parametrize(
    ("task", "outputs", "target"),
    [
        ("binary", [[0.2], [0.7], [0.9], [0.4]], Target("binary", 2)),
        ("binary", [[0.8, 0.2], [0.3, 0.7], [0.1, 0.9], [0.6, 0.4]], Target("one_hot", 2)),
        ("multiclass", [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]], None),
        ("regression", [[0.5], [1.5], [2.0], [0.0]], Target("regression", 0)),
    ],
)
def test_the_engines_compute_every_computed_score_of_the_catalogue(
    task: str, outputs: list[list[float]], target: Target | None
) -> None:
    """Every score the catalogue says tricklab computes for a task, the engines record, with a
    value in the catalogue's range; and no other tricklab score."""
    truth = np.array([0, 1, 1, 0]) if task != "multiclass" else np.array([0, 1, 2, 1])
    scores = score({}, np.array(outputs), truth, target or Target("sparse", 3), 0.0)
    scores.pop("confusion_matrix", None)
    assert set(scores) == set(COMPUTED_SCORES[task]), task
    for name, value in scores.items():
        low, high = METRIC_CATALOGUE.get(name).bounds
        assert value is not None and low <= value <= high, (name, value)


@pytest.mark.parametrize(
    ("metric", "higher"), [("pr_auc", True), ("f1", True), ("f1_macro", True), ("log_loss", False)]
)
def test_imbalance_scores_improve_the_right_way(metric: str, higher: bool) -> None:
    assert higher_is_better(metric) is higher
    assert infer_direction(metric) == ("maximize" if higher else "minimize")


@pytest.mark.parametrize(
    ("task", "metric"),
    [(task, metric) for task, scores in COMPUTED_SCORES.items() for metric in scores],
)
def test_every_computed_score_is_a_valid_primary_metric(
    datasets: dict[str, tuple[Dataset, Any]], task: str, metric: str
) -> None:
    dataset, (entry, layers, loss) = datasets[task]
    spec = _spec(entry, layers, loss=loss, primary_metric=metric)
    resolved = resolve_study(spec, dataset, backend="jax").check()
    assert resolved.primary_metric == metric
    assert resolved.primary_direction is METRIC_CATALOGUE.get(metric).direction


def test_an_unknown_metric_is_one_clear_error() -> None:
    with pytest.raises(UnknownMetricError) as caught:
        METRIC_CATALOGUE.get("acuracy")
    message = str(caught.value)
    assert message.startswith("Unknown metric") and "Did you mean 'accuracy'?" in message
    assert message.endswith("Received: metric='acuracy'.")


# -- direction: stats, search and report agree -----------------------------------------------------
@pytest.mark.parametrize("metric", NAMES)
def test_stats_search_and_report_agree_on_direction(tmp_path: Path, metric: str) -> None:
    higher = higher_is_better(metric)
    assert higher_is_better(f"val_{metric}") is higher
    expected = "maximize" if higher else "minimize"
    assert infer_direction(metric) == infer_direction(f"val_{metric}") == expected
    report = _report(tmp_path, metric)
    assert report.direction.higher_is_better is higher
    assert report.ranked()[0] == ("high" if higher else "low")
    word = "higher" if higher else "lower"
    figure = metric_intervals(report.table, metric)
    assert figure.axes[0].get_xlabel().endswith(f"({word} is better)")


@pytest.mark.parametrize("metric", ["false_positives", "false_negatives", "huber"])
def test_search_minimizes_counts_of_mistakes_and_huber(metric: str) -> None:
    assert infer_direction(metric) == "minimize"
    assert infer_direction(f"val_{metric}") == "minimize"


def test_mean_baseline_mse_is_an_error_stats_and_search_minimize(tmp_path: Path) -> None:
    assert higher_is_better("mean_baseline_mse") is False
    assert infer_direction("mean_baseline_mse") == "minimize"
    assert _report(tmp_path, "mean_baseline_mse").ranked() == ["low", "high"]


# -- chance: report (failures, figures) and lint agree -------------------------------------------
@pytest.mark.parametrize("metric", NAMES)
def test_report_figures_and_lint_agree_on_chance(
    tmp_path: Path, thoracic: Dataset, metric: str
) -> None:
    report = _report(tmp_path, metric)
    chance = chance_level(report, metric)
    majority = chance is not None and chance[1] == "majority class"
    # the figure draws the chance line (majority class, mean predictor) where the report judges
    lined = chance is not None and METRIC_CATALOGUE.get(metric).chance in (
        Chance.MAJORITY,
        Chance.MEAN_MSE,
    )
    _, caption = title_and_caption(report, f"{metric}_intervals")
    assert ("The dashed line" in caption) is lined
    # lint warns about an 85 % majority exactly for the metrics judged against it
    assert _tl011(thoracic, metric) is majority
    # "not shown better than chance" judges a variant on the same chance level
    stalled = {v: f.evidence for v, f in report.failures().items()}
    if chance is None:
        assert stalled == {}
    else:
        level, name = chance
        higher = report.direction.higher_is_better
        for variant, value in (("low", 0.3), ("high", 0.6)):
            at_chance = value <= level if higher else value >= level
            assert (variant in stalled) is at_chance, (variant, chance, stalled)
            if at_chance:
                assert stalled[variant] == f"its test {metric} interval reaches {name} {level:.3g}"


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("auc", (0.5, "AUC")),
        ("accuracy", (0.85, "majority class")),
        ("balanced_accuracy", (0.5, "guessing")),
        ("mse", (2.0, "mean predictor")),
        ("mean_squared_error", (2.0, "mean predictor")),
        ("r2", (0.0, "mean predictor")),
        ("r2_score", (0.0, "mean predictor")),
        ("majority_baseline", None),  # a baseline is not judged against itself
        ("mean_baseline_mse", None),
        ("precision", None),
        # average precision, F1 and log loss: no chance rule claims a level for them
        ("pr_auc", None),
        ("f1", None),
        ("f1_macro", None),
        ("log_loss", None),
        ("loss", None),
    ],
)
def test_chance_levels(tmp_path: Path, metric: str, expected: Any) -> None:
    assert chance_level(_report(tmp_path, metric), metric) == expected


def test_one_chance_level_per_study_each_seed_counted_once(tmp_path: Path) -> None:
    """The figure's line and the failure modes use one level: the mean over seeds, whichever
    variants finished (here the low variant lacks seed 2, whose majority share differs)."""
    shares = {0: 0.8, 1: 0.8, 2: 0.95}
    results = [
        _result(v, s, {"accuracy": a, "majority_baseline": shares[s]})
        for v, a in (("low", 0.86), ("high", 0.9))
        for s in SEEDS
        if (v, s) != ("low", 2)
    ]
    index = {
        "variants": ["low", "high"],
        "baseline": "low",
        "resolved": {"task": "multiclass", "dataset": {"classes": ["a", "b", "c"]}},
    }
    report = make_report(tmp_path, StudyIndex.from_json(index), results)
    assert chance_level(report) == (pytest.approx(0.85), "majority class")


# -- the default primary metric: data rules, lint and report agree --------------------------------
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_data_lint_and_report_agree_on_the_default_primary_metric(
    tmp_path: Path, datasets: dict[str, tuple[Dataset, Any]], task: str
) -> None:
    dataset, (entry, layers, loss) = datasets[task]
    spec = _spec(entry, layers, loss=loss)
    resolved = resolve_study(spec, dataset, backend="jax").check()
    facts = study_facts(
        StudyIndex.from_json({"resolved": {"task": task}}), tmp_path
    )  # an index from before
    assert facts.primary_metric == resolved.primary_metric
    assert facts.direction is resolved.primary_direction
    report = _report(tmp_path, resolved.primary_metric)
    chance = chance_level(report, resolved.primary_metric)
    majority = chance is not None and chance[1] == "majority class"
    assert ("TL011" in [f.code for f in lint(spec, dataset)]) is majority


# -- the index records the primary metric's direction ---------------------------------------------
def test_the_resolved_study_stores_the_direction_and_report_reads_it(
    tmp_path: Path, thoracic: Dataset
) -> None:
    stored = resolve_study(_spec(), thoracic, backend="jax").to_json()
    assert (stored["primary_metric"], stored["primary_metric_direction"]) == ("auc", "maximize")
    assert _facts(stored, tmp_path).direction is Direction.MAXIMIZE
    # the stored direction is the one the study ran with, whatever the catalogue says now
    flipped = {**stored, "primary_metric_direction": "minimize"}
    assert _facts(flipped, tmp_path).direction is Direction.MINIMIZE


def test_old_indexes_never_default_the_task(tmp_path: Path) -> None:
    # no direction stored: the catalogue's for the recorded metric, with or without a task
    no_task = _facts({"primary_metric": "mse"}, tmp_path)
    assert (no_task.primary_metric, no_task.direction, no_task.task) == (
        "mse",
        Direction.MINIMIZE,
        None,
    )
    assert not no_task.classification
    regression = _facts({"task": "regression"}, tmp_path)
    assert (regression.primary_metric, regression.direction) == ("mse", Direction.MINIMIZE)
    with pytest.raises(StoreError, match=r"Received: task=None, primary_metric=None\.$"):
        _facts({}, tmp_path)


# -- range: the report clips intervals to the catalogue's ------------------------------------------
@pytest.mark.parametrize(
    ("metric", "clipped"),
    [
        ("accuracy", (True, True)),
        ("r2_score", (False, True)),
        ("mean_squared_error", (True, False)),
        ("poisson", (False, False)),  # y_pred - y_true log(y_pred) can be negative
        ("cosine_similarity", (True, True)),
        ("loss", (False, False)),
    ],
)
def test_intervals_are_clipped_to_the_catalogue_range(
    metric: str, clipped: tuple[bool, bool]
) -> None:
    _, interval = estimate(0.5, -3.0, 4.0, metric)
    low, high = interval.strip("[]").split(", ")
    assert (low.endswith("*"), high.endswith("*")) == clipped


# -- swap an entry: every consumer follows --------------------------------------------------------
def _swap(monkeypatch: pytest.MonkeyPatch, name: str, **changes: Any) -> None:
    entry = dataclasses.replace(METRIC_CATALOGUE.get(name), **changes)
    monkeypatch.setitem(METRIC_CATALOGUE._entries, name, entry)  # a test's own catalogue


def test_a_changed_direction_reaches_every_consumer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _swap(monkeypatch, "accuracy", direction=Direction.MINIMIZE)
    assert higher_is_better("accuracy") is False
    assert infer_direction("val_accuracy") == "minimize"
    report = _report(tmp_path, "accuracy")
    assert report.ranked() == ["low", "high"]
    assert (
        metric_intervals(report.table, "accuracy")
        .axes[0]
        .get_xlabel()
        .endswith("(lower is better)")
    )


def test_search_prepares_with_the_catalogue_direction(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("optuna")
    from tricklab.tools.search import prepare

    spec = _spec(search={"train.batch_size": {"int": [16, 64]}})
    ctx = prepare(spec, out=tmp_path / "runs", objective="val_accuracy")
    assert ctx.direction == "maximize"
    _swap(monkeypatch, "accuracy", direction=Direction.MINIMIZE)
    ctx = prepare(spec, out=tmp_path / "other", objective="val_accuracy")
    assert ctx.direction == "minimize"


def test_a_changed_chance_rule_reaches_report_figures_and_lint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, thoracic: Dataset
) -> None:
    assert not _tl011(thoracic, "balanced_accuracy")
    _swap(monkeypatch, "balanced_accuracy", chance=Chance.MAJORITY)
    report = _report(tmp_path, "balanced_accuracy")
    assert chance_level(report) == (0.85, "majority class")
    assert "The dashed line" in title_and_caption(report, "balanced_accuracy_intervals")[1]
    assert _tl011(thoracic, "balanced_accuracy")
    assert {v: f.evidence for v, f in report.failures().items()} == {
        "low": "its test balanced_accuracy interval reaches majority class 0.85",
        "high": "its test balanced_accuracy interval reaches majority class 0.85",
    }


def test_a_changed_default_reaches_data_lint_and_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, thoracic: Dataset
) -> None:
    assert not _tl011(thoracic, None)  # binary: ROC AUC by default
    monkeypatch.setitem(DEFAULT_PRIMARY_METRIC, "binary", "accuracy")
    assert resolve_study(_spec(), thoracic, backend="jax").primary_metric == "accuracy"
    assert _tl011(thoracic, None)
    assert _facts({"task": "binary"}, tmp_path).primary_metric == "accuracy"
