"""Where a search keeps its trials, and how no trial stays RUNNING after its process died.

- Default: an Optuna journal file in the study's run directory (``runs/<study>/search/
  optuna.journal``); several local workers append to it under Optuna's file lock.
- ``--storage PATH``: a journal file elsewhere; ``--storage URL``: an RDB (``sqlite:///x.db``,
  ``postgresql://user@host/db``) for workers on several machines.

Each RUNNING trial records its ``host`` and ``pid`` (user attributes). A worker that starts, or
asks for more trials, first fails the RUNNING trials of dead processes on its own host and queues
their parameters again with Optuna's ``RetryHeartbeatStaleTrialCallback``. With an RDB the
workers also record heartbeats for their trials (Optuna does this only inside ``optimize``, not
in ask/tell mode) and call ``fail_stale_trials``, which fails the trials of workers, on any
machine, whose heartbeat stopped, and queues them again through the same callback.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tricklab.base.errors import TricklabError

#: Seconds between heartbeats of a RUNNING trial, and after which a silent trial is stale.
HEARTBEAT = 10
GRACE = 60
_RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")


def is_url(storage: str) -> bool:
    return "://" in storage


def check_storage(storage: str | None) -> None:
    """Reject a URL of an unknown kind or a journal path whose folder is missing (``--storage``)."""
    if storage is None:
        return
    if is_url(storage):
        scheme = storage.split("://", 1)[0].split("+", 1)[0]
        if scheme not in _RDB_SCHEMES:
            raise TricklabError(
                f"--storage: unknown database URL scheme '{scheme}'. Expected a journal file "
                "path or an RDB URL: sqlite:///search.db, postgresql://user@host/db, "
                f"mysql://... Received: {storage}."
            )
        return
    parent = Path(storage).parent
    if not parent.is_dir():
        raise TricklabError(
            f"--storage: the folder of the journal file does not exist. Received: {storage}."
        )
    if Path(storage).is_dir():
        raise TricklabError(
            f"--storage: is a folder; expected a journal file. Received: {storage}."
        )


def open_storage(location: str) -> Any:
    """The Optuna storage at ``location`` (a journal file path or an RDB URL)."""
    from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
    from optuna.storages.journal import JournalFileBackend

    if not is_url(location):
        Path(location).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(location))
    if location.startswith(("postgresql://", "postgres://")):
        # SQLAlchemy's default PostgreSQL driver is psycopg 3; the search extra installs psycopg2.
        location = "postgresql+psycopg2://" + location.split("://", 1)[1]
    try:
        with quiet():
            return RDBStorage(
                location,
                heartbeat_interval=HEARTBEAT,
                grace_period=GRACE,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(),
            )
    except Exception as exc:  # a missing driver, a refused connection, a bad URL
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TricklabError(f"--storage: cannot open {shown(location)}: {message}") from None


def shown(location: str) -> str:
    """A storage location fit to print: an RDB URL without its password."""
    if not is_url(location):
        return location
    from sqlalchemy.engine import make_url

    try:
        return make_url(location).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: show only its scheme
        return location.split("://", 1)[0] + "://..."


def ask_lock_path(location: str, search_dir: Path) -> Path:
    """The file lock around "count the trials, then ask" of the workers on this machine
    (``search_dir``: the store's ``RunStore.search_dir``, for a storage that is a server)."""
    if not is_url(location):
        return Path(location + ".lock-ask")
    if location.startswith("sqlite:///"):
        return Path(location.removeprefix("sqlite:///") + ".lock-ask")
    return search_dir / ".lock-ask"


@contextlib.contextmanager
def ask_lock(path: Path) -> Iterator[None]:
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path)):
        yield


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Without Optuna's warnings that heartbeats are experimental and meant for ``optimize``:
    ask/tell mode records them here on purpose."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
        yield


def requeue(study: Any, trial: Any) -> None:
    """Queue a failed trial's parameters again (a WAITING copy that remembers the original)."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    with quiet():
        RetryHeartbeatStaleTrialCallback()(study, trial)


def heartbeat_enabled(storage: Any) -> bool:
    """Whether ``storage`` (possibly wrapped in Optuna's cache) records heartbeats (an RDB)."""
    interval = getattr(storage, "get_heartbeat_interval", None)
    return callable(interval) and interval() is not None


def pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError, OverflowError):
        return True
    return True


def mark_running(trial: Any) -> None:
    """Record who trains ``trial``, so a later worker can tell when its process died."""
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())


def recover(study: Any) -> list[int]:
    """Fail and queue again the RUNNING trials of dead processes on this host (and, with an
    RDB, every trial whose heartbeat stopped). Returns the numbers of the trials failed here.

    Call it under the ask lock: a RUNNING trial without a host then lost its process between
    ``ask`` and :func:`mark_running`. With a journal every worker takes that lock, so such a
    trial is failed at once; with an RDB a worker of another machine may be in that moment,
    so only after :data:`GRACE` seconds.
    """
    import datetime as dt

    import optuna
    from optuna.trial import TrialState

    host, failed = socket.gethostname(), []
    shared = heartbeat_enabled(study._storage)
    now = dt.datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if "host" not in attrs:
            started = trial.datetime_start or now
            if shared and (now - started).total_seconds() < GRACE:
                continue
        elif attrs["host"] != host or pid_alive(attrs.get("pid")):
            continue
        study._storage.set_trial_user_attr(
            trial._trial_id, "error", f"its process (pid {attrs.get('pid', '?')}) died"
        )
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        requeue(study, trial)
        failed.append(trial.number)
    if heartbeat_enabled(study._storage):
        with quiet():
            optuna.storages.fail_stale_trials(study)
    return failed


class Heartbeat:
    """Records a heartbeat for this worker's RUNNING trials in an RDB every :data:`HEARTBEAT` s."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage
        self.trial_ids: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Heartbeat:
        if heartbeat_enabled(self.storage):
            self._thread = threading.Thread(target=self._loop, daemon=True, name="heartbeat")
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def beat(self, trial_ids: list[int]) -> None:
        """Start recording ``trial_ids`` (and record them once now)."""
        self.trial_ids = set(trial_ids)
        if self._thread is not None:
            for trial_id in trial_ids:
                self.storage.record_heartbeat(trial_id)

    def _loop(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            for trial_id in list(self.trial_ids):
                with contextlib.suppress(Exception):  # a finished trial, a dropped connection
                    self.storage.record_heartbeat(trial_id)
