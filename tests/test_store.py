"""The store owns its runs: states, claims of concurrent workers, mid-run resume, nothing lost."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
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

from tricklab.api import run_study
from tricklab.cli import main
from tricklab.engines import Interrupted
from tricklab.executors import RunEvent
from tricklab.spec import StudySpec
from tricklab.store import RunState, RunStore


def study(**changes: Any) -> StudySpec:
    table = copy.deepcopy(STUDY)
    table.update(changes)
    return StudySpec.from_dict(table)


def trained(events: list[RunEvent]) -> list[tuple[str, int]]:
    return [(e.plan.variant, e.plan.seed) for e in events if e.kind == "done" and e.plan]


# -- mid-run resume -----------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ["solo", "population"])
def test_a_run_stopped_after_epoch_k_resumes_at_k_with_the_uninterrupted_history(
    tmp_path: Path, engine: str
) -> None:
    spec = study(seeds=[0, 1], variants={"bce": {}}).with_epochs(5)
    run_study(spec, out=tmp_path / "whole", engine=engine)

    polls = iter(range(100))  # Ctrl-C during the 3rd epoch of the first run (or population)
    with pytest.raises(Interrupted) as stopped:
        run_study(
            spec,
            out=tmp_path / "cut",
            engine=engine,
            checkpoint_every=1e9,
            stop_requested=lambda: next(polls) == 2,
        )
    assert stopped.value.epoch == 3
    assert list((tmp_path / "cut" / "store" / ".checkpoints").glob("*.npz"))
    events: list[RunEvent] = []
    run_study(spec, out=tmp_path / "cut", engine=engine, listener=events.append)
    first = stopped.value.keys[0]
    resumed = [e.epoch for e in events if e.kind == "epoch" and e.plan and e.plan.key == first]
    assert resumed[0] == 4  # it went on after epoch 3, not from the start
    assert comparable(tmp_path / "cut" / "store") == comparable(tmp_path / "whole" / "store")
    assert not list((tmp_path / "cut" / "store" / ".checkpoints").glob("*.npz"))


# -- the index, subsets and --fresh -------------------------------------------------------------
def test_subset_runs_keep_the_whole_study_and_fresh_resets_only_the_selection(
    tmp_path: Path,
) -> None:
    spec = study(seeds=2).with_epochs(1)
    run_study(spec, out=tmp_path, variants=["bce"], engine="solo")
    index = json.loads((tmp_path / "store" / "study.json").read_text())
    assert index["variants"] == ["bce", "mse", "fast"] and index["seeds"] == [0, 1]
    assert index["baseline"] == "bce" and len(index["runs"]) == 6
    before = comparable(tmp_path / "store")

    run_study(spec, out=tmp_path, variants=["mse"], engine="solo")
    statuses = {(s.variant, s.seed): s.state for s in RunStore(tmp_path / "store").indexed_runs()}
    assert statuses == {
        ("bce", 0): RunState.DONE,
        ("bce", 1): RunState.DONE,
        ("mse", 0): RunState.DONE,
        ("mse", 1): RunState.DONE,
        ("fast", 0): RunState.PLANNED,
        ("fast", 1): RunState.PLANNED,
    }
    report = run_study(spec, out=tmp_path, variants=["mse"], engine="solo").report()
    assert list(report.table.index) == ["bce", "mse"]  # the report shows every finished run
    assert "fast seed 0 (not trained yet)" in report.markdown.read_text()

    finished_at = {
        (r.variant, r.seed): r.finished_at for r in RunStore(tmp_path / "store").results()
    }
    events: list[RunEvent] = []
    run_study(
        spec, out=tmp_path, variants=["mse"], fresh=True, engine="solo", listener=events.append
    )
    assert trained(events) == [("mse", 0), ("mse", 1)]
    after = {(r.variant, r.seed): r.finished_at for r in RunStore(tmp_path / "store").results()}
    assert (
        after[("bce", 0)] == finished_at[("bce", 0)]
        and comparable(tmp_path / "store")[("bce", 0)] == before[("bce", 0)]
    )


def test_a_damaged_run_is_reported_by_name_and_retrained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = study(seeds=1, variants={"bce": {}, "mse": {"train.loss": "mean_squared_error"}})
    spec = spec.with_epochs(1)
    run_study(spec, out=tmp_path, engine="solo")
    damaged = tmp_path / "store" / "mse" / "seed-0" / "result.json"
    damaged.write_text('{"key": "trunc')
    assert main(["status", str(tmp_path / "store")]) == 0
    printed = capsys.readouterr().out
    assert "damaged" in printed and "result.json" in printed
    events: list[RunEvent] = []
    again = run_study(spec, out=tmp_path, engine="solo", listener=events.append)
    assert [(e.plan.variant, e.plan.seed) for e in events if e.kind == "damaged"] == [("mse", 0)]
    assert trained(events) == [("mse", 0)] and again.reused == 1 and not again.failed
    assert {s.state for s in RunStore(tmp_path / "store").indexed_runs()} == {RunState.DONE}


# -- claims -------------------------------------------------------------------------------------
def _claim(path: Path, key: str, *, pid: int, host: str, expires: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"key": key, "owner": "other", "host": host, "pid": pid, "started": "then"}
    path.write_text(json.dumps({**record, "expires": expires}))


def test_claims_of_live_workers_are_left_alone_and_stale_ones_are_taken_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = study(seeds=1).with_epochs(1)
    run_study(spec, out=tmp_path, variants=["bce"], engine="solo")
    store = RunStore(tmp_path / "store")
    keys = {
        e["variant"]: e["key"] for e in json.loads((store.root / "study.json").read_text())["runs"]
    }
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        here = socket.gethostname()
        far = time.time() + 3600
        _claim(
            store.run_dir("mse", 0) / "claim.json",
            keys["mse"],
            pid=sleeper.pid,
            host=here,
            expires=far,
        )
        _claim(
            store.run_dir("fast", 0) / "claim.json",
            keys["fast"],
            pid=2**22 + 1,
            host=here,
            expires=far,
        )
        state = {s.variant: s for s in store.indexed_runs()}
        assert state["mse"].state == RunState.RUNNING and str(sleeper.pid) in state["mse"].detail
        assert state["fast"].state == RunState.PLANNED  # its holder's process is gone

        # status: the counts first, then only the run that needs a look (claimed) unless --all.
        capsys.readouterr()
        assert main(["status", str(store.root)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == (
            f"{store.root}: 3 runs: 1 done, 0 failed, 0 diverged, 0 damaged, 1 planned, 1 claimed"
        )
        rows = [line.split() for line in lines if "│" in line]
        assert [(row[1], row[5]) for row in rows if row[1] != "variant"] == [("mse", "claimed")]
        assert f"pid {sleeper.pid}" in "".join(lines)
        assert lines[-1] == "2 done or planned runs not listed; --all lists every run"
        assert main(["status", str(store.root), "--all"]) == 0
        rows = [line.split() for line in capsys.readouterr().out.splitlines() if "│" in line]
        assert sorted(row[1] for row in rows if row[1] != "variant") == ["bce", "fast", "mse"]

        outcome = run_study(spec, out=tmp_path, engine="solo", wait=False)
        assert [(p.variant, p.seed) for p, _ in outcome.skipped] == [("mse", 0)]
        assert f"pid {sleeper.pid}" in outcome.skipped[0][1]
        assert outcome.trained == 1  # fast, whose claim was free

        # An expired lease is free, whoever held it and wherever.
        _claim(
            store.run_dir("mse", 0) / "claim.json", keys["mse"], pid=1, host="elsewhere", expires=0
        )
        assert run_study(spec, out=tmp_path, engine="solo", wait=False).trained == 1
    finally:
        sleeper.kill()


# -- several processes --------------------------------------------------------------------------
def _tricklab(*args: str) -> list[str]:
    return [sys.executable, "-m", "tricklab", *args]


def _three_workers(path: Path, out: Path) -> None:
    """Three processes on one study at once: every run committed by exactly one of them."""
    command = _tricklab("run", str(path), "--out", str(out), "--engine", "solo", "--quiet")
    workers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(3)
    ]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], outputs
    assert not any("Traceback" in o for o in outputs)
    # One line per run a worker committed: "[  3.1 s] 3/12 bce seed 0: 2 epochs (best 2), ..."
    committed = re.findall(r"\] \d+/\d+ (\S+ seed \d+): \d+ epochs", "\n".join(outputs))
    assert len(committed) == 12 and len(set(committed)) == 12


def _kill_and_rerun(path: Path, out: Path, engine: str, kills: int) -> None:
    """``kill -9`` a worker at random moments while it holds runs it has not committed, then
    let one finish: nothing finished retrained, nothing damaged."""
    command = _tricklab(
        "run",
        str(path),
        "--out",
        str(out),
        "--engine",
        engine,
        "--quiet",
        "--checkpoint-every",
        "0",
    )
    chance = random.Random(int(os.environ.get("TRICKLAB_KILL_SEED", "7")))
    store = RunStore(out / "store")
    for kill in range(1, kills + 1):
        done_before = {(r.variant, r.seed): r.finished_at for r in store.results()}
        worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        held = _kill_while_holding(store.root, worker, after=chance.uniform(0.0, 3.0))
        if held is None:  # it finished the study before this kill: nothing left to kill
            assert worker.returncode == 0 and kill > 1, f"kill {kill}: the worker ended itself"
            break
        # It died holding those runs, uncommitted: their claims stay behind, naming it.
        assert _held_unfinished(store.root, worker.pid) == held, f"kill {kill}: {held}"
        assert RunState.DAMAGED not in {s.state for s in store.indexed_runs()}
        after = {(r.variant, r.seed): r.finished_at for r in store.results()}
        assert all(after[run] == when for run, when in done_before.items())  # none retrained
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stdout + finished.stderr


def _held_unfinished(root: Path, pid: int) -> list[str]:
    """The runs (``variant/seed-n``) that process ``pid`` holds a claim on and has not
    committed: their claim.json names it and they have no result.json."""
    held = []
    for claim in sorted(root.glob("*/seed-*/claim.json")):
        with contextlib.suppress(OSError, ValueError):  # released while read
            holder = json.loads(claim.read_text(encoding="utf-8")).get("pid")
            if holder == pid and not (claim.parent / "result.json").exists():
                held.append(f"{claim.parent.parent.name}/{claim.parent.name}")
    return held


def _kill_while_holding(
    root: Path, worker: subprocess.Popen[bytes], after: float
) -> list[str] | None:
    """``kill -9`` ``worker`` about ``after`` seconds after it first holds a run, at a moment
    it holds runs it has not committed; returns those runs (None: it ended by itself first).

    The worker is stopped (SIGSTOP) while its claims are read, so that it cannot commit
    between the check and the kill; stopped between two runs or inside a commit, it goes on
    (SIGCONT) and is tried again a moment later."""
    deadline = time.monotonic() + 300
    while not _held_unfinished(root, worker.pid):  # start-up: Python, Keras, the data
        if worker.poll() is not None:
            return None
        assert time.monotonic() < deadline, "the worker claimed no run in 300 s"
        time.sleep(0.05)
    time.sleep(after)  # into training: some epochs, checkpoints, perhaps commits
    while worker.poll() is None:
        worker.send_signal(signal.SIGSTOP)
        while (states := _thread_states(worker.pid)) and not states <= {"T", "Z"}:
            time.sleep(0.005)  # until every thread has stopped (or it has ended)
        held = _held_unfinished(root, worker.pid) if states == {"T"} else []
        if held:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            return held
        worker.send_signal(signal.SIGCONT)
        assert time.monotonic() < deadline + after, "the worker never held an unfinished run"
        time.sleep(0.05)
    return None


def _thread_states(pid: int) -> set[str]:
    """The states of process ``pid``'s threads in /proc (R, S, D, T: stopped, Z: ended...);
    none once it has been reaped."""
    states = set()
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        with contextlib.suppress(OSError, IndexError):  # a thread that ended meanwhile
            states.add(stat.read_text().rsplit(")", 1)[1].split()[0])
    return states


def test_solo_workers_in_parallel_keep_the_single_process_results(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "store.toml", STUDY)
    run_study(path, out=tmp_path / "single", engine="solo")
    _three_workers(path, tmp_path / "three")
    assert comparable(tmp_path / "three" / "store") == comparable(tmp_path / "single" / "store")


@pytest.mark.parametrize("kills", [2, pytest.param(20, marks=pytest.mark.stress)])
def test_a_population_killed_at_random_moments_loses_nothing(tmp_path: Path, kills: int) -> None:
    path = write_toml(tmp_path / "store.toml", STUDY)
    run_study(path, out=tmp_path / "single", engine="population")
    _kill_and_rerun(path, tmp_path / "killed", "population", kills)
    assert comparable(tmp_path / "killed" / "store") == comparable(tmp_path / "single" / "store")


# make test kills the population (above); solo's kills run in make stress (about a minute).
@pytest.mark.stress
@pytest.mark.parametrize("kills", [1, 20])
def test_solo_killed_loses_nothing(tmp_path: Path, kills: int) -> None:
    path = write_toml(tmp_path / "store.toml", STUDY)
    run_study(path, out=tmp_path / "single", engine="solo")
    _kill_and_rerun(path, tmp_path / "killed", "solo", kills=kills)
    assert comparable(tmp_path / "killed" / "store") == comparable(tmp_path / "single" / "store")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_stops_at_an_epoch_boundary_keeps_a_checkpoint_and_exits_130(
    tmp_path: Path, sig: int
) -> None:
    table = {**STUDY, "seeds": [0, 1], "train": {**STUDY["train"], "epochs": 200}}
    table["train"].pop("early_stopping")
    path = write_toml(tmp_path / "store.toml", table)
    command = _tricklab(
        "run", str(path), "--out", str(tmp_path), "--quiet", "--engine", "population"
    )
    worker = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert worker.stdout is not None
    for line in worker.stdout:  # the population is training once it reports an epoch
        if "population of 6 members, epoch" in line:
            break
    worker.send_signal(sig)
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 130, out + err
    assert "stopping at the next epoch boundary" in err and "Traceback" not in out + err
    assert re.search(
        r"interrupted: finished runs are kept; 6 run\(s\) in training were "
        r"checkpointed after epoch \d+\. Run the same command to resume them\.",
        out,
    )
    assert list((tmp_path / "store" / ".checkpoints").glob("*.npz"))
