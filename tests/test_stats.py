"""Statistics over seeds, checked against arithmetic done by hand in each test.

Student's t quantiles used below have closed forms: for df=1 (Cauchy) t_0.975 = tan(0.475 pi)
= 12.706..., for df=2 t_q = (2q - 1) / sqrt(2 q (1 - q)), with q = 0.975 = 4.302652729749...
and the two-sided p-value of a t statistic with df=2 is 1 - t / sqrt(t^2 + 2).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.power import TTestPower

from tricklab.engines.contract import ResultStatus, RunResult
from tricklab.report import comparison_sentence, verdict_label
from tricklab.spec import UnknownMetricError
from tricklab.stats import (
    Comparison,
    Summary,
    Verdict,
    compare,
    comparison_frame,
    decision_rule,
    generalization_gap,
    higher_is_better,
    minimum_detectable_difference,
    percent,
    seeds_needed,
    summarize,
    variant_table,
)

T1 = math.tan(0.475 * math.pi)  # t quantile 0.975, df=1: 12.706204736...
T2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)  # t quantile 0.975, df=2: 4.302652729749...


def t_df2(q: float) -> float:
    """Quantile q of Student's t with 2 degrees of freedom (closed form)."""
    return (2 * q - 1) / math.sqrt(2 * q * (1 - q))


def p_df2(t: float) -> float:
    """Two-sided p-value of a t statistic with 2 degrees of freedom (closed form)."""
    return 1 - abs(t) / math.sqrt(t * t + 2)


def run(
    variant: str,
    seed: int,
    best: dict[str, float | None] | None = None,
    last: dict[str, float | None] | None = None,
    *,
    status: str = "ok",
    best_epoch: int | None = 2,
    epochs_run: int = 3,
    best_val: float | None = 0.5,
    seconds: float = 10.0,
    history: dict[str, list[float]] | None = None,
) -> RunResult:
    """A RunResult with only what statistics read filled in meaningfully."""
    best = {"loss": 0.5} if best is None else best
    extra: dict[str, Any] = {
        "key": f"{variant}-{seed}",
        "study": "s",
        "params": 10,
        "seconds_per_epoch": seconds / max(epochs_run, 1),
        "first_epoch_seconds": 1.0,
        "backend": "jax",
        "engine": "solo",
        "versions": {},
        "validated_on": "validation split",
        "split_sizes": {"train": 8, "validation": 2, "test": 2},
    }
    return RunResult(
        variant=variant,
        seed=seed,
        status=status,
        test={"best": best, "last": dict(best) if last is None else last},
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        monitor="val_loss",
        best_monitor_value=best_val,
        seconds_total=seconds,
        history={"loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.7, 0.9]}
        if history is None
        else history,
        **extra,
    )


def study(metric: str, values: dict[str, list[float | None]]) -> list[RunResult]:
    """Runs of several variants over seeds 0, 1, 2, ... with one test metric each."""
    return [
        run(name, seed, {metric: value})
        for name, per_seed in values.items()
        for seed, value in enumerate(per_seed)
    ]


# -- metric direction ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("metric", "higher"),
    [
        ("loss", False),
        ("val_loss", False),
        ("mean_absolute_error", False),
        ("mean_squared_error", False),
        ("root_mean_squared_error", False),
        ("poisson", False),
        ("huber", False),
        ("false_positives", False),
        ("mean_baseline_mse", False),
        ("binary_crossentropy", False),
        ("accuracy", True),
        ("auc", True),
        ("balanced_accuracy", True),
        ("precision", True),
        ("val_accuracy", True),
    ],
)
def test_higher_is_better(metric: str, higher: bool) -> None:
    assert higher_is_better(metric) is higher


def test_higher_is_better_refuses_a_metric_it_does_not_know() -> None:
    # no guessing from the name: "my_custom_loss" has no catalogued direction
    with pytest.raises(UnknownMetricError, match=r"Received: metric='my_custom_loss'\.$"):
        higher_is_better("my_custom_loss")


# -- summarize -----------------------------------------------------------------------------------
def test_t_quantiles_written_here_are_the_textbook_values() -> None:
    assert pytest.approx(12.706204736, rel=1e-9) == T1
    assert pytest.approx(4.302652730, rel=1e-9) == T2
    assert t_df2(0.975) == pytest.approx(T2)
    assert t_df2(0.99375) == pytest.approx(float(scipy_stats.t.ppf(0.99375, 2)))


def test_summarize_mean_std_interval_by_hand() -> None:
    # 1, 2, 3: mean 2; squared deviations 1 + 0 + 1 = 2, / (n - 1) = 1 -> std 1.
    s = summarize([1.0, 2.0, 3.0])
    half = T2 * 1.0 / math.sqrt(3)  # 2.4841...
    assert s == Summary(
        n=3, mean=2.0, std=1.0, low=pytest.approx(2 - half), high=pytest.approx(2 + half)
    )
    assert s.low == pytest.approx(-0.484138, abs=1e-6)


def test_summarize_two_values_uses_df_one() -> None:
    # 0.2, 0.5: mean 0.35; std = |0.5 - 0.2| / sqrt(2); half-width = t(df=1) * std / sqrt(2).
    s = summarize([0.2, 0.5])
    std = 0.3 / math.sqrt(2)
    assert s.std == pytest.approx(std)
    assert s.high - s.mean == pytest.approx(T1 * 0.15)


def test_summarize_ignores_none_and_non_finite() -> None:
    s = summarize([None, 1.0, float("nan"), 3.0, float("inf")])
    assert s.n == 2
    assert s.mean == 2.0
    assert s.std == pytest.approx(math.sqrt(2))  # (1 + 1) / 1 = 2


def test_summarize_single_value_has_no_spread() -> None:
    s = summarize([0.7, None])
    assert s.n == 1 and s.mean == 0.7
    assert math.isnan(s.std) and math.isnan(s.low) and math.isnan(s.high)


def test_summarize_nothing() -> None:
    s = summarize([])
    assert s.n == 0 and math.isnan(s.mean)


def test_summarize_identical_values_have_a_zero_width_interval() -> None:
    s = summarize([0.25, 0.25, 0.25])
    assert (s.std, s.low, s.high) == (0.0, 0.25, 0.25)


# -- the gap -------------------------------------------------------------------------------------
def test_gap_is_train_minus_validation_loss_at_the_best_epoch() -> None:
    history = {"loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.7, 0.9]}
    assert generalization_gap(run("a", 0, best_epoch=2, history=history)) == pytest.approx(-0.2)
    assert generalization_gap(run("a", 0, best_epoch=3, history=history)) == pytest.approx(-0.5)
    overfit = {"loss": [0.9, 0.1], "val_loss": [1.0, 0.6]}
    assert generalization_gap(run("a", 0, best_epoch=2, history=overfit)) == pytest.approx(-0.5)
    dropout = {"loss": [0.8], "val_loss": [0.6]}  # train loss measured with dropout active
    assert generalization_gap(run("a", 0, best_epoch=1, history=dropout)) == pytest.approx(0.2)


def test_gap_is_none_without_a_best_epoch_or_history() -> None:
    assert generalization_gap(run("a", 0, best_epoch=None)) is None
    assert generalization_gap(run("a", 0, best_epoch=5)) is None  # beyond the history
    assert generalization_gap(run("a", 0, history={"loss": [0.3]})) is None
    nan = {"loss": [float("nan")], "val_loss": [0.2]}
    assert generalization_gap(run("a", 0, best_epoch=1, history=nan)) is None


# -- variant table -------------------------------------------------------------------------------
def test_variant_table_columns_and_order() -> None:
    results = [
        run("b", 0, {"loss": 1.0, "accuracy": 0.5}),
        run("a", 0, {"loss": 2.0, "accuracy": 0.6}),
    ]
    table = variant_table(results)
    assert list(table.index) == ["b", "a"]  # first seen
    assert table.index.name == "variant"
    metric_columns = [
        f"{m}_{w}_{s}"
        for m in ("loss", "accuracy")  # loss first
        for w in ("best", "last")
        for s in ("n", "mean", "std", "low", "high")
    ]
    assert list(table.columns) == [
        "seeds",
        "diverged",
        *metric_columns,
        *("best_val_mean", "best_val_std", "best_val_low", "best_val_high"),
        "best_epoch_mean",
        "best_epoch_std",
        "epochs_run_mean",
        "epochs_run_std",
        *("gap_mean", "gap_std", "gap_low", "gap_high"),
        "seconds_mean",
        "seconds_std",
    ]
    assert list(variant_table(results, variants=["a", "b"]).index) == ["a", "b"]


def test_variant_table_default_metrics_loss_first_then_alphabetical() -> None:
    results = [run("a", 0, {"precision": 0.1, "auc": 0.9, "loss": 0.3, "accuracy": 0.8})]
    table = variant_table(results)
    means = [c.removesuffix("_best_mean") for c in table.columns if c.endswith("_best_mean")]
    assert means == ["loss", "accuracy", "auc", "precision"]


def test_variant_table_figures_by_hand() -> None:
    history = {"loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.7, 0.9]}
    results = [
        run("a", 0, {"loss": 0.2}, {"loss": 0.4}, best_epoch=2, epochs_run=3, best_val=0.6,
            seconds=10.0, history=history),
        run("a", 1, {"loss": 0.5}, {"loss": 0.4}, best_epoch=3, epochs_run=5, best_val=0.8,
            seconds=14.0, history=history),
    ]  # fmt: skip
    row = variant_table(results, metrics=["loss"]).loc["a"]
    assert row["seeds"] == 2 and row["diverged"] == 0
    # best: 0.2, 0.5 -> mean 0.35, std 0.3 / sqrt(2), half-width t(df=1) * std / sqrt(2) = T1 * 0.15
    assert row["loss_best_n"] == 2
    assert row["loss_best_mean"] == pytest.approx(0.35)
    assert row["loss_best_std"] == pytest.approx(0.3 / math.sqrt(2))
    assert row["loss_best_low"] == pytest.approx(0.35 - T1 * 0.15)
    assert row["loss_best_high"] == pytest.approx(0.35 + T1 * 0.15)
    # last: 0.4, 0.4 -> no spread
    assert (row["loss_last_mean"], row["loss_last_std"]) == (0.4, 0.0)
    assert row["best_val_mean"] == pytest.approx(0.7)
    assert row["best_val_std"] == pytest.approx(0.2 / math.sqrt(2))
    assert row["best_epoch_mean"] == 2.5
    assert row["best_epoch_std"] == pytest.approx(1 / math.sqrt(2))
    assert row["epochs_run_mean"] == 4.0
    assert row["epochs_run_std"] == pytest.approx(2 / math.sqrt(2))
    # gap: epoch 2: 0.5 - 0.7 = -0.2; epoch 3: 0.4 - 0.9 = -0.5 -> mean -0.35
    assert row["gap_mean"] == pytest.approx(-0.35)
    assert row["gap_std"] == pytest.approx(0.3 / math.sqrt(2))
    assert row["gap_low"] == pytest.approx(-0.35 - T1 * 0.15)
    assert row["seconds_mean"] == 12.0
    assert row["seconds_std"] == pytest.approx(4 / math.sqrt(2))


def test_variant_table_counts_diverged_and_ignores_none() -> None:
    results = [
        run("a", 0, {"loss": 0.2, "auc": 0.9}),
        run("a", 1, {"loss": None, "auc": None}, status="diverged", best_epoch=None),
        run("a", 2, {"loss": 0.4, "auc": None}),
    ]
    assert results[1].status is ResultStatus.DIVERGED  # the stored string, as its enum member
    with pytest.raises(ValueError, match="not a valid ResultStatus"):  # no other status exists
        run("a", 3, {"loss": 9.0, "auc": 0.1}, status="failed")
    row = variant_table(results).loc["a"]
    assert row["seeds"] == 3 and row["diverged"] == 1
    assert row["loss_best_n"] == 2 and row["loss_best_mean"] == pytest.approx(0.3)
    assert row["auc_best_n"] == 1 and row["auc_best_mean"] == 0.9
    assert math.isnan(row["auc_best_std"])
    assert row["best_epoch_mean"] == 2.0  # the diverged run has no best epoch


def test_variant_table_requested_variant_without_results_is_an_empty_row() -> None:
    table = variant_table([run("a", 0)], variants=["a", "missing"])
    assert table.loc["missing", "seeds"] == 0
    assert math.isnan(table.loc["missing", "loss_best_mean"])


def test_variant_table_rejects_a_seed_twice() -> None:
    with pytest.raises(ValueError, match="two results"):
        variant_table([run("a", 0), run("a", 0)])


# -- compare -------------------------------------------------------------------------------------
def test_paired_difference_interval_and_p_by_hand() -> None:
    # differences 3, 2, 4 (variant - baseline): mean 3, sd 1, t = 3 / (1 / sqrt(3)) = 3 sqrt(3)
    results = study("accuracy", {"base": [10.0, 20.0, 30.0], "trick": [13.0, 22.0, 34.0]})
    (c,) = compare(results, "base", "accuracy")
    assert (c.variant, c.baseline, c.metric, c.weights, c.n) == (
        "trick",
        "base",
        "accuracy",
        "best",
        3,
    )
    assert c.diff == pytest.approx(3.0)
    # one comparison: alpha 0.05/1, the interval is the plain 95% t-interval
    assert (c.tests, c.alpha, c.confidence) == (1, 0.05, pytest.approx(0.95))
    assert c.ci_low == pytest.approx(3 - T2 / math.sqrt(3))
    assert c.ci_high == pytest.approx(3 + T2 / math.sqrt(3))
    assert c.p == pytest.approx(p_df2(3 * math.sqrt(3)))  # 1 - sqrt(27 / 29) = 0.03510
    assert c.p == pytest.approx(0.035098, abs=1e-6)
    assert c.p_adjusted == pytest.approx(c.p)  # one comparison: nothing to adjust
    assert c.verdict == "better"


def test_pairing_is_by_seed_not_by_position() -> None:
    results = [
        run("base", 2, {"accuracy": 30.0}),
        run("base", 0, {"accuracy": 10.0}),
        run("base", 1, {"accuracy": 20.0}),
        run("trick", 0, {"accuracy": 13.0}),
        run("trick", 1, {"accuracy": 22.0}),
        run("trick", 2, {"accuracy": 34.0}),
    ]
    (c,) = compare(results, "base", "accuracy")
    assert c.diff == pytest.approx(3.0) and c.n == 3


def test_bonferroni_p_values_and_intervals_by_hand() -> None:
    base = [10.0, 20.0, 30.0]
    # differences (m - s, m, m + s) with s = 1: sd 1, t = m sqrt(3)
    results = study(
        "accuracy",
        {
            "base": base,
            "a": [b + d for b, d in zip(base, [2.0, 3.0, 4.0], strict=True)],  # t = 3 sqrt 3
            "b": [b + d for b, d in zip(base, [0.0, 1.0, 2.0], strict=True)],  # t = sqrt 3
            "c": [b + d for b, d in zip(base, [1.0, 2.0, 3.0], strict=True)],  # t = 2 sqrt 3
            "d": [b + d for b, d in zip(base, [0.8, 1.8, 2.8], strict=True)],  # t = 1.8 sqrt 3
        },
    )
    comparisons = compare(results, "base", "accuracy")
    assert [c.variant for c in comparisons] == ["a", "b", "c", "d"]
    pa, pb, pc, pd_ = (p_df2(m * math.sqrt(3)) for m in (3.0, 1.0, 2.0, 1.8))
    assert [c.p for c in comparisons] == pytest.approx([pa, pb, pc, pd_])
    # Bonferroni over the 4 tests: every p times 4, capped at 1 (no ordering, no running max).
    assert [c.p_adjusted for c in comparisons] == pytest.approx(
        [4 * pa, min(1.0, 4 * pb), 4 * pc, 4 * pd_]
    )
    assert all(c.tests == 4 and c.alpha_adjusted == pytest.approx(0.0125) for c in comparisons)
    # the intervals: mean +- t_{1 - 0.05/8, df=2} * sd / sqrt(3), t from the closed form
    half = t_df2(1 - 0.05 / 8) / math.sqrt(3)  # 6.2053 / sqrt 3
    for c, mean in zip(comparisons, (3.0, 1.0, 2.0, 1.8), strict=True):
        assert c.confidence == pytest.approx(0.9875)
        assert (c.ci_low, c.ci_high) == (pytest.approx(mean - half), pytest.approx(mean + half))
    # a raw p of 0.035 is no longer significant after adjusting for four comparisons
    assert comparisons[0].verdict is Verdict.NO_DIFFERENCE
    assert verdict_label(comparisons[0]) == (
        "no detectable difference with 3 seeds; about 5 seeds would decide it"
    )
    assert comparisons[0].seeds_needed == seeds_needed(3.0, 1.0, 0.0125) == 5


def test_bonferroni_caps_at_one() -> None:
    base = [10.0, 20.0, 30.0]
    results = study("accuracy", {"base": base, "a": [10.0, 21.0, 29.0], "b": [11.0, 19.0, 30.5]})
    # a: differences 0, 1, -1 -> mean 0, p = 1; b: 1, -1, 0.5 -> p = 0.75; 2 * 0.75 > 1
    a, b = compare(results, "base", "accuracy")
    assert a.p == pytest.approx(1.0) and b.p > 0.5
    assert [a.p_adjusted, b.p_adjusted] == pytest.approx([1.0, 1.0])


def test_decided_and_undecided_agree_with_the_adjusted_interval() -> None:
    """The max_norm case: an unadjusted 95% interval that excludes 0 but an adjusted one that
    does not is "no detectable difference"; a decided case has an adjusted interval without 0."""
    base = [10.0, 20.0, 30.0]
    results = study(
        "accuracy",
        {
            "base": base,
            "strong": [14.5, 25.0, 35.5],  # differences 4.5, 5, 5.5: mean 5, sd 0.5
            "borderline": [12.0, 23.0, 34.0],  # differences 2, 3, 4: mean 3, sd 1
        },
    )
    strong, borderline = compare(results, "base", "accuracy")
    assert strong.tests == borderline.tests == 2
    adjusted_t = t_df2(1 - 0.05 / 4)  # 97.5% two-sided interval, df=2: 6.2053
    assert adjusted_t == pytest.approx(6.205346817)
    # decided: p = 1 - t / sqrt(t^2 + 2) with t = 5 / (0.5 / sqrt 3); 2p < 0.05
    assert strong.p_adjusted == pytest.approx(2 * p_df2(10 * math.sqrt(3)))
    assert strong.p_adjusted < 0.05
    assert strong.ci_low == pytest.approx(5 - adjusted_t * 0.5 / math.sqrt(3))  # 3.209 > 0
    assert strong.ci_high == pytest.approx(5 + adjusted_t * 0.5 / math.sqrt(3))
    assert strong.ci_low > 0 and strong.verdict == "better"
    # undecided: the plain 95% interval 3 -+ 4.303 / sqrt 3 = [0.516, 5.484] excludes 0 ...
    plain = summarize([2.0, 3.0, 4.0])
    assert plain.low == pytest.approx(3 - T2 / math.sqrt(3)) and plain.low > 0
    # ... but the adjusted p is 2 x 0.0351 = 0.0702 and the adjusted interval holds 0
    assert borderline.p == pytest.approx(p_df2(3 * math.sqrt(3))) and borderline.p < 0.05
    assert borderline.p_adjusted == pytest.approx(2 * p_df2(3 * math.sqrt(3)))
    assert borderline.ci_low == pytest.approx(3 - adjusted_t / math.sqrt(3))  # -0.583
    assert borderline.ci_high == pytest.approx(3 + adjusted_t / math.sqrt(3))
    assert borderline.ci_low < 0 < borderline.ci_high
    assert borderline.verdict is Verdict.NO_DIFFERENCE
    # at the tables' precision: two significant digits of the half-width 3.58
    assert "97.5% interval [-0.6, 6.6]" in comparison_sentence(borderline)


def test_verdict_decided_exactly_when_the_adjusted_interval_excludes_zero() -> None:
    rng = np.random.default_rng(7)
    checked = {"decided": 0, "undecided": 0}
    for trial in range(200):
        seeds = int(rng.integers(2, 9))
        k = int(rng.integers(1, 6))
        alpha = float(rng.choice([0.05, 0.1, 0.01]))
        metric = "loss" if trial % 2 else "accuracy"
        base = list(rng.normal(0.5, 0.1, seeds))
        values = {"base": base}
        for v in range(k):
            shift, spread = rng.normal(0, 0.05), rng.uniform(0.001, 0.05)
            values[f"v{v}"] = [b + shift + rng.normal(0, spread) for b in base]
        for c in compare(study(metric, values), "base", metric, alpha=alpha):
            excludes = c.ci_low > 0 or c.ci_high < 0
            decided = c.verdict in ("better", "worse")
            assert decided == excludes == (c.p_adjusted < alpha), c
            assert c.tests == k and c.p_adjusted == pytest.approx(min(1.0, k * c.p))
            # the interval is mean -+ t_{1 - alpha/2k, n-1} sd / sqrt(n)
            d = np.asarray(values[c.variant]) - np.asarray(base)
            half = scipy_stats.t.ppf(1 - alpha / (2 * k), seeds - 1) * d.std(ddof=1)
            assert c.ci_high - c.diff == pytest.approx(half / math.sqrt(seeds))
            if decided:
                assert c.verdict == ("better" if (c.diff > 0) != (metric == "loss") else "worse")
            checked["decided" if decided else "undecided"] += 1
    assert min(checked.values()) > 50  # both kinds were exercised


def test_lower_is_better_for_loss() -> None:
    base = [10.0, 20.0, 30.0]
    results = study(
        "loss", {"base": base, "lower": [7.0, 18.0, 26.0], "higher": [13.0, 22.0, 34.0]}
    )
    lower, higher = compare(results, "base", "loss")
    assert lower.diff == pytest.approx(-3.0) and higher.diff == pytest.approx(3.0)
    # both p = 1 - sqrt(27/29) = 0.0351; Bonferroni: 2 * 0.0351 = 0.0702
    assert lower.p_adjusted == pytest.approx(2 * p_df2(3 * math.sqrt(3)))
    assert lower.p_adjusted > 0.05
    assert lower.verdict is higher.verdict is Verdict.NO_DIFFERENCE
    lower, higher = compare(results, "base", "loss", alpha=0.1)
    assert (lower.verdict, higher.verdict) == ("better", "worse")
    assert lower.confidence == pytest.approx(0.95)  # 1 - 0.1/2
    assert lower.ci_high < 0 < higher.ci_low


def test_worse_on_a_higher_is_better_metric() -> None:
    results = study("accuracy", {"base": [10.0, 20.0, 30.0], "trick": [7.0, 18.0, 26.0]})
    (c,) = compare(results, "base", "accuracy")
    assert c.verdict == "worse"


def test_identical_differences_zero_means_p_one() -> None:
    results = study("accuracy", {"base": [0.5, 0.25, 0.75], "same": [0.5, 0.25, 0.75]})
    (c,) = compare(results, "base", "accuracy")
    assert (c.diff, c.ci_low, c.ci_high, c.p, c.p_adjusted) == (0.0, 0.0, 0.0, 1.0, 1.0)
    assert c.verdict is Verdict.NO_DIFFERENCE  # and [0, 0] holds 0
    assert c.seeds_needed is None and math.isnan(c.mde)
    # ties count half; the interval counts them as losses (low end), as wins (high end)
    assert (c.p_beats, c.p_beats_low, c.p_beats_high) == (0.5, 0.0, 1.0)


def test_identical_nonzero_differences_are_deterministic_p_zero() -> None:
    results = study(
        "loss",
        {
            "base": [0.5, 0.25, 0.75],
            "trick": [0.375, 0.125, 0.625],
            "other": [0.5, 0.75, 0.25],  # differences 0, 0.5, -0.5
        },
    )
    c, other = compare(results, "base", "loss")
    assert (c.diff, c.ci_low, c.ci_high, c.p, c.p_adjusted) == (-0.125, -0.125, -0.125, 0.0, 0.0)
    assert c.tests == 2  # a deterministic difference counts as a tested comparison
    assert c.verdict == "better"  # lower loss on every seed; [-0.125, -0.125] excludes 0
    assert c.seeds_needed is None and math.isnan(c.mde)
    # 3 wins of 3, Clopper-Pearson at 1 - 0.05/2: low end (0.0125)^(1/3)
    assert (c.p_beats, c.p_beats_high) == (1.0, 1.0)
    assert c.p_beats_low == pytest.approx(0.0125 ** (1 / 3))
    assert "the same difference on every seed" in comparison_sentence(c)
    assert other.p_adjusted == pytest.approx(1.0)


def test_one_seed_is_too_few_and_stays_out_of_the_adjustment() -> None:
    results = study(
        "accuracy",
        {"base": [10.0, 20.0, 30.0], "one": [11.0, None, None], "three": [13.0, 22.0, 34.0]},
    )
    one, three = compare(results, "base", "accuracy")
    assert (one.n, one.diff, one.p, one.p_adjusted, one.seeds_needed) == (1, 1.0, None, None, None)
    assert math.isnan(one.ci_low) and math.isnan(one.ci_high) and math.isnan(one.mde)
    assert one.p_beats == 1.0 and math.isnan(one.p_beats_low) and math.isnan(one.p_beats_high)
    assert one.verdict is Verdict.TOO_FEW and verdict_label(one) == "too few seeds to test (1)"
    assert one.tests == three.tests == 1  # only one comparison was tested
    assert three.p_adjusted == pytest.approx(three.p)
    assert three.ci_low == pytest.approx(3 - T2 / math.sqrt(3))  # alpha 0.05/1: 95%
    assert comparison_sentence(one) == (
        "one vs base: accuracy +1.00 on 1 seed: too few seeds to test (1)."
    )


def test_no_shared_seed() -> None:
    results = [run("base", 0, {"auc": 0.5}), run("trick", 1, {"auc": 0.6})]
    (c,) = compare(results, "base", "auc")
    assert c.n == 0 and math.isnan(c.diff) and c.p is None and c.tests == 0
    assert math.isnan(c.p_beats) and math.isnan(c.mde)
    assert c.verdict is Verdict.TOO_FEW
    assert comparison_sentence(c) == "trick vs base: auc: too few seeds to test (0)."


def test_none_drops_the_seed_from_the_pair() -> None:
    # seed 1 has no auc for the variant, seed 3 none for the baseline: pairs are seeds 0 and 2.
    results = study("auc", {"base": [0.5, 0.5, 0.75, None], "trick": [0.625, None, 0.75, 0.9]})
    (c,) = compare(results, "base", "auc")
    assert c.n == 2
    assert c.diff == pytest.approx((0.125 + 0.0) / 2)
    # sd of (0.125, 0) = 0.125 / sqrt(2); half-width T1 * sd / sqrt(2) = T1 * 0.0625
    assert c.ci_high == pytest.approx(0.0625 + T1 * 0.0625)
    # t = 0.0625 / 0.0625 = 1 with df=1: two-sided p = 1 - 2 atan(1) / pi = 0.5
    assert c.p == pytest.approx(0.5)
    assert c.p_beats == pytest.approx(0.75)  # one win, one tie


def test_last_weights_and_variant_selection() -> None:
    last = {"base": [10.0, 20.0, 30.0], "x": [13.0, 22.0, 34.0], "y": [1.0] * 3}
    results = [
        run(v, s, {"accuracy": 0.0}, {"accuracy": value})
        for v, values in last.items()
        for s, value in enumerate(values)
    ]
    (c,) = compare(results, "base", "accuracy", weights="last", variants=["base", "x"])
    assert (c.variant, c.weights, c.diff, c.tests) == ("x", "last", pytest.approx(3.0), 1)
    assert "accuracy (last weights)" in comparison_sentence(c)


def test_compare_rejects_bad_input() -> None:
    results = study("auc", {"base": [0.5, 0.6], "x": [0.5, 0.7]})
    with pytest.raises(ValueError, match="baseline"):
        compare(results, "nope", "auc")
    with pytest.raises(ValueError, match="weights"):
        compare(results, "base", "auc", weights="middle")
    with pytest.raises(ValueError, match="two results"):
        compare([*results, run("x", 0, {"auc": 0.1})], "base", "auc")


# -- P(variant beats baseline on a new seed) ------------------------------------------------------
def clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """The exact binomial interval of k successes in n, from its beta-quantile formula."""
    tail = (1 - confidence) / 2
    low = 0.0 if k == 0 else float(scipy_stats.beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(scipy_stats.beta.ppf(1 - tail, k + 1, n - k))
    return low, high


def test_p_beats_by_hand_and_its_exact_interval() -> None:
    # differences 1, 1, 0, -1: two wins, a tie, a loss -> (1 + 1 + 0.5 + 0) / 4 = 0.625
    base = [10.0, 20.0, 30.0, 40.0]
    results = study("accuracy", {"base": base, "trick": [11.0, 21.0, 30.0, 39.0]})
    (c,) = compare(results, "base", "accuracy")
    assert c.p_beats == 0.625
    # the low end counts the tie as a loss (2 of 4), the high end as a win (3 of 4), at 95%
    assert c.p_beats_low == pytest.approx(clopper_pearson(2, 4, 0.95)[0])
    assert c.p_beats_high == pytest.approx(clopper_pearson(3, 4, 0.95)[1])
    assert (c.p_beats_low, c.p_beats_high) == pytest.approx((0.0676, 0.9937), abs=1e-4)
    assert c.p_beats_low < c.p_beats < c.p_beats_high  # the estimate lies inside its interval


def test_p_beats_follows_the_metric_direction() -> None:
    # the same differences on a loss: lower is better, so the variant beats the baseline on the
    # one seed where its loss is lower -> (0 + 0 + 0.5 + 1) / 4 = 0.375
    base = [10.0, 20.0, 30.0, 40.0]
    (c,) = compare(study("loss", {"base": base, "trick": [11.0, 21.0, 30.0, 39.0]}), "base", "loss")
    assert c.p_beats == 0.375
    assert c.p_beats_low == pytest.approx(clopper_pearson(1, 4, 0.95)[0])
    assert c.p_beats_high == pytest.approx(clopper_pearson(2, 4, 0.95)[1])


def test_p_beats_at_five_of_five_is_never_certain() -> None:
    """5 wins of 5 is not P = 1 for sure: the exact interval at 95% is [0.025^(1/5), 1] =
    [0.478, 1], and with 3 comparisons, at the Bonferroni level 1 - 0.05/3, [(0.05/6)^(1/5), 1]."""
    base = [0.70, 0.72, 0.74, 0.76, 0.78]
    results = study("auc", {"base": base, "x": [b + 0.01 for b in base]})
    (c,) = compare(results, "base", "auc")
    assert (c.p_beats, c.p_beats_high) == (1.0, 1.0)
    assert c.p_beats_low == pytest.approx(0.025 ** (1 / 5)) == pytest.approx(0.4782, abs=1e-4)
    assert "P(x beats base on a new seed) 1.00 [0.48, 1.00]" in comparison_sentence(c)
    three = study(
        "auc",
        {
            "base": base,
            "x": [b + 0.01 for b in base],
            "y": [b + 0.02 for b in base],
            "z": [b - 0.01 for b in base],
        },
    )
    x, _, z = compare(three, "base", "auc")
    assert x.tests == 3 and x.p_beats_low == pytest.approx((0.05 / 6) ** (1 / 5))
    assert (z.p_beats, z.p_beats_low) == (0.0, 0.0)  # 0 of 5: [0, 1 - (0.05/6)^(1/5)]
    assert z.p_beats_high == pytest.approx(1 - (0.05 / 6) ** (1 / 5))


def test_p_beats_has_no_interval_when_runs_share_training_rows() -> None:
    """Under resplit or cv the runs are not independent trials: no interval, and the sentence
    says why."""
    base = [0.70, 0.72, 0.74, 0.76, 0.78]
    results = study("auc", {"base": base, "x": [b + 0.01 for b in base]})
    (c,) = compare(results, "base", "auc", correction=0.25, unit="runs")
    assert c.p_beats == 1.0
    assert math.isnan(c.p_beats_low) and math.isnan(c.p_beats_high)
    sentence = comparison_sentence(c)
    assert "P(x beats base on a new run) 1.00 (no interval: the runs share training rows)" in (
        sentence
    )
    assert "[1.00, 1.00]" not in sentence


def test_p_beats_interval_narrows_with_more_seeds() -> None:
    # 7 wins of 10 seeds: 0.7, exact interval [0.348, 0.933]; 70 of 100: [0.600, 0.788]
    for wins, n, expected in [(7, 10, (0.3475, 0.9333)), (70, 100, (0.6002, 0.7876))]:
        d = [1.0] * wins + [-1.0] * (n - wins)
        base = [float(i) for i in range(n)]
        results = study("auc", {"base": base, "x": [b + s for b, s in zip(base, d, strict=True)]})
        (c,) = compare(results, "base", "auc")
        assert c.p_beats == pytest.approx(0.7)
        assert (c.p_beats_low, c.p_beats_high) == pytest.approx(clopper_pearson(wins, n, 0.95))
        assert (c.p_beats_low, c.p_beats_high) == pytest.approx(expected, abs=1e-4)


# -- minimum detectable difference ---------------------------------------------------------------
def power_by_scipy(effect: float, n: int, alpha: float) -> float:
    """Power of a two-sided one-sample t-test (noncentral t), lower tail left out where scipy
    cannot compute it (it is below 1e-9 there)."""
    df, crit, shift = n - 1, scipy_stats.t.ppf(1 - alpha / 2, n - 1), effect * math.sqrt(n)
    lower = scipy_stats.nct.cdf(-crit, df, shift)
    return float(scipy_stats.nct.sf(crit, df, shift) + (lower if math.isfinite(lower) else 0))


def test_minimum_detectable_difference_textbook_and_power() -> None:
    # G*Power, "means: difference from constant", two-sided, alpha 0.05, power 0.8, n = 10:
    # detectable effect size dz = 0.996 (in units of the sd of the differences).
    assert minimum_detectable_difference(1.0, 10) == pytest.approx(0.996, abs=5e-4)
    assert minimum_detectable_difference(0.02, 10) == pytest.approx(0.02 * 0.9960019, rel=1e-5)
    for sd, n, alpha in [(1.0, 10, 0.05), (0.3, 20, 0.05 / 6), (1.0, 3, 0.025), (2.0, 2, 0.05)]:
        mde = minimum_detectable_difference(sd, n, alpha)
        assert power_by_scipy(mde / sd, n, alpha) == pytest.approx(0.8, abs=1e-5)
        assert (
            TTestPower().power(effect_size=mde / sd, nobs=n, alpha=alpha)
            == pytest.approx(0.8, abs=1e-5)
            or n == 2
        )  # statsmodels' two-sided power is NaN far out with one df
    assert math.isnan(minimum_detectable_difference(1.0, 1))
    assert math.isnan(minimum_detectable_difference(0.0, 5))


def test_minimum_detectable_difference_where_the_solver_fails() -> None:
    # statsmodels' solve_power(nobs=3, alpha=0.05/6, power=0.8) stops at a wrong effect size;
    # the answer must still have power 0.8 (upper tail: the lower one is below 1e-9 here).
    mde = minimum_detectable_difference(1.0, 3, 0.05 / 6)
    assert mde == pytest.approx(8.0194, abs=1e-3)
    assert power_by_scipy(mde, 3, 0.05 / 6) == pytest.approx(0.8, abs=1e-6)


def test_mde_and_seeds_needed_use_the_adjusted_alpha() -> None:
    base = [10.0, 20.0, 30.0]
    # differences 0, 1, 2 (mean 1, sd 1) and 2, 3, 4 (mean 3, sd 1): two comparisons, 0.05/2
    results = study("accuracy", {"base": base, "a": [10.0, 21.0, 32.0], "b": [12.0, 23.0, 34.0]})
    a, b = compare(results, "base", "accuracy")
    assert a.tests == 2
    assert a.mde == pytest.approx(minimum_detectable_difference(1.0, 3, 0.025))
    assert power_by_scipy(a.mde, 3, 0.025) == pytest.approx(0.8, abs=1e-6)
    assert a.mde > minimum_detectable_difference(1.0, 3, 0.05)
    # the undecided b (adjusted interval holds 0) is smaller than its detectable difference
    assert b.verdict.startswith("no detectable") and b.diff < b.mde
    assert a.seeds_needed == seeds_needed(1.0, 1.0, 0.025) == 13  # 10 at alpha 0.05
    (alone,) = compare(
        study("accuracy", {"base": base, "a": [10.0, 21.0, 32.0]}), "base", "accuracy"
    )
    assert alone.seeds_needed == 10
    assert alone.mde == pytest.approx(minimum_detectable_difference(1.0, 3, 0.05))


# -- seeds needed --------------------------------------------------------------------------------
def test_seeds_needed_textbook_values() -> None:
    # Two-sided paired t-test, alpha 0.05, power 0.8 (Cohen; G*Power "means: difference from
    # constant"): effect size dz = 1.0 needs n = 9.94 -> 10; dz = 0.5 needs 33.37 -> 34.
    assert seeds_needed(1.0, 1.0) == 10
    assert seeds_needed(-0.5, 1.0) == 34
    assert seeds_needed(0.02, 0.04) == 34  # only the ratio |diff| / sd matters
    assert seeds_needed(0.0, 1.0) is None
    assert seeds_needed(1.0, 0.0) is None
    assert seeds_needed(float("nan"), 1.0) is None


def test_seeds_needed_is_monotone_even_where_the_solver_gives_up() -> None:
    # statsmodels' solver returns nan for effect sizes above about 5; n never drops below 2.
    needed = [seeds_needed(effect, 1.0) for effect in [0.3, 1, 2, 3, 4, 5, 6, 8, 10, 15, 30, 60]]
    assert all(n is not None and n >= 2 for n in needed)
    assert needed == sorted(needed, reverse=True)
    assert needed[-1] == 2


def test_seeds_needed_in_a_comparison() -> None:
    # differences 0, 1, 2: mean 1, sd 1 -> effect size 1 -> 10 seeds; t = sqrt(3), p = 0.2254
    results = study("accuracy", {"base": [10.0, 20.0, 30.0], "trick": [10.0, 21.0, 32.0]})
    (c,) = compare(results, "base", "accuracy")
    assert c.p == pytest.approx(1 - math.sqrt(3 / 5))
    assert c.seeds_needed == 10
    assert c.mde == pytest.approx(3.264, abs=1e-3)  # effect size 3.264 at n = 3, sd 1
    # a tie and two wins: (0.5 + 1 + 1) / 3; the exact interval counts the tie as a loss for
    # its low end (2 of 3) and as a win for its high end (3 of 3)
    assert (c.p_beats, c.p_beats_high) == (pytest.approx(5 / 6), 1.0)
    assert c.p_beats_low == pytest.approx(clopper_pearson(2, 3, 0.95)[0])  # 0.094
    assert c.verdict is Verdict.NO_DIFFERENCE
    assert comparison_sentence(c) == (
        "trick vs base: accuracy +1.0, 95% interval [-1.5, 3.5], p=0.23 (1 comparison, "
        "alpha 0.05): no detectable difference with 3 seeds; about 10 seeds would decide it; "
        "minimum detectable difference ±3.3; P(trick beats base on a new seed) 0.83 [0.09, 1.00]."
    )


# -- sentences and the frame ---------------------------------------------------------------------
def comparison(**fields: Any) -> Comparison:
    defaults: dict[str, Any] = {
        "variant": "mse", "baseline": "baseline", "metric": "auc", "weights": "best", "n": 3,
        "diff": -0.021, "ci_low": -0.061, "ci_high": 0.019, "p": 0.12, "p_adjusted": 0.36,
        "tests": 3, "alpha": 0.05, "verdict": Verdict.NO_DIFFERENCE,
        "mde": 0.034, "seeds_needed": 9, "p_beats": 1 / 3, "p_beats_low": 0.0,
        "p_beats_high": 1.0,
    }  # fmt: skip
    return Comparison(**(defaults | fields))


def test_sentence_states_the_rule() -> None:
    assert comparison_sentence(comparison()) == (
        "mse vs baseline: auc -0.021, 98.33% interval [-0.061, 0.019], p=0.12, adjusted p=0.36 "
        "(Bonferroni across 3 comparisons, alpha 0.05/3): no detectable difference with 3 seeds; "
        "about 9 seeds would decide it; minimum detectable difference ±0.034; P(mse beats "
        "baseline on a new seed) 0.33 [0.00, 1.00]."
    )


def test_sentence_small_values_and_small_p() -> None:
    c = comparison(
        variant="bn", baseline="base", metric="loss", n=5, diff=-0.00042, ci_low=-0.0006,
        ci_high=-0.0002, p=0.0002, p_adjusted=0.0004, tests=2, verdict=Verdict.BETTER,
        mde=0.00031, seeds_needed=4, p_beats=1.0, p_beats_low=0.0125 ** 0.2, p_beats_high=1.0,
    )  # fmt: skip
    assert comparison_sentence(c) == (
        "bn vs base: loss -0.00042, 97.5% interval [-0.00060, -0.00020], p<0.001, adjusted "
        "p<0.001 (Bonferroni across 2 comparisons, alpha 0.05/2): better; minimum detectable "
        "difference ±0.00031; P(bn beats base on a new seed) 1.00 [0.42, 1.00]."
    )


def test_decision_rule_and_percent() -> None:
    assert decision_rule(3) == (
        "verdicts: paired t-test, Bonferroni-adjusted across the 3 comparisons (alpha 0.05/3); "
        "intervals are the matching adjusted intervals (98.33%)"
    )
    assert "across the 1 comparison (alpha 0.05/1)" in decision_rule(1)
    assert [percent(c) for c in (0.95, 0.975, 1 - 0.05 / 3, 0.995)] == [
        "95%", "97.5%", "98.33%", "99.5%",
    ]  # fmt: skip


def test_comparison_frame() -> None:
    results = study(
        "accuracy",
        {"base": [10.0, 20.0, 30.0], "one": [11.0, None, None], "three": [13.0, 22.0, 34.0]},
    )
    frame = comparison_frame(compare(results, "base", "accuracy"))
    assert list(frame.columns) == [
        "variant", "baseline", "metric", "weights", "n", "diff", "ci_low", "ci_high",
        "p", "p_adjusted", "tests", "alpha", "verdict", "mde", "seeds_needed",
        "p_beats", "p_beats_low", "p_beats_high", "correction", "unit", "floor",
    ]  # fmt: skip
    assert list(frame["variant"]) == ["one", "three"]
    # the verdict as its value string (a plain str), readable in the frame
    assert list(frame["verdict"]) == ["too few to test", "better"]
    assert all(type(v) is str for v in frame["verdict"])
    assert math.isnan(frame.loc[0, "p"]) and math.isnan(frame.loc[0, "p_adjusted"])
    assert math.isnan(frame.loc[0, "mde"]) and math.isnan(frame.loc[0, "p_beats_low"])
    assert frame.loc[1, "p"] == pytest.approx(p_df2(3 * math.sqrt(3)))
    assert frame.loc[1, "ci_low"] == pytest.approx(3 - T2 / math.sqrt(3))
    assert frame.loc[1, "p_beats"] == 1.0
    assert frame["seeds_needed"].dtype == "Int64"
    assert frame.loc[0, "seeds_needed"] is pd.NA
    assert comparison_frame([]).empty


def test_summarize_identical_values_leave_no_rounding_residue() -> None:
    # np.mean([0.1] * 3) is 0.10000000000000002: the spread must still be exactly zero
    assert summarize([0.1, 0.1, 0.1]) == Summary(3, 0.1, 0.0, 0.1, 0.1)
