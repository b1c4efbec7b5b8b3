"""Keras callbacks the engines add to every run (this module imports Keras)."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from tricklab.base import backend as _backend

keras = _backend.keras()  # on the selected backend: import nothing from Keras before this
# Keras is untyped: its classes are `Any` to mypy, named here so they can be subclassed.
_Callback: Any = keras.callbacks.Callback
# Keras's base of ModelCheckpoint and EarlyStopping: its improvement rule is theirs.
MonitorCallback: Any = keras.src.callbacks.monitor_callback.MonitorCallback


class EpochTimer(_Callback):
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
        return steady(self.durations)


def steady(durations: list[float]) -> float:
    """Median epoch time after the first (compiling) epoch."""
    later = durations[1:] or durations
    return float(np.median(later)) if later else 0.0


class BestWeights(MonitorCallback):
    """Keeps the weights of the best epoch in memory, as ``ModelCheckpoint(save_best_only=True)``
    would save them (same monitor, mode and improvement rule); the store writes them.
    """

    best: Any  # set by MonitorCallback (Keras): the best monitored value so far, None at first

    def __init__(self, monitor: str, mode: str = "auto") -> None:
        super().__init__(monitor=monitor, mode=mode)
        self.epoch: int | None = None  # 1-based epoch of the best weights
        self.value: float | None = None
        self.weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.monitor_op is None:
            self._set_monitor_op()  # needs the model's metrics for mode="auto"
        current = (logs or {}).get(self.monitor)
        if current is None or not math.isfinite(float(current)):
            return
        if self._is_improvement(current, self.best):
            self.best = current
            self.epoch, self.value = epoch + 1, float(current)
            self.weights = [np.array(w, copy=True) for w in self.model.get_weights()]


class EpochProgress(_Callback):
    """Reports each finished epoch to ``report(epoch, logs)`` (progress displays)."""

    def __init__(self, report: Any) -> None:
        super().__init__()
        self.report = report

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.report(epoch + 1, dict(logs or {}))


class PruneCheck(_Callback):
    """Asks ``prune(key, epoch, logs)`` after each epoch; True stops the run (a search trial)."""

    def __init__(self, key: str, prune: Any) -> None:
        super().__init__()
        self.key, self.prune = key, prune
        self.pruned_at: int | None = None

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.pruned_at is None and self.prune(self.key, epoch + 1, dict(logs or {})):
            self.pruned_at = epoch + 1
            self.model.stop_training = True


#: What of Keras's EarlyStopping changes while it watches a run (restored on resume).
EARLY_STOPPING_STATE = ("wait", "stopped_epoch", "best", "best_weights", "best_epoch")


def callback_state(callback: Any) -> dict[str, Any]:
    """The mutable state of an EpochTimer, BestWeights or EarlyStopping (for checkpoints)."""
    if isinstance(callback, EpochTimer):
        names: tuple[str, ...] = ("durations",)
    elif isinstance(callback, BestWeights):
        names = ("best", "epoch", "value", "weights")
    else:
        names = EARLY_STOPPING_STATE
    return {name: getattr(callback, name) for name in names}


def restore_callback(callback: Any, state: dict[str, Any]) -> None:
    for name, value in state.items():
        setattr(callback, name, value)


class ResumableRun(_Callback):
    """A solo run's checkpoints: saved at epoch boundaries when the checkpointer says so, and
    put back (after the other callbacks' ``on_train_begin`` reset them) when resuming.

    Must come last in the callback list, so it sees every other callback's epoch-end state.
    """

    def __init__(
        self, checkpointer: Any, epochs: int, watched: list[Any], state: dict[str, Any] | None
    ) -> None:
        super().__init__()
        self.checkpointer, self.epochs = checkpointer, epochs
        self.watched, self.resumed = watched, state
        self.history: dict[str, list[float]] = {}

    def on_train_begin(self, logs: Any = None) -> None:
        self.started = time.perf_counter()
        if self.resumed is not None:
            for callback, state in zip(self.watched, self.resumed["callbacks"], strict=True):
                restore_callback(callback, state)

    @property
    def seconds_before(self) -> float:
        """Training time spent before this resume (0 for a run that started here)."""
        return float(self.resumed.get("seconds", 0.0)) if self.resumed is not None else 0.0

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        finished = bool(self.model.stop_training) or epoch + 1 == self.epochs
        self.checkpointer.epoch_end(epoch + 1, finished, lambda: self.state(epoch + 1))

    def state(self, epochs_done: int) -> dict[str, Any]:
        model = self.model
        previous = self.resumed["history"] if self.resumed is not None else {}
        return {
            "epoch": epochs_done,
            "variables": [np.array(v) for v in model.variables],
            "optimizer": [np.array(v) for v in model.optimizer.variables],
            "numpy_rng": np.random.get_state(),
            "callbacks": [callback_state(c) for c in self.watched],
            "history": {k: [*previous.get(k, []), *v] for k, v in self.history.items()},
            # A resumed run's seconds_total counts the time before the stop too.
            "seconds": self.seconds_before + time.perf_counter() - self.started,
        }
