"""Commits: the files of finished runs go into the store, each run under its own claim.

Part of :mod:`tricklab.store` (mixed into :class:`~tricklab.store.RunStore`). A commit takes a
batch of finished runs (:class:`Finished`: the runs of one population, or one solo run) in two
steps:

1. Staging, without the lock: every file of each run, result.json included, is written to the
   run's own ``.partial-<owner>`` folder; then the whole batch is fsynced at once (from a few
   threads, so the file system groups the writes).
2. Under the study's lock, taken once for the batch: each run whose claim this store still holds
   and that nobody committed is moved in (its old files deleted, its split's labels kept once
   per split, its staged files renamed into place, result.json renamed last) and its claim is
   removed; the checkpoints that hold the batch's runs are deleted.

So a reader sees a run not done, or done and whole: result.json is in place only after every
other file of it. A run whose claim was lost (its worker was stopped past its lease and another
took it over) is left as its holder made it: nothing of it is written or deleted, and its
:class:`Commit` says who holds (or committed) it. A whole result of the same key is never
replaced.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tricklab.store import _checkpoints as checkpoints
from tricklab.store._claims import CLAIM, Claims
from tricklab.store._files import (
    DIAGNOSTICS,
    FAILED,
    HISTORY,
    LAST_PREDICTIONS,
    LAST_WEIGHTS,
    OPTIONAL_FILES,
    PREDICTIONS,
    RESULT,
    RUN_FILES,
    SPEC,
    WEIGHTS,
    fsync_all,
    history_csv,
    npy_bytes,
    read_claim,
    rows_csv,
    weights_bytes,
    write_bytes,
    write_unsynced,
)

if TYPE_CHECKING:
    from tricklab.engines import WeightsFile
    from tricklab.engines.contract import RunPlan, RunResult


@dataclass(frozen=True)
class Commit:
    """What a commit did with one run: committed, or discarded because the claim was lost."""

    committed: bool
    holder: str = ""  # who holds (or committed) the run, when the claim was lost


@dataclass(frozen=True)
class Finished:
    """A finished run to commit: its result, its best ``weights`` (best.weights.h5), their test
    ``predictions`` (predictions.npy) and ``labels``, the true test labels of its split; and,
    when given, the weights training ended with and their test predictions (last.weights.h5,
    last.predictions.npy)."""

    plan: RunPlan
    result: RunResult
    weights: WeightsFile
    predictions: np.ndarray
    labels: np.ndarray
    last_weights: WeightsFile | None = None
    last_predictions: np.ndarray | None = None


class Commits(Claims):
    """The commits of one store: what :class:`~tricklab.store.RunStore` provides is declared
    here (and in :class:`Claims`), so the methods below read on their own."""

    def _labels_path(self, spec: dict[str, Any]) -> Path:  # RunStore's
        raise NotImplementedError

    def save(
        self,
        plan: RunPlan,
        result: RunResult,
        weights: WeightsFile,
        *,
        predictions: np.ndarray,
        labels: np.ndarray,
    ) -> Commit:
        """Commit one finished run: :meth:`save_many` of one."""
        return self.save_many([Finished(plan, result, weights, predictions, labels)])[0]

    def save_many(self, runs: Sequence[Finished]) -> list[Commit]:
        """Commit finished runs as one batch (module docstring); what became of each, in order.

        Raises the first OSError met while staging a run that still holds its claim, once the
        batch's other runs are committed (a run that lost its claim is not failed by one: the
        new holder clears a stale worker's staging folder).
        """
        if not runs:
            return []
        stagings = [self._run_dir(run.plan) / f".partial-{self.owner}" for run in runs]
        # Who commits each run, as its claim says while staging (checked again under the lock).
        claims = [_committed_by(read_claim(self._run_dir(run.plan) / CLAIM)) for run in runs]
        try:
            errors = self._stage(runs, stagings, claims)
            with self.locked():
                commits = self._move_in(runs, stagings, claims, errors)
        finally:
            for staging in stagings:
                shutil.rmtree(staging, ignore_errors=True)
        for i, commit in enumerate(commits):
            if commit is None:
                raise errors[i]
        return [c for c in commits if c is not None]

    def _stage(
        self, runs: Sequence[Finished], stagings: list[Path], claims: list[dict[str, Any]]
    ) -> dict[int, OSError]:
        """Write every file of ``runs`` to their staging folders and fsync them all; the errors,
        by the run's position."""
        errors: dict[int, OSError] = {}
        written: dict[Path, int] = {}
        for i, (run, staging) in enumerate(zip(runs, stagings, strict=True)):
            try:
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
                for name, data in _files(run, claims[i]).items():
                    _stage_bytes(staging / name, data)
                    written[staging / name] = i
            except OSError as exc:
                errors[i] = _as_run_file(exc, staging)
        synced = fsync_all([p for p, i in written.items() if i not in errors])
        for path, error in synced.items():
            errors.setdefault(written[path], _as_run_file(error, path.parent))
        return errors

    def _move_in(
        self,
        runs: Sequence[Finished],
        stagings: list[Path],
        claims: list[dict[str, Any]],
        errors: dict[int, OSError],
    ) -> list[Commit | None]:
        """Under the lock: move in each staged run whose claim is in place; None for a run that
        failed to stage while it holds its claim."""
        commits: list[Commit | None] = [None] * len(runs)
        kept: dict[Path, bytes] = {}  # split labels written or checked in this batch
        done: set[str] = set()
        for i, (run, staging) in enumerate(zip(runs, stagings, strict=True)):
            plan = run.plan
            holder = self._lost(plan)
            if holder is None and i not in errors:
                holder = self._committed(plan)
            if holder is not None:
                commits[i] = Commit(False, holder)
                continue
            if i in errors:
                continue
            run_dir, claim_path = self._run_dir(plan), self._run_dir(plan) / CLAIM
            claimed = _committed_by(read_claim(claim_path))
            if claimed != claims[i]:  # read while staging, before this store claimed it again
                record = {**run.result.to_json(), "committed_by": claimed}
                write_bytes(staging / RESULT, _json_bytes(record))
            for name in (RESULT, FAILED, *OPTIONAL_FILES, *RUN_FILES):
                (run_dir / name).unlink(missing_ok=True)
            self._save_labels(plan.resolved(), run.labels, kept)
            for name in (*RUN_FILES, *OPTIONAL_FILES):
                if (staging / name).exists():
                    os.replace(staging / name, run_dir / name)
            os.replace(staging / RESULT, run_dir / RESULT)  # last: the run is done
            claim_path.unlink(missing_ok=True)
            self._held.discard(claim_path)
            commits[i] = Commit(True)
            done.add(plan.key)
        checkpoints.drop_holding(self.root / checkpoints.FOLDER, done)  # done with them
        return commits

    def _save_labels(
        self, spec: dict[str, Any], labels: np.ndarray, kept: dict[Path, bytes] | None = None
    ) -> None:
        """Keep a split's labels once: written by its first run, rewritten only if they differ
        (``kept``: what this batch wrote or found already, so each split is read once)."""
        path, data = self._labels_path(spec), npy_bytes(np.asarray(labels))
        if kept is not None and kept.get(path) == data:
            return
        if not path.exists() or path.read_bytes() != data:
            write_bytes(path, data)
        if kept is not None:
            kept[path] = data

    def save_failure(self, plan: RunPlan, error: str) -> None:
        """Record why a run failed; it is retried next time."""
        run_dir = self._run_dir(plan)
        with self.locked():
            (run_dir / RESULT).unlink(missing_ok=True)
            write_bytes(run_dir / FAILED, _json_bytes({"key": plan.key, "error": error}))
            (run_dir / CLAIM).unlink(missing_ok=True)
            self._held.discard(run_dir / CLAIM)


def _files(run: Finished, committed_by: dict[str, Any]) -> dict[str, bytes]:
    """The contents of a finished run's files, by name; result.json last."""
    plan, result = run.plan, run.result
    files = {
        WEIGHTS: weights_bytes(run.weights),
        SPEC: _json_bytes(plan.resolved()),
        HISTORY: history_csv(result.history).encode("utf-8"),
        PREDICTIONS: npy_bytes(np.asarray(run.predictions, "float32")),
    }
    if result.diagnostics:
        files[DIAGNOSTICS] = rows_csv(result.diagnostics).encode("utf-8")
    if run.last_weights is not None:
        files[LAST_WEIGHTS] = weights_bytes(run.last_weights)
    if run.last_predictions is not None:
        files[LAST_PREDICTIONS] = npy_bytes(np.asarray(run.last_predictions, "float32"))
    files[RESULT] = _json_bytes({**result.to_json(), "committed_by": committed_by})
    return files


def _as_run_file(error: OSError, staging: Path) -> OSError:
    """``error`` naming the run's file (``<run>/result.json``), not its staging copy: the user
    knows the former, and the staging folder is gone by the time they read the message."""
    if error.filename is None:
        return error
    name = Path(str(error.filename))
    if name.parent != staging:
        return error
    return type(error)(error.errno, error.strerror, str(staging.parent / name.name))


def _stage_bytes(path: Path, data: bytes) -> None:
    """Every staged file is written here (the fault tests fill the disk at this point)."""
    write_unsynced(path, data)


def _committed_by(claim: dict[str, Any] | None) -> dict[str, Any]:
    """Who committed a run, as result.json records it: its claim's host, pid and start."""
    return {k: (claim or {}).get(k) for k in ("host", "pid", "started")}


def _json_bytes(data: Any) -> bytes:  # as _files.write_json writes it
    return (json.dumps(data, indent=1) + "\n").encode("utf-8")
