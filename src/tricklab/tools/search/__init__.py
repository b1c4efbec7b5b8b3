"""``tricklab search``: an Optuna search over a study's ``[search]`` table.

    >>> from tricklab.tools.search import run_search
    >>> outcome = run_search("studies/thoracic-search.toml", trials=20)
    >>> outcome.best.params  # ties on the objective: lower val_loss, then lower trial number

- :mod:`._space`: the ``[search]`` table -> Optuna distributions, checked when read;
- :mod:`._runner`: trials through the engines (ask/tell), the median pruner, ``--batch``;
- :mod:`._storage`: journal file or RDB, dead workers' trials failed and queued again;
- :mod:`._report`: the ranking of trials (``ranked_trials``), the summary, the images,
  ``--export-variants``.

Optuna is imported only inside functions (``pip install 'tricklab[search]'``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from tricklab.base.errors import TricklabError
from tricklab.executors import thread_environment
from tricklab.tools.search._report import (
    best_trials,
    counts,
    export_variants,
    ranked_trials,
    summary,
    tie_note,
)
from tricklab.tools.search._runner import (
    Listener,
    SearchContext,
    TrialEvent,
    infer_direction,
    prepare,
    run_worker,
)
from tricklab.tools.search._space import Param, SearchSpace, parse_space, trial_recipe
from tricklab.tools.search._storage import shown

__all__ = [
    "Param",
    "SearchContext",
    "SearchOutcome",
    "SearchSpace",
    "TrialEvent",
    "best_trials",
    "check_search",
    "counts",
    "export_variants",
    "infer_direction",
    "parse_space",
    "prepare",
    "ranked_trials",
    "require_optuna",
    "run_search",
    "run_worker",
    "shown",
    "summary",
    "tie_note",
    "trial_recipe",
]

MISSING = "tricklab search needs the search extra: pip install 'tricklab[search]'"


def check_search(spec: Any) -> None:
    """``tricklab lint``: the study's ``[search]`` table, checked as ``search`` checks it
    (skipped without Optuna, which ``search`` itself then asks for)."""
    try:
        require_optuna()
    except TricklabError:
        return
    parse_space(spec)


def require_optuna() -> None:
    """A one-line error when Optuna is not installed."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise TricklabError(MISSING) from None


@dataclass
class SearchOutcome:
    """What :func:`run_search` did: the Optuna study, where it is stored, its images."""

    study: Any  # optuna.Study
    storage: str
    root: Path  # runs/<study>/search
    objective: str
    trained: int  # trials this call finished (all workers)
    images: list[Path] = field(default_factory=list)
    skipped_images: list[str] = field(default_factory=list)

    @property
    def best(self) -> Any:
        """The best COMPLETE trial (:func:`ranked_trials`; not Optuna's ``best_trial``, which
        does not break ties), or None."""
        ranked = ranked_trials(self.study)
        return ranked[0] if ranked else None


def run_search(
    study: Any,
    *,
    trials: int,
    out: str | Path = "runs",
    storage: str | None = None,
    workers: int = 1,
    batch: int = 1,
    objective: str = "val_loss",
    direction: str | None = None,
    startup_trials: int = 5,
    listener: Listener | None = None,
    stop_requested: Callable[[], bool] | None = None,
    images: bool = True,
    backend: str | None = None,
    sampler_seed: int | None = None,
) -> SearchOutcome:
    """Train trials of ``study``'s ``[search]`` until ``trials`` are COMPLETE or PRUNED.

    ``workers`` > 1 starts that many processes (``tricklab search --worker``) sharing the
    storage, each with an equal share of this machine's cores.
    """
    from tricklab.spec import StudySpec, load_study

    require_optuna()
    _check_counts(trials=trials, workers=workers, batch=batch, startup_trials=startup_trials)
    spec = study if isinstance(study, StudySpec) else load_study(study)
    ctx = prepare(
        spec,
        out=out,
        storage=storage,
        objective=objective,
        direction=direction,
        startup_trials=startup_trials,
        sampler_seed=sampler_seed,
    )
    before = _finished(ctx.study)
    if workers == 1:
        run_worker(
            ctx, trials=trials, batch=batch, listener=listener, stop_requested=stop_requested
        )
    else:
        _run_workers(ctx, trials=trials, workers=workers, batch=batch,
                     startup_trials=startup_trials, backend=backend,
                     stop_requested=stop_requested or (lambda: False))  # fmt: skip
    outcome = SearchOutcome(ctx.study, ctx.storage, ctx.root, ctx.objective,
                            _finished(ctx.study) - before)  # fmt: skip
    if images:
        outcome.images, outcome.skipped_images = _images(ctx)
    return outcome


def _images(ctx: SearchContext) -> tuple[list[Path], list[str]]:
    from tricklab.tools.search._report import write_images

    return write_images(ctx.study, ctx.root)


def _finished(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _check_counts(**values: int) -> None:
    for name, value in values.items():
        low = 0 if name == "startup_trials" else 1
        if not isinstance(value, int) or value < low:
            flag = "--" + name.replace("_", "-")
            raise TricklabError(f"{flag} must be an int >= {low}. Received: {value}.")


def _run_workers(
    ctx: SearchContext,
    *,
    trials: int,
    workers: int,
    batch: int,
    startup_trials: int,
    backend: str | None,
    stop_requested: Callable[[], bool],
) -> None:
    """``workers`` processes of ``tricklab search --worker`` on one storage, cores split.

    A stop request (Ctrl-C, SIGTERM) is passed on to the workers, which queue their trials
    again at their next epoch boundary; once they have ended this raises
    :class:`~tricklab.engines.Interrupted`. A second signal kills them at once.
    """
    from tricklab.engines import Interrupted

    if ctx.spec.source is None:
        raise TricklabError("--workers needs a study read from a file (the workers read it).")
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    share = max(1, len(cores) // workers) if cores else 1
    command = [
        sys.executable, "-m", "tricklab", "search", ctx.spec.source, "--worker",
        "--trials", str(trials), "--storage", ctx.storage, "--batch", str(batch),
        "--objective", ctx.objective, "--direction", ctx.direction,
        "--startup-trials", str(startup_trials),
    ]  # fmt: skip
    if backend:
        command += ["--backend", backend]
    # Threads per worker: its share of the cores, so the workers do not fight over them.
    env = {**os.environ, **thread_environment(share, backend)}
    running = _Workers()
    with _passed_on(running):
        try:
            for i in range(workers):
                # In a session of its own: a terminal's Ctrl-C reaches it once, passed on here.
                process = subprocess.Popen(command, env=env, start_new_session=True)
                if len(cores) >= workers:
                    mine = cores[(i * share) % len(cores) :][:share]
                    os.sched_setaffinity(process.pid, mine)
                running.add(process)
            # Wait in slices, so that a stop request of the caller's is passed on at once.
            while any(process.poll() is None for process in running.processes):
                if stop_requested() and not running.stops:
                    running.stop()
                time.sleep(0.2)
        finally:
            if not running.stops and any(p.poll() is None for p in running.processes):
                running.stop()  # ended by an error here: the workers stop too
            for process in running.processes:
                process.wait()
    if stop_requested() or running.stops:
        raise Interrupted([], 0)
    codes = [process.returncode for process in running.processes]
    bad = [code for code in codes if code not in (0,)]
    if bad:
        raise TricklabError(
            f"--workers: {len(bad)} of {workers} worker(s) exited with status "
            f"{', '.join(map(str, bad))}; the finished trials are kept (rerun to continue)."
        )


class _Workers:
    """The processes of ``--workers N``: asked to stop once (SIGTERM: they queue their trials
    again at their next epoch boundary), killed the second time."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.stops = 0

    def add(self, process: subprocess.Popen[bytes]) -> None:
        self.processes.append(process)
        if self.stops:  # started as the signal came: it stops too
            self._send([process])

    def stop(self) -> None:
        self.stops += 1
        self._send(self.processes)

    def _send(self, processes: list[subprocess.Popen[bytes]]) -> None:
        sig = signal.SIGTERM if self.stops == 1 else signal.SIGKILL
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)


@contextlib.contextmanager
def _passed_on(workers: _Workers) -> Iterator[None]:
    """SIGINT and SIGTERM are passed on to ``workers`` (:meth:`_Workers.stop`), then this
    process's own handler runs (``tricklab search``'s says it stops, or exits at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        workers.stop()
        handler = previous[signal.Signals(signum)]
        if callable(handler):
            handler(signum, frame)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
