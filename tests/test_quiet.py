"""Library warnings go to the study log, tagged with their runs; the terminal says how many."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import write_study

import tricklab
from tricklab.base.quiet import capture, concerning

# categorical_crossentropy on one sigmoid unit: Keras warns (SyntaxWarning) while tracing its
# steps, and lint (TL002) already explains it on the terminal.
STUDY = """
name = "quiet"
dataset = "thoracic"
seeds = 2
[model]
layers = [
  {type = "dense", units = 4, activation = "relu"},
  {type = "dense", units = 1, activation = "sigmoid"},
]
[train]
loss = "binary_crossentropy"
batch_size = 64
epochs = 1
[variants.bce]
[variants.cce]
train.loss = "categorical_crossentropy"
"""


def test_run_keeps_library_warnings_off_the_terminal_and_in_the_study_log(
    tmp_path: Path,
) -> None:
    path = write_study(tmp_path / "quiet.toml", STUDY)
    out = tmp_path / "runs"
    command = [sys.executable, "-m", "tricklab", "run", str(path), "--out", str(out), "--quiet"]
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONWARNINGS": ""}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    terminal = done.stdout + done.stderr
    assert "Warning" not in terminal and "y_pred.shape" not in terminal
    assert "TL002" in terminal  # what the user must see stays
    log = out / "quiet" / "study.log"
    entries = [line for line in log.read_text().splitlines() if line.startswith("[")]
    assert entries and all("SyntaxWarning (keras/" in e for e in entries)
    assert all(e.endswith("runs: cce seeds 0-1") for e in entries)  # the cohort, not bce
    assert f"{len(entries)} warnings in {log}" in done.stdout.splitlines()

    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0 and "warnings in" not in again.stdout  # nothing trained


def test_tricklab_warnings_errors_and_library_errors_still_reach_the_user(
    recwarn: pytest.WarningsRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    own = str(Path(tricklab.__file__).parent / "data" / "_csv.py")
    runs = [SimpleNamespace(variant="a", seed=0), SimpleNamespace(variant="b", seed=3)]
    with capture(runs) as caught:
        warnings.warn_explicit("column x is constant", UserWarning, own, 1)
        warnings.warn_explicit("noise from a library", UserWarning, "/v/site-packages/lib/m.py", 7)
        with concerning(runs[1:]):
            logging.getLogger("jax._src.compiler").warning("persistent cache is off")
            logging.getLogger("jax._src.compiler").error("compilation failed")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(UserWarning):
                warnings.warn("made an error by the user's filter", UserWarning, stacklevel=1)
    assert [str(w.message) for w in recwarn] == ["column x is constant"]  # shown as ever
    assert "compilation failed" in caplog.text and "persistent cache" not in caplog.text
    entries = caught.take()
    assert len(entries) == 2
    assert (
        "UserWarning (lib/m.py:7), runs: a seed 0; b seed 3\n  noise from a library" in entries[0]
    )
    assert "warning logged by jax._src.compiler" in entries[1]
    assert "runs: b seed 3\n  persistent cache is off" in entries[1]
    warnings.warn_explicit("after the block", UserWarning, "/v/site-packages/lib/m.py", 8)
    assert caught.take() == [] and len(recwarn) == 2  # once the block is left, shown as ever


def test_warnings_caught_on_a_ray_worker_are_relayed_to_the_drivers_log() -> None:
    """A Ray task returns what its capture caught; the driver adds it to its own capture."""
    from tricklab.base.quiet import Caught, capture, relay

    remote = [
        Caught("SyntaxWarning", "expected num_classes > 1", "keras/losses.py:34", (("cce", 3),))
    ]
    with capture() as log:
        relay(remote)
    (entry,) = log.take()
    assert "SyntaxWarning (keras/losses.py:34), runs: cce seed 3" in entry
    assert "expected num_classes > 1" in entry
    with pytest.warns(UserWarning, match="expected num_classes > 1"):
        relay(remote)  # no capture in force: shown, not lost
