"""What an executor trains: units (a population group, or one solo run), and the protocol."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tricklab.data import Dataset
    from tricklab.engines import Control, Progress, RunDone, RunFailed, RunPruned, RunTask
    from tricklab.engines.contract import RunPlan


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
    ) -> Iterator[tuple[Unit, RunDone | RunFailed | RunPruned]]: ...
