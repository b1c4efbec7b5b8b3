"""Training engines: turn a batch of run tasks into events, one result (or failure) per run.

An engine receives :class:`RunTask` objects (a resolved plan and the split it trains on) and
yields, per run, a :class:`RunDone` (the result and its weights as arrays) or a
:class:`RunFailed`; while it trains it tells ``progress`` about each :class:`EpochEnd` of a run
and each :class:`PopulationEpoch` of a population. Engines never write files: the store writes
every file of a run from what the engine returned.

- ``solo`` (:mod:`tricklab.engines.solo`): one ``model.fit`` per run, any backend.
- ``population`` (:mod:`tricklab.engines.population`): the runs of a group train as one
  compiled JAX program, each member reproducing its solo run (README, "Engines").

:func:`assign` decides which engine trains each run of a study (``--engine auto``).

This package's ``__init__`` imports neither Keras nor JAX.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from tricklab.engines._grouping import ENGINES, Assignment, assign, population_key

if TYPE_CHECKING:
    import numpy as np

    from tricklab.datasets import Dataset, Splits
    from tricklab.result import RunPlan, RunResult

__all__ = [
    "ENGINES",
    "Assignment",
    "Engine",
    "EpochEnd",
    "Event",
    "PopulationEpoch",
    "Progress",
    "RunDone",
    "RunFailed",
    "RunTask",
    "assign",
    "get",
    "population_key",
]


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
    """A population finished an epoch: for a progress display."""

    members: int
    training: int  # members still training
    epoch: int
    monitor: str
    best: float | None  # the best monitored value of any member so far


@dataclass(frozen=True)
class RunDone:
    """A run finished; ``weights`` are its best weights in ``model.get_weights()`` order."""

    key: str
    result: RunResult
    weights: list[np.ndarray] = field(repr=False)


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


Event = EpochEnd | PopulationEpoch | RunDone | RunFailed
Progress = Callable[[EpochEnd | PopulationEpoch], None]


class Engine(Protocol):
    """Trains a batch of runs of one study: yields one outcome per run, in any order."""

    name: str

    def run(
        self, tasks: Sequence[RunTask], dataset: Dataset, progress: Progress | None = None
    ) -> Iterator[RunDone | RunFailed]: ...


def get(name: str) -> Engine:
    """The engine called ``name`` (``solo`` or ``population``); imports Keras."""
    if name == "solo":
        from tricklab.engines.solo import SoloEngine

        return SoloEngine()
    if name == "population":
        from tricklab.engines.population import PopulationEngine

        return PopulationEngine()
    raise ValueError(f"unknown engine {name!r}. Expected one of: {', '.join(ENGINES)}.")
