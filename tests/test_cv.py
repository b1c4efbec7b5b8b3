"""Cross-validation (``cv = {folds, repeats}``): which rows each run sees, and how it is judged."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as scipy_stats

from tricklab.api import run_study
from tricklab.base.errors import DataError, SpecError
from tricklab.data import cv_folds, resolve
from tricklab.report import comparison_sentence
from tricklab.spec import StudySpec
from tricklab.stats import Verdict, compare

FOLDS, REPEATS = 3, 2


@pytest.fixture
def cv_study(tiny: dict) -> dict:
    tiny.pop("seeds", None)
    tiny.pop("resplit", None)
    tiny["cv"] = {"folds": FOLDS, "repeats": REPEATS}
    tiny["train"]["epochs"] = 1
    tiny["variants"] = {"bce": {}, "mse": {"train.loss": "mean_squared_error"}}
    return tiny


def test_cv_tests_every_row_once_per_repeat_and_pairs_folds_across_variants(
    cv_study: dict, tmp_path: Path, engine_tasks: list[Any]
) -> None:
    """The rows each run trains, validates and tests on, as the engine receives them (both
    engines receive the same splits; test_population checks they train alike on them)."""
    outcome = run_study(StudySpec.from_dict(cv_study), out=tmp_path, engine="population")
    assert len(outcome.results) == 2 * FOLDS * REPEATS
    seen = {
        (t.plan.variant, t.plan.seed): {part: set(r.tolist()) for part, r in t.splits.rows.items()}
        for t in engine_tasks
    }
    plans = {(t.plan.variant, t.plan.seed): t.plan for t in engine_tasks}
    everything = set(range(len(outcome.dataset.y)))
    for variant in ("bce", "mse"):
        for repeat in range(REPEATS):
            runs = [seen[(variant, repeat * FOLDS + fold)] for fold in range(FOLDS)]
            tested = [run["test"] for run in runs]
            assert set().union(*tested) == everything  # every row tested once per repeat
            assert sum(len(t) for t in tested) == len(everything)
            for run in runs:  # a test fold's rows never train or validate
                assert not (run["test"] & run["train"] or run["test"] & run["validation"])
                assert not run["train"] & run["validation"]
                assert run["train"] | run["validation"] | run["test"] == everything
    for seed in range(FOLDS * REPEATS):  # the same rows for every variant: paired folds
        assert seen[("bce", seed)] == seen[("mse", seed)]
        repeat, fold = divmod(seed, FOLDS)
        plan = plans[("bce", seed)]
        assert (plan.split_seed, plan.fold, plan.init_seed) == (repeat, fold, repeat)
    assert seen[("bce", 0)]["test"] != seen[("bce", FOLDS)]["test"]  # repeats draw anew
    index = json.loads((tmp_path / "tiny" / "study.json").read_text())
    protocol = index["resolved"]["protocol"]
    assert (protocol["kind"], protocol["folds"], protocol["repeats"]) == ("cv", FOLDS, REPEATS)
    # Nadeau-Bengio's n_test/n_train: every row outside the test fold trains (validation too),
    # averaged over the runs' folds
    rows = len(outcome.dataset.y)
    folds = [len(f) for r in range(REPEATS) for f in cv_folds(outcome.dataset, FOLDS, r)]
    assert protocol["correction"] == pytest.approx(np.mean([f / (rows - f) for f in folds]))
    stored = json.loads((tmp_path / "tiny" / "bce" / "seed-4" / "spec.json").read_text())
    assert (stored["fold"], stored["folds"], stored["model_seed"]) == (1, FOLDS, 1)
    report = outcome.report()  # states the protocol and the corrected rule it implies
    text = Path(report.markdown).read_text()
    assert f"{REPEATS} x {FOLDS}-fold cross-validation" in text
    assert "Nadeau-Bengio corrected paired t-test" in text
    (comparison,) = report.comparisons
    assert comparison.correction == pytest.approx(protocol["correction"])
    assert comparison.unit == "runs" and "seed" not in comparison_sentence(comparison)


def test_population_engine_splits_folds_of_unequal_size_into_groups(cv_study: dict) -> None:
    """470 rows in 7 folds: folds of 67 and 68 test rows cannot share one array of rows."""
    from tricklab import engines
    from tricklab.study import make_plan

    cv_study["cv"] = {"folds": 7, "repeats": 1}
    cv_study["variants"] = {"bce": {}}
    study = resolve(StudySpec.from_dict(cv_study))
    tasks = [
        engines.RunTask(make_plan(study, "bce", seed, "population"), study.splits(seed))
        for seed in study.spec.seeds
    ]
    assert len({len(task.splits.y_test) for task in tasks}) == 2
    outcomes = list(engines.get("population").run(tasks, study.dataset))
    assert all(isinstance(o, engines.RunDone) for o in outcomes), outcomes
    assert sorted(o.result.seed for o in outcomes) == list(range(7))


def test_fold_assignment_is_stratified_and_seeded(cv_study: dict) -> None:
    study = resolve(StudySpec.from_dict(cv_study))
    y = study.dataset.y
    folds = cv_folds(study.dataset, 5, 0)
    share = y.mean()
    for test in folds:  # each fold holds the positive share of the table (stratified)
        assert abs(y[test].mean() - share) < 0.02
    assert [f.tolist() for f in cv_folds(study.dataset, 5, 0)] == [f.tolist() for f in folds]
    assert folds[0].tolist() != cv_folds(study.dataset, 5, 1)[0].tolist()


def test_seeds_flag_takes_the_first_repeats(cv_study: dict) -> None:
    spec = StudySpec.from_dict(cv_study)
    assert spec.seeds == tuple(range(FOLDS * REPEATS))
    more = spec.select(seeds=3)
    assert (more.cv.repeats, more.seeds) == (3, tuple(range(3 * FOLDS)))


def test_cv_refuses_a_dataset_with_an_official_test_split(cv_study: dict) -> None:
    cv_study["dataset"] = {"name": "fashion_mnist", "limit": 300}
    cv_study["model"]["layers"] = [
        {"type": "flatten"},
        {"type": "dense", "units": 10, "activation": "softmax"},
    ]
    cv_study["train"]["loss"] = "sparse_categorical_crossentropy"
    try:
        spec = StudySpec.from_dict(cv_study)
        resolve(spec)
    except DataError as exc:
        assert "comes with an official test split" in str(exc)
        assert "Drop cv" in str(exc)
    except SpecError as exc:  # pragma: no cover - the message above is the contract
        pytest.fail(str(exc))
    else:
        pytest.fail("cv on a dataset with an official test split was accepted")


# -- the corrected resampled t-test ---------------------------------------------------------------
def fake_runs(diffs: list[float], base: float = 0.7) -> list[Any]:
    from tricklab.engines.contract import RunResult

    def run(variant: str, seed: int, value: float) -> RunResult:
        return RunResult(
            key=f"{variant}{seed}", study="s", variant=variant, seed=seed, status="ok",
            test={"best": {"auc": value}, "last": {"auc": value}}, epochs_run=1, best_epoch=1,
            monitor="val_loss", best_monitor_value=0.0, params=1, seconds_per_epoch=0.0,
            first_epoch_seconds=0.0, seconds_total=0.0, backend="jax", engine="solo",
            versions={}, validated_on="validation split", split_sizes={},
        )  # fmt: skip

    rng = np.random.default_rng(1)
    bases = base + rng.normal(0, 0.02, len(diffs))
    return [run("base", s, float(b)) for s, b in enumerate(bases)] + [
        run("new", s, float(b + d)) for s, (b, d) in enumerate(zip(bases, diffs, strict=True))
    ]


def test_corrected_test_matches_a_hand_computation() -> None:
    diffs = [0.03, 0.05, 0.01, 0.04, 0.02, 0.06, 0.00, 0.03, 0.05, 0.02]
    runs = fake_runs(diffs)
    c = 0.25
    (got,) = compare(runs, "base", "auc", correction=c)
    d = np.array([r.test["best"]["auc"] for r in runs[10:]]) - np.array(
        [r.test["best"]["auc"] for r in runs[:10]]
    )
    n = len(d)
    se = d.std(ddof=1) * math.sqrt(1 / n + c)  # Nadeau & Bengio (2003)
    t = d.mean() / se
    assert got.p == pytest.approx(2 * scipy_stats.t.sf(abs(t), n - 1), rel=1e-9)
    half = scipy_stats.t.ppf(0.975, n - 1) * se
    assert (got.ci_low, got.ci_high) == pytest.approx((d.mean() - half, d.mean() + half))
    (plain,) = compare(runs, "base", "auc")
    assert plain.p < got.p  # the plain test is more confident on the same differences
    assert plain.ci_high - plain.ci_low < got.ci_high - got.ci_low
    assert "Nadeau-Bengio corrected" in comparison_sentence(got)
    assert "Nadeau-Bengio" not in comparison_sentence(plain)


@pytest.mark.parametrize("c", [0.0, 0.1, 0.25, 1.0])
@pytest.mark.parametrize("shift", [0.0, 0.005, 0.02, 0.05, 0.1])
def test_corrected_interval_excludes_zero_exactly_when_decided(c: float, shift: float) -> None:
    rng = np.random.default_rng(int(shift * 1000) + int(c * 100))
    runs = fake_runs([shift + float(x) for x in rng.normal(0, 0.03, 12)])
    (got,) = compare(runs, "base", "auc", correction=c)
    excludes = got.ci_low > 0 or got.ci_high < 0
    assert excludes == (got.verdict in (Verdict.BETTER, Verdict.WORSE)), comparison_sentence(got)


def test_more_runs_cannot_beat_the_correction() -> None:
    """With overlapping training sets the error stays above sd sqrt(c): no run count helps."""
    from tricklab.stats import minimum_detectable_difference, seeds_needed

    assert seeds_needed(0.02, 0.03, correction=0.0) == 20
    assert seeds_needed(0.02, 0.03, correction=0.25) is None
    needed = seeds_needed(0.05, 0.03, correction=0.25)
    assert needed is not None and needed > seeds_needed(0.05, 0.03)
    plain = minimum_detectable_difference(0.03, 10)
    assert minimum_detectable_difference(0.03, 10, correction=0.25) == pytest.approx(
        plain * math.sqrt(1 + 10 * 0.25)
    )
