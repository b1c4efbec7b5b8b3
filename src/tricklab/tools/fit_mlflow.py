"""``tricklab fit --mlflow`` and ``tricklab mlflow MODEL_DIR``: a MODEL_DIR logged to MLflow as a
model with its input signature.

One MLflow run (tag ``tricklab.role = model``; params ``variant``, ``seed``, ``epochs``) holds a
pyfunc model (``model``) logged from code (:mod:`tricklab.tools._mlflow_pyfunc`, no pickle) with
the MODEL_DIR as its artifact. Its signature is inferred (``mlflow.models.infer_signature``) from
the first raw rows of the training table (the feature columns: numbers as doubles, true/false as
booleans, text and dates as strings, as the file writes them) and their predictions, so
``mlflow.pyfunc.load_model(uri).predict(frame)`` takes the raw rows ``load_model`` takes.

Both commands call :func:`log_model_dir`, which reads the study and the store from the record
(``study_file`` and ``store``, written by :mod:`tricklab.tools.fit`): a MODEL_DIR logs alone,
now or later, as the same run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from tricklab.base.errors import StoreError
from tricklab.spec import StudySpec, load_study
from tricklab.store import RunStore
from tricklab.tools.model_dir import FittedModel, load_model
from tricklab.tools.tracking import quiet_mlflow, require_mlflow, resolve_tracking_uri

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
    model_dir: str | Path,
    *,
    spec: StudySpec | None = None,
    out: str | Path | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> str:
    """Log the MODEL_DIR to MLflow (see the module docstring); its model URI. ``spec`` (where the
    signature's example rows come from) and ``out`` (the store: the default tracking URI is
    beside it) default to the record's ``study_file`` and ``store``."""
    require_mlflow("logging a MODEL_DIR to MLflow")
    model = load_model(model_dir)
    if spec is None:
        spec = study_of(model)
    if out is None:
        out = _recorded(model, "store")
    with quiet_mlflow():
        return _log(spec, model, out, tracking_uri, experiment)


def study_of(model: FittedModel) -> StudySpec:
    """The study a MODEL_DIR was fitted from, read again from its ``study_file``; refused in one
    line when the file is gone or now reads another dataset (the example rows would not be the
    model's)."""
    recorded = _recorded(model, "study_file")
    if recorded is None:
        raise StoreError(
            f"{model.path}: fit was given a study without a file (its study_file is null), so "
            "nothing says where its rows are; log it from Python with "
            "tricklab.tools.fit_mlflow.log_model_dir(MODEL_DIR, spec=STUDY)."
        )
    path = Path(recorded)
    if not path.is_file():
        raise StoreError(
            f"{model.path}: its study file {path} is gone; the signature's example rows are "
            "read through it: put it back, or rerun `tricklab fit` from where the study is now."
        )
    spec = load_study(path)
    if spec.dataset.model_dump(mode="json") != model.record["dataset"]:
        raise StoreError(
            f"{model.path}: its study file {path} now reads another dataset than the model was "
            "trained on; restore it, or rerun `tricklab fit` to fit the study as it is now."
        )
    return spec


def _recorded(model: FittedModel, key: str) -> Any:
    """A field of the record that older MODEL_DIRs lack: refused in one line without it."""
    if key not in model.record:
        raise StoreError(
            f"{model.path}: written by an older `tricklab fit`, whose record does not say its "
            f"study file and store ({key!r} is missing); rerun `tricklab fit STUDY --variant "
            f"{model.record.get('variant', 'NAME')} -o {model.path} --force` to rewrite it."
        )
    return model.record[key]


def _log(
    spec: StudySpec,
    model: Any,
    out: str | Path,
    tracking_uri: str | None,
    experiment: str | None,
) -> str:
    import mlflow
    from mlflow.models import infer_signature

    record = model.record
    uri = resolve_tracking_uri(RunStore(Path(out) / spec.name), tracking_uri)
    sample = sample_rows(spec, record)
    signature = infer_signature(sample, model.predict(sample))
    code = Path(__file__).with_name("_mlflow_pyfunc.py")
    with _tracking_at(uri):
        name = experiment or record["study"]
        found = mlflow.get_experiment_by_name(name)
        if found is not None:
            experiment_id = found.experiment_id
        else:
            location = None
            if uri.startswith("sqlite:///"):  # artifacts beside the database, as `mlflow`
                location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
            experiment_id = mlflow.create_experiment(name, artifact_location=location)
        return _log_run(model, signature, sample, experiment_id, code)


def _log_run(model: Any, signature: Any, sample: pd.DataFrame, experiment: str, code: Path) -> str:
    import mlflow

    model_dir = model.path
    record = model.record
    with mlflow.start_run(experiment_id=experiment, run_name=f"{record['variant']} (fit)") as run:
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
def _tracking_at(uri: str) -> Iterator[None]:
    """MLflow's fluent API (``pyfunc.log_model``) logs to its global tracking URI, which
    ``set_tracking_uri`` also writes into ``$MLFLOW_TRACKING_URI``: both are put back after, so
    nothing logged later in the process (a study's default store) goes to this one."""
    import mlflow

    env = os.environ.get("MLFLOW_TRACKING_URI")
    current = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    before = current if current != env else None  # None: not set but through the variable
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)  # type: ignore[arg-type]  # None unsets it
        if env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env
