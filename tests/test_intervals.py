"""Intervals under overlapping training sets (resplit, cv), the floor no number of runs goes
below, and how intervals are printed: checked against numbers typed or computed here from the
formulas, never by calling the code under test for the expected value."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import made_up_result, write_finished_run
from scipy import stats as scipy_stats

from tricklab.data import cv_folds, resolve
from tricklab.report import comparison_sentence, headline, load_report, verdict_label
from tricklab.report._format import estimate
from tricklab.report._tables import compact_caption, summary_columns, summary_rows
from tricklab.spec import StudySpec
from tricklab.stats import (
    Comparison,
    Verdict,
    compare,
    detectable_floor,
    minimum_detectable_difference,
    seeds_needed,
    summarize,
    variant_table,
)
from tricklab.store import RunStore, StudyIndex

#: Student's t quantile 0.975 with 4 and 9 degrees of freedom (textbook tables).
T4 = 2.7764451051977987
T9 = 2.2621571627409915
FLOOR_WORDS = (
    r"this protocol cannot decide differences below ([0-9.]+): a larger test fraction would"
)


def runs(metric: str, values: dict[str, list[float]], **fields: Any) -> list[Any]:
    """Made-up finished runs, one per value, seeds 0, 1, 2, ... (a loss that falls)."""
    history = {"loss": [0.7, 0.5, 0.4], "val_loss": [0.75, 0.55, 0.5]}
    return [
        made_up_result(variant, seed, {"loss": 0.4, metric: value}, history, **fields)
        for variant, per_seed in values.items()
        for seed, value in enumerate(per_seed)
    ]


# -- the interval of one variant -----------------------------------------------------------------
def test_corrected_interval_of_a_mean_by_hand() -> None:
    """Nadeau-Bengio's variance of a mean over J runs: s^2 (1/J + n_test/n_train), t with J - 1
    degrees of freedom; with no correction the plain t-interval s / sqrt(J)."""
    values = [0.61, 0.55, 0.58, 0.52, 0.60]
    mean = (0.61 + 0.55 + 0.58 + 0.52 + 0.60) / 5  # 0.572
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 4)  # 0.037014
    assert sd == pytest.approx(float(np.std(values, ddof=1)))
    corrected = T4 * sd * math.sqrt(1 / 5 + 0.25)  # 0.068938
    plain = T4 * sd / math.sqrt(5)  # 0.045958
    got = summarize(values, correction=0.25)
    assert (got.mean, got.std) == (pytest.approx(mean), pytest.approx(sd))
    assert (got.low, got.high) == (pytest.approx(mean - corrected), pytest.approx(mean + corrected))
    assert (got.low, got.high) == pytest.approx((0.503062, 0.640938), abs=1e-6)
    alone = summarize(values)
    assert (alone.low, alone.high) == (pytest.approx(mean - plain), pytest.approx(mean + plain))
    assert (alone.low, alone.high) == pytest.approx((0.526042, 0.617958), abs=1e-6)
    # the variant table's _low/_high columns (what the tables, the figure and "not shown better
    # than chance" read) are the same intervals
    table = variant_table(runs("auc", {"a": values}), correction=0.25)
    row = table.loc["a"]
    assert (row["auc_best_low"], row["auc_best_high"]) == (got.low, got.high)
    assert (row["auc_last_low"], row["auc_last_high"]) == (got.low, got.high)
    plain_row = variant_table(runs("auc", {"a": values})).loc["a"]
    assert (plain_row["auc_best_low"], plain_row["auc_best_high"]) == (alone.low, alone.high)
    with pytest.raises(ValueError, match="correction"):
        summarize(values, correction=-0.1)


def test_more_runs_narrow_a_corrected_interval_only_down_to_its_floor() -> None:
    # the half-width t s sqrt(1/J + c) tends to 1.96 s sqrt(c), not to 0
    rng = np.random.default_rng(3)
    values = rng.normal(0.6, 0.05, 4000)
    got = summarize(values, correction=0.25)
    sd = float(np.std(values, ddof=1))
    assert (got.high - got.low) / 2 == pytest.approx(1.96 * sd * math.sqrt(1 / 4000 + 0.25), 1e-3)
    assert (got.high - got.low) / 2 > 1.96 * sd * 0.5


# -- the protocol's correction -------------------------------------------------------------------
def test_the_correction_counts_every_row_outside_the_test_part_and_every_run(tiny: dict) -> None:
    """n_train = train + validation rows (the validation rows choose the checkpoint); with folds
    of unequal size the ratio is the mean over the runs of n_test / (n - n_test)."""
    tiny.pop("seeds", None)
    tiny["cv"] = {"folds": 3, "repeats": 2}
    study = resolve(StudySpec.from_dict(tiny))
    n = len(study.dataset.y)  # 470 rows: folds of 157, 157 and 156
    ratios = [
        len(fold) / (n - len(fold))
        for repeat in range(2)
        for fold in cv_folds(study.dataset, 3, repeat)
    ]
    assert sorted({len(f) for f in cv_folds(study.dataset, 3, 0)}) == [156, 157]
    assert study.protocol.correction == pytest.approx(sum(ratios) / len(ratios))
    assert study.protocol.correction == pytest.approx((4 * 157 / 313 + 2 * 156 / 314) / 6)
    sizes = study.protocol.split_sizes
    assert study.protocol.correction != pytest.approx(sizes["test"] / sizes["train"])
    assert "Nadeau-Bengio corrected t-tests and intervals" in study.protocol.describe()

    tiny.pop("cv")
    tiny["seeds"], tiny["resplit"] = 3, True
    resplit = resolve(StudySpec.from_dict(tiny))
    sizes = resplit.protocol.split_sizes
    assert resplit.protocol.correction == pytest.approx(
        sizes["test"] / (sizes["train"] + sizes["validation"])
    )
    tiny["resplit"] = False
    fixed = resolve(StudySpec.from_dict(tiny)).protocol
    assert fixed.correction == 0.0 and "paired t-tests and t-intervals" in fixed.describe()


# -- the floor -----------------------------------------------------------------------------------
def power_by_hand(diff: float, sd: float, n: int, c: float, alpha: float) -> float:
    """Power of the corrected two-sided t-test: noncentral t with n - 1 degrees of freedom and
    noncentrality diff / (sd sqrt(1/n + c))."""
    df, crit = n - 1, scipy_stats.t.ppf(1 - alpha / 2, n - 1)
    shift = abs(diff) / (sd * math.sqrt(1 / n + c))
    return float(scipy_stats.nct.sf(crit, df, shift) + scipy_stats.nct.cdf(-crit, df, shift))


def pairs(differences: list[float], **fields: Any) -> list[Any]:
    base = [0.6 + 0.01 * (i % 3) for i in range(len(differences))]
    variant = [b + d for b, d in zip(base, differences, strict=True)]
    return runs("auc", {"base": base, "x": variant}, **fields)


def test_the_floor_by_hand() -> None:
    # with unlimited runs the corrected t-test is a z-test with noncentrality diff/(sd sqrt c):
    # power 0.8 at level alpha needs about z_{1-alpha/2} + z_{0.8}
    for alpha in (0.05, 0.05 / 6):
        z = scipy_stats.norm.ppf(1 - alpha / 2) + scipy_stats.norm.ppf(0.8)
        assert detectable_floor(0.04, alpha, correction=0.25) == pytest.approx(
            z * 0.04 * 0.5, rel=1e-5
        )
    assert detectable_floor(0.04, 0.05, correction=0.25) == pytest.approx(0.05603, abs=1e-5)
    assert detectable_floor(0.04, 0.05) == 0.0  # one split: more seeds always help
    assert math.isnan(detectable_floor(0.0, 0.05, correction=0.25))
    # the minimum detectable difference falls towards it, never below
    floor = detectable_floor(1.0, 0.05 / 6, correction=0.25)
    mdes = [
        minimum_detectable_difference(1.0, n, 0.05 / 6, correction=0.25) for n in (5, 50, 10**5)
    ]
    assert mdes == sorted(mdes, reverse=True) and mdes[-1] > floor
    assert mdes[-1] == pytest.approx(floor, rel=1e-3)
    assert mdes[1] / floor == pytest.approx(1.078, abs=1e-3)  # 50 runs: within 8% of the floor
    # seeds_needed: None exactly at or below the floor, else the n power 0.8 needs
    assert seeds_needed(floor * 0.999, 1.0, 0.05 / 6, correction=0.25) is None
    assert seeds_needed(floor * 1.01, 1.0, 0.05 / 6, correction=0.25) is not None
    # just above the floor: many runs, but a number (no cap at 1000 runs)
    near = seeds_needed(floor * 1.001, 1.0, 0.05 / 6, correction=0.25)
    assert near is not None and near > 1000
    assert power_by_hand(floor * 1.001, 1.0, near - 1, 0.25, 0.05 / 6) < 0.8
    assert power_by_hand(floor * 1.001, 1.0, near, 0.25, 0.05 / 6) >= 0.8


def test_a_difference_below_the_floor_cannot_be_decided_by_more_runs() -> None:
    differences = [0.05, -0.06, 0.04, -0.03, 0.02, -0.05, 0.06, -0.04, 0.03, 0.01]
    (c,) = compare(pairs(differences), "base", "auc", correction=0.25, unit="runs")
    d = np.array(differences)
    sd = float(d.std(ddof=1))
    z = scipy_stats.norm.ppf(1 - 0.05 / 2) + scipy_stats.norm.ppf(0.8)
    assert c.diff == pytest.approx(d.mean()) and c.verdict is Verdict.NO_DIFFERENCE
    assert c.floor == pytest.approx(z * sd * math.sqrt(0.25), rel=1e-5)  # 0.0640
    assert abs(c.diff) < c.floor and c.below_floor
    assert c.seeds_needed is None  # no number of runs reaches power 0.8
    label = verdict_label(c)
    assert label.startswith("no detectable difference with 10 runs; ")
    found = re.search(FLOOR_WORDS, label)
    assert found is not None, label
    assert float(found.group(1)) == pytest.approx(c.floor, abs=0.0006)  # two digits of 0.049
    assert "would decide it" not in label
    assert found.group(0) in comparison_sentence(c)


def test_a_difference_above_the_floor_says_how_many_runs_would_decide_it() -> None:
    # differences 0.02, 0.04, 0.06: mean 0.04 = 2 sd; the floor is 2.8 sd x 0.5 = 1.4 sd
    (c,) = compare(pairs([0.02, 0.04, 0.06]), "base", "auc", correction=0.25, unit="runs")
    assert c.verdict is Verdict.NO_DIFFERENCE and not c.below_floor
    assert c.floor == pytest.approx(0.02 * 0.5 * 2.8016, rel=1e-4)
    needed = next(n for n in range(2, 1000) if power_by_hand(0.04, 0.02, n, 0.25, 0.05) >= 0.8)
    assert (
        power_by_hand(0.04, 0.02, needed - 1, 0.25, 0.05)
        < 0.8
        <= power_by_hand(0.04, 0.02, needed, 0.25, 0.05)
    )
    assert c.seeds_needed == needed == 9
    assert verdict_label(c) == "no detectable difference with 3 runs; about 9 runs would decide it"
    assert re.search(FLOOR_WORDS, comparison_sentence(c)) is None
    # without the correction the same differences need fewer seeds, and there is no floor
    (plain,) = compare(pairs([0.02, 0.04, 0.06]), "base", "auc")
    assert plain.floor == 0.0 and not plain.below_floor
    assert plain.seeds_needed is not None and plain.seeds_needed < needed


# -- a study under cross-validation, as the report reads it ---------------------------------------
def write_cv_study(root: Path, values: dict[str, list[float]], correction: float) -> Path:
    """A study directory of finished binary runs under a cv protocol with ``correction``."""
    entries = []
    for result in runs("auc", values, study=root.name):
        stored = write_finished_run(root, result)
        entries.append({"variant": result.variant, "seed": result.seed, "key": stored.key})
    kind = "cv" if correction else "split"
    index = {
        "study": root.name,
        "variants": list(values),
        "seeds": list(range(len(next(iter(values.values()))))),
        "baseline": next(iter(values)),
        "resolved": {
            "primary_metric": "auc",
            "task": "binary",
            "dataset": {"name": "made-up", "classes": ["no", "yes"]},
            "protocol": {
                "kind": kind,
                "validation": 0.1,
                "validated_on": "validation split",
                "folds": 5 if correction else None,
                "repeats": 2 if correction else None,
                "correction": correction,
            },
        },
        "runs": entries,
    }
    RunStore(root).write_index(StudyIndex.from_json(index))
    return root


BASE = [0.62, 0.55, 0.66, 0.58, 0.70, 0.57, 0.64, 0.52, 0.60, 0.61]
#: 0.045 below the baseline: its plain 95% interval stays above AUC 0.5, the corrected one not
WEAK = [
    b - 0.045 + e
    for b, e in zip(BASE, [0.01, -0.01, 0.02, -0.02, 0, 0.01, -0.01, 0, 0.02, -0.02], strict=True)
]


def test_the_report_reads_the_corrected_intervals(tmp_path: Path) -> None:
    values = {"base": BASE, "weak": WEAK}
    cv = load_report(write_cv_study(tmp_path / "cv", values, 0.25))
    split = load_report(write_cv_study(tmp_path / "split", values, 0.0))
    weak = np.array(WEAK)
    mean, sd = float(weak.mean()), float(weak.std(ddof=1))
    corrected = (mean - T9 * sd * math.sqrt(0.1 + 0.25), mean + T9 * sd * math.sqrt(0.1 + 0.25))
    plain = (mean - T9 * sd / math.sqrt(10), mean + T9 * sd / math.sqrt(10))
    assert corrected[0] < 0.5 < plain[0]  # 0.482 and 0.518
    row = cv.table.loc["weak"]
    assert (row["auc_best_low"], row["auc_best_high"]) == pytest.approx(corrected)
    assert tuple(split.table.loc["weak", ["auc_best_low", "auc_best_high"]]) == pytest.approx(plain)
    # "not shown better than chance" reads the same interval: it reaches AUC 0.5 only once corrected
    assert "weak" in cv.failures() and "weak" not in split.failures()
    # the tables show it, and say which interval it is
    cells = {c["variant"]["text"]: c for c in summary_rows(cv)}
    assert cells["weak"]["best"]["sub"] == estimate(mean, *corrected, "auc")[1]
    assert "95% CI, Nadeau-Bengio corrected" in compact_caption(cv)
    assert "Nadeau-Bengio" not in compact_caption(split)
    # P(beats baseline): no interval under cv, and the header says why; exact under one split
    headers = {c.key: c.ci_header for c in summary_columns(cv)}
    assert headers["beats"] == "no CI: runs share training rows"
    assert cells["weak"]["beats"]["sub"] == ""
    (compared,) = cv.comparisons
    assert math.isnan(compared.p_beats_low) and compared.correction == 0.25
    assert "(no interval: the runs share training rows)" in comparison_sentence(compared)
    assert {c.key: c.ci_header for c in summary_columns(split)}["beats"] == "95% exact CI"
    (plain_comparison,) = split.comparisons
    assert plain_comparison.p_beats == 0.0
    assert plain_comparison.p_beats_high == pytest.approx(1 - 0.025**0.1)  # 0 wins of 10


def test_the_headline_says_when_no_number_of_runs_would_decide(tmp_path: Path) -> None:
    close = [
        b + e
        for b, e in zip(
            BASE, [0.03, -0.03, 0.02, -0.02, 0.01, -0.01, 0.03, -0.03, 0.0, 0.01], strict=True
        )
    ]
    report = load_report(write_cv_study(tmp_path / "close", {"base": BASE, "close": close}, 0.25))
    (c,) = report.comparisons
    assert c.verdict is Verdict.NO_DIFFERENCE and c.below_floor and c.seeds_needed is None
    first = headline(report)[0]
    assert "no number of runs would decide the largest observed difference (close, " in first
    assert re.search(FLOOR_WORDS, first) is not None, first


# -- printing ------------------------------------------------------------------------------------
def decided(**fields: Any) -> Comparison:
    defaults: dict[str, Any] = {
        "variant": "mape", "baseline": "bce", "metric": "auc", "weights": "best", "n": 50,
        "diff": -0.1199, "ci_low": -0.2394, "ci_high": -0.00031, "p": 0.0012,
        "p_adjusted": 0.0072, "tests": 6, "alpha": 0.05, "verdict": Verdict.WORSE,
        "mde": 0.128, "seeds_needed": None, "p_beats": 0.2, "p_beats_low": math.nan,
        "p_beats_high": math.nan, "correction": 0.25, "unit": "runs", "floor": 0.11,
    }  # fmt: skip
    return Comparison(**(defaults | fields))


def test_a_decided_interval_never_prints_an_end_as_zero() -> None:
    # two significant digits of the half-width 0.12 give 2 decimals: -0.00031 would read -0.00
    assert estimate(-0.1199, -0.2394, -0.00031, sign=True) == ("-0.1199", "[-0.2394, -0.0003]")
    assert estimate(0.1199, 0.00031, 0.2394, sign=True) == ("+0.1199", "[0.0003, 0.2394]")
    # an undecided interval keeps the usual precision, and may show a 0 end
    assert estimate(-0.1199, -0.2394, 0.0003, sign=True) == ("-0.12", "[-0.24, 0.00]")
    sentence = comparison_sentence(decided())
    assert "auc -0.1199, 99.17% interval [-0.2394, -0.0003]" in sentence
    assert "-0.000]" not in sentence and "-0.00031" not in sentence


def test_comparison_sentences_use_the_tables_precision() -> None:
    c = decided(diff=155.966, ci_low=-60.1, ci_high=372.056, verdict=Verdict.NO_DIFFERENCE,
                mde=380.2, floor=350.0, metric="mse")  # fmt: skip
    sentence = comparison_sentence(c)
    assert "mse +160, 99.17% interval [-60, 370]" in sentence
    assert "minimum detectable difference ±380 (±350 with unlimited runs)" in sentence
    assert "155.966" not in sentence and "372.056" not in sentence
