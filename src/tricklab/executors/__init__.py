"""Executors: where the runs of a study train (``tricklab run --executor local|process|ray``).

The scheduler (:func:`schedule`) claims, in the store, what this process trains, hands each
claimed *unit* (a population group, or one solo run) to an executor and commits the outcomes it
gets back, so claims, commits and progress events stay in one place whatever trains the runs.

- ``local`` (:mod:`._local`, the default): in this process, one unit after the other.
- ``process`` (:mod:`._process`): N worker processes on this machine each run the study through
  the store's claims, as N ``tricklab run`` commands would, with the threads of each set so
  they do not fight over the cores; this process relays what they report.
- ``ray`` (:mod:`._ray`): each unit is a Ray task; the data goes to the cluster once, results
  and weight and prediction arrays come back, and only this process writes the store, so the
  cluster needs no shared file system. A task whose worker is lost is retried from the start.

This package's ``__init__`` imports neither Keras, JAX nor Ray.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tricklab.base.errors import TricklabError
from tricklab.executors._schedule import Scheduled, schedule

if TYPE_CHECKING:
    from tricklab.data import Dataset
    from tricklab.engines import Control, Progress, RunDone, RunFailed, RunTask
    from tricklab.engines.contract import RunPlan
    from tricklab.executors._process import ProcessExecutor

__all__ = ["EXECUTORS", "Executor", "Scheduled", "Unit", "get", "schedule"]

EXECUTORS = ("local", "process", "ray")
RAY_MISSING = "--executor ray needs the ray extra: pip install 'tricklab[ray]'"


@dataclass(frozen=True, eq=False)
class Unit:
    """What one worker trains at a time: a population group, or one solo run (claimed)."""

    engine: str
    tasks: tuple[RunTask, ...]

    @property
    def plans(self) -> list[RunPlan]:
        return [task.plan for task in self.tasks]

    @property
    def keys(self) -> list[str]:
        return [task.plan.key for task in self.tasks]

    @property
    def name(self) -> str:
        """For people watching a cluster: the engine and the first run, e.g. ``solo:mse/seed-0``."""
        first = self.tasks[0].plan
        more = f"+{len(self.tasks) - 1}" if len(self.tasks) > 1 else ""
        return f"{self.engine}:{first.variant}/seed-{first.seed}{more}"


class Executor(Protocol):
    """Trains the units it is handed; yields ``(unit, outcome)``, one outcome per run.

    ``units`` is lazy: taking the next unit claims it in the store, so an executor takes a unit
    only when it can start it (``local``: one at a time; ``ray``: every unit at once).
    """

    name: str

    def train(
        self,
        units: Iterable[Unit],
        dataset: Dataset,
        progress: Progress,
        control: Control,
    ) -> Iterator[tuple[Unit, RunDone | RunFailed]]: ...


def get(
    name: str = "local", *, workers: int | None = None, address: str | None = None
) -> Executor | ProcessExecutor:
    """The executor called ``name``, checked with its options; imports none of its libraries.

    ``workers``: processes (``process``; default: the cores this process may use) or the CPUs
    of the local Ray that tricklab starts (``ray`` without ``address``; default: every core).
    ``address``: an existing Ray cluster (``ray`` only), e.g. ``ray://head:10001`` or ``auto``.
    """
    if name not in EXECUTORS:
        raise TricklabError(
            f"--executor: unknown executor {name!r}. Expected one of: {', '.join(EXECUTORS)}."
        )
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)):
        raise TricklabError(f"--workers must be an int >= 1. Received: workers={workers!r}.")
    if workers is not None and workers < 1:
        raise TricklabError(f"--workers must be an int >= 1. Received: workers={workers}.")
    if workers is not None and name == "local":
        raise TricklabError(
            "--workers needs --executor process or ray (local trains in this process). "
            f"Received: executor='local', workers={workers}."
        )
    if address is not None and name != "ray":
        raise TricklabError(
            f"--address needs --executor ray. Received: executor={name!r}, address={address!r}."
        )
    if name == "local":
        from tricklab.executors._local import LocalExecutor

        return LocalExecutor()
    if name == "process":
        from tricklab.executors._process import ProcessExecutor

        return ProcessExecutor(workers)
    if address is not None and workers is not None:
        raise TricklabError(
            "--workers sets the CPUs of the local Ray that tricklab starts; a cluster given "
            f"with --address has its own. Received: address={address!r}, workers={workers}."
        )
    if importlib.util.find_spec("ray") is None:
        raise TricklabError(RAY_MISSING)
    from tricklab.executors._ray import RayExecutor

    return RayExecutor(address=address, workers=workers)
