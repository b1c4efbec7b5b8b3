"""How big a study may be (``[limits]``), how deep its TOML may nest, and the names it may use.

Sizes are counted from what the file says (``seeds = N``, the lengths of the grid's axes, a CSV's
header row), never by building what they describe, so ``seeds = 10000000`` or a grid of a million
variants is refused at once and in bounded memory. Every refusal names the key that raises it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from annotated_types import Ge
from pydantic import BaseModel, ConfigDict, ValidationError

from tricklab.base.errors import SpecError
from tricklab.spec import _validation

#: Tables and arrays may nest this deep (``model.layers[0].kernel_regularizer`` is 4).
MAX_DEPTH = 50
#: A study or variant name names a directory; file systems allow 255 bytes per name.
MAX_NAME_LENGTH = 100
NAME_PATTERN = re.compile(r"[A-Za-z0-9_=-][A-Za-z0-9_.=-]*")  # used with fullmatch
NAME_RULE = "letters, digits, '-', '_', '.' and '=' (not starting with '.')"
#: The default of ``[limits] max_columns`` (a CSV's columns, the target included).
MAX_COLUMNS = 100_000

_PosInt = Annotated[int, Ge(1)]


class LimitsSpec(BaseModel):
    """``[limits]``: the most variants, seeds, runs (variants x seeds) and CSV columns."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    max_variants: _PosInt = 1_000
    max_seeds: _PosInt = 1_000
    max_runs: _PosInt = 20_000
    max_columns: _PosInt = MAX_COLUMNS

    @classmethod
    def parse(cls, value: Any) -> LimitsSpec:
        """The ``[limits]`` table checked; errors are located under ``limits``."""
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise SpecError(
                f"limits: must be a table with keys among {', '.join(cls.model_fields)}. "
                f"Received: limits={_validation.show(value)}."
            )
        try:
            return cls.model_validate(dict(value))
        except ValidationError as exc:
            found = _validation.problems(exc, cls, dict(value))
            raise SpecError(
                [f"limits.{path}: {text}" if path else f"limits: {text}" for path, text in found]
            ) from None

    def check(self, field: str, value: int, key: str) -> None:
        """Raise the pinned one-line refusal when ``value`` is over the limit ``key``."""
        limit = getattr(self, key)
        if value > limit:
            raise SpecError(exceeded(field, value, limit, key))

    def check_size(
        self, *, variants: int, seeds: int | None, repeats: int | None, runs: int
    ) -> None:
        """The counts as written (``seeds`` and cv ``repeats``: None when not written)."""
        self.check("variants", variants, "max_variants")
        if seeds is not None:  # checked even beside cv, whose rule rejects it later
            self.check("seeds", seeds, "max_seeds")
        if repeats is not None:
            self.check("cv.repeats", repeats, "max_seeds")
        self.check("runs", runs, "max_runs")


def exceeded(field: str, value: int, limit: int, key: str) -> str:
    """The one-line refusal: ``seeds: 5000 exceeds the limit 1000 (raise it with ...)``."""
    return f"{field}: {value} exceeds the limit {limit} (raise it with [limits] {key})"


def count(value: Any) -> int:
    """A count as written: an int, or a list's length; anything else counts 0 (the field's own
    rule reports it once the size is known to be safe)."""
    if isinstance(value, list | tuple):
        return len(value)
    return max(value, 0) if isinstance(value, int) and not isinstance(value, bool) else 0


def check_depth(data: Any, limit: int = MAX_DEPTH) -> None:
    """Refuse tables and arrays nested deeper than ``limit``.

    The walk is iterative: a recursive one would fail on the very input it guards against.
    """
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > limit:
            raise SpecError(
                f"{_short_path(path)}: nesting depth {len(path)} exceeds the limit {limit}"
            )
        items = value.items() if isinstance(value, Mapping) else enumerate(value)
        for key, child in items:
            if isinstance(child, Mapping | list | tuple):
                stack.append((child, (*path, key)))


def _short_path(path: tuple[str | int, ...]) -> str:
    """The first parts of a long path (the whole one would be 50 parts long)."""
    parts = [p if isinstance(p, int) else shown_name(str(p)) for p in path[:4]]
    return _validation.join_path(parts) + ("..." if len(path) > 4 else "")


def name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a directory name, or None."""
    if len(name) > MAX_NAME_LENGTH:
        return f"at most {MAX_NAME_LENGTH} characters"
    if not NAME_PATTERN.fullmatch(name):
        return f"only {NAME_RULE}"
    return None


def shown_name(name: str) -> str:
    """A name as messages show it: on one line, and shortened when over the length limit."""
    short = name if len(name) <= MAX_NAME_LENGTH else name[:40] + "..."
    return short if short.isprintable() else repr(short)


def received_name(name: str) -> str:
    """``'abc'``, or ``'abcd...' (300 characters)`` for a long name."""
    if len(name) <= MAX_NAME_LENGTH:
        return repr(name)
    return f"{name[:40]!r}... ({len(name)} characters)"
