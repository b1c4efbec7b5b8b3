"""Every run keeps its test predictions: ROC curves and later metrics need no retraining."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TINY

from tricklab.api import run_study
from tricklab.cli import main
from tricklab.data import Target, resolve
from tricklab.engines import _scoring
from tricklab.executors import RunEvent
from tricklab.spec import StudySpec
from tricklab.store import RunState, RunStore
from tricklab.tools.export import trained_model


def study(**changes: Any) -> StudySpec:
    table = copy.deepcopy(TINY)
    table.update(
        name="preds",
        seeds=[0, 1],
        variants={"bce": {}, "mse": {"train.loss": "mean_squared_error"}},
        train={**TINY["train"], "epochs": 3, "optimizer": {"name": "adam", "learning_rate": 0.05}},
    )
    table.update(changes)
    return StudySpec.from_dict(table)


@pytest.mark.parametrize(
    ("engine", "resplit"), [("solo", False), ("population", True)], ids=["solo", "population"]
)
def test_runs_store_their_best_weights_test_predictions_and_each_split_its_labels_once(
    tmp_path: Path, engine: str, resplit: bool
) -> None:
    spec = study(resplit=resplit, seeds=[0, 1] if resplit else [0])
    outcome = run_study(spec, out=tmp_path, engine=engine)
    assert outcome.trained == 2 * len(spec.seeds) and not outcome.failed
    store = RunStore(tmp_path / "preds")
    labels = sorted(p.name for p in (store.root / "splits").glob("*.labels.npy"))
    assert len(labels) == (len(spec.seeds) if resplit else 1)  # one per split, not per run
    resolved = resolve(spec)
    for result in outcome.results:
        stored = store.load_predictions(result.variant, result.seed)
        assert stored is not None
        y_true, predictions = stored
        split = resolved.splits(result.seed)
        np.testing.assert_array_equal(y_true, split.y_test)
        assert predictions.dtype == np.float32 and predictions.shape == (len(split.y_test),)
        # The last weights' predictions are kept too; the study is evaluated at the last
        # weights (no early stopping), and the stored last weights, loaded as `tricklab
        # export` does, predict the same on the raw test rows of the stored split.
        last = store.load_predictions(result.variant, result.seed, "last")
        assert last is not None and last[1].dtype == np.float32
        model = trained_model(store.run_dir(result.variant, result.seed))
        raw = resolved.dataset.x[split.rows["test"]]
        again = np.asarray(model.predict(raw, verbose=0))[:, 0]
        np.testing.assert_allclose(last[1], again, rtol=1e-5, atol=1e-6)
        from sklearn.metrics import roc_auc_score

        assert roc_auc_score(y_true, predictions) == pytest.approx(result.test["best"]["auc"])
        assert roc_auc_score(y_true, last[1]) == pytest.approx(result.test["last"]["auc"])


def test_predictions_hold_positive_class_scores_class_scores_or_values() -> None:
    outputs = np.array([[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]])
    binary = _scoring.test_predictions(outputs, Target("one_hot", 2))
    np.testing.assert_allclose(binary, [0.9, 0.2, 0.5])  # the second class's probability
    assert binary.dtype == np.float32 and binary.flags.c_contiguous
    one_unit = _scoring.test_predictions(outputs[:, :1], Target("binary", 2))
    np.testing.assert_allclose(one_unit, [0.1, 0.8, 0.5])
    three = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    assert _scoring.test_predictions(three, Target("sparse", 3)).shape == (2, 3)
    values = _scoring.test_predictions(np.array([[12.5], [-3.0]]), Target("regression", 0))
    np.testing.assert_allclose(values, [12.5, -3.0])  # the target's own scale


def test_damaged_predictions_make_the_run_damaged_and_it_is_retrained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = study(seeds=[0], variants={"bce": {}}).with_epochs(1)
    run_study(spec, out=tmp_path, engine="solo")
    store = RunStore(tmp_path / "preds")
    path = store.run_dir("bce", 0) / "predictions.npy"
    path.write_bytes(path.read_bytes()[:-7])  # torn by a crash
    assert main(["status", str(store.root)]) == 0
    printed = capsys.readouterr().out
    assert "damaged" in printed and "predictions.npy" in printed
    assert store.load_predictions("bce", 0) is None

    events: list[RunEvent] = []
    again = run_study(spec, out=tmp_path, engine="solo", listener=events.append)
    assert [e.kind for e in events if e.kind in ("damaged", "done")] == ["damaged", "done"]
    assert again.trained == 1
    assert {s.state for s in store.indexed_runs()} == {RunState.DONE}
    stored = store.load_predictions("bce", 0)
    assert stored is not None
    y_true, predictions = stored  # whole again: the retrained run's scores on its test rows
    assert predictions.shape == y_true.shape
    from sklearn.metrics import roc_auc_score

    auc = again.results[0].test["best"]["auc"]
    assert roc_auc_score(y_true, predictions) == pytest.approx(auc)

    path.unlink()  # every finished run stores its predictions: without them it is damaged
    status = store.status("bce", 0, None)
    assert status.state == RunState.DAMAGED and status.detail == "predictions.npy: missing"
    assert store.load_predictions("bce", 0) is None
