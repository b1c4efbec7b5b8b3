"""tricklab search: the [search] table, pruning, batches, storages, kill -9 and resume, workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tricklab.base.errors import SpecError, TricklabError
from tricklab.cli import main
from tricklab.spec import load_study

optuna = pytest.importorskip("optuna")

STUDY = """
name = "{name}"
dataset = "thoracic"
seeds = 3
[model]
layers = [
  {{type = "dense", units = 8, activation = "relu"}},
  {{type = "dropout", rate = 0.2}},
  {{type = "dense", units = 1, activation = "sigmoid"}},
]
[train]
loss = "binary_crossentropy"
optimizer = {{name = "adam", learning_rate = 0.01}}
batch_size = 32
epochs = {epochs}
[search]
{search}
"""
SPACE = """
"train.optimizer.learning_rate" = {float = [1e-3, 1e-1], log = true}
"model.layers[1].rate" = {float = [0.0, 0.5]}
"model.layers[0].activation" = {choice = {relu = "relu", leaky = {name = "leaky_relu",
                                                                 negative_slope = 0.1}}}
"""


def _study(tmp_path: Path, *, name: str = "s", epochs: int = 3, search: str = SPACE) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(STUDY.format(name=name, epochs=epochs, search=search), encoding="utf-8")
    return path


def _load(tmp_path: Path, name: str = "s") -> optuna.Study:
    from tricklab.tools.search._storage import open_storage

    journal = tmp_path / "runs" / name / "search" / "optuna.journal"
    return optuna.load_study(study_name=name, storage=open_storage(str(journal)))


def _states(study: optuna.Study) -> dict[str, int]:
    from tricklab.tools.search import counts

    return counts(study)


def _tricklab(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "tricklab", "search", *map(str, args)]


# -- the [search] table -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("search", "message"),
    [
        ('"train.epochs" = {int = [5, 1]}', 'search."train.epochs": int: must be [low, high]'),
        ('"train.epochs" = {int = [1, 5], lg = true}', "unknown key 'lg'. Did you mean 'log'?"),
        ('"train.epochs" = 3', "must be a distribution table"),
        (
            '"train.optimizer.learning_rate" = {float = [0.0, 1.0], log = true}',
            "a log range needs low > 0",
        ),
        ('"model.layers[1].rate" = {float = [0.0, 1.5]}', "high 1.5: model.layers[1].rate"),
        ('"model.layers[5].rate" = {float = [0.0, 0.5]}', "model.layers[5]: no such item"),
        ('"model.layers[0].activation" = {choice = []}', "choice: must be a list of scalars"),
        ('"model.layers[0].activation" = {choice = ["relu", "rleu"]}', "unknown activation 'rleu'"),
        ('"dataset" = {choice = ["a"]}', "unknown key 'dataset'. A search overrides"),
    ],
)
def test_bad_search_tables_are_one_located_line(
    tmp_path: Path, search: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tricklab.tools.search import parse_space

    path = _study(tmp_path, search=search)
    with pytest.raises(SpecError) as caught:
        parse_space(load_study(path))
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(path))
    for command in (
        ["search", str(path), "--trials", "2", "--out", str(tmp_path)],
        ["lint", str(path)],
    ):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert message in " ".join(err.split()) and "Traceback" not in err


def test_space_maps_labels_to_tables(tmp_path: Path) -> None:
    from tricklab.tools.search import parse_space, trial_recipe
    from tricklab.tools.search._space import base_recipe

    spec = load_study(_study(tmp_path))
    space = parse_space(spec)
    dists = space.distributions()
    assert dists["train.optimizer.learning_rate"].log is True
    assert dists["model.layers[0].activation"].choices == ("relu", "leaky")
    overrides = space.overrides(
        {
            "train.optimizer.learning_rate": 0.02,
            "model.layers[1].rate": 0.3,
            "model.layers[0].activation": "leaky",
        }
    )
    recipe = trial_recipe(base_recipe(spec), overrides)
    assert recipe.model.layers[0].activation.name == "leaky_relu"
    assert recipe.model.layers[0].activation.args == {"negative_slope": 0.1}
    assert recipe.train.optimizer.args["learning_rate"] == 0.02


def test_missing_optuna_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tricklab.tools.search import MISSING, require_optuna

    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(TricklabError, match=r"pip install 'tricklab\[search\]'"):
        require_optuna()
    assert MISSING == "tricklab search needs the search extra: pip install 'tricklab[search]'"
    assert main(["search", str(_study(tmp_path)), "--trials", "1"]) == 2


def test_objective_must_be_logged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _study(tmp_path)
    out = str(tmp_path / "runs")
    assert main(["search", str(path), "--trials", "1", "--objective", "val_auc", "--out", out]) == 2
    assert "'val_auc' is not logged" in capsys.readouterr().err


# -- searches -----------------------------------------------------------------------------------
@pytest.mark.parametrize("batch", [pytest.param(1, marks=pytest.mark.slow), 4])
def test_bad_trials_are_pruned(tmp_path: Path, batch: int) -> None:
    """Learning rates up to 5 make most trials hopeless: the median pruner stops them early,
    in solo runs and, with --batch, as members of a population."""
    from tricklab.tools.search import run_search

    search = '"train.optimizer.learning_rate" = {float = [1e-3, 5.0], log = true}'
    path = _study(tmp_path, epochs=8, search=search)
    outcome = run_search(
        path, trials=6, out=tmp_path / "runs", batch=batch, startup_trials=2, sampler_seed=3,
        images=False,
    )  # fmt: skip
    trials = outcome.study.trials
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert pruned and complete and len(pruned) + len(complete) == 6
    assert all(t.user_attrs["epochs_run"] < 8 for t in pruned)
    assert all(len(t.intermediate_values) == t.user_attrs["epochs_run"] for t in pruned)
    # a complete trial's value is its best validation loss
    for trial in complete:
        assert trial.value == pytest.approx(min(trial.intermediate_values.values()))
        assert trial.user_attrs["val_loss"] == trial.value  # the tie-break, at the best epoch


def test_rerun_continues_to_n_and_exports_variants(tmp_path: Path) -> None:
    from tricklab.tools.search import export_variants, run_search

    path = _study(tmp_path)
    runs = tmp_path / "runs"
    first = run_search(path, trials=2, out=runs, sampler_seed=0)
    assert first.trained == 2 and {p.name for p in first.images} == {
        "history.png",
        "importances.png",
    }
    again = run_search(path, trials=2, out=runs, images=False)
    assert again.trained == 0 and len(again.study.trials) == 2
    more = run_search(path, trials=3, out=runs, images=False)
    assert more.trained == 1 and _states(more.study) == {"COMPLETE": 3}

    exported = export_variants(load_study(path), more.study, 2)
    spec = load_study(exported)
    best = sorted(more.study.trials, key=lambda t: t.value)[:2]
    assert list(spec.variants) == ["baseline"] + [f"trial-{t.number}" for t in best]
    for trial in best:
        recipe = spec.variants[f"trial-{trial.number}"]
        lr = trial.params["train.optimizer.learning_rate"]
        assert recipe.train.optimizer.args["learning_rate"] == pytest.approx(lr)
    # another search definition in the same storage is refused
    _study(tmp_path, epochs=4)
    with pytest.raises(TricklabError, match="another definition"):
        run_search(path, trials=4, out=runs)


def test_trial_orphaned_between_ask_and_its_pid_is_requeued(tmp_path: Path) -> None:
    """A process killed right after asking leaves a RUNNING trial without host and pid; with a
    journal (every local worker asks under one lock) the next worker fails and requeues it."""
    from tricklab.tools.search import parse_space, run_search

    path = _study(tmp_path, epochs=2)
    first = run_search(path, trials=1, out=tmp_path / "runs", images=False)
    orphan = first.study.ask(parse_space(load_study(path)).distributions())
    outcome = run_search(path, trials=2, out=tmp_path / "runs", images=False)
    assert _states(outcome.study) == {"COMPLETE": 2, "FAIL": 1}
    retried = outcome.study.trials[-1]
    assert retried.system_attrs["failed_trial"] == orphan.number
    assert retried.params == orphan.params


def test_sqlite_storage_fails_stale_trials_of_other_machines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an RDB, trials record heartbeats; a trial whose heartbeat stopped (its worker on
    another machine died) is failed and its parameters are queued again."""
    import sqlite3

    from tricklab.tools.search import _storage, parse_space, run_search

    monkeypatch.setattr(_storage, "GRACE", 1)
    path, db = _study(tmp_path), tmp_path / "search.db"
    url = f"sqlite:///{db}"
    first = run_search(path, trials=1, out=tmp_path / "runs", storage=url, images=False)
    beats = sqlite3.connect(db).execute("SELECT trial_id FROM trial_heartbeats").fetchall()
    assert len(beats) == 1  # recorded while the trial trained
    with _storage.quiet():
        lost = first.study.ask(parse_space(load_study(path)).distributions())
    lost.set_user_attr("host", "another-machine")
    lost.set_user_attr("pid", 1)
    first.study._storage.record_heartbeat(lost._trial_id)
    time.sleep(2.5)  # past the grace period
    outcome = run_search(path, trials=3, out=tmp_path / "runs", storage=url, images=False)
    assert _states(outcome.study) == {"COMPLETE": 3, "FAIL": 1}
    trials = outcome.study.trials
    assert trials[lost.number].state.name == "FAIL"
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == lost.number]
    assert len(retried) == 1 and retried[0].params == lost.params
    assert retried[0].user_attrs["host"] != "another-machine"


@pytest.mark.stress  # 3 minutes; test_trial_orphaned_... covers the recovery in `make test`
def test_kill_mid_trial_then_rerun_reaches_n(tmp_path: Path) -> None:
    path = _study(tmp_path, epochs=20)
    command = _tricklab(path, "--trials", "6", "--out", tmp_path / "runs")
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = tmp_path / "runs" / "s" / "search" / "optuna.journal"
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline and first.poll() is None, "no trial started"
        if journal.exists():
            states = _states(_load(tmp_path))
            if states.get("COMPLETE", 0) >= 2 and states.get("RUNNING"):
                break
        time.sleep(0.1)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    before = _load(tmp_path)
    done_before = {t.number: (t.params, t.value) for t in before.trials if t.value is not None}
    killed = [t for t in before.trials if t.state.name == "RUNNING"]
    # (killed between ask and recording its pid, a trial has no pid: it is recovered too)
    assert len(killed) == 1 and killed[0].user_attrs.get("pid", first.pid) == first.pid

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"trial {killed[0].number} failed (its process died)" in rerun.stdout
    after = _load(tmp_path)
    states = _states(after)
    assert states.get("COMPLETE", 0) + states.get("PRUNED", 0) == 6
    assert "RUNNING" not in states and states["FAIL"] == 1
    assert len(after.trials) == 7  # 6 finished + the killed one; nothing trained twice
    for number, (params, value) in done_before.items():
        assert (after.trials[number].params, after.trials[number].value) == (params, value)
    assert after.trials[killed[0].number].state.name == "FAIL"
    retried = [t for t in after.trials if t.system_attrs.get("failed_trial") == killed[0].number]
    # Retried with the parameters the killed trial had drawn (a trial killed while drawing them
    # has only some: the retry draws the rest).
    assert len(retried) == 1 and retried[0].params.items() >= killed[0].params.items()
    # the same command once more trains nothing
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and len(_load(tmp_path).trials) == 7


@pytest.mark.slow
def test_two_workers_share_one_journal(tmp_path: Path) -> None:
    path = _study(tmp_path, epochs=3)
    command = _tricklab(path, "--trials", "4", "--workers", "2", "--out", tmp_path / "runs")
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    study = _load(tmp_path)
    assert _states(study) == {"COMPLETE": 4}
    pids = {t.user_attrs["pid"] for t in study.trials}
    assert len(pids) == 2 and os.getpid() not in pids
    assert "best val_loss" in finished.stdout


# -- ranking: ties on the objective --------------------------------------------------------------
# One ranking (tools/search/_report.ranked_trials) orders the COMPLETE trials for the summary's
# best trial and for --export-variants: best value in the study's direction; values exactly equal
# -> lower val_loss (a trial without one last); equal val_loss -> lower trial number.
RATE = "model.layers[1].rate"
# The reported case, as (value, val_loss): 8 of 9 trials at val_auc 1; of those, trial 4 has the
# lowest val_loss.
EIGHT_OF_NINE = [
    (1.0, 0.50), (1.0, 0.31), (1.0, 0.45), (0.9, 0.10), (1.0, 0.29), (1.0, 0.60), (1.0, 0.33),
    (1.0, 0.41), (1.0, 0.37),
]  # fmt: skip


def _ranked_study(
    trials: list[tuple[float, float | None]], *, objective: str = "val_auc", pruned: int = 0
) -> optuna.Study:
    """An in-memory study of COMPLETE trials (value, val_loss), numbered in order, plus
    ``pruned`` PRUNED trials at the end."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from tricklab.tools.search import infer_direction

    study = optuna.create_study(direction=infer_direction(objective).value)
    study.set_user_attr("objective", objective)
    for i, (value, val_loss) in enumerate(trials):
        attrs: dict[str, object] = {"best_epoch": 2, "overrides": {RATE: i / 100}}
        if val_loss is not None:
            attrs["val_loss"] = val_loss
        study.add_trial(
            create_trial(
                value=value, params={RATE: i / 100},
                distributions={RATE: FloatDistribution(0.0, 0.5)}, user_attrs=attrs,
            )
        )  # fmt: skip
    for _ in range(pruned):
        study.add_trial(create_trial(state=TrialState.PRUNED))
    return study


class _Reversed:
    """A study whose storage returns its trials last first (an RDB or journal shared by
    workers need not list them by number), so the trial-number rule is not storage order."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study
        self.direction = study.direction
        self.user_attrs = study.user_attrs

    def get_trials(self, **kwargs: object) -> list[optuna.trial.FrozenTrial]:
        return list(reversed(self._study.get_trials(**kwargs)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("objective", "trials", "order"),
    [
        # 8 of 9 at val_auc 1: lowest val_loss first, the 0.9 last
        (
            "val_auc",
            EIGHT_OF_NINE,
            [4, 1, 6, 8, 7, 2, 0, 5, 3],
        ),
        # equal val_loss -> lower trial number
        ("val_auc", [(1.0, 0.3), (1.0, 0.2), (1.0, 0.3), (1.0, 0.2)], [1, 3, 0, 2]),
        # a trial without a recorded val_loss ranks after those with one
        ("val_auc", [(1.0, None), (1.0, 0.7), (1.0, None)], [1, 0, 2]),
        # exact equality only: 1 - 1e-12 is not a tie with 1, whatever its val_loss
        ("val_auc", [(1.0 - 1e-12, 0.1), (1.0, 0.9)], [1, 0]),
        # ties below the best are ranked the same way
        ("val_auc", [(0.9, 0.5), (0.9, 0.2), (1.0, 0.9)], [2, 1, 0]),
        # a minimised objective (direction from the metric catalogue)
        ("val_loss", [(0.4, 0.4), (0.3, 0.3), (0.3, 0.3)], [1, 2, 0]),
        ("val_binary_crossentropy", [(0.4, 0.1), (0.3, 0.5), (0.3, 0.2)], [2, 1, 0]),
    ],
)
def test_ranking_breaks_ties_by_val_loss_then_trial_number(
    objective: str, trials: list[tuple[float, float | None]], order: list[int]
) -> None:
    from tricklab.tools.search import best_trials, ranked_trials

    study = _Reversed(_ranked_study(trials, objective=objective))
    assert [t.number for t in ranked_trials(study)] == order
    assert [t.number for t in best_trials(study, 2)] == order[:2]


def test_summary_says_how_many_trials_share_the_best_value() -> None:
    from tricklab.tools.search import summary, tie_note

    study = _ranked_study(EIGHT_OF_NINE, pruned=1)
    assert summary(study, "val_auc") == [
        "trials: 9 complete, 1 pruned",
        "best val_auc: 1 (trial 4, epoch 2, val_loss 0.29): model.layers[1].rate = 0.04",
        "best val_auc 1 shared by 8 of 9 complete trials; tie broken by lower val_loss, then "
        "lower trial number",
    ]
    # the objective is val_loss itself: only the trial number is left to break the tie
    losses = _ranked_study([(0.4, 0.4), (0.3, 0.3), (0.3, 0.3)], objective="val_loss")
    assert summary(losses, "val_loss")[1:] == [
        "best val_loss: 0.3 (trial 1, epoch 2): model.layers[1].rate = 0.01",
        "best val_loss 0.3 shared by 2 of 3 complete trials; tie broken by lower trial number",
    ]
    # no tie: the line as before, and no note
    single = _ranked_study([(0.9, 0.5), (1.0, 0.6), (0.9, 0.2)])
    assert tie_note(single, "val_auc") is None
    assert summary(single, "val_auc")[1:] == [
        "best val_auc: 1 (trial 1, epoch 2): model.layers[1].rate = 0.01"
    ]


def test_export_variants_follows_the_ranking(tmp_path: Path) -> None:
    from tricklab.tools.search import export_variants

    path = _study(tmp_path, search=f'"{RATE}" = {{float = [0.0, 0.5]}}')
    study = _ranked_study([(1.0, 0.5), (1.0, 0.3), (0.9, 0.1), (1.0, 0.3), (1.0, 0.2)])
    exported = export_variants(load_study(path), _Reversed(study), 3)
    assert list(load_study(exported).variants) == [
        "baseline", "trial-4", "trial-1", "trial-3",
    ]  # fmt: skip
    text = exported.read_text(encoding="utf-8")
    assert "# best val_auc 1 shared by 4 of 5 complete trials; tie broken by lower val_loss, " \
        "then lower trial number." in text  # fmt: skip
    assert '[variants."trial-4"]   # 1, val_loss 0.2' in text
    assert load_study(exported).variants["trial-4"].model.layers[1].rate == pytest.approx(0.04)


def test_a_finished_trial_records_its_val_loss_at_the_best_epoch() -> None:
    """The tie-break is the validation loss of the epoch whose objective value the trial got."""
    from types import SimpleNamespace

    from tricklab.tools.search._runner import _tell

    study = optuna.create_study(direction="maximize")
    ctx = SimpleNamespace(
        objective="val_auc", direction="maximize", study=study,
        resolved=SimpleNamespace(primary_metric="accuracy"),
    )  # fmt: skip
    history = {"val_auc": [0.8, 1.0, 1.0], "val_loss": [0.5, 0.4, 0.3]}
    result = SimpleNamespace(history=history, epochs_run=3, test={"best": {"accuracy": 0.8}})
    trial = study.ask()
    assert _tell(ctx, trial, SimpleNamespace(result=result), lambda event: None) == 1
    done = study.trials[0]
    assert (done.value, done.user_attrs["best_epoch"], done.user_attrs["val_loss"]) == (1.0, 2, 0.4)


def test_cli_reports_the_tie_and_exports_in_ranked_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through ``tricklab search``: trials already in the storage (none trains)."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from tricklab.tools.search import prepare

    path = _study(tmp_path, search=f'"{RATE}" = {{float = [0.0, 0.5]}}')
    path.write_text(
        path.read_text().replace("batch_size = 32", 'batch_size = 32\nmetrics = ["auc"]')
    )
    runs = tmp_path / "runs"
    study = prepare(load_study(path), out=runs, objective="val_auc").study
    for i, (value, val_loss) in enumerate([(1.0, 0.5), (1.0, 0.3), (0.9, 0.1), (1.0, 0.3)]):
        study.add_trial(
            create_trial(
                value=value, params={RATE: i / 10},
                distributions={RATE: FloatDistribution(0.0, 0.5)},
                user_attrs={"val_loss": val_loss, "best_epoch": 1, "overrides": {RATE: i / 10}},
            )
        )  # fmt: skip
    command = ["search", str(path), "--objective", "val_auc", "--out", str(runs)]
    assert main([*command, "--export-variants", "2"]) == 0
    out = capsys.readouterr().out
    assert (
        "best val_auc 1 shared by 3 of 4 complete trials; tie broken by lower val_loss, then "
        "lower trial number" in out
    )
    best = tmp_path / "s-best.toml"
    assert list(load_study(best).variants) == ["baseline", "trial-1", "trial-3"]
    assert f"wrote {best}: the 2 best trials" in " ".join(out.split())
    # with --trials (already reached: nothing trains) the summary says it, once
    assert main([*command, "--trials", "4", "--export-variants", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "best val_auc: 1 (trial 1, epoch 1, val_loss 0.3): model.layers[1].rate = 0.1" in lines
    tie = [line for line in lines if "shared by" in line]
    assert tie == [
        "best val_auc 1 shared by 3 of 4 complete trials; tie broken by lower val_loss, then "
        "lower trial number"
    ]
