"""How a variant failed, by what was seen: a flat loss, one class or value for every row, or an
interval that reaches chance; a learning baseline is never flagged."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import made_up_result, write_finished_run

from tricklab.report import build_report, headline, load_report, report_text
from tricklab.report._tables import compact_rows, summary_rows
from tricklab.stats import FailureMode, predicts_one_class, predicts_one_value
from tricklab.store import RunStore, StudyIndex

RECIPE: dict[str, Any] = {
    "model": {
        "layers": [
            {"type": "dense", "units": 4, "activation": "relu", "use_bias": True, "repeat": 1},
            {"type": "dense", "units": 1, "activation": "sigmoid", "use_bias": True, "repeat": 1},
        ]
    },
    "train": {"loss": "binary_crossentropy", "optimizer": "adam", "batch_size": 30, "epochs": 8},
}
TESTED = 90
LEARNING = list(0.4 + 0.3 * np.exp(-0.5 * np.arange(8)))
FLAT = [0.69315] * 8


def write_study(
    root: Path,
    variants: dict[str, dict[str, Any]],
    seeds: int = 6,
    task: str = "binary",
    correction: float = 0.0,
) -> Path:
    """Finished runs of made-up variants: ``score`` (the primary metric), ``loss`` (a training
    loss curve) and ``predictions(seed)`` (its test outputs; default: spread over [0, 1])."""
    metric = "auc" if task == "binary" else "mse"
    runs = []
    for number, (variant, spec) in enumerate(variants.items()):
        noise = np.random.default_rng(number).normal(0, 0.004, seeds)
        for seed in range(seeds):
            loss = spec.get("loss", LEARNING)
            best = {"loss": loss[-1], metric: spec["score"] + noise[seed]}
            if task == "binary":
                best |= {"accuracy": 0.85, "majority_baseline": 0.85}
            else:
                best |= {"mean_baseline_mse": 0.25}
            result = made_up_result(
                variant,
                seed,
                best,
                {"loss": loss, "val_loss": [v + 0.05 for v in loss]},
                study=root.name,
                split_sizes={"train": 300, "validation": 40, "test": TESTED},
            )
            made = spec.get("predictions")
            recipe = copy.deepcopy(RECIPE)
            stored = write_finished_run(
                root, result, recipe, predictions=None if made is None else made(seed)
            )
            runs.append({"variant": variant, "seed": seed, "key": stored.key})
    index = {
        "study": root.name,
        "variants": list(variants),
        "seeds": list(range(seeds)),
        "baseline": next(iter(variants)),
        "resolved": {
            "primary_metric": metric,
            "task": task,
            "evaluate": "best",
            "dataset": {"name": "made-up", "classes": ["no", "yes"] if task == "binary" else []},
            "protocol": {
                "validation": 0.1,
                "validated_on": "validation split",
                "correction": correction,
            },
        },
        "runs": runs,
    }
    RunStore(root).write_index(StudyIndex.from_json(index))
    return root


def constant(value: float) -> Any:
    return lambda seed: np.full(TESTED, value)


def test_each_mode_on_constructed_runs_and_none_on_the_learners(tmp_path: Path) -> None:
    root = write_study(
        tmp_path / "modes",
        {
            "baseline": {"score": 0.70},
            "learner": {"score": 0.72},
            "one-class": {"score": 0.69, "predictions": constant(0.2)},  # all below 0.5
            "flat": {"score": 0.70, "loss": FLAT},
            "coin": {"score": 0.50},  # learned (its loss fell), yet scores at chance
        },
    )
    report = load_report(root)
    failed = report.failures()
    assert {v: f.mode for v, f in failed.items()} == {
        "one-class": FailureMode.ONE_CLASS,
        "flat": FailureMode.LOSS_FLAT,
        "coin": FailureMode.AT_CHANCE,
    }
    assert failed["one-class"].evidence == "in each of its 6 runs"
    first, *notes = headline(report)
    assert "one-class: predicts one class for every row" in first
    assert "flat: training loss never moved" in first
    assert "coin: not shown better than chance" in first
    # every undecided comparison stays visible, the failed variants' included
    assert "cannot be told apart from baseline" in first
    assert any(n.startswith("How variants failed: one-class: predicts one class") for n in notes)
    # the verdict column says it too, in the wide and the compact table
    wide = {row["variant"]["text"]: row["verdict"]["sub"] for row in summary_rows(report)}
    assert wide["one-class"].startswith("predicts one class for every row")
    assert wide["coin"].startswith("not shown better than chance")
    assert not wide["learner"].startswith(("predicts", "not shown", "training loss"))
    compact = {row["variant"]["text"]: row["verdict"]["sub"] for row in compact_rows(report)}
    assert compact["flat"] == "training loss never moved" and compact["baseline"] == ""
    markdown = report_text(build_report(root))  # the documents: opening and table alike
    opening = markdown.split("\n|")[0]
    assert "one-class: predicts one class for every row" in opening
    assert "predicts one class for every row" in markdown.split("\n|", 1)[1]


def test_one_class_needs_every_run(tmp_path: Path) -> None:
    # one run of six gives both classes: the variant is not said to predict one class
    def mostly_constant(seed: int) -> np.ndarray:
        out = np.full(TESTED, 0.2)
        if seed == 3:
            out[:10] = 0.9
        return out

    root = write_study(
        tmp_path / "mixed",
        {"baseline": {"score": 0.70}, "almost": {"score": 0.7, "predictions": mostly_constant}},
    )
    assert load_report(root).failures() == {}


def test_a_learning_baseline_with_3_runs_is_not_flagged_under_the_correction(
    tmp_path: Path,
) -> None:
    # three cv-like runs whose training sets overlap (correction 0.25): the corrected interval
    # is wide, and a learning baseline well above chance stays unflagged
    root = write_study(
        tmp_path / "three",
        {"baseline": {"score": 0.62}, "other": {"score": 0.60}},
        seeds=3,
        correction=0.25,
    )
    report = load_report(root)
    row = report.table.loc["baseline"]
    assert row["auc_best_low"] > 0.5  # the interval the rule reads
    assert report.failures() == {}


def test_regression_predicting_one_value(tmp_path: Path) -> None:
    root = write_study(
        tmp_path / "regression",
        {
            "baseline": {"score": 0.20},
            "mean-only": {"score": 0.25, "predictions": constant(0.5)},
        },
        task="regression",
    )
    failed = load_report(root).failures()
    assert {v: f.mode for v, f in failed.items()} == {"mean-only": FailureMode.ONE_VALUE}


@pytest.mark.parametrize(
    ("outputs", "one"),
    [
        (np.array([0.1, 0.2, 0.49]), True),
        (np.array([0.1, 0.2, 0.5]), False),  # 0.5 is the positive class, as Keras's accuracy
        (np.array([[0.2, 0.8], [0.3, 0.7]]), True),  # argmax for several outputs
        (np.array([[0.2, 0.8], [0.7, 0.3]]), False),
        (np.array([[0.9], [0.8]]), True),
    ],
)
def test_one_class_rule(outputs: np.ndarray, one: bool) -> None:
    assert predicts_one_class(outputs) is one


def test_one_value_rule() -> None:
    targets = np.array([0.0, 10.0, 20.0])  # std 8.16
    assert predicts_one_value(np.array([5.0, 5.001, 5.002]), targets)
    assert not predicts_one_value(np.array([5.0, 5.1, 5.2]), targets)


def test_the_compact_table_at_80_columns_keeps_the_failure_words_whole(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from tricklab.report import print_report

    root = write_study(
        tmp_path / "narrow",
        {
            "baseline": {"score": 0.70},
            "mean_absolute_percentage_error": {"score": 0.69, "predictions": constant(0.2)},
        },
    )
    console = Console(file=io.StringIO(), width=80, record=True, color_system=None, soft_wrap=True)
    print_report(console, load_report(root))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80, text
    table = text[text.index("verdict") :]
    words = " ".join(line[61:].strip() for line in table.splitlines() if line[61:].strip())
    assert "predicts one class for every row" in words, table
