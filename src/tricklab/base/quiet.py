"""Quiet training: what the libraries warn about goes to the study log, not the terminal.

While runs train, Keras, JAX, TensorFlow, numpy and scikit-learn warn about things the user cannot
act on, or that tricklab's lint already explains (categorical_crossentropy on one sigmoid unit:
TL002). :func:`capture` records those warnings instead of printing them, each tagged with the runs
concerned (the unit being trained; an engine narrows it with :func:`concerning`, as a population
does for each of its cohorts). The store appends them to ``runs/<study>/study.log``
(:meth:`~tricklab.store.RunStore.log_warnings`) and ``tricklab run`` says once how many there are.

Warnings raised by tricklab's own code (about the user's data) still reach the terminal; filters
that ignore warnings or turn them into errors are kept; nothing here catches an exception.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO, cast

Runs = tuple[tuple[str, int], ...]  # (variant, seed) pairs
_Action = Literal["default", "error", "ignore", "always", "module", "once"]  # a filter's action

_PACKAGE = str(Path(__file__).resolve().parent.parent) + os.sep  # tricklab/, above base/
#: Loggers of the libraries that train the runs; their records below ERROR go to the log.
_LIBRARIES = ("absl", "h5py", "jax", "jaxlib", "keras", "tensorflow", "torch")
#: The runs a warning raised now concerns; None: every run of the unit being trained.
_SCOPE: contextvars.ContextVar[Runs | None] = contextvars.ContextVar("tricklab_runs", default=None)
#: The capture in force here, which warnings caught elsewhere (a Ray worker) are relayed to.
_ACTIVE: contextvars.ContextVar[Capture | None] = contextvars.ContextVar(
    "tricklab_capture", default=None
)


class _Run(Protocol):
    @property
    def variant(self) -> str: ...

    @property
    def seed(self) -> int: ...


@dataclass
class Caught:
    """One library warning and the runs it was raised for."""

    category: str
    message: str
    where: str  # file:line, relative to site-packages where possible
    runs: Runs

    def entry(self, at: str) -> str:
        """The warning as a study.log entry: a header line, then the message indented."""
        lines = self.message.strip().splitlines() or [""]
        body = "".join(f"  {line}\n" for line in lines)
        runs = describe_runs(self.runs) or "none in training"
        return f"[{at}] {self.category} ({self.where}), runs: {runs}\n{body}"


class Capture:
    """The warnings caught while units trained, each once, with every run it concerned."""

    def __init__(self, runs: Iterable[_Run] = ()) -> None:
        self.caught: dict[tuple[str, str, str], Caught] = {}
        self.focus(runs)

    def focus(self, runs: Iterable[_Run]) -> None:
        """The unit training now: what a warning concerns unless :func:`concerning` narrows it."""
        self.runs: Runs = tuple((run.variant, run.seed) for run in runs)

    def add(self, category: str, message: str, where: str, runs: Runs) -> None:
        found = self.caught.setdefault(
            (category, message, where), Caught(category, message, where, ())
        )
        found.runs = tuple(dict.fromkeys((*found.runs, *runs)))

    def following(self, units: Iterable[Any]) -> Iterator[Any]:
        """``units`` (with their ``plans``) as an executor takes them, each focused on when taken:
        right for an executor that trains here, one unit at a time."""
        for unit in units:
            self.focus(unit.plans)
            yield unit

    def take(self) -> list[str]:
        """The warnings caught so far as study.log entries, stamped now (UTC); then forget them."""
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        entries = [caught.entry(at) for caught in self.caught.values()]
        self.caught.clear()
        return entries


@contextlib.contextmanager
def capture(runs: Iterable[_Run] = ()) -> Iterator[Capture]:
    """Record the library warnings raised inside the block, tagged with ``runs`` (or the runs
    of the unit :meth:`Capture.focus` names)."""
    log = Capture(runs)
    show = warnings.showwarning

    def record(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if str(Path(filename).resolve()).startswith(_PACKAGE):  # tricklab's own: for the user
            show(message, category, filename, lineno, file, line)
            return
        where = f"{_library_path(filename)}:{lineno}"
        log.add(category.__name__, str(message), where, _SCOPE.get() or log.runs)

    token = _ACTIVE.set(log)
    try:
        with warnings.catch_warnings(), _library_logs(log):
            _every_run()
            warnings.showwarning = record
            yield log
    finally:
        _ACTIVE.reset(token)


def relay(caught: Iterable[Caught]) -> None:
    """Add warnings caught in another process (a Ray task's :attr:`Capture.caught` values) to
    the capture in force here, with the runs they were tagged with there; none in force: they
    are shown, not lost."""
    log = _ACTIVE.get()
    for item in caught:
        if log is not None:
            log.add(item.category, item.message, item.where, item.runs)
        else:
            warnings.warn(f"{item.category} ({item.where}): {item.message}", stacklevel=2)


@contextlib.contextmanager
def _library_logs(log: Capture) -> Iterator[None]:
    """What the libraries log below ERROR (TensorFlow's "triggered tf.function retracing", ...)
    goes to ``log`` too; errors and every other logger's records are handled as before."""
    divert = _Divert(log)
    root = logging.getLogger()
    sink = None if root.handlers else _LastResort()  # stands in for logging.lastResort
    if sink is not None:
        root.addHandler(sink)
    loggers = [logging.getLogger(name) for name in _LIBRARIES]
    handlers = {h for logger in (root, *loggers) for h in logger.handlers}
    for item in (*loggers, *handlers):
        item.addFilter(divert)
    try:
        yield
    finally:
        for item in (*loggers, *handlers):
            item.removeFilter(divert)
        if sink is not None:
            root.removeHandler(sink)


class _Divert(logging.Filter):
    def __init__(self, log: Capture) -> None:
        super().__init__()
        self.log = log

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR or record.name.split(".")[0] not in _LIBRARIES:
            return True
        where = f"{_library_path(record.pathname)}:{record.lineno}"
        category = f"{record.levelname.lower()} logged by {record.name}"
        self.log.add(category, record.getMessage(), where, _SCOPE.get() or self.log.runs)
        return False


class _LastResort(logging.Handler):
    """Prints what Python's last-resort handler would have printed had no handler been set."""

    def emit(self, record: logging.LogRecord) -> None:
        if logging.lastResort is not None and record.levelno >= logging.lastResort.level:
            logging.lastResort.handle(record)


@contextlib.contextmanager
def concerning(runs: Iterable[_Run]) -> Iterator[None]:
    """Warnings raised inside the block concern ``runs`` only (a cohort of a population)."""
    token = _SCOPE.set(tuple((run.variant, run.seed) for run in runs))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def describe_runs(runs: Runs) -> str:
    """``a seeds 0-2, 5; b seed 1``."""
    by_variant: dict[str, list[int]] = {}
    for variant, seed in runs:
        by_variant.setdefault(variant, []).append(seed)
    parts = []
    for variant, seeds in by_variant.items():
        spans: list[list[int]] = []
        for seed in sorted(set(seeds)):
            if spans and seed == spans[-1][1] + 1:
                spans[-1][1] = seed
            else:
                spans.append([seed, seed])
        text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
        parts.append(f"{variant} seed{'s' if len(seeds) > 1 else ''} {text}")
    return "; ".join(parts)


def _every_run() -> None:
    """Show a warning every time its filter lets it through, not once per process: a library
    warns once per place in its code, and every run that raises it is to be named. Filters that
    ignore warnings or make them errors stay as they are."""
    kept = list(warnings.filters)
    warnings.resetwarnings()
    for action, message, category, module, lineno in reversed(kept):
        # warnings.filters types the action as str; it is one filterwarnings/simplefilter accepted.
        kind = "always" if action in ("default", "module", "once") else cast(_Action, action)
        # simplefilter takes a tuple of categories, filterwarnings one: a filter for each, in turn.
        for one in reversed(category) if isinstance(category, tuple) else (category,):
            warnings.filterwarnings(kind, _pattern(message), one, _pattern(module), lineno)


def _pattern(value: re.Pattern[str] | str | None) -> str:
    """A filter's message or module as filterwarnings takes it (the defaults hold plain names)."""
    if isinstance(value, re.Pattern):
        return value.pattern
    return re.escape(value) + r"\Z" if value else ""


def _library_path(filename: str) -> str:
    """``keras/src/losses/losses.py`` rather than the whole path into a virtual environment."""
    parts = Path(filename).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return "/".join(parts[parts.index(marker) + 1 :])
    return filename
