"""The run store: owns the on-disk format of a study's runs, their states and their claims.

Every reader and writer of ``runs/<study>/`` goes through this module (``run``, ``report``,
``status``, ``export``, ``predict``, the Python API). Engines never write files: they return
results and weights, and the store writes them.

Layout (``runs/<study>/``, store format :data:`STORE_SCHEMA`)::

    study.json                     the index: the study's full definition (every variant and
                                   seed, not a --variant/--seeds selection), protocol, planned
                                   runs with their keys, lint findings, store_schema
    .lock                          the lock around claims, commits and the index (filelock)
    .checkpoints/<unit>.npz        mid-run checkpoint of a run or population in training:
                                   arrays and JSON, never pickles (:mod:`._store_checkpoints`)
    splits/<split>-<data>.labels.npy  the true test labels of a split (RunPlan.split_id) of the
                                   data (fingerprint prefix), once for all runs that share it
    study.log                      library warnings raised while training, with their runs
    search/optuna.journal          the trials of ``tricklab search`` (its default storage)
    <variant>/seed-<n>/spec.json   the resolved run spec (what determines the numbers)
    <variant>/seed-<n>/history.csv one row per epoch: epoch, loss, val_loss and every metric
    <variant>/seed-<n>/best.weights.h5
    <variant>/seed-<n>/diagnostics.csv  per hidden layer and epoch, when the study asks for it
    <variant>/seed-<n>/predictions.npy  the best weights' test outputs (float32): (n,) positive-
                                   class scores, (n, k) for k > 2 classes, (n,) for regression
    <variant>/seed-<n>/result.json written last: the run is done when it exists with its key
    <variant>/seed-<n>/failed.json the last failure (error and traceback); retried next time
    <variant>/seed-<n>/claim.json  while a worker trains the run: host, pid, owner, lease

Run states (:class:`RunState`): ``planned`` (nothing stored), ``running`` (claimed by a live
worker), ``done``, ``diverged`` (done, but its loss became NaN/inf), ``failed`` and ``damaged``
(a file of a finished run is missing or not whole: reported by name and retrained; damaged split
labels alone are rewritten without retraining). A run is done only when every file it needs is
whole (:func:`._store_files.load_result`, plus its split's labels).

Every file is written to a temporary name, fsynced and renamed, so a reader sees the old file or
the new one. A claim is a lease: the worker renews it every ``renew`` seconds and it expires
``lease`` seconds after the last renewal (and never later than ``lease`` seconds after the claim
file was last written, so a host whose clock runs ahead cannot hold a run for ever); a claim
whose holder is a dead process on this host is free at once.

A result is committed only by the worker whose claim on the run is in place when it commits,
checked under the lock: a worker that lost its claim (stopped past its lease while another took
the run over) discards its result and commits nothing, and a committed result of the same key is
never deleted by a commit. So each run is committed once, as long as the lock works across the
workers (filelock: one host, or a file system with working locks).

Every path the store opens comes from its own layout: variant names and seeds read from JSON are
checked to be plain names that stay inside the store.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from tricklab import _store_checkpoints as checkpoints
from tricklab._store_files import (  # a run's files: names, formats, reading
    DIAGNOSTICS,
    HISTORY,
    OPTIONAL_FILES,
    PREDICTIONS,
    RESULT,
    RUN_FILES,
    SPEC,
    WEIGHTS,
    Damaged,
    history_csv,
    load_result,
    npy_bytes,
    npy_shape,
    read_claim,
    read_npy,
    rows_csv,
)
from tricklab._store_files import fsync as _fsync
from tricklab._store_files import read_json as _read_json
from tricklab._store_files import write_bytes as _write_bytes
from tricklab.errors import StoreError
from tricklab.result import RESULT_SCHEMA, RunPlan, RunResult, split_id
from tricklab.spec import NAME_PATTERN

#: Bump when the layout or the meaning of a file changes.
STORE_SCHEMA = 1

INDEX = "study.json"
SPLITS = "splits"
LOG = "study.log"
FAILED = "failed.json"
CLAIM = "claim.json"
CHECKPOINTS = ".checkpoints"


class RunState(StrEnum):
    PLANNED = "planned"
    RUNNING = "running"
    DONE = "done"
    DIVERGED = "diverged"
    FAILED = "failed"
    DAMAGED = "damaged"


@dataclass(frozen=True)
class RunStatus:
    """One run's state, with what explains it (claim holder, error, what is damaged)."""

    variant: str
    seed: int
    state: RunState
    detail: str = ""
    result: RunResult | None = None
    #: When damaged: the file, relative to the run directory (split labels: ``../../splits/..``)
    damaged: str = ""
    #: When damaged: only the split's labels are, so ``run`` rewrites them and trains nothing
    labels_only: bool = False


@dataclass(frozen=True)
class Commit:
    """What :meth:`RunStore.save` did: committed, or discarded because the claim was lost."""

    committed: bool
    holder: str = ""  # who holds (or committed) the run, when the claim was lost


class RunStore:
    """The runs of one study under ``root`` (``runs/<study>``)."""

    def __init__(self, root: str | Path, *, lease: float = 60.0, renew: float = 10.0) -> None:
        self.root = Path(root)
        self.lease, self.renew = lease, renew
        # Who this process is when it claims runs: a new owner per store object.
        self.owner = uuid.uuid4().hex
        self._held: set[Path] = set()
        self._renewer: threading.Thread | None = None
        self._stop_renewing = threading.Event()
        # Finished runs already checked whole, by their files' (size, mtime, inode).
        self._checked: dict[Path, tuple[Any, RunResult]] = {}

    # -- paths ----------------------------------------------------------------------------
    def run_dir(self, variant: str, seed: int) -> Path:
        """``<root>/<variant>/seed-<seed>``; a variant that is not a plain name (``../x``,
        read from a crafted study.json) is refused rather than followed out of the store."""
        if not isinstance(variant, str) or not NAME_PATTERN.fullmatch(variant):
            raise StoreError(
                f"{self.root / INDEX}: variant {variant!r} is not a variant name "
                "(letters, digits, _ . = -); refusing a path outside the store."
            )
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise StoreError(f"{self.root / INDEX}: seed {seed!r} is not an int.")
        return self.root / variant / f"seed-{seed}"

    def _run_dir(self, plan: RunPlan) -> Path:
        return self.run_dir(plan.variant, plan.seed)

    def search_storage_path(self) -> Path:
        """The default Optuna journal of ``tricklab search`` (``search/optuna.journal``)."""
        return self.root / "search" / "optuna.journal"

    def mlflow_uri(self) -> str:
        """The default MLflow tracking store of ``tricklab mlflow``: one SQLite file beside the
        studies (``runs/mlflow.db``), its artifacts in ``runs/mlartifacts/``."""
        return f"sqlite:///{(self.root.parent / 'mlflow.db').resolve()}"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The study's lock (claims, commits, the index); works across processes and hosts."""
        from filelock import FileLock

        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.root / ".lock")):
            yield

    # -- the index ------------------------------------------------------------------------
    def write_index(self, index: dict[str, Any]) -> None:
        with self.locked():
            _write_json(self.root / INDEX, {**index, "store_schema": STORE_SCHEMA})

    def read_index(self) -> dict[str, Any]:
        path = self.root / INDEX
        if not self.root.is_dir() or not path.exists():
            raise StoreError(
                f"{self.root}: not a tricklab study directory (no {INDEX}). "
                "Run `tricklab run STUDY.toml` first; studies are stored under runs/<study>/."
            )
        index = _read_json(path)
        schema = index.get("store_schema", STORE_SCHEMA) if isinstance(index, dict) else None
        if schema != STORE_SCHEMA:
            raise StoreError(
                f"{path}: written in store format {schema}; this tricklab reads format "
                f"{STORE_SCHEMA}. Rerun `tricklab run` on the study to rebuild it."
            )
        return index

    def stored_seeds(self, variant: str) -> list[int]:
        """Seeds with a run directory of ``variant`` (whatever their state)."""
        seeds = []
        for path in (self.root / variant).glob("seed-*"):
            with contextlib.suppress(ValueError):
                seeds.append(int(path.name.removeprefix("seed-")))
        return sorted(seeds)

    # -- reading runs ---------------------------------------------------------------------
    def status(self, variant: str, seed: int, key: str | None) -> RunStatus:
        """The state of run (variant, seed) as planned with ``key``."""
        run_dir = self.run_dir(variant, seed)
        result_path = run_dir / RESULT
        if result_path.exists():
            try:
                result = self._whole(run_dir)
            except Damaged as exc:  # "history.csv: 4 rows for 40 epochs run"
                detail = f"{exc.file}: {exc.reason}"
                return RunStatus(variant, seed, RunState.DAMAGED, detail, damaged=exc.file)
            assert result is not None
            if key is None or (result.key == key and result.schema == RESULT_SCHEMA):
                labels = self._labels_damage(run_dir, result)
                if labels is not None:
                    file, reason = labels
                    return RunStatus(
                        variant,
                        seed,
                        RunState.DAMAGED,
                        f"{file}: {reason}",
                        damaged=file,
                        labels_only=True,
                    )
                state = RunState.DIVERGED if result.status == "diverged" else RunState.DONE
                return RunStatus(variant, seed, state, result=result)
        claim = read_claim(run_dir / CLAIM)
        if claim is not None and claim.get("key") == key and _alive(claim, run_dir / CLAIM):
            holder = _holder(claim)
            return RunStatus(variant, seed, RunState.RUNNING, holder)
        failed = run_dir / FAILED
        if failed.exists():
            with contextlib.suppress(StoreError):
                record = _read_json(failed)
                if record.get("key") == key:
                    error = str(record.get("error", "")).strip().splitlines() or [""]
                    return RunStatus(variant, seed, RunState.FAILED, error[-1])
        why = (
            "the stored result is out of date (the recipe changed)" if result_path.exists() else ""
        )
        return RunStatus(variant, seed, RunState.PLANNED, why)

    def _whole(self, run_dir: Path) -> RunResult | None:
        """:func:`load_result`, checked once per version of the run's files."""
        stamp = []
        for name in (RESULT, *RUN_FILES, *OPTIONAL_FILES):
            with contextlib.suppress(OSError):
                info = (run_dir / name).stat()
                stamp.append((name, info.st_size, info.st_mtime_ns, info.st_ino))
        cached = self._checked.get(run_dir)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        result = load_result(run_dir)
        if result is not None:
            self._checked[run_dir] = (stamp, result)
        return result

    def _labels_damage(self, run_dir: Path, result: RunResult) -> tuple[str, str] | None:
        """(file relative to the run directory, why) when the run's split labels are not whole."""
        try:
            path = self._labels_path(_read_json(run_dir / SPEC))
        except (StoreError, KeyError, TypeError, ValueError):
            return SPEC, "names no split"
        file = os.path.relpath(path, run_dir)
        if not path.exists():
            return file, "missing"
        try:
            shape = npy_shape(path)
        except (OSError, ValueError) as exc:
            return file, f"unreadable ({exc})"
        tested = result.split_sizes.get("test")
        if shape[:1] != (tested,):
            return file, f"{shape[0] if shape else 0} labels; the run tested on {tested}"
        return None

    def finished(self, plan: RunPlan) -> RunResult | None:
        """The stored result of this exact run, or None if it must be (re)trained."""
        return self.status(plan.variant, plan.seed, plan.key).result

    def results(self) -> Iterator[RunResult]:
        """Every readable finished run under this study directory."""
        for path in sorted(self.root.glob(f"*/seed-*/{RESULT}")):
            with contextlib.suppress(StoreError):
                result = load_result(path.parent)
                if result is not None:
                    yield result

    def indexed_runs(self) -> list[RunStatus]:
        """The state of every run the index lists."""
        index = self.read_index()
        runs = index.get("runs", [])
        if not isinstance(runs, list) or not all(isinstance(e, dict) for e in runs):
            raise StoreError(f"{self.root / INDEX}: damaged (runs is not a list of runs).")
        return [self.status(e.get("variant"), e.get("seed"), e.get("key")) for e in runs]

    def load_run(self, variant: str, seed: int) -> tuple[RunResult, dict[str, Any]]:
        """A finished run's result and its resolved spec (spec.json), for export and predict."""
        run_dir = self.run_dir(variant, seed)
        status = self.status(variant, seed, None)
        if status.state == RunState.DAMAGED:
            raise StoreError(
                f"{variant} seed {seed}: damaged: {status.detail}. "
                "Run `tricklab run` on the study to retrain (or repair) it."
            )
        if status.result is None:
            raise StoreError(
                f"{run_dir}: not a finished run: expected {RESULT} and {WEIGHTS}. "
                "Runs are stored as runs/<study>/<variant>/seed-<n>/."
            )
        return status.result, _read_json(run_dir / SPEC)

    def weights_path(self, variant: str, seed: int) -> Path:
        """Where a finished run's best weights are (read them with Keras's load_weights)."""
        return self.run_dir(variant, seed) / WEIGHTS

    def load_predictions(self, variant: str, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
        """A finished run's true test labels and its best weights' test predictions, for ROC
        curves and metrics without retraining; None when the run is not finished (or damaged)
        or stored no predictions. Raises :class:`StoreError` if its split's labels are damaged.
        """
        run_dir = self.run_dir(variant, seed)
        status = self.status(variant, seed, None)
        if status.labels_only:
            raise StoreError(
                f"{variant} seed {seed}: damaged: {status.detail}. "
                "Run `tricklab run` on the study to store them again."
            )
        if status.result is None:
            return None
        path = self._labels_path(_read_json(run_dir / SPEC))
        try:
            y_true, predictions = read_npy(path), read_npy(run_dir / PREDICTIONS)
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path}: damaged or unreadable ({exc}).") from None
        if len(y_true) != len(predictions):
            raise StoreError(
                f"{path}: damaged ({len(y_true)} labels for the {len(predictions)} test "
                f"predictions of {variant} seed {seed})."
            )
        return y_true, predictions

    def _labels_path(self, spec: dict[str, Any]) -> Path:
        """Where the true test labels of a run's split are (``spec`` is its spec.json)."""
        split = split_id(int(spec["split_seed"]), spec.get("fold"), spec.get("folds"))
        data = str(spec["data_fingerprint"])[:12]
        return self.root / SPLITS / f"{split}-{data}.labels.npy"

    def _save_labels(self, spec: dict[str, Any], labels: np.ndarray) -> None:
        """Keep a split's labels once: written by its first run, rewritten only if they differ."""
        path, data = self._labels_path(spec), npy_bytes(np.asarray(labels))
        if not path.exists() or path.read_bytes() != data:
            _write_bytes(path, data)

    def repair_labels(self, plan: RunPlan, labels: np.ndarray) -> None:
        """Write the split labels of a finished run again (``labels``: its true test labels),
        when they are all that is damaged: nothing is retrained."""
        with self.locked():
            self._save_labels(plan.resolved(), labels)

    # -- the study log --------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        """study.log: warnings of the libraries raised while training, with their runs."""
        return self.root / LOG

    def log_warnings(self, entries: Sequence[str]) -> None:
        """Append ``entries`` (one text block each) to study.log, under the study's lock."""
        if not entries:
            return
        text = "".join(e if e.endswith("\n") else e + "\n" for e in entries)
        with self.locked(), self.log_path.open("a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    def logged_warnings(self, since: int = 0) -> tuple[int, int]:
        """(entries appended to study.log after its first ``since`` bytes, its size now)."""
        if not self.log_path.exists():
            return 0, 0
        data = self.log_path.read_bytes()
        return sum(line.startswith(b"[") for line in data[since:].splitlines()), len(data)

    # -- claims ---------------------------------------------------------------------------
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
                mine = claim is None or claim.get("owner") == self.owner
                if mine or not _alive(claim, path, now):
                    free.append(plan)
            for plan in free:
                path = self._run_dir(plan) / CLAIM
                _clear_staging(path.parent)  # left by a worker killed while it committed
                _write_json(path, self._claim_record(plan.key, now))
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
            if claim is not None and claim.get("owner") != self.owner and _alive(claim, path):
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
                        _write_json(path, {**claim, "expires": expires})

    # -- writing runs ---------------------------------------------------------------------
    def save(
        self,
        plan: RunPlan,
        result: RunResult,
        weights: list[Any],
        *,
        predictions: np.ndarray,
        labels: np.ndarray,
    ) -> Commit:
        """Commit a finished run (its best ``weights`` as best.weights.h5, their test
        ``predictions`` as predictions.npy), result.json last; ``labels`` are the true test
        labels of its split, kept once per split.

        Only the worker whose claim is in place commits (checked under the lock). Otherwise
        nothing is written or deleted, and the returned :class:`Commit` says who holds (or
        committed) the run: the claim was lost, e.g. this worker was stopped past its lease
        and another took the run over.
        """
        from tricklab.engines._scoring import write_weights  # imports Keras

        run_dir = self._run_dir(plan)
        staging = run_dir / f".partial-{self.owner}"
        try:
            try:
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
                weights_tmp = staging / WEIGHTS
                write_weights(weights_tmp, plan.recipe, tuple(result.input_shape), weights)
                _fsync(weights_tmp)
                _write_json(staging / SPEC, plan.resolved())
                _write_text(staging / HISTORY, history_csv(result.history))
                if result.diagnostics:
                    _write_text(staging / DIAGNOSTICS, rows_csv(result.diagnostics))
                predicted = npy_bytes(np.asarray(predictions, "float32"))
                _write_bytes(staging / PREDICTIONS, predicted)
            except OSError:
                # The run's new holder clears a stale worker's staging folder: lost, not failed.
                with self.locked():
                    holder = self._lost(plan)
                if holder is not None:
                    return Commit(False, holder)
                raise
            with self.locked():
                holder = self._lost(plan) or self._committed(plan)
                if holder is not None:
                    return Commit(False, holder)
                claim_path = run_dir / CLAIM
                for name in (RESULT, FAILED, *OPTIONAL_FILES, *RUN_FILES):
                    (run_dir / name).unlink(missing_ok=True)
                self._save_labels(plan.resolved(), labels)
                for name in (*RUN_FILES, *OPTIONAL_FILES):
                    if (staging / name).exists():
                        os.replace(staging / name, run_dir / name)
                claim = read_claim(claim_path) or {}
                committed_by = {k: claim.get(k) for k in ("host", "pid", "started")}
                _write_json(run_dir / RESULT, {**result.to_json(), "committed_by": committed_by})
                claim_path.unlink(missing_ok=True)
                self._held.discard(claim_path)
                self._drop_checkpoints_of(plan.key)
            return Commit(True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _committed(self, plan: RunPlan) -> str | None:
        """Under the lock: who committed ``plan`` already, or None. A whole result of the same
        key is never replaced (a damaged one is: that is how a damaged run is retrained)."""
        run_dir = self._run_dir(plan)
        with contextlib.suppress(StoreError, AttributeError):
            stored = _read_json(run_dir / RESULT)
            if stored.get("key") == plan.key and load_result(run_dir) is not None:
                by = stored.get("committed_by")
                return f"{_holder(by) if isinstance(by, dict) else 'another worker'}, committed"
        return None

    def _lost(self, plan: RunPlan) -> str | None:
        """Under the lock: None while this store's claim on ``plan`` is in place; otherwise who
        holds the run now, or committed it ("HOST pid P since T")."""
        run_dir = self._run_dir(plan)
        claim = read_claim(run_dir / CLAIM)
        if claim is not None and claim.get("owner") == self.owner and claim.get("key") == plan.key:
            return None
        if claim is not None:
            return _holder(claim)
        return self._committed(plan) or "nobody: the claim was removed"

    def save_failure(self, plan: RunPlan, error: str) -> None:
        """Record why a run failed; it is retried next time."""
        run_dir = self._run_dir(plan)
        with self.locked():
            (run_dir / RESULT).unlink(missing_ok=True)
            _write_json(run_dir / FAILED, {"key": plan.key, "error": error})
            (run_dir / CLAIM).unlink(missing_ok=True)
            self._held.discard(run_dir / CLAIM)

    def reset(self, plans: Iterable[RunPlan]) -> None:
        """Delete these runs (``--fresh``): the other variants' and seeds' runs stay."""
        with self.locked():
            for plan in plans:
                shutil.rmtree(self._run_dir(plan), ignore_errors=True)
                self.drop_checkpoint([plan.key])

    # -- mid-run checkpoints --------------------------------------------------------------
    def _checkpoint_path(self, keys: Sequence[str], suffix: str = checkpoints.SUFFIX) -> Path:
        unit = hashlib.sha256(",".join(sorted(keys)).encode()).hexdigest()[:16]
        return self.root / CHECKPOINTS / f"{unit}{suffix}"

    def save_checkpoint(self, keys: Sequence[str], state: Any) -> None:
        """Keep the training state of the runs ``keys`` (one run, or one population)."""
        _write_bytes(self._checkpoint_path(keys), checkpoints.encode(list(keys), state))

    def load_checkpoint(self, keys: Sequence[str]) -> Any | None:
        """The last checkpoint of exactly these runs, or None (also when it is unreadable).

        A checkpoint in the old pickle format is never unpickled: it is deleted, with a notice.
        """
        legacy = self._checkpoint_path(keys, checkpoints.LEGACY_SUFFIX)
        if legacy.exists():
            legacy.unlink(missing_ok=True)
            print(
                f"{legacy}: an old-format (pickle) checkpoint is never loaded; deleted it, "
                f"its {len(keys)} run(s) start again from epoch 0",
                file=sys.stderr,
                flush=True,
            )
        path = self._checkpoint_path(keys)
        if not path.exists():
            return None
        try:
            return checkpoints.decode(path.read_bytes())
        except (OSError, checkpoints.CheckpointError):
            return None  # a damaged checkpoint only costs the epochs since the start

    def drop_checkpoint(self, keys: Sequence[str]) -> None:
        self._checkpoint_path(keys).unlink(missing_ok=True)

    def _drop_checkpoints_of(self, key: str) -> None:
        """Delete every checkpoint that holds run ``key`` (it is committed): also those of a
        population that another call formed differently."""
        for path in (self.root / CHECKPOINTS).glob(f"*{checkpoints.SUFFIX}"):
            if key in checkpoints.keys_of(path):
                path.unlink(missing_ok=True)


# -- files (every write goes through _write_bytes) ---------------------------------------------
def _write_text(path: Path, text: str) -> None:
    _write_bytes(path, text.encode("utf-8"))


def _write_json(path: Path, data: Any) -> None:
    _write_text(path, json.dumps(data, indent=1) + "\n")


def _alive(claim: dict[str, Any], path: Path, now: float | None = None) -> bool:
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


def _holder(claim: dict[str, Any]) -> str:
    return f"{claim.get('host')} pid {claim.get('pid')} since {claim.get('started')}"


def _clear_staging(run_dir: Path) -> None:
    """Remove what workers killed mid-commit left: ``.partial-*`` folders and temporary files.

    Called while claiming the run under the lock: no live worker holds it, so none is writing.
    """
    if not run_dir.is_dir():
        return
    for path in run_dir.glob(".partial-*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in run_dir.glob(".*.tmp"):
        path.unlink(missing_ok=True)
