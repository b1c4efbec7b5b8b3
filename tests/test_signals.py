"""Signals that stop: SIGTERM while waiting for claimed runs, search workers, a killed parent.

Real processes end to end, as a user (or a batch scheduler) sends the signals.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import DROPOUT_STUDY as STUDY
from conftest import comparable, write_toml
from test_store import _tricklab

from tricklab.api import run_study
from tricklab.store import RunState, RunStore

# 2 solo runs (one per worker) long enough to be mid-training when a signal comes.
LONG: dict[str, Any] = {
    **copy.deepcopy(STUDY),
    "seeds": [0],
    "variants": {"bce": {}, "fast": STUDY["variants"]["fast"]},
}
LONG["train"] = {k: v for k, v in STUDY["train"].items() if k != "early_stopping"}
LONG["train"]["epochs"] = 20


def _alive(pid: int) -> bool:
    """``pid`` runs (a zombie has ended: only its parent's wait is missing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _processes(*words: str, parent: int | None = None) -> list[int]:
    """Live processes whose command line holds every one of ``words`` (and whose parent is
    ``parent``, if given)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if all(w in command for w in words) and parent in (None, ppid):
            found.append(int(entry.name))
    return [pid for pid in found if _alive(pid)]


def _checkpoints(root: Path) -> list[str]:
    """The checkpoint files of a study (not the temporary files of a write under way)."""
    folder = root / ".checkpoints"
    if not folder.is_dir():
        return []
    return [p.name for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()]


def _until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


# -- waiting for runs another worker claimed ----------------------------------------------------
def test_sigterm_while_waiting_for_claimed_runs_exits_130_at_once(tmp_path: Path) -> None:
    table = {**LONG, "variants": {"bce": {}}, "seeds": [0, 1]}
    path = write_toml(tmp_path / "store.toml", table)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        for seed in (0, 1):  # every run held by a live process of this host, for an hour
            claim = RunStore(tmp_path / "store").run_dir("bce", seed) / "claim.json"
            claim.parent.mkdir(parents=True)
            record = {"key": "any", "owner": "other", "host": socket.gethostname(),
                      "pid": sleeper.pid, "started": "then", "lease": 3600}  # fmt: skip
            claim.write_text(json.dumps({**record, "expires": time.time() + 3600}))
        command = _tricklab("run", str(path), "--out", str(tmp_path), "--quiet")
        worker = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert worker.stdout is not None
        for line in worker.stdout:
            if f"waiting for runs claimed by {socket.gethostname()} pid {sleeper.pid}" in line:
                break
        else:
            pytest.fail(f"it never said it waits: {worker.communicate()}")
        time.sleep(0.5)  # inside the wait, not at its first poll
        sent = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
        assert time.monotonic() - sent < 5, "the wait did not answer the signal"
    finally:
        if "worker" in locals() and worker.poll() is None:
            worker.kill()
        sleeper.kill()
        sleeper.wait()
    assert worker.returncode == 130, out + err
    assert "Traceback" not in out + err
    assert (
        "interrupted while waiting for runs claimed by other workers: finished runs are kept. "
        "Run the same command to go on." in " ".join(out.split())
    )


# -- tricklab search --workers N ----------------------------------------------------------------
@pytest.mark.slow
def test_sigterm_stops_search_workers_and_exits_130_leaving_no_worker(tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    from test_search import _load, _states, _study
    from test_search import _tricklab as _search

    path = _study(tmp_path, epochs=300)
    command = _search(path, "--trials", "4", "--workers", "2", "--out", tmp_path / "runs")
    parent = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = tmp_path / "runs" / "s" / "search" / "optuna.journal"
    try:
        # Both workers are training once each has a RUNNING trial.
        _until(
            lambda: journal.exists() and _states(_load(tmp_path)).get("RUNNING", 0) == 2,
            120,
            "two RUNNING trials",
        )
        workers = _processes(str(path), "--worker ")  # not --workers
        assert len(workers) == 2
        parent.send_signal(signal.SIGTERM)
        out, err = parent.communicate(timeout=60)
    finally:
        for pid in _processes(str(path)):  # a failed test leaves no training orphan
            os.kill(pid, signal.SIGKILL)
    assert parent.returncode == 130, out + err
    assert "interrupted: finished trials are kept and the interrupted ones are queued again" in (
        " ".join(out.split())
    )
    assert "Traceback" not in out + err
    assert not [pid for pid in workers if _alive(pid)], "worker processes outlived the search"
    assert "RUNNING" not in _states(_load(tmp_path))  # the workers queued their trials again


# -- the process executor -----------------------------------------------------------------------
def _two_workers(path: Path, out: Path, *options: str) -> list[str]:
    """``tricklab run`` of ``path`` by the process executor's 2 workers, solo runs."""
    return _tricklab(
        "run", str(path), "--out", str(out), "--engine", "solo", "--quiet",
        "--executor", "process", "--workers", "2", *options,
    )  # fmt: skip


@pytest.fixture(scope="module")
def clean_process_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(study file, its store, the output) of a clean ``--executor process --workers 2`` run."""
    tmp = tmp_path_factory.mktemp("clean")
    path = write_toml(tmp / "store.toml", LONG)
    command = _two_workers(path, tmp / "runs")
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output
    return path, tmp / "runs" / "store", output


def _resume(path: Path, root: Path, reference: Path) -> None:
    """The same command again (here, in-process) resumes both runs from their checkpoints,
    leaves none behind once the runs commit, and ends with the uninterrupted results."""
    rerun = run_study(path, out=root.parent, engine="solo")
    assert rerun.trained == 2 and not rerun.failed
    assert not _checkpoints(root)
    assert comparable(root) == comparable(reference)


@pytest.mark.slow
def test_a_clean_process_run_reports_no_killed_worker(
    clean_process_run: tuple[Path, Path, str],
) -> None:
    _, root, output = clean_process_run
    assert "killed by" not in output and "worker process" not in output, output
    assert "Traceback" not in output and "trained 2 runs" in output
    assert not _checkpoints(root)


@pytest.mark.slow
def test_process_workers_of_a_killed_parent_checkpoint_and_exit_quietly(
    tmp_path: Path, clean_process_run: tuple[Path, Path, str]
) -> None:
    path, reference, _ = clean_process_run
    root = tmp_path / "runs" / "store"
    command = _two_workers(path, tmp_path / "runs", "--checkpoint-every", "0")
    log = tmp_path / "parent.log"  # the workers write to the parent's stdout and stderr
    with log.open("w") as output:
        parent = subprocess.Popen(command, stdout=output, stderr=output)
    workers: list[int] = []
    try:
        # Killed once a run has trained an epoch (its checkpoint) and both workers have
        # started: one is mid-training, the other mid-training or starting up.
        def started() -> bool:
            workers[:] = _processes("tricklab.executors._process", parent=parent.pid)
            return len(workers) == 2 and bool(_checkpoints(root))

        _until(started, 120, "a checkpoint and two workers")
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        # Orphaned, each stops at its next epoch boundary.
        _until(lambda: not any(_alive(pid) for pid in workers), 60, "the workers to stop")
    finally:
        for pid in [pid for pid in workers if _alive(pid)]:
            os.kill(pid, signal.SIGKILL)
    printed = log.read_text()
    assert "Traceback" not in printed and "BrokenPipe" not in printed, printed
    assert "Exception ignored" not in printed, printed
    assert len(_checkpoints(root)) == 2  # each run stopped with one
    states = {s.variant: s.state for s in RunStore(root).indexed_runs()}
    assert RunState.DONE not in states.values(), states  # stopped mid-training, not finished

    _resume(path, root, reference)


@pytest.mark.slow
def test_sigterm_to_the_process_executors_parent_exits_130_and_leaves_no_worker(
    tmp_path: Path, clean_process_run: tuple[Path, Path, str]
) -> None:
    path, reference, _ = clean_process_run
    root = tmp_path / "runs" / "store"
    command = _two_workers(path, tmp_path / "runs", "--checkpoint-every", "1e9")
    parent = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers: list[int] = []

    def training() -> bool:  # both workers started, and a run has trained an epoch
        workers[:] = _processes("tricklab.executors._process", parent=parent.pid)
        claims = list(root.glob("*/seed-*/claim.json"))
        return len(workers) == 2 and len(claims) == 2

    _until(training, 120, "two workers training")
    time.sleep(1.0)
    parent.send_signal(signal.SIGTERM)
    out, err = parent.communicate(timeout=120)
    assert parent.returncode == 130, out + err
    assert "Traceback" not in out + err and "killed by" not in out + err
    assert re.search(r"interrupted: finished runs are kept; \d run\(s\) in training were", out)
    assert not any(_alive(pid) for pid in workers)  # no orphan trains on
    assert _checkpoints(root)  # what the workers kept, for the next run

    _resume(path, root, reference)
