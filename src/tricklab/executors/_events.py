"""Run events: what the scheduler tells a progress display (and the process executor relays)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from tricklab.engines import PopulationEpoch
from tricklab.engines.contract import RunPlan, RunResult


class EventKind(StrEnum):
    """What happened to a run (or a population) of the study."""

    REUSED = "reused"  # a stored run
    DAMAGED = "damaged"  # a stored run's files are damaged (``error`` says which): retrained
    REPAIRED = "repaired"  # only its split's labels were damaged: rewritten, the run is reused
    FALLBACK = "fallback"  # a run trains solo: ``error`` says why
    EPOCH = "epoch"  # a run finished an epoch
    POPULATION = "population"  # a population finished an epoch: ``population``
    DONE = "done"
    FAILED = "failed"
    LOST = "lost"  # this worker lost its claim while training: result discarded (``error``)
    ELSEWHERE = "elsewhere"  # another worker committed it
    WAITING = "waiting"  # every run left is claimed by live workers: ``error`` names them


@dataclass
class RunEvent:
    """What a progress display is told about: one :class:`EventKind` and its details."""

    kind: EventKind
    plan: RunPlan | None
    index: int  # runs finished so far in this call (done or failed)
    total: int  # runs to train
    epoch: int = 0
    logs: dict[str, float] = field(default_factory=dict)
    result: RunResult | None = None
    error: str = ""
    population: PopulationEpoch | None = None


Listener = Callable[[RunEvent], None]
