"""The engine protocol: the tasks an engine is given, the events it yields, its controls.

Imports neither Keras nor JAX: executors, the store and the study read these types.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from tricklab.data import Dataset, Splits
    from tricklab.engines._weights import WeightsFile, WeightsLayout
    from tricklab.engines.contract import RunPlan, RunResult


@dataclass(frozen=True)
class RunTask:
    """One run to train: its resolved plan and the split it trains, validates and tests on."""

    plan: RunPlan
    splits: Splits


@dataclass(frozen=True)
class EpochEnd:
    """A run finished an epoch (1-based); ``logs`` are Keras's epoch logs."""

    key: str
    epoch: int
    logs: dict[str, float]


@dataclass(frozen=True)
class PopulationEpoch:
    """A population finished an epoch: for a progress display. No best value across members:
    they may train different losses, so a best of them means nothing."""

    members: int
    training: int  # members still training
    epoch: int
    epochs: int  # the most it trains


@dataclass(frozen=True)
class RunDone:
    """A run finished; ``weights`` are its best weights in ``model.get_weights()`` order,
    ``predictions`` their test-set outputs (``_scoring.test_predictions``: a float32 array) and
    ``layout`` where each weight goes in the model's ``.weights.h5`` (:func:`weights_layout`);
    ``last_weights`` and ``last_predictions`` the same of the weights training ended with."""

    key: str
    result: RunResult
    weights: list[np.ndarray] = field(repr=False)
    predictions: np.ndarray = field(repr=False)
    layout: WeightsLayout = field(repr=False)
    last_weights: list[np.ndarray] | None = field(default=None, repr=False)
    last_predictions: np.ndarray | None = field(default=None, repr=False)

    @property
    def weights_file(self) -> WeightsFile:
        """The best weights as the store writes them (best.weights.h5)."""
        return self.layout.file(self.weights)

    @property
    def last_weights_file(self) -> WeightsFile | None:
        """The last weights as the store writes them (last.weights.h5); None when not given."""
        return None if self.last_weights is None else self.layout.file(self.last_weights)


@dataclass(frozen=True)
class RunFailed:
    """A run could not train; the others go on."""

    key: str
    error: str  # one line
    traceback: str

    @classmethod
    def from_exception(cls, key: str, exc: BaseException) -> RunFailed:
        """Call inside the ``except`` block: the traceback is the one being handled."""
        import traceback

        error = "".join(traceback.format_exception_only(exc)).strip()
        return cls(key, error, traceback.format_exc())


@dataclass(frozen=True)
class RunPruned:
    """A run stopped early because ``Control.prune`` said so after epoch ``epoch`` (a search)."""

    key: str
    epoch: int


class Interrupted(Exception):
    """Training stopped at an epoch boundary on request; a checkpoint of it was saved."""

    def __init__(self, keys: Sequence[str], epoch: int) -> None:
        self.keys, self.epoch = list(keys), epoch
        super().__init__(f"interrupted after epoch {epoch} of {len(self.keys)} run(s)")


def _no_checkpoint(keys: Sequence[str]) -> Any:
    return None


def _discard(keys: Sequence[str], state: Any) -> None:
    return None


@dataclass(frozen=True)
class Control:
    """What the scheduler lends an engine: checkpoints (the store keeps them) and interrupts.

    An engine saves the state of a run (or a population) at the first epoch boundary after
    ``every`` seconds of training, and at once when ``stop_requested()``; then it raises
    :class:`Interrupted`. ``load`` gives the last checkpoint of exactly these runs, or None.
    """

    load: Callable[[Sequence[str]], Any] = _no_checkpoint
    save: Callable[[Sequence[str], Any], None] = _discard
    every: float = 30.0
    stop_requested: Callable[[], bool] = lambda: False
    #: Asked after each epoch of each run with (run key, epoch, logs); True stops that run at
    #: this epoch boundary and the engine yields :class:`RunPruned` for it (``tricklab search``).
    prune: Callable[[str, int, dict[str, float]], bool] | None = None


class Checkpointer:
    """An engine's view of :class:`Control` for one run or population (``keys``)."""

    def __init__(self, control: Control | None, keys: Sequence[str]) -> None:
        self.control, self.keys = control or Control(), list(keys)
        self._last = time.monotonic()

    def load(self) -> Any:
        return self.control.load(self.keys)

    def epoch_end(self, epoch: int, finished: bool, state: Callable[[], Any]) -> None:
        """After epoch ``epoch`` (1-based): save when due or asked to stop; then stop if asked.

        Nothing is saved once training has finished (``finished``): a crash then costs the
        last epochs only, and a finished run is never resumed into more epochs.
        """
        stop = self.control.stop_requested()
        if finished:
            return
        if stop or time.monotonic() - self._last >= self.control.every:
            self.control.save(self.keys, state())
            self._last = time.monotonic()
        if stop:
            raise Interrupted(self.keys, epoch)


Event = EpochEnd | PopulationEpoch | RunDone | RunFailed | RunPruned
Progress = Callable[[EpochEnd | PopulationEpoch], None]


class Engine(Protocol):
    """Trains a batch of runs of one study: yields one outcome per run, in any order."""

    name: str

    def run(
        self,
        tasks: Sequence[RunTask],
        dataset: Dataset,
        progress: Progress | None = None,
        control: Control | None = None,
    ) -> Iterator[RunDone | RunFailed | RunPruned]: ...
