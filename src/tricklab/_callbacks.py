"""Keras callbacks tricklab adds to every fit (this module imports Keras)."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from tricklab import _backend

keras = _backend.keras()


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch, validation included (the first one includes compilation)."""

    def __init__(self) -> None:
        super().__init__()
        self.durations: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.durations.append(time.perf_counter() - self._start)

    def steady(self) -> float:
        """Median epoch time after the first (compiling) epoch."""
        later = self.durations[1:] or self.durations
        return float(np.median(later)) if later else 0.0


class BestEpoch(keras.callbacks.Callback):
    """The epoch at which a ModelCheckpoint last saved, i.e. its ``best`` improved.

    Must come after the checkpoint in the callback list, so it sees the updated value.
    """

    def __init__(self, checkpoint: Any) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.epoch: int | None = None
        self.value: float | None = None
        self._seen = checkpoint.best

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        best = float(self.checkpoint.best)
        if best != self._seen and math.isfinite(best):
            self._seen = best
            self.epoch, self.value = epoch + 1, best


class EpochProgress(keras.callbacks.Callback):
    """Reports each finished epoch to ``report(epoch, logs)`` (progress displays)."""

    def __init__(self, report: Any) -> None:
        super().__init__()
        self.report = report

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.report(epoch + 1, dict(logs or {}))
