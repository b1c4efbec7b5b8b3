"""The MLflow model of a MODEL_DIR, logged as code (MLflow's "models from code": MLflow keeps
this file and the MODEL_DIR as artifacts, no pickle). ``mlflow.pyfunc.load_model(uri)``
runs it: ``predict`` takes raw rows, as :meth:`tricklab.tools.model_dir.FittedModel.predict`."""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel


class ModelDirModel(PythonModel):
    """A MODEL_DIR (artifact ``model_dir``) as an MLflow pyfunc model."""

    def load_context(self, context: Any) -> None:
        from tricklab.tools.model_dir import load_model

        self._model = load_model(context.artifacts["model_dir"])

    # no type hints: MLflow reads them as a schema (the signature logged with it is the schema)
    def predict(self, context, model_input, params=None):
        return self._model.predict(model_input)


mlflow.models.set_model(ModelDirModel())
