"""Run options have one home (tricklab.spec.RunOptions): the CLI, the Python API and the
process executor's workers all read it."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from tricklab.api import run_study
from tricklab.base.errors import TricklabError
from tricklab.cli._main import _parser
from tricklab.executors import EventKind
from tricklab.spec import RunOptions, StudySpec


def test_the_python_api_checks_options_as_the_command_line_does(
    tiny: dict[str, Any], tmp_path: Path
) -> None:
    # Accepted before: claims then expired under a live worker.
    with pytest.raises(TricklabError, match=r"^--renew must be > 0 and less than --lease") as info:
        run_study(StudySpec.from_dict(tiny), out=tmp_path, renew=90, lease=60)
    assert str(info.value).endswith("Received: renew=90, lease=60.")
    with pytest.raises(TricklabError, match=r"Received: lease=inf\.$"):
        run_study(StudySpec.from_dict(tiny), out=tmp_path, lease=float("inf"))
    with pytest.raises(TricklabError, match=r"^unknown run option 'engines'"):
        run_study(StudySpec.from_dict(tiny), out=tmp_path, engines="solo")
    assert not (tmp_path / "tiny").exists()  # refused before anything was stored


def test_the_command_line_defaults_are_the_run_options_defaults() -> None:
    args = _parser().parse_args(["run", "study.toml"])
    defaults = RunOptions()
    for name in ("engine", "executor", "workers", "address", "checkpoint_every", "lease", "renew"):
        assert getattr(args, name) == getattr(defaults, name), name
    assert (not args.no_wait) == defaults.wait


def test_a_worker_job_is_a_picklable_call_that_trains_locally(
    tiny: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tricklab.study import train_study

    captured: list[Any] = []

    class Recorder:  # stands in for the process executor: keeps the job it is handed
        name = "process"
        crashed: tuple[str, ...] = ()

        def run_workers(self, job: Any, stop_requested: Any) -> Any:
            captured.append(pickle.loads(pickle.dumps(job)))
            return iter(())

    import tricklab.executors as executors

    real = executors.get
    monkeypatch.setattr(
        executors, "get", lambda o: Recorder() if o.executor == "process" else real(o)
    )
    train_study(
        StudySpec.from_dict(tiny),
        out=tmp_path,
        options=RunOptions(executor="process", workers=2, engine="solo"),
    )
    (job,) = captured
    events: list[Any] = []
    job(events.append, lambda: False)  # what a worker process does with it
    assert [e.kind for e in events if e.kind == EventKind.DONE] == [EventKind.DONE]
    assert (tmp_path / "tiny" / "baseline" / "seed-0" / "result.json").exists()
