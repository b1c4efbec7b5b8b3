"""``train.evaluate``: which checkpoint's test scores a study compares, "best" or "last".

The study has one checkpoint (a paired comparison needs the same for every variant), resolved
once and stored in its index (``resolved.evaluate``); the report, ``export`` and ``predict``
use it, and lint warns when "best" is chosen on too few validation rows (TL016).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TINY, made_up_result, write_finished_run, write_toml

from tricklab.base.errors import SpecError, StoreError
from tricklab.data import resolve
from tricklab.report import build_report, headline, load_report, report_text, terminal_table
from tricklab.report._figures import _best_variant_matrix, title_and_caption
from tricklab.report._tables import caption, compact_caption, metrics_table
from tricklab.spec import StudySpec, load_study
from tricklab.store import RunStore, StudyIndex
from tricklab.study import make_plan
from tricklab.tools.lint import lint

RESTORE = {"patience": 2, "restore_best_weights": True}


def study(train: dict[str, Any] | None = None, **table: Any) -> StudySpec:
    """The tiny study with ``train`` keys changed and other fields (variants, ...) set."""
    spec = copy.deepcopy(TINY)
    spec["train"].update(train or {})
    spec.update(table)
    return StudySpec.from_dict(spec)


# -- the default, by recipe ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("train", "expected"),
    [
        ({}, "last"),  # no early stopping: the best-weights file kept anyway does not count
        ({"early_stopping": RESTORE}, "best"),
        ({"early_stopping": {**RESTORE, "restore_best_weights": False}}, "last"),
        ({"early_stopping": {"patience": 2}}, "last"),
        ({"evaluate": "best"}, "best"),  # written: it wins
        ({"early_stopping": RESTORE, "evaluate": "last"}, "last"),
    ],
    ids=["no-stopping", "restores", "does-not-restore", "stops", "declared-best", "declared-last"],
)
def test_the_checkpoint_defaults_by_recipe_and_a_written_one_wins(
    train: dict[str, Any], expected: str
) -> None:
    spec = study(train)
    assert spec.variants["baseline"].train.evaluation() == expected
    resolved = resolve(spec).check()
    assert resolved.evaluate == expected
    assert resolved.to_json()["evaluate"] == expected  # what `run` stores in study.json


def test_variants_whose_defaults_differ_are_compared_at_the_last_weights() -> None:
    """The study-level rule: "best" only when every variant restores its best weights; else
    "last", the weights each training returned (a variant that restores returns those)."""
    mixed = study(variants={"plain": {}, "stops": {"train.early_stopping": RESTORE}})
    assert [r.train.evaluation() for r in mixed.variants.values()] == ["last", "best"]
    assert resolve(mixed).check().evaluate == "last"
    both = study({"early_stopping": RESTORE}, variants={"a": {}, "b": {"train.batch_size": 64}})
    assert resolve(both).check().evaluate == "best"
    # one variant writes it, the others have no say: the written value is the study's
    written = study(variants={"plain": {}, "declared": {"train.evaluate": "best"}})
    assert resolve(written).check().evaluate == "best"


def test_variants_that_write_different_checkpoints_are_a_located_error(tmp_path: Path) -> None:
    table = copy.deepcopy(TINY)
    table["variants"] = {
        "a": {"train.evaluate": "best"},
        "b": {},
        "c": {"train.evaluate": "last"},
    }
    path = write_toml(tmp_path / "mixed.toml", table)
    resolved = resolve(load_study(path))
    with pytest.raises(SpecError) as caught:
        resolved.check()
    message = str(caught.value)
    assert message.startswith(f"{path}: variants.c: train.evaluate: a study compares every ")
    assert "variants.a says 'best'" in message and "Received: evaluate='last'" in message


@pytest.mark.parametrize("where", ["train", "variant"])
def test_an_unknown_checkpoint_is_a_located_error(tmp_path: Path, where: str) -> None:
    table = copy.deepcopy(TINY)
    if where == "train":
        table["train"]["evaluate"] = "final"
        prefix = ""
    else:
        table["variants"] = {"odd": {"train.evaluate": "final"}}
        prefix = "variants.odd: "
    path = write_toml(tmp_path / "odd.toml", table)
    with pytest.raises(SpecError) as caught:
        load_study(path)
    assert str(caught.value) == (
        f"{path}: {prefix}train.evaluate: must be one of 'best', 'last'. "
        "Received: evaluate='final'."
    )


def test_the_checkpoint_is_not_part_of_a_run_key() -> None:
    """Both checkpoints are scored and stored: changing train.evaluate retrains nothing."""
    keys = {
        make_plan(resolve(study({"evaluate": value} if value else {})), "baseline", 0).key
        for value in (None, "best", "last")
    }
    assert len(keys) == 1


# -- the report -----------------------------------------------------------------------------------
SEEDS = (0, 1, 2, 3)
SHARED = (0.0, 0.01, -0.01, 0.005)
#: auc per variant, checkpoint and seed: "trick" is better at the best weights, worse at the last.
AUC = {
    ("baseline", "best"): [0.70 + s for s in SHARED],
    ("trick", "best"): list(np.add(SHARED, (0.80, 0.81, 0.82, 0.79))),
    ("baseline", "last"): [0.75 + s for s in SHARED],
    ("trick", "last"): list(np.add(SHARED, (0.66, 0.64, 0.65, 0.67))),
}


#: Each run's test confusion matrices, at the best and at the last weights.
MATRICES = {"confusion_matrix": [[40, 5], [5, 40]], "confusion_matrix_last": [[30, 15], [10, 35]]}


def made_study(root: Path, evaluate: str | None) -> Path:
    """A finished two-variant study whose best and last weights disagree; its index stores
    ``evaluate`` (None: an index written before it was stored)."""
    runs = []
    history = {"loss": [0.7, 0.6, 0.5], "val_loss": [0.72, 0.62, 0.55]}
    for variant in ("baseline", "trick"):
        for seed in SEEDS:
            test = {
                weights: {
                    "loss": 0.5,
                    "accuracy": 0.85,
                    "majority_baseline": 0.85,
                    "auc": AUC[(variant, weights)][seed],
                }
                for weights in ("best", "last")
            }
            result = made_up_result(
                variant, seed, test["best"], history, study=root.name, **MATRICES
            )
            result = dataclasses.replace(result, test=test)
            stored = write_finished_run(root, result)
            runs.append({"variant": variant, "seed": seed, "key": stored.key})
    resolved: dict[str, Any] = {
        "primary_metric": "auc",
        "task": "binary",
        "dataset": {"name": "made-up", "classes": ["no", "yes"]},
        "protocol": {"validation": 0.1, "validated_on": "validation split"},
    }
    if evaluate is not None:
        resolved["evaluate"] = evaluate
    index = {
        "study": root.name,
        "variants": ["baseline", "trick"],
        "seeds": list(SEEDS),
        "baseline": "baseline",
        "resolved": resolved,
        "runs": runs,
    }
    RunStore(root).write_index(StudyIndex.from_json(index))
    return root


def mean_difference(weights: str) -> float:
    diffs = np.subtract(AUC[("trick", weights)], AUC[("baseline", weights)])
    return float(np.mean(diffs))


@pytest.mark.parametrize("weights", ["last", "best"])
def test_the_report_compares_and_ranks_at_the_study_checkpoint(
    tmp_path: Path, weights: str
) -> None:
    report = load_report(made_study(tmp_path / "study", weights))
    other = "best" if weights == "last" else "last"
    assert report.weights == weights
    (comparison,) = report.comparisons
    assert comparison.weights == weights
    assert comparison.diff == pytest.approx(mean_difference(weights))
    assert comparison.diff != pytest.approx(mean_difference(other))
    # at the best weights the trick wins, at the last ones the baseline does
    ranked = ["trick", "baseline"] if weights == "best" else ["baseline", "trick"]
    assert report.ranked() == ranked
    # the confusion matrix figure sums the study's checkpoint's matrices of the best variant
    matrix = MATRICES["confusion_matrix_last" if weights == "last" else "confusion_matrix"]
    assert _best_variant_matrix(report) == (
        report.ranked()[0],
        [[4 * n for n in row] for row in matrix],
        4,
    )
    # every table still shows both checkpoints, the study's first
    shown = [row[1]["text"] for row in metrics_table(report)["rows"]]
    assert shown == [weights, other] * 2


def test_the_opening_and_every_results_caption_name_the_checkpoint(tmp_path: Path) -> None:
    report = build_report(made_study(tmp_path / "study", "last"))
    pinned = "Primary metric: test auc, last weights"
    measured = "Δ = variant − baseline in test auc, last weights, paired by seed; "
    assert headline(report)[1].startswith(measured)
    md = report_text(report)
    opening = md.split("\n|")[0]  # everything before the first table
    assert measured in opening and "(best weights)" not in opening
    assert "best weights" not in opening
    # the results table's caption, in Markdown, HTML and the terminal (compact and wide)
    assert caption(report).startswith(pinned) and compact_caption(report).startswith(pinned)
    assert f"_{pinned}; " in md
    html = report.html.read_text(encoding="utf-8")
    assert f'<p class="caption">{pinned}; ' in html
    assert str(terminal_table(report).caption).startswith(pinned)
    assert str(terminal_table(report, wide=True).caption).startswith(pinned)
    # every figure of test results, in both documents
    figures = ["auc_intervals", "accuracy_intervals", "roc_curves", "confusion_matrix"]
    for name in figures:
        assert title_and_caption(report, name)[1].startswith(pinned + ". "), name
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", html)
    results = [c for c in captions if "test rows" in c or c.startswith("Test ") or pinned in c]
    assert results and all(c.startswith(pinned) for c in results)
    assert f"{pinned}. Test auc (last weights, the primary metric)" in md


def test_a_study_validated_on_the_test_set_names_the_checkpoint_first(tmp_path: Path) -> None:
    root = made_study(tmp_path / "lecture", "last")
    store = RunStore(root)
    index = store.read_index()
    index.resolved["protocol"]["validated_on"] = "test set"
    store.write_index(index)
    report = load_report(root)
    assert caption(report).startswith("Primary metric: test auc, last weights; validated on ")
    assert compact_caption(report).startswith("Primary metric: test auc, last weights; valid")


def test_an_index_written_before_the_checkpoint_was_stored_reports_the_best_weights(
    tmp_path: Path,
) -> None:
    report = load_report(made_study(tmp_path / "old", None))
    assert report.weights == "best"
    assert report.comparisons[0].diff == pytest.approx(mean_difference("best"))
    assert "in test auc, best weights, paired by seed" in headline(report)[1]
    assert caption(report).startswith("Primary metric: test auc, best weights; ")


def test_an_unknown_checkpoint_in_the_index_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"Received: evaluate='final'"):
        load_report(made_study(tmp_path / "odd", "final"))


def test_the_roc_curves_use_the_stored_predictions_of_the_study_checkpoint(
    tmp_path: Path,
) -> None:
    root = made_study(tmp_path / "study", "last")
    store = RunStore(root)
    assert store.load_predictions("baseline", 0, "last") is None  # none stored yet
    scores = np.linspace(0.0, 1.0, 90, dtype="float32")
    for variant in ("baseline", "trick"):
        for seed in SEEDS:
            np.save(store.run_dir(variant, seed) / "last.predictions.npy", scores)
    report = load_report(root)
    assert set(report.predictions) == {"baseline", "trick"}
    for pairs in report.predictions.values():
        for _, predictions in pairs:
            np.testing.assert_array_equal(predictions, scores)


# -- export and predict ---------------------------------------------------------------------------
def test_export_and_predict_use_the_study_checkpoint(tmp_path: Path) -> None:
    """One real run of 2 epochs whose best epoch is the first (the checkpoint keeps the highest
    validation loss): the exported model holds the last weights, then, once the study says
    "best" (nothing retrains), the best ones."""
    from tricklab.api import run_study
    from tricklab.tools.export import export_model, predict_csv, trained_model

    train = {"checkpoint": {"monitor": "val_loss", "mode": "max"}, "epochs": 2}
    train["optimizer"] = {"name": "adam", "learning_rate": 0.05}
    spec = study(train, name="ckpt")
    outcome = run_study(spec, out=tmp_path)
    (result,) = outcome.results
    assert result.best_epoch == 1 and result.epochs_run == 2  # best and last differ
    store = RunStore(tmp_path / "ckpt")
    run_dir = store.run_dir("baseline", 0)
    assert (run_dir / "last.weights.h5").is_file() and (run_dir / "best.weights.h5").is_file()
    resolved = resolve(spec)
    split = resolved.splits(0)
    raw = resolved.dataset.x[split.rows["test"]]
    stored = {w: store.load_predictions("baseline", 0, w) for w in ("best", "last")}
    best, last = (stored[w][1] for w in ("best", "last"))  # type: ignore[index]
    assert not np.allclose(best, last, atol=1e-4)
    from sklearn.metrics import roc_auc_score

    y_true = split.y_test
    assert roc_auc_score(y_true, last) == pytest.approx(result.test["last"]["auc"])
    assert roc_auc_score(y_true, best) == pytest.approx(result.test["best"]["auc"])
    assert result.confusion_matrix_last is not None  # the last weights' matrix is kept too
    assert np.sum(result.confusion_matrix_last) == len(y_true)

    def exported() -> np.ndarray:
        path = export_model(run_dir, tmp_path / "model.keras")
        from tricklab.base import backend as _backend

        model = _backend.keras().saving.load_model(path)
        return np.asarray(model.predict(raw, verbose=0))[:, 0]

    csv = tmp_path / "rows.csv"
    np.savetxt(csv, raw, delimiter=",", fmt="%.10g")
    positive = f"p({resolved.dataset.class_names[1]})"

    assert RunStore(tmp_path / "ckpt").read_index().resolved["evaluate"] == "last"
    np.testing.assert_allclose(exported(), last, rtol=1e-5, atol=1e-6)
    predicted = predict_csv(run_dir, csv, header=False)[positive].to_numpy()
    np.testing.assert_allclose(predicted, last, rtol=1e-5, atol=1e-5)

    again = run_study(study({**train, "evaluate": "best"}, name="ckpt"), out=tmp_path)
    assert again.trained == 0  # the checkpoint is not part of the run's key
    assert RunStore(tmp_path / "ckpt").read_index().resolved["evaluate"] == "best"
    np.testing.assert_allclose(exported(), best, rtol=1e-5, atol=1e-6)
    predicted = predict_csv(run_dir, csv, header=False)[positive].to_numpy()
    np.testing.assert_allclose(predicted, best, rtol=1e-5, atol=1e-5)

    # a run trained before the last weights were kept: "last" is refused, naming the file
    run_study(study({**train, "evaluate": "last"}, name="ckpt"), out=tmp_path)
    (run_dir / "last.weights.h5").unlink()
    with pytest.raises(StoreError, match=r"has no last\.weights\.h5"):
        trained_model(run_dir)


# -- lint ---------------------------------------------------------------------------------------
def tl016(train: dict[str, Any], validation: float = 0.1) -> list[str]:
    spec = study(train, validation=validation)
    return [f.line() for f in lint(resolve(spec)) if f.code == "TL016"]


def test_lint_warns_when_best_is_chosen_on_a_small_validation_split() -> None:
    (line,) = tl016({"evaluate": "best"})  # thoracic, validation 0.1: 38 rows, 6 deaths
    assert line.startswith('TL016 warning all variants: train.evaluate: train.evaluate = "best"')
    assert "38 validation rows, 6 of class 'died'" in line
    assert 'Fix: set train.evaluate = "last"' in line
    (default,) = tl016({"early_stopping": RESTORE})  # "best" by default
    assert 'train.evaluate is "best" by default' in default
    assert tl016({"evaluate": "last"}) == []
    assert tl016({}) == []  # "last" by default
    assert tl016({"evaluate": "best"}, validation=0.3) == []  # 113 rows, 17 deaths
