"""The run store: owns the on-disk format of a study's runs, their states and their claims.

Every reader and writer of ``runs/<study>/`` goes through this module (``run``, ``report``,
``status``, ``export``, ``predict``, ``search``, ``mlflow``, the Python API): it hands out every
path (:meth:`RunStore.run_dir`, :meth:`RunStore.weights_path`, :meth:`RunStore.of_run` for a run
directory given on the command line...). Engines never write files: they return results and
weights as arrays, and the store writes them; it imports neither Keras nor JAX.

Layout (``runs/<study>/``, store format :data:`STORE_SCHEMA`)::

    study.json                     the index: the study's full definition (every variant and
                                   seed, not a --variant/--seeds selection), protocol, planned
                                   runs with their keys, lint findings, store_schema
    .lock                          the lock around claims, commits and the index (filelock)
    .checkpoints/<unit>.npz        mid-run checkpoint of a run or population in training:
                                   arrays and JSON, never pickles (:mod:`._checkpoints`)
    splits/<split>-<data>.labels.npy  the true test labels of a split (RunPlan.split_id) of the
                                   data (fingerprint prefix), once for all runs that share it
    study.log                      library warnings raised while training, with their runs
    references/seed-<n>.json       the reference models (scikit-learn) fit on run n's rows
    search/optuna.journal          the trials of ``tricklab search`` (its default storage)
    <variant>/seed-<n>/spec.json   the resolved run spec (what determines the numbers)
    <variant>/seed-<n>/history.csv one row per epoch: epoch, loss, val_loss and every metric
    <variant>/seed-<n>/best.weights.h5  the best weights, in Keras 3's .weights.h5 layout (below)
    <variant>/seed-<n>/diagnostics.csv  per hidden layer and epoch, when the study asks for it
    <variant>/seed-<n>/predictions.npy  the best weights' test outputs (float32): (n,) positive-
                                   class scores, (n, k) for k > 2 classes, (n,) for regression
    <variant>/seed-<n>/last.weights.h5, last.predictions.npy  the same of the weights training
                                   ended with (train.evaluate = "last"; runs trained since)
    <variant>/seed-<n>/result.json written last: the run is done when it exists with its key
    <variant>/seed-<n>/failed.json the last failure (error and traceback); retried next time
    <variant>/seed-<n>/claim.json  while a worker trains the run: host, pid, owner, lease

Run states (:class:`RunState`): ``planned`` (nothing stored), ``running`` (claimed by a live
worker), ``done``, ``diverged`` (done, but its loss became NaN/inf), ``failed`` and ``damaged``
(a file of a finished run is missing or not whole: reported by name and retrained; damaged split
labels alone are rewritten without retraining). A run is done only when every file it needs is
whole (:func:`._files.load_result`, plus its split's labels).

The weights file is plain HDF5 that the store writes with h5py from an
:class:`~tricklab.engines.WeightsFile`: its groups, created in order, each with its string
attributes, then its arrays as datasets (contiguous, uncompressed) at their paths. The engines
say which path holds which weight (:func:`tricklab.engines.weights_layout`, asked of Keras once
per model structure), so the file is the one ``model.save_weights`` writes and
``build_model(recipe, input_shape).load_weights(path)`` loads it unchanged. For the layers
dense, dropout, dense (each ``vars`` group below its parent groups, which have no attribute)::

    vars                          attribute name = "tricklab" (the model), no dataset
    layers/dense/vars             attribute name = "dense_0"; datasets 0 (kernel), 1 (bias)
    layers/dropout/vars           attribute name = "dropout_1"; no dataset
    layers/dense_1/vars           attribute name = "dense_2"; datasets 0, 1

Every file is written to a temporary name, fsynced and renamed, so a reader sees the old file or
the new one. A claim is a lease (:mod:`._claims`). A result is committed only by the worker
whose claim is in place, checked under the lock: one that lost its claim discards its result,
and a whole result of the same key is never replaced. So each run is committed once while the
lock works across the workers (filelock: one host, or a file system with working locks). The
runs of a population are committed as one batch: one lock and one round of fsyncs for all of
them, each run still under its own claim and its result.json last (:mod:`._commits`).

Every path the store opens comes from its own layout: variant names and seeds read from JSON are
checked to be plain names that stay inside the store.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from tricklab.base.errors import StoreError
from tricklab.engines.contract import RESULT_SCHEMA, ResultStatus, RunPlan, RunResult, split_id
from tricklab.spec import NAME_PATTERN
from tricklab.store import _checkpoints as checkpoints
from tricklab.store._claims import CLAIM, alive, holder_of
from tricklab.store._commits import Commits
from tricklab.store._files import (  # a run's files: names, formats, reading
    FAILED,
    LAST_PREDICTIONS,
    LAST_WEIGHTS,
    OPTIONAL_FILES,
    PREDICTIONS,
    RESULT,
    RUN_FILES,
    SPEC,
    WEIGHTS,
    Damaged,
    labels_damage,
    load_result,
    out_of_date,
    read_claim,
    read_npy,
)
from tricklab.store._files import read_json as _read_json
from tricklab.store._files import write_bytes as _write_bytes
from tricklab.store._index import StudyIndex
from tricklab.store._references import References

#: Bump when the layout or the meaning of a file changes.
STORE_SCHEMA = 1

INDEX = "study.json"
SPLITS = "splits"
LOG = "study.log"
SEARCH = "search"
CHECKPOINTS = checkpoints.FOLDER


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


class RunStore(Commits, References):
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

    @classmethod
    def of_run(cls, run_dir: str | Path) -> tuple[RunStore, str, int]:
        """The store holding ``run_dir`` (``runs/<study>/<variant>/seed-<n>``, as ``export`` and
        ``predict`` are given it), with the run's variant and seed."""
        path = Path(run_dir)
        seed, variant = path.name.removeprefix("seed-"), path.parent.name
        if not (
            path.name.startswith("seed-")
            and seed.isascii()
            and seed.isdigit()
            and NAME_PATTERN.fullmatch(variant)
        ):
            raise StoreError(
                f"{run_dir}: not a run directory. Runs are stored as "
                "runs/<study>/<variant>/seed-<n>/."
            )
        return cls(path.parent.parent), variant, int(seed)

    def run_files(self, variant: str, seed: int, names: Iterable[str]) -> list[Path]:
        """The files called ``names`` (RESULT, WEIGHTS...) that run (variant, seed) holds."""
        run_dir = self.run_dir(variant, seed)
        return [run_dir / name for name in names if (run_dir / name).is_file()]

    @property
    def index_path(self) -> Path:
        """The study's index (``study.json``)."""
        return self.root / INDEX

    @property
    def search_dir(self) -> Path:
        """What ``tricklab search`` keeps in the store (``search/``)."""
        return self.root / SEARCH

    def search_storage_path(self) -> Path:
        """The default Optuna journal of ``tricklab search`` (``search/optuna.journal``)."""
        return self.search_dir / "optuna.journal"

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
    def write_index(self, index: StudyIndex) -> None:
        with self.locked():
            _write_json(self.root / INDEX, {**index.to_json(), "store_schema": STORE_SCHEMA})

    def read_index(self) -> StudyIndex:
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
        assert isinstance(index, dict)  # its schema was read from it
        return StudyIndex.from_json(index, path=path)

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
        if result_path.exists() and not out_of_date(result_path, key):
            try:
                result = self._whole(run_dir)
            except Damaged as exc:  # "history.csv: 4 rows for 40 epochs run"
                detail = f"{exc.file}: {exc.reason}"
                return RunStatus(variant, seed, RunState.DAMAGED, detail, damaged=exc.file)
            assert result is not None
            if key is None or (result.key == key and result.schema == RESULT_SCHEMA):
                labels = self._labels_damage(run_dir, result)
                if labels is not None:  # the run is whole: run writes its labels again
                    detail, file = ": ".join(labels), labels[0]
                    damaged = RunState.DAMAGED
                    return RunStatus(variant, seed, damaged, detail, damaged=file, labels_only=True)
                state = (
                    RunState.DIVERGED if result.status is ResultStatus.DIVERGED else RunState.DONE
                )
                return RunStatus(variant, seed, state, result=result)
        claim = read_claim(run_dir / CLAIM)
        if claim is not None and claim.get("key") == key and alive(claim, run_dir / CLAIM):
            holder = holder_of(claim)
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
        return labels_damage(path, run_dir, result)

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
        return [self.status(r.variant, r.seed, r.key) for r in self.read_index().runs]

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

    def weights_path(self, variant: str, seed: int, weights: str = "best") -> Path:
        """Where a finished run's best (or, ``weights="last"``, last) weights are:
        ``build_model(recipe, input_shape).load_weights(path)`` loads them (see the module
        docstring for the format). Runs trained before the last weights were kept have none."""
        return self.run_dir(variant, seed) / _weights_file(weights, WEIGHTS, LAST_WEIGHTS)

    def load_predictions(
        self, variant: str, seed: int, weights: str = "best"
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """A finished run's true test labels and its best (``weights="last"``: last) weights'
        test predictions, for ROC curves and metrics without retraining; None when the run is
        not finished (or damaged) or stored no such predictions. Raises :class:`StoreError` if
        its split's labels are damaged.
        """
        stored = _weights_file(weights, PREDICTIONS, LAST_PREDICTIONS)
        run_dir = self.run_dir(variant, seed)
        status = self.status(variant, seed, None)
        if status.labels_only:
            raise StoreError(
                f"{variant} seed {seed}: damaged: {status.detail}. "
                "Run `tricklab run` on the study to store them again."
            )
        if status.result is None or not (run_dir / stored).is_file():
            return None
        path = self._labels_path(_read_json(run_dir / SPEC))
        try:
            y_true, predictions = read_npy(path), read_npy(run_dir / stored)
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

    # -- writing runs (save, save_many, save_failure: :mod:`._commits`) ------------------
    def reset(self, plans: Iterable[RunPlan]) -> None:
        """Delete these runs (``--fresh``): the other variants' and seeds' runs stay."""
        with self.locked():
            for plan in plans:
                shutil.rmtree(self._run_dir(plan), ignore_errors=True)
                self.drop_checkpoint([plan.key])

    # -- mid-run checkpoints --------------------------------------------------------------
    def _checkpoint_path(self, keys: Sequence[str], suffix: str = checkpoints.SUFFIX) -> Path:
        return checkpoints.path_for(self.root / CHECKPOINTS, keys, suffix)

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


# -- files (every write goes through _write_bytes) ---------------------------------------------
def _write_json(path: Path, data: Any) -> None:  # as _files.write_json, through _write_bytes
    _write_bytes(path, (json.dumps(data, indent=1) + "\n").encode("utf-8"))


def _weights_file(weights: str, best: str, last: str) -> str:
    """The file of a run's ``weights`` ("best" or "last"): ``best`` or ``last``."""
    if weights not in ("best", "last"):
        raise ValueError(f"weights must be 'best' or 'last', not {weights!r}")
    return best if weights == "best" else last
