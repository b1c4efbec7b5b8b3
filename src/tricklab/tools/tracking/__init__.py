"""``tricklab mlflow``: a stored study in an experiment tracker (MLflow).

:func:`log_study` reads a study through the run store and logs it with MLflow's client API: one
parent run per study (its report as artifacts) and one child run per finished run, with the
recipe fields the study varies as params (``train.loss``, ``model.layers.1.rate``), the history
per epoch and the test scores as metrics, the history and weights as artifacts, and the study,
variant, seed, run key, engine and backend as tags. Logging again updates the same runs.

The tracking URI is ``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else the SQLite file the
store places beside the studies (``runs/mlflow.db``, artifacts in ``runs/mlartifacts/``)::

    logged = log_study("runs/thoracic-losses")
    print(logged.ui_command())   # mlflow ui --backend-store-uri sqlite:///.../runs/mlflow.db

MLflow is an optional extra (``pip install 'tricklab[mlflow]'``), imported only when logging.
"""

from __future__ import annotations

from tricklab.tools.tracking._mlflow import (
    LOG_FORMAT,
    LoggedStudy,
    log_study,
    quiet_mlflow,
    require_mlflow,
    resolve_tracking_uri,
    ui_command,
)
from tricklab.tools.tracking._params import ABSENT, flatten, varying_keys

__all__ = [
    "ABSENT",
    "LOG_FORMAT",
    "LoggedStudy",
    "flatten",
    "log_study",
    "quiet_mlflow",
    "require_mlflow",
    "resolve_tracking_uri",
    "ui_command",
    "varying_keys",
]
