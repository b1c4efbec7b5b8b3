"""Claims: which worker trains a run, as a lease in the run's ``claim.json``.

Part of :mod:`tricklab.store` (mixed into :class:`~tricklab.store.RunStore`). A worker claims
the runs it trains under the study's lock; a thread renews its claims every ``renew`` seconds;
a claim expires ``lease`` seconds after its last renewal (never later than one lease after its
file was last written, whatever clock wrote ``expires``), and a claim whose holder is a dead
process on this host is free at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tricklab.base.errors import StoreError
from tricklab.store._files import RESULT, load_result, read_claim, read_json, write_json

if TYPE_CHECKING:
    from tricklab.engines.contract import RunPlan, RunResult

CLAIM = "claim.json"


class Claims:
    """The claims of one store: what :class:`~tricklab.store.RunStore` provides is declared
    here, so the methods below read on their own."""

    root: Path
    owner: str
    lease: float
    renew: float
    _held: set[Path]
    _renewer: threading.Thread | None
    _stop_renewing: threading.Event

    def locked(self) -> contextlib.AbstractContextManager[None]:  # RunStore's
        raise NotImplementedError

    def finished(self, plan: RunPlan) -> RunResult | None:  # RunStore's
        raise NotImplementedError

    def _run_dir(self, plan: RunPlan) -> Path:  # RunStore's
        raise NotImplementedError

    def claim(self, plans: Sequence[RunPlan]) -> list[RunPlan]:
        """Claim every run of ``plans`` not done and not held by a live worker, atomically.

        Returns the runs now held by this store (empty if none could be claimed).
        """
        now = time.time()
        with self.locked():
            free = []
            for plan in plans:
                if self.finished(plan) is not None:
                    continue
                path = self._run_dir(plan) / CLAIM
                claim = read_claim(path)
                if claim is None or claim.get("owner") == self.owner or not alive(claim, path, now):
                    free.append(plan)
            for plan in free:
                path = self._run_dir(plan) / CLAIM
                clear_staging(path.parent)  # left by a worker killed while it committed
                write_json(path, self._claim_record(plan.key, now))
                self._held.add(path)
        if free:
            self._start_renewing()
        return free

    def holders(self, plans: Iterable[RunPlan]) -> list[str]:
        """Who holds the claims on ``plans`` (live workers only)."""
        out = []
        for plan in plans:
            path = self._run_dir(plan) / CLAIM
            claim = read_claim(path)
            if claim is not None and claim.get("owner") != self.owner and alive(claim, path):
                out.append(f"{claim.get('host')} pid {claim.get('pid')}")
        return sorted(set(out))

    def release(self, plans: Iterable[RunPlan]) -> None:
        """Give up this store's claims on ``plans`` (their runs become free at once)."""
        with self.locked():
            for plan in plans:
                path = self._run_dir(plan) / CLAIM
                claim = read_claim(path)
                if claim is not None and claim.get("owner") == self.owner:
                    path.unlink(missing_ok=True)
                self._held.discard(path)

    def close(self) -> None:
        """Release every claim still held and stop renewing."""
        self._stop_renewing.set()
        with self.locked():
            for path in list(self._held):
                claim = read_claim(path)
                if claim is not None and claim.get("owner") == self.owner:
                    path.unlink(missing_ok=True)
            self._held.clear()

    def _claim_record(self, key: str, now: float) -> dict[str, Any]:
        return {
            "key": key,
            "owner": self.owner,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "expires": now + self.lease,
            "lease": self.lease,
        }

    def _start_renewing(self) -> None:
        if self._renewer is not None and self._renewer.is_alive():
            return
        self._stop_renewing.clear()
        self._renewer = threading.Thread(target=self._renew_loop, daemon=True, name="claims")
        self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop_renewing.wait(self.renew):
            with contextlib.suppress(OSError), self.locked():
                expires = time.time() + self.lease
                for path in list(self._held):
                    claim = read_claim(path)
                    if claim is not None and claim.get("owner") == self.owner:
                        write_json(path, {**claim, "expires": expires})

    # -- at commit time (under the lock) -------------------------------------------------
    def _committed(self, plan: RunPlan) -> str | None:
        """Under the lock: who committed ``plan`` already, or None. A whole result of the same
        key is never replaced (a damaged one is: that is how a damaged run is retrained)."""
        run_dir = self._run_dir(plan)
        with contextlib.suppress(StoreError, AttributeError):
            stored = read_json(run_dir / RESULT)
            if stored.get("key") == plan.key and load_result(run_dir) is not None:
                by = stored.get("committed_by")
                return holder_of(by) if isinstance(by, dict) else "another worker"
        return None

    def _lost(self, plan: RunPlan) -> str | None:
        """Under the lock: None while this store's claim on ``plan`` is in place; otherwise who
        holds the run now, or committed it ("HOST pid P since T")."""
        run_dir = self._run_dir(plan)
        claim = read_claim(run_dir / CLAIM)
        if claim is not None and claim.get("owner") == self.owner and claim.get("key") == plan.key:
            return None
        if claim is not None:
            return holder_of(claim)
        return self._committed(plan) or "nobody: the claim was removed"


def alive(claim: dict[str, Any], path: Path, now: float | None = None) -> bool:
    """A claim holds while its lease runs and, on this host, while its process lives.

    Its lease ends at ``expires`` but never later than one lease after the claim file was last
    written: a holder whose clock runs ahead of ours cannot keep a run for ever.
    """
    now = now if now is not None else time.time()
    try:
        lease = float(claim.get("lease", 0) or 0) or 60.0
        expires = min(float(claim.get("expires", 0)), path.stat().st_mtime + lease)
    except (OSError, TypeError, ValueError):
        return False
    if expires < now:
        return False
    if claim.get("host") == socket.gethostname():
        try:
            os.kill(int(claim.get("pid", -1)), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, ValueError, OverflowError, TypeError):
            return True
    return True


def holder_of(claim: dict[str, Any]) -> str:
    return f"{claim.get('host')} pid {claim.get('pid')} since {claim.get('started')}"


def clear_staging(run_dir: Path) -> None:
    """Remove what workers killed mid-commit left: ``.partial-*`` folders and temporary files.

    Called while claiming the run under the lock: no worker holds a live claim on it. One that
    was stopped past its lease and resumes finds its staging gone and discards its result.
    """
    if not run_dir.is_dir():
        return
    for path in run_dir.glob(".partial-*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in run_dir.glob(".*.tmp"):
        path.unlink(missing_ok=True)
