"""The store under faults: a stale worker never commits twice, every damaged file is found and
repaired, nothing from the store runs as code, paths stay inside the store."""

from __future__ import annotations

import errno
import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import DROPOUT_STUDY as STUDY
from conftest import comparable, write_toml
from filelock import FileLock
from test_store import _tricklab, trained

from tricklab.api import run_study
from tricklab.cli import main
from tricklab.data import resolve
from tricklab.executors import RunEvent
from tricklab.spec import StudySpec
from tricklab.store import RunState, RunStore
from tricklab.store import _commits as commits_module
from tricklab.store._checkpoints import path_for
from tricklab.study import make_plan

# One variant x 7 seeds, no early stopping: 3 epochs each, so history.csv has 3 rows.
DAMAGE: dict[str, Any] = {
    **STUDY,
    "seeds": 7,
    "train": {"loss": "binary_crossentropy", "batch_size": 32, "epochs": 3},
    "variants": {"bce": {}},
}


def _spec(table: dict[str, Any]) -> StudySpec:
    return StudySpec.from_dict(json.loads(json.dumps(table)))


def _finished_at(root: Path) -> dict[tuple[str, int], str]:
    return {(r.variant, r.seed): r.finished_at for r in RunStore(root).results()}


# -- a stale worker -----------------------------------------------------------------------------
def _trained_run() -> tuple[Any, Any, Any, np.ndarray, np.ndarray]:
    """A real finished run of the one-run study (plan, result, weights as the store writes them,
    predictions, labels)."""
    from tricklab.engines import weights_layout
    from tricklab.engines.solo import train_run

    spec = _spec({**STUDY, "seeds": 1, "variants": {"bce": {}}})
    study = resolve(spec)
    plan = make_plan(study, "bce", 0)
    splits = study.splits(0)
    result, weights, predictions, _ = train_run(plan, study.dataset, splits)
    layout = weights_layout(plan.recipe, splits.x_train.shape[1:])
    return plan, result, layout.file(weights), predictions, splits.y_test


@pytest.mark.parametrize("fault", [None, "ENOSPC"])
def test_a_worker_past_its_lease_never_commits_over_the_run_that_took_it_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str | None
) -> None:
    plan, result, weights, predictions, labels = _trained_run()
    # A claims and then misses its renewals (as if stopped): its lease lapses.
    a = RunStore(tmp_path / "store", lease=0.3, renew=1e6)
    assert a.claim([plan]) == [plan]
    time.sleep(0.5)
    b = RunStore(tmp_path / "store")
    assert b.claim([plan]) == [plan]  # A's lease has expired: B takes the run over
    assert b.save(plan, result, weights, predictions=predictions, labels=labels).committed
    run_dir = b.run_dir("bce", 0)
    files = {p.name: p.read_bytes() for p in run_dir.iterdir()}

    if fault is not None:  # A's commit also meets a full disk
        real = commits_module._stage_bytes

        def full(path: Path, data: bytes) -> None:
            if ".partial-" in str(path):
                raise OSError(errno.ENOSPC, "No space left on device")
            real(path, data)

        monkeypatch.setattr(commits_module, "_stage_bytes", full)
    commit = a.save(plan, result, weights, predictions=predictions, labels=labels)
    assert not commit.committed and f"pid {os.getpid()} since " in commit.holder  # B, here
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == files  # B's run, intact
    status = RunStore(tmp_path / "store").status("bce", 0, plan.key)
    assert status.state == RunState.DONE and status.result is not None
    assert not list(run_dir.glob(".partial-*"))


def test_a_claim_from_a_clock_ahead_expires_one_lease_after_it_was_written(
    tmp_path: Path,
) -> None:
    spec = _spec({**STUDY, "seeds": 1, "variants": {"bce": {}}})
    plan = make_plan(resolve(spec), "bce", 0)
    store = RunStore(tmp_path / "store")
    claim = store.run_dir("bce", 0) / "claim.json"
    claim.parent.mkdir(parents=True)
    far = {"key": plan.key, "owner": "x", "host": "elsewhere", "pid": 1, "started": "later"}
    claim.write_text(json.dumps({**far, "expires": time.time() + 10**6, "lease": 60}))
    assert store.claim([plan]) == []  # written just now: held
    old = time.time() - 61
    os.utime(claim, (old, old))  # written a lease ago and never renewed since
    assert store.claim([plan]) == [plan]


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _stale_worker(tmp_path: Path, pause: float) -> None:
    """Worker A is stopped (SIGSTOP) while it trains, past its lease; B takes the run over and
    commits; A resumes: A commits nothing and says so, B's run stays as B committed it."""
    table = {**STUDY, "seeds": 1, "variants": {"bce": {}}}
    table["train"] = {"loss": "binary_crossentropy", "batch_size": 32, "epochs": 60}
    path = write_toml(tmp_path / "store.toml", table)
    command = _tricklab(
        "run", str(path), "--out", str(tmp_path), "--engine", "solo", "--quiet",
        "--lease", "2", "--renew", "0.5", "--checkpoint-every", "1e9",
    )  # fmt: skip
    claim = tmp_path / "store" / "bce" / "seed-0" / "claim.json"
    a = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(claim.exists, 120, "A's claim")
        time.sleep(pause)
        # Stopped while it trains, not in the milliseconds it holds the study's lock (a worker
        # stopped holding the lock blocks the others until it resumes: README, failure model).
        with FileLock(str(tmp_path / "store" / ".lock")):
            a.send_signal(signal.SIGSTOP)
        time.sleep(2.5)  # past A's lease
        b = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert b.returncode == 0, b.stdout + b.stderr
        assert "trained 1 run" in b.stdout
        committed = {p.name: p.read_bytes() for p in claim.parent.iterdir()}
        assert "result.json" in committed
    finally:
        a.send_signal(signal.SIGCONT)
    out, _ = a.communicate(timeout=300)
    assert a.returncode == 0, out
    assert "Traceback" not in out
    assert "lost claim on bce seed 0 (held by " in out and "; result discarded" in out
    assert "trained 0 runs" in out or "trained 0 run" in out
    assert {p.name: p.read_bytes() for p in claim.parent.iterdir()} == committed


def test_a_stopped_worker_resumed_after_another_committed_commits_nothing(
    tmp_path: Path,
) -> None:
    _stale_worker(tmp_path, pause=0.5)


@pytest.mark.stress
@pytest.mark.parametrize("attempt", range(5))
def test_stale_workers_at_random_moments_commit_once(tmp_path: Path, attempt: int) -> None:
    _stale_worker(tmp_path, pause=random.Random(attempt).uniform(0.0, 3.0))


# -- damaged files ------------------------------------------------------------------------------
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(random.Random(0).randbytes(path.stat().st_size))


def _history_cut(path: Path) -> None:  # cut at a row boundary: header and the first epoch
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:2]))


# (seed, file, how it is damaged, what status says about it)
DAMAGES = [
    (0, "best.weights.h5", _truncate, "unreadable"),
    (1, "best.weights.h5", _garbage, "not an HDF5 file"),
    (2, "spec.json", _garbage, "unreadable"),
    (3, "history.csv", _history_cut, "1 rows where the run trained 3 epochs"),
    (4, "predictions.npy", lambda p: p.unlink(), "missing"),
    (5, "predictions.npy", _truncate, "unreadable"),
]


def test_each_damaged_file_is_named_by_status_and_its_run_alone_is_retrained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(DAMAGE)
    run_study(spec, out=tmp_path, engine="population")  # 7 runs as one population: quick
    root = tmp_path / "store"
    reference = comparable(root)
    for seed, name, damage, _ in DAMAGES:
        damage(root / "bce" / f"seed-{seed}" / name)

    capsys.readouterr()
    assert main(["status", str(root)]) == 0
    printed = capsys.readouterr().out.splitlines()
    for seed, name, _, reason in DAMAGES:  # the pinned line, whole, once per damaged run
        lines = [x for x in printed if x.startswith(f"bce seed {seed}: damaged: {name}: ")]
        assert len(lines) == 1 and reason in lines[0], printed
    assert printed[0] == (
        f"{root}: 7 runs: 1 done, 0 failed, 0 diverged, 6 damaged, 0 planned, 0 claimed"
    )
    with pytest.raises(Exception, match=r"bce seed 0: damaged: best.weights.h5"):
        RunStore(root).load_run("bce", 0)  # export and predict read runs through this
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["mlflow", str(root), "--tracking-uri", uri]) == 0
    logged = capsys.readouterr().out
    assert "1 runs logged" in logged and "not logged: bce seed 3: damaged: history.csv" in logged

    events: list[RunEvent] = []
    rerun = run_study(spec, out=tmp_path, engine="population", listener=events.append)
    damaged = sorted(e.plan.seed for e in events if e.kind == "damaged" and e.plan)
    assert damaged == [0, 1, 2, 3, 4, 5]
    assert sorted(s for _, s in trained(events)) == [0, 1, 2, 3, 4, 5] and not rerun.failed
    assert rerun.reused == 1
    assert comparable(tmp_path / "store") == reference


@pytest.mark.stress
@pytest.mark.parametrize("attempt", range(5))
def test_files_damaged_at_random_moments_are_found_and_retrained(
    tmp_path: Path, attempt: int
) -> None:
    """While a worker trains the study, finished runs get damaged at random moments; then
    ``status`` names every one and the next ``run`` ends with the undamaged results."""
    chance = random.Random(attempt)
    path = write_toml(tmp_path / "store.toml", DAMAGE)
    run_study(path, out=tmp_path / "single", engine="solo")
    reference = comparable(tmp_path / "single" / "store")
    command = _tricklab("run", str(path), "--out", str(tmp_path), "--engine", "solo", "--quiet")
    root = tmp_path / "store"
    worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    damaged: set[int] = set()
    while worker.poll() is None:
        time.sleep(chance.uniform(0.5, 3.0))
        done = [p.parent for p in root.glob("bce/seed-*/result.json")]
        if done:
            run_dir = chance.choice(done)
            _, name, damage, _ = chance.choice(DAMAGES)
            if (run_dir / name).exists():
                damage(run_dir / name)
                damaged.add(int(run_dir.name.removeprefix("seed-")))
    states = {s.seed: s.state for s in RunStore(root).indexed_runs()}
    assert {seed for seed, state in states.items() if state == RunState.DAMAGED} == damaged
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert comparable(root) == reference


def test_damaged_split_labels_are_rewritten_without_retraining(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec({**DAMAGE, "seeds": 2})
    run_study(spec, out=tmp_path, engine="solo")
    root = tmp_path / "store"
    reference, finished = comparable(root), _finished_at(root)
    labels = sorted((root / "splits").iterdir())
    labels[0].write_bytes(b"garbage")
    shutil.rmtree(root / "splits") if len(labels) == 1 else labels[1].unlink()

    capsys.readouterr()
    assert main(["status", str(root)]) == 0
    printed = capsys.readouterr().out
    assert "bce seed 0: damaged: ../../splits/" in printed
    assert "bce seed 1: damaged: ../../splits/" in printed
    with pytest.raises(Exception, match=r"damaged: \.\./\.\./splits/"):
        RunStore(root).load_predictions("bce", 0)  # what the ROC figure reads

    events: list[RunEvent] = []
    rerun = run_study(spec, out=tmp_path, engine="solo", listener=events.append)
    kinds = [e.kind for e in events]  # both runs test on one split: its labels, written once
    assert rerun.trained == 0 and kinds.count("repaired") == 1 and kinds.count("reused") == 2
    assert _finished_at(root) == finished and comparable(root) == reference
    assert all(s.state == RunState.DONE for s in RunStore(root).indexed_runs())
    stored = RunStore(root).load_predictions("bce", 0)
    assert stored is not None
    y_true, predictions = stored  # the labels the run was scored on, written again
    from sklearn.metrics import roc_auc_score

    auc = reference[("bce", 0)]["test"]["best"]["auc"]
    assert roc_auc_score(y_true, predictions) == pytest.approx(auc)


# -- nothing from the store runs ----------------------------------------------------------------
class _Plant:
    """Unpickling this creates a file: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.touch, (self.marker,))


def test_planted_checkpoints_never_run_and_their_runs_train_from_epoch_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec({**DAMAGE, "seeds": 2})
    keys = [make_plan(resolve(spec), "bce", seed).key for seed in (0, 1)]
    folder = tmp_path / "store" / ".checkpoints"
    folder.mkdir(parents=True)
    marker = tmp_path / "ran"
    legacy = path_for(folder, [keys[0]], ".pkl")  # where the store looks for old checkpoints
    legacy.write_bytes(pickle.dumps(_Plant(marker)))
    # An .npz holding a pickled object array: refused by allow_pickle=False.
    with path_for(folder, [keys[1]]).open("wb") as handle:
        np.savez(handle, __meta__=np.array([_Plant(marker)], dtype=object))

    events: list[RunEvent] = []
    run_study(spec, out=tmp_path, engine="solo", listener=events.append)
    assert not marker.exists()
    err = capsys.readouterr().err
    assert err.count("old-format (pickle) checkpoint is never loaded") == 1 and str(legacy) in err
    firsts: dict[int, int] = {}
    for event in events:
        if event.kind == "epoch" and event.plan:
            firsts.setdefault(event.plan.seed, event.epoch)
    assert firsts == {0: 1, 1: 1}  # the first epoch event of each run: trained from the start
    assert not [p for p in folder.iterdir() if not p.name.startswith(".")]


def test_a_crafted_variant_in_study_json_cannot_lead_outside_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_study(_spec({**DAMAGE, "seeds": 1}).with_epochs(1), out=tmp_path, engine="solo")
    (tmp_path / "outside" / "seed-0").mkdir(parents=True)
    index_path = tmp_path / "store" / "study.json"
    index = json.loads(index_path.read_text())
    index["runs"][0]["variant"] = "../outside"
    index_path.write_text(json.dumps(index))
    for command in (["status"], ["report"], ["mlflow"]):
        capsys.readouterr()
        assert main([*command, str(tmp_path / "store")]) == 2
        err = capsys.readouterr().err
        assert "'../outside' is not a variant name" in err and "Traceback" not in err


def test_checkpoints_hold_data_only_and_come_back_equal(tmp_path: Path) -> None:
    from tricklab.store import _checkpoints as checkpoints

    state = {
        "epoch": 3,
        "rng": np.random.RandomState(5).get_state(),
        "best": np.float32(0.25),
        "inf": float("inf"),
        "layers": [np.arange(6.0).reshape(2, 3), None, (1, "a")],
        7: {"nested": [True, False]},
    }
    back = checkpoints.decode(checkpoints.encode(["k1", "k2"], state))
    assert back.keys() == state.keys() and back[7] == state[7] and back["inf"] == float("inf")
    assert type(back["best"]) is np.float32 and back["best"] == np.float32(0.25)
    assert back["rng"][0] == "MT19937" and np.array_equal(back["rng"][1], state["rng"][1])
    assert back["layers"][2] == (1, "a") and np.array_equal(back["layers"][0], state["layers"][0])
    path = tmp_path / "c.npz"
    path.write_bytes(checkpoints.encode(["k1", "k2"], state))
    assert checkpoints.keys_of(path) == ["k1", "k2"]
    with pytest.raises(TypeError):
        checkpoints.encode(["k"], {"x": object()})


def test_a_full_disk_while_training_names_the_file(tmp_path: Path) -> None:
    """ENOSPC from write() carries no file name; the store's writes add it."""
    from tricklab.store._files import write_bytes

    target = tmp_path / "x" / "file.bin"
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    os.makedirs(target.parent)
    real_open = Path.open

    def full(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode and self.name.endswith(".tmp"):
            return real_open(Path("/dev/full"), mode, *args, **kwargs)
        return real_open(self, mode, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "open", full)
        with pytest.raises(OSError) as raised:
            write_bytes(target, b"x" * 100_000)
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    assert not list(target.parent.iterdir())  # no temporary file left


def test_a_killed_commit_leaves_no_staging_once_the_run_is_claimed_again(tmp_path: Path) -> None:
    spec = _spec({**DAMAGE, "seeds": 1}).with_epochs(1)
    run_study(spec, out=tmp_path, engine="solo")
    run_dir = tmp_path / "store" / "bce" / "seed-0"
    (run_dir / ".partial-deadbeef").mkdir()
    (run_dir / ".result.json.123.456.tmp").write_text("{")
    (run_dir / "result.json").unlink()  # as if killed before result.json was written
    assert run_study(spec, out=tmp_path, engine="solo").trained == 1
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == []


def test_a_resumed_run_counts_the_time_before_its_stop(tmp_path: Path) -> None:
    from tricklab.engines import Interrupted

    spec = _spec({**DAMAGE, "seeds": 1}).with_epochs(6)
    polls = iter(range(100))
    with pytest.raises(Interrupted):
        run_study(
            spec, out=tmp_path, engine="solo", checkpoint_every=1e9,
            stop_requested=lambda: next(polls) == 3,
        )  # fmt: skip
    saved = next((tmp_path / "store" / ".checkpoints").glob("*.npz"))
    from tricklab.store import _checkpoints as checkpoints

    before = checkpoints.decode(saved.read_bytes())["seconds"]
    assert before > 0
    time.sleep(0.1)
    result = run_study(spec, out=tmp_path, engine="solo").results[0]
    assert result.seconds_total > before


def test_a_result_of_an_older_schema_is_out_of_date_not_damaged(tmp_path: Path) -> None:
    """Runs of an older tricklab (no predictions.npy, result schema 2) are retrained as
    planned, not reported as damaged."""
    spec = _spec({**DAMAGE, "seeds": 1}).with_epochs(1)
    run_study(spec, out=tmp_path, engine="solo")
    run_dir = tmp_path / "store" / "bce" / "seed-0"
    data = json.loads((run_dir / "result.json").read_text())
    (run_dir / "result.json").write_text(json.dumps({**data, "schema": 2}))
    (run_dir / "predictions.npy").unlink()
    (status,) = RunStore(tmp_path / "store").indexed_runs()
    assert status.state == RunState.PLANNED and "out of date" in status.detail
