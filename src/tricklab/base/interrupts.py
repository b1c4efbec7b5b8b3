"""Ctrl-C and SIGTERM while a study trains: stop at the next epoch boundary, keep everything.

The first signal asks training to stop: the run (or population) in training saves a checkpoint
at its next epoch boundary and the command exits 130, saying what was kept. A second signal
exits at once (files are written atomically, so nothing finished is lost; the interrupted epoch
is trained again next time).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

EXIT_INTERRUPTED = 130


class StopRequest:
    """Set by the first signal; engines poll :meth:`__call__` at epoch boundaries."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def __call__(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()


@contextlib.contextmanager
def graceful(
    stopping: str = "stopping at the next epoch boundary (a checkpoint is saved)",
) -> Iterator[StopRequest]:
    """Handle SIGINT and SIGTERM as described above while the block runs (main thread only);
    ``stopping`` says what the first signal does (Ray's remote runs keep no checkpoint)."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if request():
            print("\ninterrupted again: exiting now.", file=sys.stderr, flush=True)
            os._exit(EXIT_INTERRUPTED)
        request.set()
        print(
            f"\n{stopping}; press Ctrl-C again to exit at once.",
            file=sys.stderr,
            flush=True,
        )

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
