"""The report's model: what a study's finished runs say, computed without writing anything.

:func:`make_report` turns the study index and the finished runs into a :class:`Report`: the
variant table, the comparisons with the baseline, and which variants failed, and how. Everything
the report takes from the index is read by :func:`study_facts`, and the comparisons are computed
by :func:`comparisons_of`; both are the single places to change when the index or the statistics
gain something. No file is read or written here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tricklab.base.errors import StoreError
from tricklab.engines.contract import RunResult
from tricklab.spec import (
    EVALUATE_CHOICES,
    METRIC_CATALOGUE,
    Direction,
    UnknownMetricError,
    default_primary_metric,
)
from tricklab.spec import chance_level as catalogue_chance_level
from tricklab.stats import (
    COUNTED_STATUSES,
    Comparison,
    FailureMode,
    compare,
    decision_rule,
    loss_stalled,
    variant_table,
)
from tricklab.store import StudyIndex

MARKDOWN = "report.md"
HTML = "report.html"


@dataclass(frozen=True)
class StudyFacts:
    """What the report takes from the study index (``study.json``)."""

    study: str
    description: str
    source: str
    updated_at: str
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    baseline: str | None
    primary_metric: str
    #: which way the primary metric improves, as the study ran it
    direction: Direction
    #: None in an index that does not record it (never guessed)
    task: str | None
    classes: tuple[str, ...]
    #: name, features, input_shape, source, citation, majority_fraction, intake
    dataset: dict[str, Any]
    #: validation, validated_on, split_sizes, resplit, split_seed
    protocol: dict[str, Any]
    #: planned runs per variant
    planned: dict[str, int]
    runs_planned: int
    #: lint findings as stored (None when the index has no lint entry)
    lint: list[dict[str, Any]] | None
    backend: str
    #: the checkpoint whose test scores are compared ("best" or "last"), as the study resolved
    #: it (``train.evaluate``); "best" in an index written before it was stored
    evaluate: str = "best"

    @property
    def unit(self) -> str:
        """What a variant's runs are counted in: "runs" under cv (folds x repeats), "seeds"."""
        return "runs" if self.protocol.get("kind") == "cv" else "seeds"

    @property
    def correction(self) -> float:
        """Nadeau-Bengio's n_test/n_train of the protocol (resplit, cv): the comparisons and
        every per-variant interval use it; 0 under one split (plain t-tests and intervals)."""
        return float(self.protocol.get("correction") or 0.0)

    @property
    def validated_on_test(self) -> bool:
        return self.protocol.get("validated_on") == "test set"

    @property
    def classification(self) -> bool:
        return self.task in ("binary", "multiclass")


def study_facts(index: StudyIndex, root: Path) -> StudyFacts:
    """Everything the report reads from the study index, in one place."""
    primary, direction = _primary_metric(index.resolved, index.task, root)
    planned: dict[str, int] = {}
    for run in index.runs:
        planned[run.variant] = planned.get(run.variant, 0) + 1
    return StudyFacts(
        study=index.study or root.name,
        description=index.description,
        source=index.source,
        updated_at=index.updated_at,
        variants=index.variants,
        seeds=index.seeds,
        baseline=index.baseline,
        primary_metric=primary,
        direction=direction,
        task=index.task,
        classes=tuple(index.classes),
        dataset=index.dataset,
        protocol=index.protocol,
        planned=planned,
        runs_planned=len(index.runs),
        lint=list(index.lint) if index.lint is not None else None,
        backend=str(index.resolved.get("backend", "?")),
        evaluate=_evaluate(index.resolved, root),
    )


def _evaluate(resolved: dict[str, Any], root: Path) -> str:
    """The checkpoint ``run`` stored (``evaluate``); "best", the checkpoint every report used
    before, in an index written before it was stored."""
    stored = resolved.get("evaluate")
    if stored is None:
        return "best"
    if stored not in EVALUATE_CHOICES:
        raise StoreError(
            f"{root}: the study index's checkpoint must be one of "
            f"{', '.join(EVALUATE_CHOICES)}. Received: evaluate={stored!r}. Run `tricklab run "
            "STUDY.toml` again to rewrite it."
        )
    return str(stored)


def _primary_metric(
    resolved: dict[str, Any], task: str | None, root: Path
) -> tuple[str, Direction]:
    """The primary metric and its direction as ``run`` stored them. Indexes written before the
    direction was stored get the metric catalogue's; before the metric was, the task's default.
    """
    metric = resolved.get("primary_metric") or None
    if metric is None:
        if task is None:
            raise StoreError(
                f"{root}: the study index records neither the task nor the primary metric, so "
                "the report cannot tell what to compare. Run `tricklab run STUDY.toml` again to "
                "rewrite it. Received: task=None, primary_metric=None."
            )
        metric = default_primary_metric(task)
    stored = resolved.get("primary_metric_direction")
    try:
        direction = Direction(stored) if stored else METRIC_CATALOGUE.get(str(metric)).direction
    except (ValueError, UnknownMetricError) as exc:
        raise StoreError(
            f"{root}: the study index's primary metric has no known direction ({exc}). "
            f"Received: primary_metric={metric!r}, primary_metric_direction={stored!r}."
        ) from None
    return str(metric), direction


def comparisons_of(
    facts: StudyFacts, results: Sequence[RunResult], variants: Sequence[str], baseline: str
) -> list[Comparison]:
    """Every variant against the baseline on the primary metric of the study's checkpoint."""
    if baseline not in {r.variant for r in results if r.status in COUNTED_STATUSES}:
        return []
    return compare(
        results,
        baseline,
        facts.primary_metric,
        facts.evaluate,
        variants=variants,
        correction=facts.correction,  # Nadeau-Bengio's, when runs share training rows
        unit=facts.unit,
    )


@dataclass
class Report:
    """A study's report: the numbers, verdicts and figures its files show.

    ``table`` is :func:`tricklab.stats.variant_table` (index order = the study's variants);
    ``comparisons`` compare every variant with the baseline on the primary metric of the
    study's checkpoint, :attr:`weights` (:func:`tricklab.stats.compare`: paired t-tests,
    Bonferroni-adjusted across them).
    ``results`` are the finished runs counted, ``missing`` the planned runs that are not (with
    why), ``recipes`` each variant's resolved recipe and ``predictions`` test-set predictions
    ``(y_true, proba)`` per seed of the variants whose ROC curves are drawn. :attr:`markdown`
    and :attr:`html` are where :func:`~tricklab.report.write_report` writes the documents.
    """

    root: Path
    facts: StudyFacts
    table: pd.DataFrame
    comparisons: list[Comparison]
    results: list[RunResult]
    missing: list[dict[str, Any]] = field(default_factory=list)
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)
    predictions: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict)
    #: the study index as read
    index: StudyIndex | None = field(default=None, repr=False)
    #: the reference models' fits (scikit-learn, stored by ``run``): one result per model x run
    #: seed, the model's name as its variant; rows of the report, never variants
    references: list[RunResult] = field(default_factory=list)
    #: variants whose every finished run gives every test row one class (one value, in
    #: regression) at :attr:`weights`: read from the stored predictions by ``load_report``
    constant: dict[str, FailureMode] = field(default_factory=dict)

    @property
    def markdown(self) -> Path:
        return self.root / MARKDOWN

    @property
    def html(self) -> Path:
        return self.root / HTML

    @property
    def study(self) -> str:
        return self.facts.study

    @property
    def primary_metric(self) -> str:
        return self.facts.primary_metric

    @property
    def weights(self) -> str:
        """The checkpoint whose test scores are the report's numbers: "best" or "last"."""
        return self.facts.evaluate

    @property
    def direction(self) -> Direction:
        """Which way the primary metric improves."""
        return self.facts.direction

    @property
    def baseline(self) -> str:
        return str(self.facts.baseline or next(iter(self.table.index), ""))

    @property
    def validated_on_test(self) -> bool:
        return self.facts.validated_on_test

    @property
    def rule(self) -> str:
        """The deciding rule of the comparisons in words ("" when none could be tested)."""
        if not self.comparisons or not self.comparisons[0].tests:
            return ""
        first = self.comparisons[0]
        return decision_rule(first.tests, first.alpha, first.correction)

    def ranked(self) -> list[str]:
        """Variants by the primary metric of :attr:`weights`, best first (no value last)."""
        column = self.table[f"{self.primary_metric}_{self.weights}_mean"]
        sign = -1.0 if self.direction.higher_is_better else 1.0

        def key(variant: str) -> tuple[bool, float]:
            value = float(column[variant])
            return (not math.isfinite(value), sign * value if math.isfinite(value) else 0.0)

        return sorted(self.table.index, key=key)

    def runs_of(self, variant: str) -> list[RunResult]:
        """The counted runs of ``variant`` (status ok or diverged)."""
        return [r for r in self.results if r.variant == variant and r.status in COUNTED_STATUSES]

    def failures(self) -> dict[str, Failure]:
        """The variants that failed, with how (see :func:`failures`)."""
        return failures(self)


def make_report(
    root: Path,
    index: StudyIndex,
    results: list[RunResult],
    missing: list[dict[str, Any]] | None = None,
    recipes: dict[str, dict[str, Any]] | None = None,
    references: list[RunResult] | None = None,
) -> Report:
    """The report of the finished ``results`` of the study indexed by ``index`` (and the
    ``references``' fits on the same runs' rows).

    Raises :class:`StoreError` when no run has finished.
    """
    facts = study_facts(index, root)
    if not results:
        raise StoreError(
            f"{root}: no run of study {facts.study!r} has finished yet ({facts.runs_planned} "
            "planned). Run `tricklab run STUDY.toml` to train them."
        )
    finished = {r.variant for r in results}  # variants with no finished run get no row
    variants = [v for v in facts.variants or [r.variant for r in results] if v in finished]
    primary = facts.primary_metric
    table = variant_table(
        results, variants, metric_names(results, primary), correction=facts.correction
    )
    baseline = facts.baseline or variants[0]
    return Report(
        root=root,
        facts=facts,
        table=table,
        comparisons=comparisons_of(facts, results, variants, baseline),
        results=results,
        missing=list(missing or []),
        recipes=dict(recipes or {}),
        index=index,
        references=list(references or []),
    )


def metric_names(results: Sequence[RunResult], primary: str) -> list[str]:
    """Test metrics of the results (and the primary metric): loss first, then alphabetical."""
    names = {m for r in results for m in r.test.get("best", {})} | {primary}
    return sorted(names, key=lambda m: (m != "loss", m))


# -- did a variant learn? -------------------------------------------------------------------------
def chance_level(report: Report, metric: str | None = None) -> tuple[float, str] | None:
    """What ``metric`` (default: the primary metric) scores without learning, and the name of
    that baseline; None when unknown. The rule is the metric catalogue's; the data's baselines
    (majority class, mean predictor) are the study's: each seed's test rows counted once (every
    variant of a seed shares them), averaged over seeds; the majority class's share of the whole
    dataset when no run recorded it."""
    majority = _seed_mean(report, "majority_baseline")
    if majority is None:
        majority = report.facts.dataset.get("majority_fraction")
    return catalogue_chance_level(
        metric or report.primary_metric,
        classes=len(report.facts.classes),
        majority=majority,
        mean_mse=_seed_mean(report, "mean_baseline_mse"),
    )


def _seed_mean(report: Report, score: str) -> float | None:
    """The mean over seeds of a test score every variant of a seed shares (the report's
    weights)."""
    by_seed: dict[int, list[float]] = {}
    for result in report.results:
        value = result.test.get(report.weights, {}).get(score)
        if result.status in COUNTED_STATUSES and value is not None and math.isfinite(value):
            by_seed.setdefault(result.seed, []).append(float(value))
    if not by_seed:
        return None
    return sum(sum(v) / len(v) for v in by_seed.values()) / len(by_seed)


@dataclass(frozen=True)
class Failure:
    """How a variant failed (a :class:`~tricklab.stats.FailureMode`), and what shows it."""

    mode: FailureMode
    evidence: str


def failures(report: Report) -> dict[str, Failure]:
    """Each variant that failed, with the first mode that applies (see
    :mod:`tricklab.stats` ``FailureMode``): its training loss never moved (every run); it
    predicts one class or value for every test row (every run, :attr:`Report.constant`); or
    its primary metric's interval (corrected like the tables; its mean with one run) reaches
    the chance level: not shown better than chance (absence of evidence, not evidence of
    chance)."""
    metric = report.primary_metric
    higher = report.direction.higher_is_better
    chance = chance_level(report)
    out: dict[str, Failure] = {}
    for variant in report.table.index:
        runs = report.runs_of(variant)
        if runs and all(loss_stalled(r.history) for r in runs):
            evidence = f"in each of its {len(runs)} runs, never 1% below its first epoch's"
            out[variant] = Failure(FailureMode.LOSS_FLAT, evidence)
            continue
        if variant in report.constant:
            out[variant] = Failure(report.constant[variant], f"in each of its {len(runs)} runs")
            continue
        if chance is None:
            continue
        level, name = chance
        row = report.table.loc[variant]
        prefix = f"{metric}_{report.weights}"
        mean, low, high = (row.get(f"{prefix}_{s}") for s in ("mean", "low", "high"))
        reach = low if higher else high
        if reach is None or not math.isfinite(reach):
            reach = mean
        if reach is None or not math.isfinite(reach):
            continue
        if (reach <= level) if higher else (reach >= level):
            evidence = f"its test {metric} interval reaches {name} {level:.3g}"
            out[variant] = Failure(FailureMode.AT_CHANCE, evidence)
    return out
