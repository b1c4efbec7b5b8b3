"""A regression target fed to the model on another scale, and every score read on its own.

``target_transform`` in a CSV's dataset table says how (scikit-learn's
``TransformedTargetRegressor``, with the transform fitted per run):

- ``"standardize"``: ``(y - mean) / std`` with the mean and (population) standard deviation of
  the run's training rows (a constant target keeps std 1); a target in the hundreds of
  thousands otherwise starts the loss near 1e10 and its gradients with it;
- ``"log"``: ``ln(y)``, standardised the same way (the training rows' mean and std of
  ``ln(y)``: a network starts near output 0), for a positive, right-skewed target (prices,
  counts, durations): the loss then weighs relative errors; every target value must be > 0.

The model trains, validates and checkpoints on that scale (the history and its curves are
there); its test outputs are mapped back (:meth:`TargetScaling.inverse`) before anything is
scored or stored, so every test score, ``predictions.npy`` and ``tricklab predict`` are on the
target's own scale. Computed in float64; what is fitted is plain JSON
(:meth:`TargetScaling.to_json`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from tricklab.base.errors import DataError
from tricklab.data._dataset import Dataset
from tricklab.spec import TargetTransform

if TYPE_CHECKING:
    from tricklab.data._csv_table import CsvTable


@dataclass(frozen=True)
class TargetScaling:
    """One run's target transform: ``forward`` feeds the model, ``inverse`` reads it back.
    ``mean`` and ``std`` are those of the training targets (``"log"``: of their logs)."""

    transform: TargetTransform
    mean: float = 0.0
    std: float = 1.0

    @classmethod
    def fit(cls, transform: TargetTransform, y_train: np.ndarray) -> TargetScaling:
        """The transform, fitted on the run's training targets ``y_train`` only."""
        y = np.asarray(y_train, dtype=np.float64)
        if transform == "log":
            y = np.log(y)
        std = float(y.std()) if len(y) else 1.0
        return cls(transform, float(y.mean()) if len(y) else 0.0, std if std > 0 else 1.0)

    def forward(self, y: np.ndarray) -> np.ndarray:
        """Targets on the model's scale (float32, as Keras reads them)."""
        y = np.asarray(y, dtype=np.float64)
        if self.transform == "log":
            y = np.log(y)
        return ((y - self.mean) / self.std).astype(np.float32)

    def inverse(self, outputs: np.ndarray) -> np.ndarray:
        """The model's outputs on the target's own scale (float64; a diverged output stays
        non-finite, and ``exp`` of a huge one is inf: scored as unknown, never as zero)."""
        out = np.asarray(outputs, dtype=np.float64) * self.std + self.mean
        if self.transform == "log":
            with np.errstate(over="ignore"):
                return np.exp(out)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"transform": self.transform, "mean": self.mean, "std": self.std}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> TargetScaling:
        transform: TargetTransform = "log" if record["transform"] == "log" else "standardize"
        return cls(transform, float(record["mean"]), float(record["std"]))


def suggested_transform(y: np.ndarray) -> tuple[TargetTransform | None, str]:
    """The ``target_transform`` a regression target ``y`` wants, and why: ``"log"`` for a
    positive target skewed to the right (its log is nearer symmetric, and its errors are
    relative), else ``"standardize"`` when its spread or centre is far from 1 (an untrained
    network predicts near 0: its loss starts near ``mean**2 + std**2`` and its gradients with
    it); ``(None, "")`` for a target near unit scale. ``tricklab init`` proposes it and lint
    (TL021) asks for it."""
    from scipy.stats import skew

    y = np.asarray(y, dtype=np.float64)
    mean, std = float(y.mean()), float(y.std())
    skewness = float(skew(y)) if std > 0 else 0.0
    if y.min() > 0 and skewness > 1:
        return "log", f"positive, skewed to the right (skewness {skewness:.1f})"
    if std > 10 or 0 < std < 0.1 or abs(mean) > 10 * max(std, 1.0):
        return "standardize", f"mean {mean:.3g}, std {std:.3g}"
    return None, ""


def with_target_transform(dataset: Dataset, table: CsvTable, target: Any) -> Dataset:
    """``dataset`` with its table's ``target_transform`` (None: as is); refused in one located
    line for a target that is not a regression target, and for ``"log"`` of a value <= 0. The
    transform is part of the dataset's fingerprint (runs with and without it differ)."""
    transform = table.spec.target_transform
    if transform is None:
        return dataset
    column = table.column(target)
    if dataset.task != "regression":
        why = dataset.intake.task_reason if dataset.intake is not None else dataset.task
        raise DataError(
            f'{table.shown}: target_transform = "{transform}" is for a regression target; '
            f"target column {column} is {dataset.task} ({why}). Drop target_transform, or set "
            'task = "regression" in the dataset table if its values are amounts.'
        )
    if transform == "log":
        bad = np.flatnonzero(~(np.asarray(dataset.y) > 0))
        if len(bad):
            more = f" (and {len(bad) - 1} more rows)" if len(bad) > 1 else ""
            raise DataError(
                f"{table.shown}: line {table.line(int(bad[0]))}, column {column}: "
                f'target_transform = "log" needs every target > 0. Received: '
                f'{float(dataset.y[bad[0]])!r}{more}. Use target_transform = "standardize".'
            )
    fingerprint = hashlib.sha256(
        f"{dataset.fingerprint};target_transform={transform}".encode()
    ).hexdigest()
    return replace(dataset, target_transform=transform, fingerprint=fingerprint)
