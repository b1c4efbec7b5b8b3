"""The Ray executor: each unit (a population group, or one solo run) is a Ray task.

The dataset and each split go to the cluster once (``ray.put``); a task trains its unit with the
engine the plan chose and returns the outcomes (results, weights and prediction arrays), which
this process, the driver, commits to the store: the cluster needs no shared file system and
only the driver holds claims. A task whose worker process or node is lost is retried from the
start of its runs (``max_retries``); remote runs keep no checkpoints. Without an address a local
Ray is started on this machine and stopped at the end: its servers listen on 127.0.0.1 only and
its session files live in a fresh folder only this user can enter, removed afterwards. With an
address, the driver sends the cluster's authentication token when one is at hand (Ray's token
authentication, :func:`connect`), and a cluster it cannot join is one :class:`TricklabError`
line naming the address, never a local Ray instead.

tricklab (with the same version and backend) must be importable on the cluster's nodes: install
it there, or ship it with a Ray runtime environment (README, "Running a study on a Ray cluster").
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tricklab.base.errors import TricklabError

if TYPE_CHECKING:
    from tricklab.data import Dataset, Splits
    from tricklab.engines import Control, Progress, RunDone, RunFailed
    from tricklab.engines.contract import RunPlan
    from tricklab.executors._unit import Unit

#: How often a task lost with its worker (killed, out of memory, node gone) is started again.
RETRIES = 3
QUIET = {"log_to_driver": False, "logging_level": logging.ERROR}
#: Where a cluster's users look for how to connect (README).
SEE = "see README, 'Running a study on a Ray cluster'"

AUTH_MODE, AUTH_TOKEN, AUTH_TOKEN_PATH = "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"

log = logging.getLogger(__name__)


class RayExecutor:
    """Submits every claimed unit at once; outcomes come back as their tasks finish."""

    name = "ray"

    def __init__(self, *, address: str | None = None, workers: int | None = None) -> None:
        self.address, self.workers = address, workers

    def train(
        self,
        units: Iterable[Unit],
        dataset: Dataset,
        progress: Progress,
        control: Control,
    ) -> Iterator[tuple[Unit, RunDone | RunFailed]]:
        import ray

        from tricklab.base import backend as _backend
        from tricklab.base.quiet import relay
        from tricklab.engines import Interrupted, RunFailed
        from tricklab.executors._process import thread_environment

        units = iter(units)
        first = next(units, None)
        if first is None:  # every run left is claimed elsewhere: no Ray needed
            return
        stop = self._connect(ray)
        remote = ray.remote(_train_unit)
        # One Ray CPU per unit, and XLA threads to match.
        env = {"env_vars": thread_environment(1, _backend.name())}
        pending: dict[Any, Unit] = {}
        try:
            data = ray.put(dataset)
            shared: dict[int, tuple[Splits, Any]] = {}  # splits object -> its ref, put once
            for unit in itertools.chain([first], units):
                refs = []
                for task in unit.tasks:
                    if id(task.splits) not in shared:
                        shared[id(task.splits)] = (task.splits, ray.put(task.splits))
                    refs.append(shared[id(task.splits)][1])
                ref = remote.options(
                    name=f"tricklab:{unit.name}",
                    num_cpus=1,
                    max_retries=RETRIES,
                    retry_exceptions=False,
                    runtime_env=env,
                ).remote(unit.engine, unit.plans, data, *refs)
                pending[ref] = unit
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                if control.stop_requested():
                    keys = [key for unit in pending.values() for key in unit.keys]
                    raise Interrupted(keys, 0)  # epoch 0: nothing was checkpointed
                for ref in ready:
                    unit = pending.pop(ref)
                    try:
                        outcomes, caught = ray.get(ref)
                        relay(caught)  # the task's library warnings go to study.log here
                    except ray.exceptions.RayError as exc:  # lost RETRIES + 1 times
                        error = f"Ray task {unit.name} failed: {_one_line(exc)}"
                        outcomes = [RunFailed(key, error, str(exc)) for key in unit.keys]
                    for outcome in outcomes:
                        yield unit, outcome
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if stop is not None:
                stop()

    def _connect(self, ray: Any) -> Callable[[], None] | None:
        """Connect to the cluster, or start a local Ray; how to stop it if this call did."""
        if ray.is_initialized():
            return None
        if self.address is None:
            return start_local(ray, self.workers or len(os.sched_getaffinity(0)))
        return connect(ray, self.address)


def connect(ray: Any, address: str) -> Callable[[], None]:
    """Connect this process, as the driver, to the Ray cluster at ``address``; the function that
    disconnects it. Raises a one-line :class:`TricklabError` naming the address when that fails.

    Token authentication (Ray >= 2.52; on by default for ``ray start --head`` once a token exists,
    e.g. ``~/.ray/auth_token``, which any local ``ray.init()`` writes): Ray sends a token only
    when ``RAY_AUTH_MODE=token``, and sets that by itself only for ``address="auto"``. So when
    ``RAY_AUTH_MODE`` is unset and a token is at hand where Ray reads it (``RAY_AUTH_TOKEN``,
    the file at ``RAY_AUTH_TOKEN_PATH``, or ``~/.ray/auth_token``), it is set while connected
    (a cluster without authentication ignores the token); ``RAY_AUTH_MODE=disabled`` sends none.

    A loopback address (``127.0.0.1:6379``, ``localhost:6379``) stays loopback: on Linux Ray
    otherwise swaps it for this machine's routable address, where a head listening on 127.0.0.1
    only cannot be reached (:func:`_loopback_node`). A ``HOST:PORT`` where nothing accepts a
    connection is refused at once (Ray would retry for minutes), and ``local``, with which
    ``ray.init`` starts a Ray of its own, is refused.
    """
    if address.strip().lower() == "local":  # ray.init would start a Ray of its own
        raise TricklabError(
            "--address local starts a new Ray instead of joining a cluster: leave --address "
            "out for tricklab's own local Ray (on 127.0.0.1 only), or give the cluster's "
            f"HOST:PORT, auto or ray://HOST:10001 ({SEE})."
        )
    problem = _unreadable_token() or _unanswered(address)
    if problem is not None:
        raise TricklabError(f"could not connect to the Ray cluster at {address}: {problem}")
    restore = _token_mode()
    try:
        with _loopback_node(ray):
            ray.init(address=address, **QUIET)
    except BaseException as exc:  # Ctrl-C included: leave this process as it was
        message = _cannot_connect(address, exc)  # with the mode and token this call used
        with contextlib.suppress(Exception):
            if ray.is_initialized():
                ray.shutdown()
        restore()
        if not isinstance(exc, Exception):
            raise
        raise TricklabError(message) from exc

    def stop() -> None:
        try:
            ray.shutdown()
        finally:
            restore()

    return stop


def _unanswered(address: str, timeout: float = 10.0) -> str | None:
    """Why nothing accepts a TCP connection at a ``HOST:PORT`` address, if nothing does (Ray
    itself would retry for minutes); None when something does, or for ``auto`` and ``ray://``."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")  # [::1]:6379
    if not host or "/" in host or not port.isdigit():
        return None
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        return (
            f"nothing answers there ({reason}); check that a Ray head runs there (`ray start "
            f"--head --port {port}`) and that this machine reaches it ({SEE})."
        )
    return None


def _unreadable_token() -> str | None:
    """What is wrong with the file ``RAY_AUTH_TOKEN_PATH`` names, when Ray would read it."""
    path = os.environ.get(AUTH_TOKEN_PATH)
    if not path or os.environ.get(AUTH_TOKEN, "").strip():  # RAY_AUTH_TOKEN comes first
        return None
    if os.environ.get(AUTH_MODE, "token") != "token":  # no token is sent: none is read
        return None
    try:
        if Path(path).read_text(encoding="utf-8").strip():
            return None
        problem = "the file is empty"
    except (OSError, UnicodeDecodeError) as exc:
        problem = getattr(exc, "strerror", None) or type(exc).__name__
    return (
        f"{AUTH_TOKEN_PATH}={path}: cannot read an authentication token ({problem}); put the "
        f"cluster's token there (`ray get-auth-token` on the head prints it) ({SEE})."
    )


def _token_source() -> str | None:
    """Where Ray would find a token, in its order (its environment variable, the file its path
    variable names, the default file); None when there is none."""
    if os.environ.get(AUTH_TOKEN, "").strip():
        return AUTH_TOKEN
    if os.environ.get(AUTH_TOKEN_PATH):
        return f"{AUTH_TOKEN_PATH}={os.environ[AUTH_TOKEN_PATH]}"
    default = Path.home() / ".ray" / "auth_token"
    return str(default) if default.is_file() else None


def _token_mode() -> Callable[[], None]:
    """Set ``RAY_AUTH_MODE=token`` when it is unset and a token is at hand; how to undo it."""
    if AUTH_MODE in os.environ or _token_source() is None:
        return lambda: None
    os.environ[AUTH_MODE] = "token"
    _reload_ray_config()

    def restore() -> None:
        if os.environ.get(AUTH_MODE) == "token":
            del os.environ[AUTH_MODE]
            _reload_ray_config()

    return restore


def _reload_ray_config() -> None:
    """Make Ray's cached configuration read ``RAY_AUTH_MODE`` again (as Ray does itself)."""
    from ray import _raylet

    config = getattr(_raylet, "Config", None)
    if config is not None:  # else a Ray without token authentication: it reads no such mode
        config.initialize("")


def _cannot_connect(address: str, exc: BaseException) -> str:
    """One line: the address, what went wrong, what to check."""
    head = f"could not connect to the Ray cluster at {address}"
    text = "\n".join(f"{type(e).__name__}: {e}" for e in _chain(exc))
    if "InvalidAuthToken" not in text and "AuthenticationError" not in text:
        return (
            f"{head}: {_one_line(exc)}; check that a Ray head runs there (`ray start --head "
            f"--port PORT`), that this machine reaches it, and that both have the same Ray "
            f"({SEE})."
        )
    mode, source = os.environ.get(AUTH_MODE), _token_source()
    if mode == "token" and source:
        sent = f"the cluster refused the token from {source}"
    elif mode == "token" or (mode is None and source is None):
        sent = "no token found"
    else:  # a token at hand, but this process was told to send none
        sent = f"{AUTH_MODE}={mode or 'unset'} sends none: set it to token"
    return (
        f"{head}: authentication token missing or incorrect ({sent}); give this machine the "
        f"cluster's token (`ray get-auth-token` on the head prints it) in {AUTH_TOKEN}, in a "
        f"file named by {AUTH_TOKEN_PATH}, or in ~/.ray/auth_token ({SEE})."
    )


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def start_local(ray: Any, cpus: int) -> Callable[[], None]:
    """Start a Ray on this machine for this process alone; the function that stops it.

    Its servers (GCS, raylet, object manager, workers, agents) listen on 127.0.0.1 only, and its
    session folders (logs, sockets, spilled objects) lie in a new folder only this user can
    enter: Ray makes each folder it creates world-writable, the one it is given included, so it
    gets one inside. Under /tmp, as Ray's own: its socket paths must stay short. Stopping shuts
    Ray down and removes the folder.
    """
    base = os.environ.get("RAY_TMPDIR") or ("/tmp" if os.path.isdir("/tmp") else None)
    temp = tempfile.mkdtemp(prefix="tricklab-ray-", dir=base)  # mode 0o700
    try:
        with _loopback_node(ray):
            ray.init(
                num_cpus=cpus,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                _temp_dir=os.path.join(temp, "ray"),
                **QUIET,
            )
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    address = ray.util.get_node_ip_address()
    if not ipaddress.ip_address(address).is_loopback:
        log.warning("the local Ray's node address is %s, not 127.0.0.1: it listens there", address)

    def stop() -> None:
        try:
            ray.shutdown()
        finally:
            shutil.rmtree(temp, ignore_errors=True)

    return stop


@contextlib.contextmanager
def _loopback_node(ray: Any) -> Iterator[None]:
    """Keep node IP 127.0.0.1 while ``ray.init`` starts the node, and a loopback cluster address
    while it connects: on Linux Ray swaps a loopback node IP or address for the machine's
    routable address (and a node's servers listen there) unless it runs as a single machine, a
    module constant it reads from the environment when imported
    (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``). Other addresses are left as they are."""
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    if constants is None or not hasattr(constants, "ENABLE_RAY_CLUSTER"):
        yield  # a Ray that no longer has it
        return
    saved, constants.ENABLE_RAY_CLUSTER = constants.ENABLE_RAY_CLUSTER, False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = saved


def _train_unit(
    engine: str, plans: list[RunPlan], dataset: Dataset, *splits: Splits
) -> tuple[list[Any], list[Any]]:
    """A Ray task: train one unit, no checkpoints, no progress; return every outcome, and the
    library warnings raised meanwhile (tagged with the unit's runs) for the driver's log."""
    from tricklab import engines
    from tricklab.base.quiet import capture

    tasks = [engines.RunTask(plan, part) for plan, part in zip(plans, splits, strict=True)]
    with capture(plans) as caught:
        outcomes = list(engines.get(engine).run(tasks, dataset, None, engines.Control()))
    return outcomes, list(caught.caught.values())


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
