"""Executors: a study trained by worker processes or on Ray gives the local executor's results."""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import DROPOUT_STUDY, comparable

from tricklab.api import run_study
from tricklab.cli import main
from tricklab.executors import RunEvent
from tricklab.spec import StudySpec
from tricklab.store import RunState, RunStore

# 2 variants x 2 seeds of the dropout study, 3 epochs each, without early stopping.
STUDY: dict[str, Any] = {
    **DROPOUT_STUDY,
    "name": "executors",
    "seeds": [0, 1],
    "train": {k: v for k, v in DROPOUT_STUDY["train"].items() if k != "early_stopping"}
    | {"epochs": 3},
    "variants": {v: DROPOUT_STUDY["variants"][v] for v in ("bce", "mse")},
}
pytestmark = pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")


@pytest.fixture(scope="module")
def spec() -> StudySpec:
    return StudySpec.from_dict(copy.deepcopy(STUDY))


def _local(spec: StudySpec, out: Path, engine: str) -> dict[tuple[str, int], dict[str, Any]]:
    run_study(spec, out=out, engine=engine)
    return comparable(out / "executors")


@pytest.fixture(scope="module")
def local_population(spec: StudySpec, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The local executor's results when the study trains as one population."""
    return _local(spec, tmp_path_factory.mktemp("population"), "population")


@pytest.fixture(scope="module")
def local_solo(spec: StudySpec, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The local executor's results when each run trains solo."""
    return _local(spec, tmp_path_factory.mktemp("solo"), "solo")


@pytest.fixture(scope="module")
def ray_cluster() -> Any:
    """One local Ray for the module (loopback only), as the executor would start it."""
    ray = pytest.importorskip("ray")
    from tricklab.executors._ray import start_local

    stop = start_local(ray, 2)
    yield ray
    stop()


def _done(root: Path) -> set[tuple[str, int]]:
    return {(s.variant, s.seed) for s in RunStore(root).indexed_runs() if s.state == RunState.DONE}


def _listening(psutil: Any) -> set[tuple[str, str]]:
    """(process name, address) of every listening socket of this process and its children."""
    found = set()
    for process in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # a worker may exit meanwhile
            for sock in process.net_connections(kind="inet"):
                if sock.status == psutil.CONN_LISTEN:
                    found.add((process.name(), sock.laddr.ip))
    return found


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback  # ::ffff:127.0.0.1 too


@pytest.mark.slow
def test_the_local_ray_listens_on_loopback_only_and_keeps_its_folder_private(
    tmp_path: Path,
) -> None:
    """Runs before the tests sharing ray_cluster: the executor must start its own Ray."""
    ray = pytest.importorskip("ray")
    import psutil  # Ray ships it

    assert not ray.is_initialized()
    seen: dict[str, Any] = {}

    def inspect(event: RunEvent) -> None:  # while the executor's Ray is up
        if event.kind == "done" and not seen:
            session = Path(ray._private.worker._global_node.get_session_dir_path())
            seen["listening"] = _listening(psutil)
            seen["folders"] = {p: p.stat() for p in [session, *session.parents]}

    study = copy.deepcopy(STUDY)
    study.update(seeds=[0], variants={"bce": {}})
    study["train"]["epochs"] = 1
    spec = StudySpec.from_dict(study)
    outcome = run_study(spec, out=tmp_path, engine="solo", executor="ray", listener=inspect)
    assert outcome.trained == 1 and not outcome.failed and not ray.is_initialized()
    names = {name for name, _ in seen["listening"]}
    assert {"gcs_server", "raylet"} <= names, seen["listening"]
    assert {(n, a) for n, a in seen["listening"] if not _loopback(a)} == set()
    # Ray makes its session folder world-writable; a folder above it lets no one else in
    private = [
        p
        for p, st in seen["folders"].items()
        if p.name.startswith("tricklab-ray-") and st.st_mode & 0o077 == 0
    ]
    assert len(private) == 1 and seen["folders"][private[0]].st_uid == os.getuid()
    assert not private[0].exists()  # removed once Ray stopped


@pytest.mark.slow
def test_ray_trains_a_study_with_the_local_executors_results(
    spec: StudySpec, local_population: Any, ray_cluster: Any, tmp_path: Path
) -> None:
    events: list[RunEvent] = []
    outcome = run_study(
        spec, out=tmp_path, engine="population", executor="ray", listener=events.append
    )
    assert outcome.trained == 4 and not outcome.failed
    assert sorted((e.plan.variant, e.plan.seed) for e in events if e.kind == "done" and e.plan) == [
        ("bce", 0),
        ("bce", 1),
        ("mse", 0),
        ("mse", 1),
    ]
    assert comparable(tmp_path / "executors") == local_population


@pytest.mark.slow
def test_a_killed_ray_worker_has_its_runs_retried_and_the_study_completes(
    spec: StudySpec, local_population: Any, ray_cluster: Any, tmp_path: Path
) -> None:
    outcome: list[Any] = []
    study = threading.Thread(
        target=lambda: outcome.append(
            run_study(spec, out=tmp_path, engine="population", executor="ray")
        )
    )
    study.start()
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and study.is_alive() and time.monotonic() < deadline:
        found = subprocess.run(  # a worker busy with a unit is titled ray::tricklab:<unit>
            ["pgrep", "-f", "ray::tricklab:population"], capture_output=True, text=True
        ).stdout.split()
        if found:
            victim = int(found[0])
            os.kill(victim, signal.SIGKILL)
        time.sleep(0.05)
    study.join(timeout=300)
    assert victim is not None, "no Ray worker was seen training the population"
    assert outcome and outcome[0].trained == 4 and not outcome[0].failed
    assert _done(tmp_path / "executors") == {("bce", 0), ("bce", 1), ("mse", 0), ("mse", 1)}
    assert comparable(tmp_path / "executors") == local_population


@pytest.mark.slow
def test_two_worker_processes_give_the_local_results_even_when_one_is_killed(
    spec: StudySpec, local_solo: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    killed: list[int] = []

    def kill_a_worker_in_training() -> None:
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            for claim in (tmp_path / "executors").glob("*/seed-*/claim.json"):
                with contextlib.suppress(OSError, ValueError, KeyError):
                    pid = int(json.loads(claim.read_text())["pid"])
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_worker_in_training)
    killer.start()
    events: list[RunEvent] = []
    outcome = run_study(
        spec, out=tmp_path, engine="solo", executor="process", workers=2, listener=events.append
    )
    killer.join()
    assert killed and killed[0] != os.getpid()
    assert f"(pid {killed[0]}) was killed by SIGKILL; the other workers take over its runs" in (
        capfd.readouterr().err
    )
    done = [(e.plan.variant, e.plan.seed) for e in events if e.kind == "done" and e.plan]
    assert sorted(done) == [("bce", 0), ("bce", 1), ("mse", 0), ("mse", 1)]  # each once
    assert [e.index for e in events if e.kind == "done"] == [1, 2, 3, 4]
    assert any(e.kind == "epoch" for e in events)  # the workers' progress reaches the display
    assert outcome.trained == 4 and not outcome.failed
    assert comparable(tmp_path / "executors") == local_solo


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "0"], "--workers must be an int >= 1. Received: workers=0."),
        (["--workers", "2"], "--workers needs --executor process or ray"),
        (["--executor", "process", "--address", "auto"], "--address needs --executor ray."),
        (
            ["--executor", "ray", "--address", "auto", "--workers", "2"],
            "a cluster given with --address has its own",
        ),
    ],
)
def test_executor_options_that_do_not_fit_are_errors(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    study = Path(__file__).parents[1] / "studies" / "thoracic-losses.toml"
    assert main(["run", str(study), "--out", str(tmp_path), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "thoracic-losses").exists()  # refused before anything ran


def test_the_ray_executor_without_ray_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    study = Path(__file__).parents[1] / "studies" / "thoracic-losses.toml"
    assert main(["run", str(study), "--out", str(tmp_path), "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert "--executor ray needs the ray extra: pip install 'tricklab[ray]'" in err
    assert "Traceback" not in err
