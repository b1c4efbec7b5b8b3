"""The study index (``study.json``): what a study is, as ``run`` last wrote it.

One writer (:meth:`~tricklab.store.RunStore.write_index`, from :func:`tricklab.study.train_study`)
and typed readers: the report, tracking, export and the store's own run list read a
:class:`StudyIndex`, never the JSON. An index from an older tricklab of the same store format
may lack fields: each has a default, and what the readers need of a missing one is theirs to
say (the report, for instance, falls back to the metric catalogue).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tricklab.base.errors import StoreError


@dataclass(frozen=True)
class IndexedRun:
    """A planned run: its variant, seed, key and folder (relative to the store)."""

    variant: str
    seed: int
    key: str | None
    dir: str = ""


@dataclass(frozen=True)
class StudyIndex:
    """The study's whole definition (every variant and seed, not a ``--variant``/``--seeds``
    selection), how it resolved on its data and the runs it plans.

    ``spec``: the study's definition without its variants; ``resolved``: the
    :meth:`~tricklab.data.ResolvedStudy.to_json` of the study (task, primary metric and its
    direction, protocol, dataset); ``lint``: the linter's findings (``Finding.to_json``), None
    when none were recorded.
    """

    study: str
    description: str = ""
    source: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    variants: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()
    baseline: str | None = None
    resolved: dict[str, Any] = field(default_factory=dict)
    engines: tuple[str, ...] = ()
    runs: tuple[IndexedRun, ...] = ()
    lint: tuple[dict[str, Any], ...] | None = None
    updated_at: str = ""

    # -- what the readers ask of ``resolved`` -----------------------------------------------
    @property
    def task(self) -> str | None:
        task = self.resolved.get("task")
        return str(task) if task else None

    @property
    def dataset(self) -> dict[str, Any]:
        return dict(self.resolved.get("dataset") or {})

    @property
    def protocol(self) -> dict[str, Any]:
        return dict(self.resolved.get("protocol") or {})

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.dataset.get("classes") or ()]

    @property
    def feature_names(self) -> list[str]:
        return [str(n) for n in self.dataset.get("feature_names") or ()]

    # -- JSON -----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["lint"] = list(self.lint) if self.lint is not None else None
        if self.lint is None:
            del data["lint"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], *, path: Path | None = None) -> StudyIndex:
        """The index in ``data``; a field of the wrong shape is a damaged index (``path``)."""
        where = path or Path("study.json")
        try:
            runs = data.get("runs") or []
            if not isinstance(runs, list) or not all(isinstance(e, dict) for e in runs):
                raise TypeError("runs is not a list of runs")
            lint = data.get("lint")
            return cls(
                study=str(data.get("study") or ""),
                description=str(data.get("description") or ""),
                source=str(data.get("source") or ""),
                spec=dict(data.get("spec") or {}),
                variants=tuple(str(v) for v in data.get("variants") or ()),
                seeds=tuple(data.get("seeds") or ()),
                baseline=data.get("baseline"),
                resolved=dict(data.get("resolved") or {}),
                engines=tuple(data.get("engines") or ()),
                runs=tuple(
                    IndexedRun(e.get("variant"), e.get("seed"), e.get("key"), e.get("dir", ""))
                    for e in runs
                ),
                lint=tuple(dict(f) for f in lint) if lint is not None else None,
                updated_at=str(data.get("updated_at") or ""),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise StoreError(f"{where}: damaged ({exc}).") from None
