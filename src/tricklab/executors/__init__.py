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
from typing import TYPE_CHECKING

from tricklab.base.errors import TricklabError
from tricklab.executors._events import EventKind, Listener, RunEvent
from tricklab.executors._process import WorkerJob, thread_environment
from tricklab.executors._schedule import Scheduled, schedule
from tricklab.executors._unit import Executor, Unit

if TYPE_CHECKING:
    from tricklab.executors._process import ProcessExecutor
    from tricklab.spec import RunOptions

__all__ = [
    "EventKind",
    "Executor",
    "Listener",
    "RunEvent",
    "Scheduled",
    "Unit",
    "WorkerJob",
    "get",
    "schedule",
    "thread_environment",
]

RAY_MISSING = "--executor ray needs the ray extra: pip install 'tricklab[ray]'"


def get(options: RunOptions) -> Executor | ProcessExecutor:
    """The executor ``options`` name (checked by :class:`~tricklab.spec.RunOptions`); imports
    none of its libraries.

    ``options.workers``: processes (``process``; default: the cores this process may use) or
    the CPUs of the local Ray that tricklab starts (``ray`` without ``address``; default: every
    core). ``options.address``: an existing Ray cluster, e.g. ``ray://head:10001`` or ``auto``.
    """
    if options.executor == "local":
        from tricklab.executors._local import LocalExecutor

        return LocalExecutor()
    if options.executor == "process":
        from tricklab.executors._process import ProcessExecutor

        return ProcessExecutor(options.workers)
    if importlib.util.find_spec("ray") is None:
        raise TricklabError(RAY_MISSING)
    from tricklab.executors._ray import RayExecutor

    return RayExecutor(address=options.address, workers=options.workers)
