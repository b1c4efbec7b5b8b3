"""``tricklab fit --mlflow``: a MODEL_DIR logged to MLflow as a model with its input signature.

One MLflow run (tag ``tricklab.role = model``; params ``variant``, ``seed``, ``epochs``) holds a
pyfunc model (``model``) logged from code (:mod:`tricklab.tools._mlflow_pyfunc`, no pickle) with
the MODEL_DIR as its artifact. Its signature is inferred (``mlflow.models.infer_signature``) from
the first raw rows of the training table (the feature columns: numbers as doubles, true/false as
booleans, text and dates as strings, as the file writes them) and their predictions, so
``mlflow.pyfunc.load_model(uri).predict(frame)`` takes the raw rows ``load_model`` takes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from tricklab.spec import StudySpec
from tricklab.store import RunStore
from tricklab.tools.model_dir import load_model
from tricklab.tools.tracking import require_mlflow, resolve_tracking_uri

SAMPLE_ROWS = 5


def sample_rows(spec: StudySpec, record: dict[str, Any]) -> pd.DataFrame:
    """The first raw rows of the training table: its feature columns, typed as the model reads
    them (the signature's example)."""
    csv = record["csv"]
    features = record["columns"]["columns"]
    data = spec.dataset
    if hasattr(data, "csv"):
        path = Path(data.csv).expanduser()
        if spec.base_dir is not None and not path.is_absolute():
            path = Path(spec.base_dir) / path
        frame = pd.read_csv(
            path,
            sep=csv["delimiter"],
            header=0 if csv["header"] else None,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            nrows=SAMPLE_ROWS,
        )
        frame.columns = [str(c) for c in csv["columns"]]
    else:  # the built-in thoracic table: numbers
        from tricklab.data import load_data

        x = load_data(spec).x[:SAMPLE_ROWS]
        frame = pd.DataFrame(x.astype("float64"), columns=[c["name"] for c in features])
    out = {}
    for column in features:
        name, kind = column["name"], column["kind"]
        values = frame[name]
        if kind == "number":
            out[name] = pd.to_numeric(values).astype("float64")
        elif kind == "bool":
            out[name] = values.map(lambda v: str(v).strip().lower() == "true")
        else:
            out[name] = values.astype(object).where(values.notna(), None)
    return pd.DataFrame(out)


def log_model_dir(
    spec: StudySpec,
    model_dir: Path,
    *,
    out: str | Path = "runs",
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> str:
    """Log the MODEL_DIR to MLflow (see the module docstring); its model URI."""
    require_mlflow("fit --mlflow")
    with _quiet():
        return _log(spec, load_model(model_dir), out, tracking_uri, experiment)


def _log(
    spec: StudySpec,
    model: Any,
    out: str | Path,
    tracking_uri: str | None,
    experiment: str | None,
) -> str:
    import mlflow
    from mlflow.models import infer_signature

    model_dir = model.path
    record = model.record
    uri = resolve_tracking_uri(RunStore(Path(out) / spec.name), tracking_uri)
    mlflow.set_tracking_uri(uri)
    name = experiment or record["study"]
    if mlflow.get_experiment_by_name(name) is None:
        location = None
        if uri.startswith("sqlite:///"):  # artifacts beside the database, as `tricklab mlflow`
            location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
        mlflow.create_experiment(name, artifact_location=location)
    mlflow.set_experiment(name)
    sample = sample_rows(spec, record)
    signature = infer_signature(sample, model.predict(sample))
    code = Path(__file__).with_name("_mlflow_pyfunc.py")
    with mlflow.start_run(run_name=f"{record['variant']} (fit)") as run:
        mlflow.set_tags(
            {
                "tricklab.role": "model",
                "study": record["study"],
                "variant": record["variant"],
                "task": record["task"],
            }
        )
        mlflow.log_params(
            {"variant": record["variant"], "seed": record["seed"], "epochs": record["epochs"]}
        )
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code),
            artifacts={"model_dir": str(model_dir)},
            signature=signature,
            input_example=sample,
        )
        del run
    return str(info.model_uri)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow's INFO lines, warnings and download bars stay off the terminal."""
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    bar = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        if bar is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = bar
