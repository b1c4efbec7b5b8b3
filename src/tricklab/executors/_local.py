"""The local executor: every unit trains in this process, one after the other (the default)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tricklab.data import Dataset
    from tricklab.engines import Control, Progress, RunDone, RunFailed, RunPruned
    from tricklab.executors._unit import Unit


class LocalExecutor:
    """Takes (claims) a unit only once the one before it has finished, as one worker should."""

    name = "local"

    def train(
        self,
        units: Iterable[Unit],
        dataset: Dataset,
        progress: Progress,
        control: Control,
    ) -> Iterator[tuple[Unit, RunDone | RunFailed | RunPruned]]:
        from tricklab import engines

        for unit in units:
            for outcome in engines.get(unit.engine).run(unit.tasks, dataset, progress, control):
                yield unit, outcome
