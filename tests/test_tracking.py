"""`tricklab mlflow` and `run --mlflow`: a study in MLflow, read back with mlflow.search_runs."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from tricklab.api import run_study
from tricklab.cli import main
from tricklab.store import RunStore

try:
    import mlflow
except ImportError:  # without the extra only the error test runs
    mlflow = None
needs_mlflow = pytest.mark.skipif(mlflow is None, reason="pip install 'tricklab[mlflow]'")

# 2 variants x 2 seeds of a tiny Thoracic model; the variant changes the loss and a list item.
STUDY = """
name = "tracked"
dataset = "thoracic"
seeds = 2
[model]
layers = [
  {type = "dense", units = 8, activation = "relu"},
  {type = "dropout", rate = 0.5},
  {type = "dense", units = 1, activation = "sigmoid"},
]
[train]
loss = "binary_crossentropy"
batch_size = 32
epochs = 3
[variants.bce]
[variants.mse]
train.loss = "mean_squared_error"
"model.layers[1].rate" = 0.1
"""
EPOCHS = 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The study trained and logged once by `run --mlflow`, into its own SQLite store."""
    tmp = tmp_path_factory.mktemp("tracked")
    study = tmp / "tracked.toml"
    study.write_text(STUDY, encoding="utf-8")
    uri = f"sqlite:///{tmp / 'logged.db'}"
    code = main(
        [
            "run",
            str(study),
            "--out",
            str(tmp / "runs"),
            "--quiet",
            "--mlflow",
            "--tracking-uri",
            uri,
        ]
    )
    assert code == 0
    return {"root": tmp / "runs" / "tracked", "uri": uri, "study": study}


def logged_runs(uri: str, experiment: str = "tracked") -> Any:
    """Every active run of the experiment, as mlflow.search_runs gives them (a DataFrame)."""
    with mock.patch.dict(os.environ, {"MLFLOW_TRACKING_URI": uri}):  # no global set_tracking_uri
        return mlflow.search_runs(experiment_names=[experiment])


def children(runs: Any) -> Any:
    return runs[runs["tags.tricklab.role"] == "run"].sort_values(["tags.variant", "tags.seed"])


def copy_store(trained: dict[str, Any], tmp_path: Path) -> Path:
    root = tmp_path / "runs" / "tracked"
    shutil.copytree(trained["root"], root)
    return root


@pytest.mark.slow
@needs_mlflow
def test_logging_twice_leaves_one_parent_and_one_child_per_run_with_params_metrics_tags(
    trained: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    first = logged_runs(trained["uri"])
    assert main(["mlflow", str(trained["root"]), "--tracking-uri", trained["uri"]]) == 0
    out = capsys.readouterr().out
    assert "4 runs logged" in out and "0 new" in out and "4 unchanged" in out
    assert f"mlflow ui --backend-store-uri {trained['uri']}" in out

    runs = logged_runs(trained["uri"])
    assert sorted(runs["run_id"]) == sorted(first["run_id"])  # updated, not duplicated
    assert len(runs) == 5
    parent = runs[runs["tags.tricklab.role"] == "study"]
    assert list(parent["tags.study"]) == ["tracked"]
    assert list(parent["tags.evaluate"]) == ["last"]  # the checkpoint the report compares
    kids = children(runs)
    assert list(zip(kids["tags.variant"], kids["tags.seed"], strict=True)) == [
        ("bce", "0"),
        ("bce", "1"),
        ("mse", "0"),
        ("mse", "1"),
    ]
    assert set(kids["tags.mlflow.parentRunId"]) == set(parent["run_id"])
    assert list(kids["tags.mlflow.runName"]) == [
        "bce/seed-0",
        "bce/seed-1",
        "mse/seed-0",
        "mse/seed-1",
    ]

    # params: variant, seed, and the fields the study varies, with each run's own value
    assert (
        list(kids["params.train.loss"]) == ["binary_crossentropy"] * 2 + ["mean_squared_error"] * 2
    )
    assert list(kids["params.model.layers.1.rate"]) == ["0.5", "0.5", "0.1", "0.1"]
    assert list(kids["params.seed"]) == ["0", "1", "0", "1"]
    assert list(kids["params.variant"]) == ["bce", "bce", "mse", "mse"]
    assert "params.train.batch_size" not in runs  # not varied: not a param

    store = RunStore(trained["root"])
    client = mlflow.MlflowClient(trained["uri"])
    for _, row in kids.iterrows():
        result = store.load_run(row["tags.variant"], int(row["tags.seed"]))[0]
        assert row["tags.key"] == result.key
        assert row["tags.engine"] == result.engine and row["tags.backend"] == result.backend
        assert row["metrics.test.best.auc"] == pytest.approx(result.test["best"]["auc"])
        assert row["metrics.test.last.loss"] == pytest.approx(result.test["last"]["loss"])
        history = client.get_metric_history(row["run_id"], "val_loss")
        assert [m.step for m in history] == [1, 2, 3]  # one value per epoch, logged twice
        assert [m.value for m in history] == pytest.approx(result.history["val_loss"])
        names = {a.path for a in client.list_artifacts(row["run_id"])}
        assert {"history.csv", "best.weights.h5"} <= names
    names = {a.path for a in client.list_artifacts(parent["run_id"].iloc[0])}
    assert {"report.html", "report.md", "study.json"} <= names


@pytest.mark.slow
@needs_mlflow
def test_a_retrained_run_replaces_its_child_and_a_changed_variant_its_children(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    from tricklab.tools.tracking import log_study

    root = copy_store(trained, tmp_path)
    uri = trained["uri"]  # another experiment in the same database (creating one takes seconds)
    first = log_study(root, tracking_uri=uri, experiment="retrained")
    assert (first.created, first.unchanged) == (4, 0)
    before = children(logged_runs(uri, "retrained")).set_index("tags.mlflow.runName")["run_id"]
    run_study(trained["study"], out=root.parent, variants=["mse"], seeds=1, fresh=True)
    again = log_study(root, tracking_uri=uri, experiment="retrained")
    assert (again.created, again.replaced, again.unchanged, again.removed) == (0, 1, 3, 0)
    after = children(logged_runs(uri, "retrained")).set_index("tags.mlflow.runName")["run_id"]
    assert len(after) == 4
    assert after["mse/seed-0"] != before["mse/seed-0"]
    assert (after.drop("mse/seed-0") == before.drop("mse/seed-0")).all()
    client = mlflow.MlflowClient(uri)
    assert len(client.get_metric_history(after["mse/seed-0"], "loss")) == EPOCHS

    # A changed variant trains under new keys: its old children leave with its old runs.
    changed = root.parent / "changed.toml"
    changed.write_text(STUDY.replace('rate" = 0.1', 'rate" = 0.2'), encoding="utf-8")
    run_study(changed, out=root.parent, variants=["mse"], seeds=1)
    last = log_study(root, tracking_uri=uri, experiment="retrained")
    assert (last.created, last.unchanged, last.removed, last.not_finished) == (1, 2, 2, 1)
    kids = children(logged_runs(uri, "retrained"))
    assert list(kids["tags.mlflow.runName"]) == ["bce/seed-0", "bce/seed-1", "mse/seed-0"]
    assert list(kids["params.model.layers.1.rate"]) == ["0.5", "0.5", "0.2"]


@pytest.mark.slow
@needs_mlflow
def test_default_store_is_a_sqlite_file_beside_the_runs(
    trained: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = copy_store(trained, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["mlflow", str(root), "--experiment", "mine"]) == 0
    uri = f"sqlite:///{(tmp_path / 'runs' / 'mlflow.db').resolve()}"
    assert f"mlflow ui --backend-store-uri {uri}" in capsys.readouterr().out
    runs = logged_runs(uri, "mine")
    assert len(runs) == 5
    assert all(
        u.startswith((tmp_path / "runs" / "mlartifacts").as_uri()) for u in runs["artifact_uri"]
    )
    assert list(work.iterdir()) == []  # nothing written where the command ran

    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained["uri"])  # the environment comes next
    assert main(["mlflow", str(root), "--experiment", "from-env"]) == 0
    assert len(logged_runs(trained["uri"], "from-env")) == 5


def test_missing_extra_bad_directory_and_stray_options_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "tracked.toml"
    study.write_text(STUDY, encoding="utf-8")
    assert main(["mlflow", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such directory; expected a study's store" in capsys.readouterr().err

    (tmp_path / "empty").mkdir()
    assert main(["mlflow", str(tmp_path / "empty")]) == 2
    assert "not a tricklab study directory (no study.json)" in capsys.readouterr().err

    assert main(["run", str(study), "--experiment", "x", "--out", str(tmp_path)]) == 2
    assert "add --mlflow or leave them out. Received: --experiment=x" in capsys.readouterr().err

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    stored = tmp_path / "runs" / "tracked"
    stored.mkdir(parents=True)
    (stored / "study.json").write_text("{}", encoding="utf-8")
    assert main(["mlflow", str(stored)]) == 2
    err = capsys.readouterr().err
    assert "tricklab mlflow needs the mlflow extra: pip install 'tricklab[mlflow]'" in err
    assert "Traceback" not in err
    assert main(["run", str(study), "--mlflow", "--out", str(tmp_path)]) == 2
    assert "--mlflow needs the mlflow extra" in capsys.readouterr().err
    assert not (tmp_path / "tracked").exists()  # refused before training
