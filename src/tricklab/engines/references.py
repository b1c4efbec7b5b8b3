"""Reference models: is a network even needed? scikit-learn fits on exactly a run's rows.

For every run seed of a tabular study (every cv fold x repeat), :func:`fit_references` fits three
scikit-learn models on the run's non-test rows (training plus validation; training alone when the
study validates on the test set), after the run's own preprocessing (``resolved.splits(seed)``:
features standardised with the training part's statistics), and scores them on the run's test
rows with the scoring code of the runs (:func:`tricklab.engines._scoring.score`):

- classification: ``DummyClassifier(strategy="most_frequent")`` ("majority class"),
  ``LogisticRegression(C=1.0, max_iter=1000)`` on standardised features (``StandardScaler`` in a
  ``Pipeline``, fit on the same rows; "logistic regression") and
  ``HistGradientBoostingClassifier(random_state=seed)`` ("gradient boosting");
- regression: ``DummyRegressor()`` ("mean predictor"), ``Ridge(alpha=1.0)`` on standardised
  features ("ridge regression") and ``HistGradientBoostingRegressor(random_state=seed)``.

A :class:`ReferenceSet` (one per run seed) is what the store keeps (``references/seed-<n>.json``);
its :attr:`~ReferenceSet.key` names the data, the split and the scoring, so a rerun reuses it.
Images (any input that is not a flat feature vector: :func:`takes_references`) get none.
Importing this module imports neither Keras, JAX nor scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from tricklab.data import Splits, Target
from tricklab.engines._scoring import reference, score, without_matrix
from tricklab.engines.contract import ResultStatus, RunResult
from tricklab.spec import COMPUTED_SCORES

if TYPE_CHECKING:
    from tricklab.data import ResolvedStudy

#: Bump when the meaning of stored references changes; older ones are then refit.
REFERENCE_SCHEMA = 1
#: The reference models by task kind, in the order reports show them.
CLASSIFIERS = ("majority class", "logistic regression", "gradient boosting")
REGRESSORS = ("mean predictor", "ridge regression", "gradient boosting")
#: The linear model the report's Reference line compares the best variant with.
LINEAR = {"classification": "logistic regression", "regression": "ridge regression"}
#: Tables with fewer fit rows are fit on one thread (the numbers are the same).
THREADED_ROWS = 20_000
#: The engine name reference fits carry as :class:`RunResult` objects.
ENGINE = "reference"
#: Keras metrics the references compute as Keras would (besides the scores of ``score``).
_CLASSIFIER_METRICS = ("accuracy",)
_REGRESSOR_METRICS = (
    "mean_squared_error",
    "mean_absolute_error",
    "root_mean_squared_error",
    "r2_score",
)


def takes_references(input_shape: Sequence[int]) -> bool:
    """Whether a dataset with inputs of ``input_shape`` gets reference models: only a flat
    feature vector (a table), not an image (Fashion-MNIST: 28 x 28)."""
    return len(input_shape) == 1


def linear_model(task: str | None) -> str:
    """The name of the linear reference of ``task``: logistic or ridge regression."""
    return LINEAR["regression" if task == "regression" else "classification"]


@dataclass(frozen=True)
class ReferenceFit:
    """One reference model fit on one run's rows: its test scores and fit time."""

    model: str  # "logistic regression", ...
    estimator: str  # the scikit-learn estimator, as written
    test: dict[str, float | None]
    seconds: float
    error: str = ""  # why the model could not be fit ("" when it was)
    warnings: tuple[str, ...] = ()  # scikit-learn's warnings while fitting (convergence, ...)


@dataclass(frozen=True)
class ReferenceSet:
    """The reference fits of one run seed (``references/seed-<n>.json``)."""

    study: str
    seed: int
    key: str
    split: dict[str, Any]  # split_seed, fold, folds, validation, rows (fit, test)
    fits: tuple[ReferenceFit, ...]
    versions: dict[str, str] = field(default_factory=dict)
    finished_at: str = ""
    schema: int = REFERENCE_SCHEMA

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "study": self.study,
            "seed": self.seed,
            "key": self.key,
            "split": self.split,
            "versions": self.versions,
            "finished_at": self.finished_at,
            "fits": [
                {
                    "model": f.model,
                    "estimator": f.estimator,
                    "test": {k: _finite(v) for k, v in f.test.items()},
                    "seconds": f.seconds,
                    "error": f.error,
                    "warnings": list(f.warnings),
                }
                for f in self.fits
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReferenceSet:
        """Read what :meth:`to_json` wrote; raises KeyError, TypeError or ValueError otherwise."""
        fits = tuple(
            ReferenceFit(
                model=str(f["model"]),
                estimator=str(f.get("estimator", "")),
                test={str(k): None if v is None else float(v) for k, v in f["test"].items()},
                seconds=float(f["seconds"]),
                error=str(f.get("error", "")),
                warnings=tuple(str(w) for w in f.get("warnings", ())),
            )
            for f in data["fits"]
        )
        seed = data["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed {seed!r} is not an int")
        return cls(
            study=str(data["study"]),
            seed=seed,
            key=str(data["key"]),
            split=dict(data["split"]),
            fits=fits,
            versions={str(k): str(v) for k, v in dict(data.get("versions", {})).items()},
            finished_at=str(data.get("finished_at", "")),
            schema=int(data.get("schema", 0)),
        )

    def as_results(self) -> list[RunResult]:
        """The fits as run results (variant = the model's name, test scores as both best and
        last weights, seconds_total = the fit time), for the statistics that read runs; fits
        that failed are left out."""
        return [
            RunResult(
                key=self.key,
                study=self.study,
                variant=f.model,
                seed=self.seed,
                status=ResultStatus.OK,
                test={"best": dict(f.test), "last": dict(f.test)},
                epochs_run=0,
                best_epoch=None,
                monitor="",
                best_monitor_value=None,
                params=0,
                seconds_per_epoch=math.nan,
                first_epoch_seconds=math.nan,
                seconds_total=f.seconds,
                backend="scikit-learn",
                engine=ENGINE,
                versions=dict(self.versions),
                validated_on="",
                split_sizes={
                    "train": int(self.split.get("fit_rows", 0)),
                    "validation": 0,
                    "test": int(self.split.get("test_rows", 0)),
                },
            )
            for f in self.fits
            if not f.error
        ]


def reference_metrics(study: ResolvedStudy) -> list[str]:
    """The test scores the references record: those the study's runs record (any variant's
    compiled metrics, and the scores tricklab computes) that a reference can compute as they
    are computed for runs. Never the loss (a run's includes its regularization penalties)."""
    task = study.task
    logged = {name for names in study.metrics.values() for name in names}
    computed = set(COMPUTED_SCORES[task])
    keras = _REGRESSOR_METRICS if task == "regression" else _CLASSIFIER_METRICS
    return sorted(computed | {m for m in keras if m in logged})


def reference_key(study: ResolvedStudy, seed: int) -> str:
    """What determines the references of run ``seed``: the data, the run's rows and their
    preprocessing, the metrics, scikit-learn's version and :data:`REFERENCE_SCHEMA`."""
    import sklearn

    where = study.run_split(seed)
    content = {
        "schema": REFERENCE_SCHEMA,
        "data_fingerprint": study.dataset.fingerprint,
        "split_seed": where.split_seed,
        "fold": where.fold,
        "folds": where.folds,
        "validation": study.spec.validation,
        "seed": seed,
        "metrics": reference_metrics(study),
        "scikit-learn": sklearn.__version__,
    }
    blob = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def fit_rows(splits: Splits) -> tuple[np.ndarray, np.ndarray]:
    """A run's non-test rows, as the references fit on them: training then validation rows
    (training alone when the validation rows are the test rows), preprocessed as for the run."""
    if splits.validation_is_test:
        return splits.x_train, splits.y_train
    return (
        np.concatenate([splits.x_train, splits.x_val]),
        np.concatenate([splits.y_train, splits.y_val]),
    )


def estimators(task: str, seed: int) -> list[tuple[str, str, Any]]:
    """(name, description, unfitted scikit-learn estimator) of each reference model."""
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    def scaled(name: str, model: Any) -> Any:
        return cast(Callable[..., Any], Pipeline)([("scale", StandardScaler()), (name, model)])

    if task == "regression":
        return [
            ("mean predictor", "DummyRegressor()", DummyRegressor()),
            (
                "ridge regression",
                "Pipeline(StandardScaler(), Ridge(alpha=1.0))",
                scaled("ridge", Ridge(alpha=1.0)),
            ),
            (
                "gradient boosting",
                f"HistGradientBoostingRegressor(random_state={seed})",
                HistGradientBoostingRegressor(random_state=seed),
            ),
        ]
    return [
        (
            "majority class",
            'DummyClassifier(strategy="most_frequent")',
            DummyClassifier(strategy="most_frequent"),
        ),
        (
            "logistic regression",
            "Pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))",
            scaled("logistic", LogisticRegression(C=1.0, max_iter=1000)),
        ),
        (
            "gradient boosting",
            f"HistGradientBoostingClassifier(random_state={seed})",
            HistGradientBoostingClassifier(random_state=seed),
        ),
    ]


def fit_references(study: ResolvedStudy, seed: int) -> ReferenceSet:
    """Fit and score every reference model on the rows of run ``seed`` (seconds)."""
    import datetime as dt

    import sklearn
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # sklearn's

    if not takes_references(study.dataset.input_shape):
        raise ValueError(
            f"dataset '{study.dataset.name}' has inputs of shape {study.dataset.input_shape}, "
            "not a flat feature vector: reference models are fit on tables only"
        )
    splits = study.splits(seed)
    x, y = fit_rows(splits)
    y = splits.to_model(y)  # a transformed target: fit where the runs fit, scored on its own
    task = study.task
    metrics = reference_metrics(study)
    # On a small table, OpenMP's threads cost more than they save (gradient boosting: 5x).
    with cast(Callable[..., Any], threadpool_limits)(1 if len(y) < THREADED_ROWS else None):
        fits = [
            _fit_one(name, description, estimator, x, y, splits, study, metrics)
            for name, description, estimator in estimators(task, seed)
        ]
    where = study.run_split(seed)
    return ReferenceSet(
        study=study.spec.name,
        seed=seed,
        key=reference_key(study, seed),
        split={
            "split_seed": where.split_seed,
            "fold": where.fold,
            "folds": where.folds,
            "validation": study.spec.validation,
            "data_fingerprint": study.dataset.fingerprint,
            "fit_rows": len(y),
            "test_rows": len(splits.y_test),
        },
        fits=tuple(fits),
        versions={"scikit-learn": sklearn.__version__, "numpy": np.__version__},
        finished_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )


def _fit_one(
    name: str,
    description: str,
    estimator: Any,
    x: np.ndarray,
    y: np.ndarray,
    splits: Splits,
    study: ResolvedStudy,
    metrics: Sequence[str],
) -> ReferenceFit:
    """One reference model, fit and scored; a model that fails (a single class in the fit
    rows, ...) is recorded with its error, and the others are fit all the same."""
    regression = study.task == "regression"
    seconds = 0.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            start = time.perf_counter()
            estimator.fit(x, y)
            seconds = time.perf_counter() - start
            if regression:
                outputs = splits.from_model(np.asarray(estimator.predict(splits.x_test)))
            else:
                outputs = class_scores(estimator, splits.x_test, study.dataset.n_classes)
            test = score_outputs(outputs, splits, study.dataset.n_classes, regression)
        except Exception as exc:  # a reference must not cost the study its report
            return ReferenceFit(name, description, {}, seconds, f"{type(exc).__name__}: {exc}")
    said = tuple(dict.fromkeys(str(w.message).splitlines()[0] for w in caught))
    kept = {m: test.get(m) for m in metrics}
    return ReferenceFit(name, description, kept, seconds, warnings=said)


def class_scores(estimator: Any, x: np.ndarray, n_classes: int) -> np.ndarray:
    """``predict_proba`` as an (n, n_classes) matrix over every class of the data (a class
    missing from the fit rows scores 0)."""
    proba = np.asarray(estimator.predict_proba(x), dtype=np.float64)
    out = np.zeros((len(x), n_classes))
    out[:, np.asarray(estimator.classes_, dtype=int)] = proba
    return out


def score_outputs(
    outputs: np.ndarray, splits: Splits, n_classes: int, regression: bool
) -> dict[str, float | None]:
    """Test scores of a reference's ``outputs`` (class probabilities, or predictions) with the
    runs' scoring code, :func:`~tricklab.engines._scoring.score` (AUC, balanced accuracy, the
    baselines...), plus accuracy as Keras computes it from outputs.

    A regression's errors are scikit-learn's on the predictions as the estimator returns them
    (float32 for float32 features, as a run's outputs are): ``mse``, ``mae`` and ``r2`` are
    then exactly scikit-learn's numbers for the fit, and Keras's names (``mean_squared_error``,
    ``root_mean_squared_error``, ``mean_absolute_error``, ``r2_score``) the same values."""
    truth = splits.y_test
    target = Target("regression", 0) if regression else Target("one_hot", n_classes)
    keras: dict[str, float] = {}
    if not regression:
        keras = {"accuracy": float(np.mean(outputs.argmax(axis=-1) == truth))}
    scores = without_matrix(score(keras, outputs, truth, target, reference(splits, target)))
    if regression and scores.get("mse") is not None:  # finite predictions
        from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

        predicted = outputs.reshape(len(truth))
        mse = float(mean_squared_error(truth, predicted))
        scores.update(
            mse=mse,
            mae=float(mean_absolute_error(truth, predicted)),
            r2=float(r2_score(truth, predicted)),
        )
        scores.update(
            mean_squared_error=mse,
            root_mean_squared_error=math.sqrt(mse),
            mean_absolute_error=scores["mae"],
            r2_score=scores["r2"],
        )
    return scores


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
