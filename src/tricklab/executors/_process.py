"""The process executor: N worker processes on this machine train one study through the store.

Each worker runs the study as one more ``tricklab run`` command would (README, "The run store":
it claims a population group or a solo run, trains it, commits it), so runs are committed
exactly once and a worker that dies leaves its runs to the others at once. This process trains
nothing: it starts the workers (``python -m tricklab.executors._process``, so a script calling
:func:`~tricklab.run_study` needs no ``__main__`` guard), relays their progress and waits.

Threads: each worker gets ``T = max(1, cores // N)`` cores. With T = 1 XLA runs single-threaded
(``--xla_cpu_multi_thread_eigen=false``); with T > 1 the worker is pinned to its own T cores,
which XLA sizes its thread pool from. BLAS/OpenMP and TensorFlow threads are set to T too.

Ctrl-C (or SIGTERM) here is passed on once to every worker, which stops at its next epoch
boundary with a checkpoint as a single ``tricklab run`` does; the workers run in sessions of
their own, so the terminal's signal does not reach them twice. A worker whose parent died (its
report pipe broke) stops the same way and exits quietly.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

from tricklab.executors._events import EventKind, Listener, RunEvent

#: What a worker runs: the study's training through the store's claims, in this process, told
#: where to send its events and when to stop. A picklable callable (a module-level function or
#: a ``functools.partial`` of one), handed down by the caller: executors know no study.
WorkerJob = Callable[[Listener, Callable[[], bool]], object]

#: The events a worker passes on; the rest (reused, waiting, ...) the parent says itself.
RELAYED = frozenset(
    {EventKind.EPOCH, EventKind.POPULATION, EventKind.DONE, EventKind.FAILED, EventKind.LOST}
)
_HEADER = struct.Struct("!Q")
#: Seconds a worker that closed its pipe gets to exit before it is sent SIGTERM.
EXIT_GRACE = 10.0


class ProcessExecutor:
    """Starts ``workers`` processes (default: one per core this process may use)."""

    name = "process"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers
        self.crashed: list[str] = []  # one line per worker that ended abnormally

    def run_workers(self, job: WorkerJob, stop_requested: Callable[[], bool]) -> Iterator[RunEvent]:
        """Run ``job`` in each worker; yield the :class:`RunEvent` they report.

        Raises :class:`~tricklab.engines.Interrupted` once every worker has stopped, if any
        stopped on request with a checkpoint.
        """
        from tricklab.base import backend as _backend
        from tricklab.engines import Interrupted

        cores = sorted(os.sched_getaffinity(0))
        count = self.workers or len(cores)
        threads = max(1, len(cores) // count)
        env = {**os.environ, **thread_environment(threads, _backend.name())}
        messages: queue.Queue[tuple[int, str, Any]] = queue.Queue()
        workers: list[subprocess.Popen[bytes]] = []
        closed: set[int] = set()  # workers whose pipe closed: ended, or exiting
        try:
            for index in range(count):
                pinned = cores[index * threads : (index + 1) * threads] if threads > 1 else []
                workers.append(_start(index, job, pinned, env, messages))
            interrupted: list[tuple[list[str], int]] = []
            reported: dict[int, str] = {}
            ended: set[int] = set()
            open_pipes, signalled = count, False
            while open_pipes:
                # Reap ended workers at once: the store counts a zombie's claims as held.
                self._reap(workers, ended, reported)
                try:
                    index, kind, payload = messages.get(timeout=0.2)
                except queue.Empty:
                    if stop_requested() and not signalled:
                        signalled = True
                        _signal(workers, signal.SIGINT)
                    continue
                if kind == "event":
                    yield payload
                elif kind == "interrupted":
                    interrupted.append(payload)
                elif kind == "error":  # the worker also printed its traceback
                    reported[index] = payload
                else:  # "closed": the worker has ended (or closed its pipe to end)
                    open_pipes -= 1
                    closed.add(index)
        finally:
            # Ended early (an error here): the workers still training are asked to stop.
            _signal([w for i, w in enumerate(workers) if i not in closed], signal.SIGTERM)
            # One whose pipe closed is merely exiting (its interpreter's shutdown takes a
            # moment): it gets a while before it is signalled, and is then not reported.
            deadline = time.monotonic() + EXIT_GRACE
            for i in closed:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    workers[i].wait(max(0.0, deadline - time.monotonic()))
            stuck = {i for i in closed if workers[i].poll() is None}
            _signal([workers[i] for i in stuck], signal.SIGTERM)
            for worker in workers:
                worker.wait()
        ended |= stuck  # signalled by us while it exited: not a crash
        self._reap(workers, ended, reported)
        if interrupted:
            keys = [key for keys, _ in interrupted for key in keys]
            raise Interrupted(keys, max(epoch for _, epoch in interrupted))

    def _reap(
        self, workers: list[subprocess.Popen[bytes]], ended: set[int], reported: dict[int, str]
    ) -> None:
        """Note each worker that has ended; one that failed is said at once, on stderr."""
        for index, worker in enumerate(workers):
            if index in ended or worker.poll() is None:
                continue
            ended.add(index)
            if worker.returncode == 0 and index not in reported:
                continue
            why = reported.get(index) or _exit_reason(worker.returncode)
            self.crashed.append(f"worker process {index + 1} (pid {worker.pid}) {why}")
            others = any(w.poll() is None for w in workers)
            print(
                self.crashed[-1] + ("; the other workers take over its runs" if others else ""),
                file=sys.stderr,
                flush=True,
            )


def thread_environment(threads: int, backend: str | None = None) -> dict[str, str]:
    """Environment of a worker process that may use ``threads`` cores (and ``backend``)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if threads == 1 and "xla_cpu_multi_thread_eigen" not in flags:
        flags = f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    env = {
        "XLA_FLAGS": flags.strip(),
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": "1",
    }
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    if backend:
        env["KERAS_BACKEND"] = backend
    return env


def _start(
    index: int,
    job: WorkerJob,
    cores: list[int],
    env: dict[str, str],
    messages: queue.Queue[tuple[int, str, Any]],
) -> subprocess.Popen[bytes]:
    """One worker, with a pipe of its own for its reports (its stdout and stderr are ours)."""
    read, write = os.pipe()
    try:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tricklab.executors._process", str(write)],
            stdin=subprocess.PIPE,
            pass_fds=(write,),
            env=env,
            start_new_session=True,  # our Ctrl-C reaches it once, passed on by us
        )
    finally:
        os.close(write)
    reader = os.fdopen(read, "rb")
    threading.Thread(target=_read, args=(index, reader, messages), daemon=True).start()
    assert worker.stdin is not None
    with worker.stdin:
        # The job is unpickled (importing what it needs) only once the worker is pinned.
        worker.stdin.write(pickle.dumps((pickle.dumps(job), cores)))
    return worker


def _read(index: int, pipe: IO[bytes], messages: queue.Queue[tuple[int, str, Any]]) -> None:
    """Pass one worker's reports on until its pipe closes (when it ends)."""
    try:
        with pipe:
            while len(header := pipe.read(_HEADER.size)) == _HEADER.size:
                size = _HEADER.unpack(header)[0]
                body = pipe.read(size)
                if len(body) < size:  # killed while it reported: that report is lost
                    break
                kind, payload = pickle.loads(body)
                messages.put((index, kind, payload))
    except Exception as exc:  # an unreadable report: say so rather than wait for ever
        messages.put((index, "error", f"sent an unreadable report ({exc!r})"))
    finally:
        messages.put((index, "closed", None))


def _signal(workers: list[subprocess.Popen[bytes]], sig: int) -> None:
    for worker in workers:
        with contextlib.suppress(ProcessLookupError):
            worker.send_signal(sig)


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _main(fd: int) -> None:
    """A worker: the study through the store's claims, its events sent to the parent."""
    packed, cores = pickle.loads(sys.stdin.buffer.read())
    if cores:
        os.sched_setaffinity(0, cores)
    job = pickle.loads(packed)
    from tricklab.base.interrupts import graceful
    from tricklab.engines import Interrupted

    parent = os.getppid()
    pipe = os.fdopen(fd, "wb")
    lock = threading.Lock()
    orphaned = threading.Event()  # the parent is gone: nobody reads our reports

    def send(kind: str, payload: Any) -> None:
        data = pickle.dumps((kind, payload), protocol=5)
        with lock:
            if orphaned.is_set():
                return
            try:
                pipe.write(_HEADER.pack(len(data)) + data)
                pipe.flush()
            except OSError:  # BrokenPipeError: stop at the next epoch boundary, checkpointed
                orphaned.set()

    def relay(event: RunEvent) -> None:
        if event.kind in RELAYED:
            send("event", event)

    try:
        with graceful() as stop:
            # An orphaned worker stops too (with a checkpoint) rather than train unseen.
            job(relay, lambda: stop() or orphaned.is_set() or os.getppid() != parent)
    except Interrupted as exc:
        send("interrupted", (exc.keys, exc.epoch))
    except BaseException as exc:
        import traceback

        send("error", "".join(traceback.format_exception_only(exc)).strip())
        raise
    finally:
        with contextlib.suppress(OSError):  # what a dead parent left unread is lost anyway
            pipe.close()


if __name__ == "__main__":
    _main(int(sys.argv[1]))
