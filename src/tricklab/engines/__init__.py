"""Training engines: turn a batch of run tasks into events, one result (or failure) per run.

An engine receives :class:`RunTask` objects (a resolved plan and the split it trains on) and
yields, per run, a :class:`RunDone` (the result, its weights and test predictions as arrays) or a
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

from tricklab.engines._grouping import Assignment, assign, population_key
from tricklab.engines._protocol import (
    Checkpointer,
    Control,
    Engine,
    EpochEnd,
    Event,
    Interrupted,
    PopulationEpoch,
    Progress,
    RunDone,
    RunFailed,
    RunPruned,
    RunTask,
)
from tricklab.engines._scoring import class_weights
from tricklab.engines._weights import WeightsFile, WeightsLayout, weights_layout
from tricklab.spec import ENGINES

__all__ = [
    "ENGINES",
    "Assignment",
    "Checkpointer",
    "Control",
    "Engine",
    "EpochEnd",
    "Event",
    "Interrupted",
    "PopulationEpoch",
    "Progress",
    "RunDone",
    "RunFailed",
    "RunPruned",
    "RunTask",
    "WeightsFile",
    "WeightsLayout",
    "assign",
    "class_weights",
    "get",
    "population_key",
    "weights_layout",
]


def get(name: str) -> Engine:
    """The engine called ``name`` (``solo`` or ``population``); imports Keras."""
    if name == "solo":
        from tricklab.engines.solo import SoloEngine

        return SoloEngine()
    if name == "population":
        from tricklab.engines.population import PopulationEngine

        return PopulationEngine()
    raise ValueError(f"unknown engine {name!r}. Expected one of: {', '.join(ENGINES)}.")
