"""The headline of a report, each variant's recipe changes, and the pure path that writes nothing:
checked on tiny studies written as stored runs (no training)."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import made_up_result, write_finished_run

from tricklab.api import StudyRun
from tricklab.report import (
    build_report,
    diff_recipes,
    headline,
    load_report,
    recipe_changes,
    verdict_label,
)
from tricklab.stats import FailureMode, Verdict
from tricklab.store import RunStore, StudyIndex

BASE_RECIPE: dict[str, Any] = {
    "model": {
        "layers": [
            {"type": "dense", "units": 30, "activation": "relu", "use_bias": True, "repeat": 1},
            {"type": "dense", "units": 1, "activation": "sigmoid", "use_bias": True, "repeat": 1},
        ]
    },
    "train": {"loss": "binary_crossentropy", "optimizer": "adam", "batch_size": 30, "epochs": 8},
}
SEEDS = tuple(range(6))
#: Per-seed noise shared by every variant (the seed's split and initialisation), and a little of
#: each variant's own, so that paired differences have a small spread.
SHARED = np.array([0.00, 0.04, -0.03, 0.02, -0.05, 0.03])


def _recipe(**changes: Any) -> dict[str, Any]:
    recipe = copy.deepcopy(BASE_RECIPE)
    for path, value in changes.items():
        section, key = path.split("__")
        recipe[section][key] = value
    return recipe


def write_study(root: Path, variants: dict[str, dict[str, Any]], primary: str = "auc") -> Path:
    """A study directory of finished binary runs. Each variant gives ``auc`` (an offset from 0.7),
    optionally ``learns=False`` (a training loss that stays flat) and its ``recipe``."""
    runs = []
    for number, (variant, spec) in enumerate(variants.items()):
        own = np.random.default_rng(number).normal(0, 0.004, len(SEEDS))
        for seed in SEEDS:
            epochs = 8
            if spec.get("learns", True):
                loss = list(0.4 + 0.3 * np.exp(-0.5 * np.arange(epochs)))
            else:
                loss = [0.69315] * epochs
            history = {"loss": loss, "val_loss": [v + 0.05 for v in loss]}
            auc = spec["auc"] + SHARED[seed] + own[seed]
            best = {"loss": loss[-1], "accuracy": 0.85, "majority_baseline": 0.85, "auc": auc}
            result = made_up_result(
                variant,
                seed,
                best,
                history,
                study=root.name,
                params=100,
                seconds_total=0.2,
                engine="population",
            )
            stored = write_finished_run(root, result, spec.get("recipe", BASE_RECIPE))
            runs.append({"variant": variant, "seed": seed, "key": stored.key})
    index = {
        "study": root.name,
        "variants": list(variants),
        "seeds": list(SEEDS),
        "baseline": next(iter(variants)),
        "resolved": {
            "primary_metric": primary,
            "task": "binary",
            "dataset": {"name": "made-up", "classes": ["no", "yes"]},
            "protocol": {"validation": 0.1, "validated_on": "validation split"},
        },
        "runs": runs,
    }
    RunStore(root).write_index(StudyIndex.from_json(index))
    return root


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """A clear winner, a clear loser, a tie and a variant that does not learn."""
    return write_study(
        tmp_path / "mixed",
        {
            "baseline": {"auc": 0.70},
            "winner": {"auc": 0.80, "recipe": _recipe(train__optimizer="adamw")},
            "loser": {"auc": 0.60, "recipe": _recipe(train__loss="mean_absolute_error")},
            "tie": {"auc": 0.701, "recipe": _recipe(train__batch_size=64)},
            "stuck": {"auc": 0.70, "learns": False, "recipe": _recipe(train__epochs=9)},
        },
    )


def test_the_headline_says_what_won_lost_tied_and_how_a_variant_failed(mixed: Path) -> None:
    report = load_report(mixed)
    verdicts = {c.variant: c.verdict for c in report.comparisons}
    assert verdicts["winner"] == "better" and verdicts["loser"] == "worse"
    assert verdicts["tie"].startswith("no detectable")
    first = headline(report)[0]
    parts = first.rstrip(".").split("; ")
    assert parts[0].startswith("winner (auc +0.1") and parts[0].endswith("is better than baseline")
    assert parts[1].startswith("loser (auc -0.1") and parts[1].endswith("is worse than baseline")
    # the stuck variant's comparison stays visible; how it failed is said beside it
    assert parts[2] == "tie and stuck cannot be told apart from baseline with 6 seeds"
    assert parts[3] == "stuck: training loss never moved"
    assert len(parts) == 4
    assert (
        "stuck: training loss never moved (in each of its 6 runs, never 1% below its first "
        "epoch's)" in headline(report)[2]
    )
    # each number in the headline is the comparison's, rounded to its interval
    winner = next(c for c in report.comparisons if c.variant == "winner")
    shown = first.split("winner (auc ")[1].split(")")[0]
    diff, low, high = (
        float(v) for v in shown.replace("[", "").replace(",", "").split("]")[0].split()
    )
    assert diff == pytest.approx(winner.diff, abs=0.005)
    assert (low, high) == (
        pytest.approx(winner.ci_low, abs=0.005),
        pytest.approx(winner.ci_high, abs=0.005),
    )


def test_a_primary_metric_at_chance_is_not_shown_better_than_chance(tmp_path: Path) -> None:
    report = load_report(
        write_study(tmp_path / "chance", {"baseline": {"auc": 0.70}, "coin": {"auc": 0.50}})
    )
    failed = report.failures()
    assert list(failed) == ["coin"]  # the learning baseline is not flagged
    assert failed["coin"].mode is FailureMode.AT_CHANCE
    assert failed["coin"].evidence == "its test auc interval reaches AUC 0.5"
    assert "coin: not shown better than chance" in headline(report)[0]


def test_when_nothing_is_decided_it_says_how_many_seeds_would_decide(tmp_path: Path) -> None:
    root = write_study(
        tmp_path / "undecided",
        {"baseline": {"auc": 0.70}, "close": {"auc": 0.703}, "closer": {"auc": 0.701}},
    )
    report = load_report(root)
    close = next(c for c in report.comparisons if c.variant == "close")
    assert all(c.verdict.startswith("no detectable") for c in report.comparisons)
    first = headline(report)[0]
    assert first.startswith("close and closer cannot be told apart from baseline with 6 seeds")
    assert close.seeds_needed is not None and close.seeds_needed > 6
    assert f"about {close.seeds_needed} seeds would decide the largest observed difference" in first
    assert "(close, +0.00" in first


@pytest.mark.parametrize(("kind", "unit"), [("cv", "runs"), ("split", "seeds"), (None, "seeds")])
def test_too_few_to_test_counts_in_runs_under_cv_and_seeds_on_a_fixed_split(
    tmp_path: Path, kind: str | None, unit: str
) -> None:
    """A variant with one finished run is untested: the headline counts what the comparisons
    are paired by, runs under cross-validation and seeds otherwise (as its table and
    sentences do)."""
    root = write_study(tmp_path / "few", {"baseline": {"auc": 0.70}, "few": {"auc": 0.80}})
    for seed in SEEDS[1:]:  # "few" keeps only its first run
        shutil.rmtree(root / "few" / f"seed-{seed}")
    if kind is not None:  # None: an index from before protocols had a kind
        store = RunStore(root)
        index = store.read_index()
        index.resolved["protocol"]["kind"] = kind
        store.write_index(index)
    report = load_report(root)
    (few,) = report.comparisons
    assert few.verdict is Verdict.TOO_FEW and few.unit == unit
    assert f"few: too few {unit} to test" in headline(report)[0]
    other = "seeds" if unit == "runs" else "runs"
    assert f"too few {other}" not in headline(report)[0]
    assert verdict_label(few) == f"too few {unit} to test (1)"


def test_each_variant_is_described_by_its_recipe_changes(mixed: Path) -> None:
    changes = recipe_changes(load_report(mixed))
    assert changes == {
        "winner": ["train.optimizer: adam -> adamw"],
        "loser": ["train.loss: binary_crossentropy -> mean_absolute_error"],
        "tie": ["train.batch_size: 30 -> 64"],
        "stuck": ["train.epochs: 8 -> 9"],
    }


def test_recipe_diff_of_layers_and_components() -> None:
    dropout = {"type": "dropout", "rate": 0.5, "repeat": 1}
    layers = BASE_RECIPE["model"]["layers"]
    with_dropout = _recipe(model__layers=[layers[0], dropout, layers[1]])
    assert diff_recipes(BASE_RECIPE, with_dropout) == ["model.layers[1]: + dropout(rate=0.5)"]
    assert diff_recipes(with_dropout, BASE_RECIPE) == ["model.layers[1]: - dropout(rate=0.5)"]
    wider = copy.deepcopy(BASE_RECIPE)
    wider["model"]["layers"][0]["units"] = 64
    wider["train"]["optimizer"] = {"name": "sgd", "momentum": 0.9}
    wider["train"]["early_stopping"] = {"monitor": "val_loss", "patience": 3}
    assert diff_recipes(BASE_RECIPE, wider) == [
        "model.layers[0].units: 30 -> 64",
        "train.optimizer: adam -> sgd(momentum=0.9)",
        "train.early_stopping: + {monitor=val_loss, patience=3}",
    ]
    l2 = {"name": "l2", "l2": 0.01}
    a, b = copy.deepcopy(BASE_RECIPE), copy.deepcopy(BASE_RECIPE)
    a["model"]["layers"][0]["kernel_regularizer"] = l2
    b["model"]["layers"][0]["kernel_regularizer"] = {"name": "l2", "l2": 0.1}
    assert diff_recipes(a, b) == ["model.layers[0].kernel_regularizer.l2: 0.01 -> 0.1"]
    b["model"]["layers"][0]["kernel_regularizer"] = {"name": "l1", "l1": 0.01}
    assert diff_recipes(a, b) == ["model.layers[0].kernel_regularizer: l2(l2=0.01) -> l1(l1=0.01)"]


def test_tables_and_comparisons_are_computed_without_writing(mixed: Path) -> None:
    before = _files(mixed)
    report = load_report(mixed)
    assert list(report.table.index) == ["baseline", "winner", "loser", "tie", "stuck"]
    outcome = StudyRun(
        spec=None, store=RunStore(mixed), results=[], trained=0, reused=0, failed=[], dataset=None
    )
    assert list(outcome.table().index) == list(report.table.index)
    assert set(outcome.comparisons()["variant"]) == {"winner", "loser", "tie", "stuck"}
    assert _files(mixed) == before  # no report.md, report.html or figure written
    assert outcome.report().html.exists()  # writing is asked for by name
    assert (mixed / "report.md").exists() and (mixed / "figures").is_dir()


def test_the_documents_open_with_the_headline(mixed: Path) -> None:
    report = build_report(mixed)
    first = headline(report)[0]
    md = report.markdown.read_text(encoding="utf-8")
    assert md.index(first) < md.index("## Results")
    assert "`train.loss: binary_crossentropy -> mean_absolute_error`" in md
    html = report.html.read_text(encoding="utf-8")
    assert html.index('class="verdict"') < html.index('id="results"')
    assert "is worse than baseline" in html
