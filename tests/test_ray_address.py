"""--executor ray --address: a Ray head started with `ray start --head` (token authentication on,
bound to 127.0.0.1) trains a study with the local executor's results; a wrong token is one line.

The head is a subprocess of this module, in its own session, stopped by its id (never `ray
stop`: other Ray processes on the machine must live on); the drivers are `tricklab run`
subprocesses, so the Ray state of this process (its token, RAY_AUTH_MODE) plays no part.
"""

from __future__ import annotations

import contextlib
import copy
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import TINY, write_toml

from tricklab.cli import main
from tricklab.store import RunStore

pytestmark = pytest.mark.slow

#: Ray's own settings that must not leak from this process into the head or the drivers.
RAY_ENVIRONMENT = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


@dataclass(frozen=True)
class Head:
    address: str
    token: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in RAY_ENVIRONMENT}
    return env | extra


def _session(sid: int) -> list[int]:
    """The processes of session ``sid``: the head and every process it started, Ray's workers
    included (they make their own process groups, not sessions)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.getsid(int(entry)) == sid:
                    found.append(int(entry))
    return found


def _stop(head: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the head's process group, then SIGKILL to whatever of its session is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(head.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(timeout=15)
    until = time.monotonic() + 10
    while _session(head.pid) and time.monotonic() < until:
        time.sleep(0.2)
    for pid in _session(head.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    head.wait()


@pytest.fixture(scope="module")
def head() -> Iterator[Head]:
    """`ray start --head` on free ports, token authentication on, listening on 127.0.0.1 only."""
    pytest.importorskip("ray")
    cli = Path(sys.executable).with_name("ray")
    if not cli.exists():
        pytest.skip("no `ray` command next to this Python")
    # Under /tmp with a short name: Ray's socket paths (inside its temp dir) must stay short.
    folder = Path(tempfile.mkdtemp(prefix="tl-ray-", dir="/tmp"))
    token = folder / "token"
    token.write_text(secrets.token_hex(32), encoding="utf-8")
    port = _free_port()
    env = _environment(
        RAY_AUTH_MODE="token",  # whatever ~/.ray holds: this head's own token
        RAY_AUTH_TOKEN_PATH=str(token),
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # on Linux, keeps --node-ip-address=127.0.0.1
        RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",  # SIGTERM stops it at once
    )
    command = [
        str(cli),
        "start",
        "--head",
        "--block",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=2",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--ray-client-server-port={_free_port()}",  # not 10001, which another Ray may hold
        f"--temp-dir={folder / 'r'}",
    ]
    log = folder / "head.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        until = time.monotonic() + 90
        while "Ray runtime started" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > until:
                pytest.fail(f"the Ray head did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.25)
        yield Head(f"127.0.0.1:{port}", token)
    finally:
        _stop(process)
        shutil.rmtree(folder, ignore_errors=True)


def _tricklab(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """``tricklab run ARGS --quiet`` started in a subprocess."""
    return subprocess.Popen(
        [sys.executable, "-m", "tricklab", "run", *args, "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return process.returncode, out, err


def _numbers(root: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """Each run's test metrics (best and last weights) and history, flat."""
    out = {}
    for r in RunStore(root).results():
        test = {f"test.{which}.{k}": v for which, m in r.test.items() for k, v in m.items()}
        history = {f"history.{k}.{i}": v for k, vs in r.history.items() for i, v in enumerate(vs)}
        out[(r.variant, r.seed)] = test | history
    return out


def test_a_study_on_a_ray_head_with_token_auth_has_the_local_results(
    head: Head, tmp_path: Path
) -> None:
    study = copy.deepcopy(TINY)
    study["seeds"] = [0, 1]
    path = write_toml(tmp_path / "tiny.toml", study)
    # The token reaches the driver as Ray documents it; RAY_AUTH_MODE is left unset.
    driver = _tricklab(
        str(path),
        "--out",
        str(tmp_path / "ray"),
        "--executor",
        "ray",
        "--address",
        head.address,
        env=_environment(RAY_AUTH_TOKEN_PATH=str(head.token)),
    )
    try:  # meanwhile (it mostly waits for Ray's workers to start), the local executor here
        local_code = main(["run", str(path), "--out", str(tmp_path / "local"), "--quiet"])
    finally:
        code, out, err = _finish(driver)
    assert local_code == 0
    assert code == 0, out[-2000:] + err[-4000:]
    assert "trained 2 runs" in out

    on_ray, local = _numbers(tmp_path / "ray" / "tiny"), _numbers(tmp_path / "local" / "tiny")
    assert sorted(on_ray) == sorted(local) == [("baseline", 0), ("baseline", 1)]
    for run, numbers in local.items():
        assert any(k.startswith("test.best.") for k in numbers)
        assert on_ray[run] == pytest.approx(numbers, abs=1e-9, rel=0), run

    # Against the same head (one test, so parallel test workers never start two heads):
    _a_wrong_token_is_one_line_naming_the_address(head, tmp_path / "wrong-token")


def _a_wrong_token_is_one_line_naming_the_address(head: Head, tmp_path: Path) -> None:
    tmp_path.mkdir()
    path = write_toml(tmp_path / "tiny.toml", TINY)
    code, _, err = _finish(
        _tricklab(
            str(path),
            "--out",
            str(tmp_path),
            "--executor",
            "ray",
            "--address",
            head.address,
            # One try instead of Ray's 20 (one a second) against a token that will not change.
            env=_environment(
                RAY_AUTH_TOKEN=secrets.token_hex(32), RAY_gcs_server_port_wait_time_s="1"
            ),
        )
    )
    assert code == 2, err[-4000:]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: could not connect to the Ray cluster at {head.address}: authentication token "
        "missing or incorrect (the cluster refused the token from RAY_AUTH_TOKEN); give this "
        "machine the cluster's token (`ray get-auth-token` on the head prints it) in "
        "RAY_AUTH_TOKEN, in a file named by RAY_AUTH_TOKEN_PATH, or in ~/.ray/auth_token (see "
        "README, 'Running a study on a Ray cluster')."
    ], err[-4000:]
    assert "Traceback" not in err
    assert not list(tmp_path.glob("tiny/*/seed-*/result.json"))  # nothing trained elsewhere
