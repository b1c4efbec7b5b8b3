"""``tricklab mlflow MODEL_DIR``: a fitted model logged to MLflow later, as ``fit --mlflow`` logs
it, from what its record says (``study_file``, ``store``)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from test_fit import NEW, served_as_the_model_dir, write_study

from tricklab.cli import main


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A study evaluated at its last weights (no stored runs needed), fit from its own folder
    with relative paths: the record must hold them absolute."""
    folder = tmp_path_factory.mktemp("churn")
    write_study(folder, epochs=2, evaluate='evaluate = "last"')
    (folder / "new.csv").write_text(NEW, encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        args = ["fit", "churn.toml", "--variant", "baseline", "-o", "model", "--out", "runs"]
        assert main(args) == 0
    return {"folder": folder, "model_dir": folder / "model"}


def record_of(model_dir: Path) -> dict[str, Any]:
    return json.loads((model_dir / "tricklab-model.json").read_text("utf-8"))


def logged_uri(out: str) -> str:
    return out.split("logged to MLflow: ")[1].split()[0]


def copy_model(fitted: dict[str, Any], name: str, **changes: Any) -> Path:
    """A copy of the MODEL_DIR whose record has ``changes`` (None: the field removed)."""
    copied = fitted["folder"] / name
    shutil.copytree(fitted["model_dir"], copied)
    record = record_of(copied)
    for key, value in changes.items():
        if value is None:
            del record[key]
        else:
            record[key] = value
    (copied / "tricklab-model.json").write_text(json.dumps(record), encoding="utf-8")
    return copied


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def test_the_record_says_where_the_study_and_the_store_are(fitted: dict[str, Any]) -> None:
    record = record_of(fitted["model_dir"])
    assert record["study_file"] == str((fitted["folder"] / "churn.toml").resolve())
    assert record["store"] == str((fitted["folder"] / "runs").resolve())


def test_a_study_without_a_file_records_no_study_file(tmp_path: Path) -> None:
    from tricklab.spec import StudySpec
    from tricklab.tools.fit import fit_variant

    raw = {
        "name": "nofile",
        "dataset": "thoracic",
        "model": {"layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}]},
        "train": {"loss": "binary_crossentropy", "batch_size": 64, "epochs": 1, "evaluate": "last"},
    }
    done = fit_variant(StudySpec.from_dict(raw), "baseline", tmp_path / "m", out=tmp_path / "r")
    assert done.record["study_file"] is None
    assert done.record["store"] == str((tmp_path / "r").resolve())


def test_mlflow_logs_a_model_dir_as_fit_mlflow_does(
    fitted: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mlflow = pytest.importorskip("mlflow")

    folder, model_dir = fitted["folder"], fitted["model_dir"]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    capsys.readouterr()
    assert main(["mlflow", str(model_dir), "--tracking-uri", uri]) == 0
    logged = logged_uri(capsys.readouterr().out)
    # the same study fit again with --mlflow, for the run it logs
    args = ["fit", str(folder / "churn.toml"), "--variant", "baseline", "--out", "runs"]
    args += ["-o", str(tmp_path / "again"), "--mlflow", "--tracking-uri", uri]
    assert main(args) == 0
    by_fit = logged_uri(capsys.readouterr().out)

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # not set_tracking_uri: it stays set
    runs = mlflow.search_runs(experiment_names=["churn"], output_format="list")
    assert len(runs) == 2
    later, at_fit = sorted(runs, key=lambda r: r.info.start_time)
    assert later.data.tags["tricklab.role"] == "model"
    assert later.data.params == {"variant": "baseline", "seed": "0", "epochs": "2"}
    assert later.data.params == at_fit.data.params
    assert later.info.run_name == at_fit.info.run_name == "baseline (fit)"
    ours = {k: v for k, v in later.data.tags.items() if not k.startswith("mlflow.")}
    assert ours == {k: v for k, v in at_fit.data.tags.items() if not k.startswith("mlflow.")}
    info = mlflow.models.get_model_info(logged)
    assert info.signature == mlflow.models.get_model_info(by_fit).signature
    served_as_the_model_dir(logged, model_dir, folder / "new.csv")


def test_by_default_it_logs_beside_the_recorded_store(
    fitted: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    model_dir = copy_model(fitted, "model-default")
    (fitted["folder"] / "runs").mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path)  # elsewhere: the study's CSV and the store come from the record
    assert main(["mlflow", str(model_dir), "--experiment", "deployed"]) == 0
    logged = logged_uri(capsys.readouterr().out)
    database = fitted["folder"] / "runs" / "mlflow.db"
    assert database.is_file() and not (tmp_path / "runs").exists()
    # MLflow's global tracking URI is put back: a study logged next goes to its own default
    assert "MLFLOW_TRACKING_URI" not in os.environ and not mlflow.is_tracking_uri_set()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
    (run,) = mlflow.search_runs(experiment_names=["deployed"], output_format="list")
    assert run.data.tags["tricklab.role"] == "model"
    assert mlflow.models.get_model_info(logged).run_id == run.info.run_id


def test_a_model_dir_whose_study_file_is_gone_is_one_line(
    fitted: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mlflow")
    gone = tmp_path / "moved.toml"
    model_dir = copy_model(fitted, "model-gone", study_file=str(gone))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["mlflow", str(model_dir), "--tracking-uri", uri]) == 2
    err = one_line_error(capsys)
    assert f"{model_dir}: its study file {gone} is gone;" in err
    assert "rerun `tricklab fit`" in err


def test_a_study_file_that_reads_another_dataset_is_one_line(
    fitted: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mlflow")
    study = write_study(tmp_path / "changed")
    text = study.read_text("utf-8").replace('delimiter = ";"', 'delimiter = ","')
    study.write_text(text, encoding="utf-8")
    model_dir = copy_model(fitted, "model-changed", study_file=str(study))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["mlflow", str(model_dir), "--tracking-uri", uri]) == 2
    assert "now reads another dataset than the model was trained on" in one_line_error(capsys)


@pytest.mark.parametrize("missing", ["study_file", "store"])
def test_a_model_dir_from_before_the_fields_is_one_line(
    missing: str, fitted: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mlflow")
    model_dir = copy_model(fitted, f"model-old-{missing}", **{missing: None})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["mlflow", str(model_dir), "--tracking-uri", uri]) == 2
    err = one_line_error(capsys)
    assert f"{model_dir}: written by an older `tricklab fit`" in err
    assert f"rerun `tricklab fit STUDY --variant baseline -o {model_dir} --force`" in err


def test_a_model_dir_fit_from_a_study_object_is_one_line(
    fitted: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mlflow")
    model_dir = copy_model(fitted, "model-object")
    record = record_of(model_dir)
    record["study_file"] = None  # as fit_variant(StudySpec.from_dict(...)) writes it
    (model_dir / "tricklab-model.json").write_text(json.dumps(record), encoding="utf-8")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["mlflow", str(model_dir), "--tracking-uri", uri]) == 2
    assert "fit was given a study without a file" in one_line_error(capsys)


def test_a_model_dir_without_the_extra_is_one_line(
    fitted: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if it were not installed
    assert main(["mlflow", str(fitted["model_dir"])]) == 2
    err = one_line_error(capsys)
    assert "tricklab mlflow needs the mlflow extra: pip install 'tricklab[mlflow]'" in err
