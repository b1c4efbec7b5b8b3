"""Backends: JAX by default, TensorFlow selectable, the same study file on each."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_study
from test_cli import TINY_TOML

from tricklab.store import load_result


def run(study: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tricklab", "run", str(study), "--quiet", *args],
        capture_output=True,
        text=True,
        cwd=study.parent,
        env={**os.environ, **(env or {})},
    )


def result(study: Path) -> dict:
    path = study.parent / "runs" / "tiny" / "baseline" / "seed-0" / "result.json"
    return json.loads(path.read_text())


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason="the tensorflow extra is not installed (pip install 'tricklab[tensorflow]')",
)
def test_tensorflow_backend_trains_the_same_study(tmp_path: Path) -> None:
    study = write_study(tmp_path / "tiny.toml", "diagnostics = true\n" + TINY_TOML)
    out = run(study, "--backend", "tensorflow")
    assert out.returncode == 0, out.stderr
    assert "on tensorflow" in out.stdout
    tf = result(study)
    assert tf["backend"] == "tensorflow"
    assert {"tensorflow", "tensorflow-cpu"} & set(tf["versions"])
    assert tf["status"] == "ok" and tf["epochs_run"] == 2
    rows = load_result(study.parent / "runs" / "tiny" / "baseline" / "seed-0").diagnostics
    assert [r["epoch"] for r in rows] == [0, 1, 2]  # gradients through tf.GradientTape
    assert all(r["kernel_grad_norm"] > 0 for r in rows)

    # the backend is part of a run's key: switching retrains instead of reusing
    again = run(study, env={"KERAS_BACKEND": "jax"})
    assert "trained 1 run, reused 0" in again.stdout
    assert result(study)["backend"] == "jax"


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="PyTorch is supported but not installed here: PyPI's torch is a "
    "multi-GB CUDA build (pip install 'tricklab[torch]')",
)
def test_torch_backend_trains_the_same_study(tmp_path: Path) -> None:
    study = write_study(tmp_path / "tiny.toml", TINY_TOML)
    out = run(study, "--backend", "torch")
    assert out.returncode == 0, out.stderr
    assert result(study)["backend"] == "torch"


def test_unknown_backend_is_rejected(tmp_path: Path) -> None:
    study = write_study(tmp_path / "tiny.toml", TINY_TOML)
    out = run(study, env={"KERAS_BACKEND": "mxnet"})
    assert out.returncode == 2
    assert "unknown backend 'mxnet'. Expected one of: jax, tensorflow, torch." in out.stderr
