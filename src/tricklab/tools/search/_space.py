"""The ``[search]`` table: override paths -> Optuna distributions, checked when it is read.

Keys are the override paths of variants (``"model.layers[0].units"``, ``"train.epochs"``) and
follow the same merge rules; values are distributions::

    {int = [16, 512], log = true}        IntDistribution (``step = N`` instead of ``log``)
    {float = [1e-4, 1e-1], log = true}   FloatDistribution (``step = x`` instead of ``log``)
    {choice = ["relu", "tanh"]}          CategoricalDistribution of scalars
    {choice = {relu = "relu", leaky = {name = "leaky_relu", negative_slope = 0.1}}}
                                         labelled options: Optuna samples the label

Every error is one located line: ``studies/x.toml: search."model.layers[1].rate": ...``. Each
value a distribution can take at its ends (and each choice) is merged into the base recipe and
validated as a variant would be, so a range that leaves what a field accepts is reported before
anything trains; every sampled recipe is validated again before its trial trains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli
from pydantic import ValidationError

from tricklab.base.errors import SpecError
from tricklab.spec import Recipe, StudySpec, check_same_model, merge, messages, split_path

KINDS = ("int", "float", "choice")
OPTIONS = ("log", "step")
_SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class Param:
    """One searched override: its path (also the Optuna parameter name) and distribution."""

    path: str
    distribution: Any  # optuna.distributions.BaseDistribution
    options: dict[str, Any] | None = None  # labelled choice: label -> value

    def value(self, sampled: Any) -> Any:
        """The override value of a sampled parameter (a label becomes its option)."""
        return self.options[sampled] if self.options is not None else sampled

    def corners(self) -> list[tuple[str, Any]]:
        """The values at the ends of the range, or every choice, with a word for each."""
        dist = self.distribution
        if self.options is not None:
            return [(f"choice {label!r}", value) for label, value in self.options.items()]
        if hasattr(dist, "choices"):
            return [(f"choice {messages.show(c)}", c) for c in dist.choices]
        return [(f"low {dist.low!r}", dist.low), (f"high {dist.high!r}", dist.high)]


@dataclass(frozen=True)
class SearchSpace:
    """The parameters of a ``[search]`` table, in the order written."""

    params: tuple[Param, ...]

    def distributions(self) -> dict[str, Any]:
        return {p.path: p.distribution for p in self.params}

    def overrides(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A trial's variant table (path -> value) from its Optuna parameters."""
        return {p.path: p.value(params[p.path]) for p in self.params}


def base_recipe(spec: StudySpec) -> dict[str, Any]:
    """The base recipe as written (what variants are merged into).

    Read again from the study file, so paths and merge rules act on exactly what a variant
    would act on; a study built from a dict falls back to its validated form.
    """
    if spec.source is not None:
        raw = tomli.loads(Path(spec.source).read_text(encoding="utf-8"))
        return {"model": raw.get("model"), "train": raw.get("train")}
    return {
        "model": spec.model.model_dump(mode="json", exclude_none=True),
        "train": spec.train.model_dump(mode="json", exclude_none=True),
    }


def parse_space(spec: StudySpec) -> SearchSpace:
    """The study's ``[search]`` table as a :class:`SearchSpace`, checked against its recipe."""
    table = spec.search
    if not table:
        raise SpecError(
            "no [search] table: tricklab search needs one, e.g. "
            '"train.optimizer.learning_rate" = {float = [1e-4, 1e-1], log = true}.',
            file=spec.source,
        )
    params = []
    for path, value in table.items():
        try:
            params.append(_param(path, value))
        except SpecError as exc:
            raise exc.located(file=spec.source, where=f'search."{path}"') from None
    space = SearchSpace(tuple(params))
    check_space(spec, space)
    return space


def check_space(spec: StudySpec, space: SearchSpace) -> None:
    """Validate each parameter's end values alone, then all lows and all highs together."""
    base = base_recipe(spec)
    for param in space.params:
        for word, value in param.corners():
            try:
                trial_recipe(base, {param.path: value})
            except SpecError as exc:
                raise SpecError(
                    [f"{word}: {p}" for p in exc.problems],
                    file=spec.source,
                    where=f'search."{param.path}"',
                ) from None
    for end in (0, -1):
        chosen = {p.path: p.corners()[end][1] for p in space.params}
        try:
            trial_recipe(base, chosen)
        except SpecError as exc:
            which = "low" if end == 0 else "high"
            raise SpecError(
                [
                    f"every parameter at its {which} end (or {which} choice): {p}"
                    for p in exc.problems
                ],
                file=spec.source,
                where="search",
            ) from None


def trial_recipe(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> Recipe:
    """The base recipe with a trial's overrides, validated as a variant is (errors unlocated)."""
    outside = [k for k in overrides if split_path(k)[0] not in ("model", "train")]
    if outside:
        raise SpecError(
            f"unknown key '{outside[0]}'. A search overrides the base recipe: paths under model "
            'or train (e.g. "train.optimizer.learning_rate", "model.layers[1].rate").'
        )
    merged = merge(base, overrides)
    check_same_model(base, merged)
    try:
        return Recipe.model_validate(merged)
    except ValidationError as exc:
        raise SpecError(messages.translate(exc, Recipe, merged)) from None


# -- one parameter ------------------------------------------------------------------------------
def _param(path: str, value: Any) -> Param:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    split_path(path)  # a malformed path is an error of its own
    if not isinstance(value, Mapping):
        raise SpecError(
            "must be a distribution table: {int = [low, high]}, {float = [low, high]} or "
            f"{{choice = [...]}}. Received: {messages.show(value)}."
        )
    kinds = [k for k in value if k in KINDS]
    unknown = [k for k in value if k not in KINDS and k not in OPTIONS]
    if unknown:
        raise SpecError(
            f"unknown key '{unknown[0]}'.{messages.did_you_mean(unknown[0], KINDS + OPTIONS)}"
            f" Expected one of: {', '.join(KINDS + OPTIONS)}."
        )
    if len(kinds) != 1:
        raise SpecError(
            f"needs exactly one of int, float or choice. Received: {messages.show(dict(value))}."
        )
    kind = kinds[0]
    log, step = value.get("log", False), value.get("step")
    if kind == "choice":
        if "log" in value or "step" in value:
            raise SpecError(f"choice takes no log or step. Received: {messages.show(dict(value))}.")
        return _choice(path, value["choice"], CategoricalDistribution)
    if not isinstance(log, bool):
        raise SpecError(f"log: must be true or false. Received: log={messages.show(log)}.")
    low, high = _bounds(kind, value[kind])
    if log and step is not None:
        raise SpecError("takes log or step, not both (Optuna cannot sample a stepped log range).")
    if log and low <= 0:
        raise SpecError(
            f"{kind}: a log range needs low > 0. Received: {kind} = "
            f"{messages.show(list(value[kind]))}, log = true."
        )
    if kind == "int":
        if step is not None and not (_is_int(step) and step >= 1):
            raise SpecError(f"step: must be an int >= 1. Received: step={messages.show(step)}.")
        return Param(path, IntDistribution(low, high, log=log, step=step or 1))
    if step is not None and not (_is_number(step) and step > 0):
        raise SpecError(f"step: must be a number > 0. Received: step={messages.show(step)}.")
    return Param(
        path,
        FloatDistribution(
            float(low), float(high), log=log, step=float(step) if step is not None else None
        ),
    )


def _bounds(kind: str, bounds: Any) -> tuple[Any, Any]:
    check = _is_int if kind == "int" else _is_number
    what = "ints" if kind == "int" else "numbers"
    ok = isinstance(bounds, list) and len(bounds) == 2 and all(check(b) for b in bounds)
    if not ok or bounds[0] > bounds[1]:
        raise SpecError(
            f"{kind}: must be [low, high], two {what} with low <= high. "
            f"Received: {kind} = {messages.show(bounds)}."
        )
    return bounds[0], bounds[1]


def _choice(path: str, options: Any, categorical: Any) -> Param:
    if isinstance(options, Mapping):
        if not options:
            raise SpecError("choice: needs at least one option. Received: choice = {}.")
        return Param(path, categorical(list(options)), dict(options))
    bad = (
        not isinstance(options, list)
        or not options
        or not all(isinstance(o, _SCALARS) for o in options)
    )
    if bad:
        raise SpecError(
            "choice: must be a list of scalars (strings, numbers, booleans) or a table of "
            "labelled options (label = value, for tables). "
            f"Received: choice = {messages.show(options)}."
        )
    if len({(type(o), o) for o in options}) != len(options):
        raise SpecError(
            f"choice: lists an option twice. Received: choice = {messages.show(options)}."
        )
    return Param(path, categorical(list(options)))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
