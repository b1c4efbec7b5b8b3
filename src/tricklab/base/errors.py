"""Errors that tricklab reports to users.

Every error caused by bad input is a :class:`TricklabError`: the command line prints its message
(no traceback) and exits with status 2. Messages state the rule and what was received, and
locate the problem: ``studies/x.toml: variants.l2: model.layers[2].units: must be an int >= 1.
Received: units=0.``
"""

from __future__ import annotations

from collections.abc import Iterable


class TricklabError(Exception):
    """Bad input or an unmet precondition, explained for the user."""


class SpecError(TricklabError):
    """One or more problems in a study specification.

    ``problems`` are messages relative to ``where`` (for example ``"variants.l2"``); ``file`` is
    the study file they come from, if any. ``str()`` gives one located line per problem.
    """

    def __init__(
        self,
        problems: str | Iterable[str],
        *,
        file: str | None = None,
        where: str | None = None,
    ) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.file = file
        self.where = where
        super().__init__(str(self))

    def located(self, *, file: str | None = None, where: str | None = None) -> SpecError:
        """A copy of this error with a file and/or an outer location filled in."""
        inner = self.where
        outer = where if inner is None else (f"{where}.{inner}" if where else inner)
        return SpecError(self.problems, file=self.file or file, where=outer)

    def lines(self) -> list[str]:
        prefix = "".join(f"{part}: " for part in (self.file, self.where) if part)
        return [prefix + problem for problem in self.problems]

    def __str__(self) -> str:
        return "\n".join(self.lines())


class DataError(TricklabError):
    """A dataset that cannot be found, read or used; the message names the file, row and column."""


class StoreError(TricklabError):
    """A run store that is missing, unreadable or written by an incompatible version."""


def not_utf8(exc: UnicodeDecodeError, *, skipped: int = 0) -> str:
    """What a UTF-8 decoding error received, located: ``not UTF-8 text: byte 0xff at offset 8
    (invalid start byte)``. ``skipped``: bytes before ``exc.object`` (a byte-order mark)."""
    data = exc.object
    byte = f"byte 0x{data[exc.start]:02x}" if exc.start < len(data) else "a truncated character"
    return f"not UTF-8 text: {byte} at offset {exc.start + skipped} ({exc.reason})"
