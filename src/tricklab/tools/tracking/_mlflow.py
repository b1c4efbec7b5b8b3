"""A stored study logged to MLflow with its client API: one parent run, one child run per run.

The parent run (tag ``tricklab.role = study``) carries the study: its report (``report.html``,
``report.md``, ``figures/``) and ``study.json`` as artifacts, and the dataset, baseline, primary
metric, variants and seeds as tags. Each finished run of the store becomes a child run
(``tricklab.role = run``, named ``<variant>/seed-<n>``):

* params: ``variant``, ``seed``, and every recipe field that some run of the study changes from
  the base recipe, by dotted path (``train.loss``, ``model.layers.1.rate``), with this run's value;
* metrics: the history per epoch (``loss``, ``val_loss``, ... with ``step`` = epoch), the test
  scores of the best and the last weights (``test.best.auc``, ``test.last.accuracy``, ...), and
  ``epochs_run``, ``best_epoch``, ``best_monitor_value``, ``parameter_count``,
  ``seconds_per_epoch``, ``seconds_total``;
* tags: ``study``, ``variant``, ``seed``, ``key``, ``engine``, ``backend``, ``status``
  (``ok``/``diverged``), ``validated_on``;
* artifacts: ``history.csv``, ``best.weights.h5``, ``spec.json``, ``result.json`` (and
  ``diagnostics.csv`` where recorded).

Logging again updates, never duplicates: runs are found by their tags (study, variant, seed,
key). A child whose stored run is unchanged (tag ``tricklab.logged``: the log format and the
run's finish time) is left as it is, apart from new params or changed tags; a retrained run
replaces its child (the old one is deleted, MLflow's soft delete); children of runs no longer in
the store (a changed variant has a new key) are deleted the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tricklab.base.errors import StoreError, TricklabError
from tricklab.engines.contract import RunResult
from tricklab.store import (
    DIAGNOSTICS,
    HISTORY,
    RESULT,
    SPEC,
    WEIGHTS,
    RunState,
    RunStore,
    StudyIndex,
)
from tricklab.tools.tracking._params import (
    clean_key,
    flatten,
    recipe_params,
    run_params,
    varying_keys,
)

#: Bump when what a child run holds changes: children logged in another format are replaced.
LOG_FORMAT = 1
ROLE = "tricklab.role"
LOGGED = "tricklab.logged"
PARENT = "mlflow.parentRunId"
NOTE = "mlflow.note.content"
RUN_ARTIFACTS = (HISTORY, WEIGHTS, SPEC, RESULT, DIAGNOSTICS)
#: The run fields logged as single metrics (RunResult.params, the weight count, as parameter_count).
SCALARS = {
    "epochs_run": "epochs_run",
    "best_epoch": "best_epoch",
    "best_monitor_value": "best_monitor_value",
    "params": "parameter_count",
    "seconds_per_epoch": "seconds_per_epoch",
    "seconds_total": "seconds_total",
}


@dataclass(frozen=True)
class LoggedStudy:
    """What :func:`log_study` did: where the runs are and how many it created or left alone."""

    study: str
    tracking_uri: str
    experiment: str
    experiment_id: str
    parent_id: str
    created: int  # child runs of runs logged for the first time
    replaced: int  # retrained runs: the old child deleted, a new one created
    updated: int  # children that gained params or had tags changed
    unchanged: int
    removed: int  # children of runs no longer in the store (or duplicates), deleted
    not_finished: int  # planned, running, failed or damaged runs of the index, not logged
    #: "VARIANT seed N: damaged: FILE: REASON" for each damaged run (refused, not logged)
    damaged: tuple[str, ...] = ()

    @property
    def runs(self) -> int:
        """The child runs that now mirror the store's finished runs."""
        return self.created + self.replaced + self.updated + self.unchanged

    def ui_command(self) -> str:
        return ui_command(self.tracking_uri)


def require_mlflow(what: str = "tricklab mlflow") -> None:
    """Raise a one-line :class:`TricklabError` when MLflow is not installed."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise TricklabError(
            f"{what} needs the mlflow extra: pip install 'tricklab[mlflow]'"
        ) from None


def resolve_tracking_uri(store: RunStore, given: str | None = None) -> str:
    """``given`` (``--tracking-uri``), else ``$MLFLOW_TRACKING_URI``, else the store's SQLite."""
    return given or os.environ.get("MLFLOW_TRACKING_URI") or store.mlflow_uri()


def ui_command(uri: str) -> str:
    """The command that shows the runs logged to ``uri``."""
    if uri.startswith(("http://", "https://", "databricks")):
        return f"open {uri}"
    return f"mlflow ui --backend-store-uri {uri}"


def log_study(
    root: str | Path,
    *,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LoggedStudy:
    """Log the study stored in ``root`` (``runs/<study>``) to MLflow; return what was done.

    ``experiment`` defaults to the study's name; ``progress(i, n)`` is called after each run.
    Raises :class:`StoreError` for a directory that holds no study or no finished run, and
    :class:`TricklabError` when MLflow is missing or refuses (its message, in one line).
    """
    require_mlflow()
    from mlflow.exceptions import MlflowException

    store = RunStore(root)
    index = store.read_index()
    study = index.study or store.root.name
    statuses = store.indexed_runs()
    finished = [s.result for s in statuses if s.result is not None]
    if not finished:
        raise StoreError(
            f"{store.root}: no run of study {study!r} has finished yet ({len(statuses)} "
            "planned); nothing to log. Run `tricklab run STUDY.toml` to train them."
        )
    uri = resolve_tracking_uri(store, tracking_uri)
    name = experiment or study
    with quiet_mlflow():
        try:
            logged = _Logger(store, index, study, uri, name, progress).log(
                finished, len(statuses) - len(finished)
            )
        except MlflowException as exc:
            first = (exc.message or str(exc)).strip().splitlines() or [type(exc).__name__]
            raise TricklabError(f"MLflow at {uri}: {first[0]}") from None
    damaged = [s for s in statuses if s.state == RunState.DAMAGED]
    lines = tuple(f"{s.variant} seed {s.seed}: damaged: {s.detail}" for s in damaged)
    return dataclasses.replace(logged, damaged=lines)


class _Logger:
    """One logging pass over a study (the client, the experiment and the runs found in it)."""

    def __init__(
        self,
        store: RunStore,
        index: StudyIndex,
        study: str,
        uri: str,
        experiment: str,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.store, self.index, self.study = store, index, study
        self.uri, self.experiment = uri, experiment
        self.progress = progress or (lambda done, total: None)

    def log(self, results: list[RunResult], not_finished: int) -> LoggedStudy:
        from mlflow import MlflowClient
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

        self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment_id = self._experiment_id()
        found = self._search()
        parents = [r for r in found if r.data.tags.get(ROLE) == "study"]
        children: dict[tuple[str, str, str], list[Any]] = {}
        for run in found:
            if run.data.tags.get(ROLE) == "run":
                tags = run.data.tags
                ident = (tags.get("variant", ""), tags.get("seed", ""), tags.get("key", ""))
                children.setdefault(ident, []).append(run)

        recipes = [
            recipe_params(self.store.load_run(r.variant, r.seed)[1]["recipe"]) for r in results
        ]
        spec = self.index.spec
        base = flatten({"model": spec.get("model", {}), "train": spec.get("train", {})})
        keys = varying_keys(base, recipes)
        spans = [_span(result) for result in results]
        parent_id = self._parent(parents, min(s for s, _ in spans))

        counts = dict.fromkeys(("created", "replaced", "updated", "unchanged", "removed"), 0)
        for done, (result, flat, span) in enumerate(zip(results, recipes, spans, strict=True), 1):
            params = {
                "variant": result.variant,
                "seed": str(result.seed),
                **run_params(flat, keys, limit=MAX_PARAM_VAL_LENGTH),
            }
            tags = self._child_tags(result, parent_id)
            same = children.pop((result.variant, str(result.seed), result.key), [])
            keep = next((r for r in same if _reusable(r, tags, params)), None)
            for run in same:
                if run is not keep:
                    self.client.delete_run(run.info.run_id)
            if keep is None:
                self._create_child(result, params, tags, span)
                counts["replaced" if same else "created"] += 1
            else:
                counts["removed"] += len(same) - 1
                counts[self._update_child(keep, params, tags)] += 1
            self.progress(done, len(results))
        for stale in (run for runs in children.values() for run in runs):
            self.client.delete_run(stale.info.run_id)
            counts["removed"] += 1
        self._log_report(parent_id, max(end for _, end in spans))
        return LoggedStudy(
            study=self.study,
            tracking_uri=self.uri,
            experiment=self.experiment,
            experiment_id=self.experiment_id,
            parent_id=parent_id,
            not_finished=not_finished,
            created=counts["created"],
            replaced=counts["replaced"],
            updated=counts["updated"],
            unchanged=counts["unchanged"],
            removed=counts["removed"],
        )

    # -- the experiment and the runs already in it --------------------------------------------
    def _experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is None:
            return self.client.create_experiment(
                self.experiment, artifact_location=_artifact_location(self.uri)
            )
        if found.lifecycle_stage == "deleted":
            raise TricklabError(
                f"MLflow at {self.uri}: experiment {self.experiment!r} is deleted. Restore it "
                f"(mlflow experiments restore --experiment-id {found.experiment_id}) or give "
                "another --experiment."
            )
        return str(found.experiment_id)

    def _search(self) -> list[Any]:
        runs: list[Any] = []
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id],
                f"tags.study = '{self.study}'",  # study names hold no quotes
                max_results=1000,
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    # -- the parent run -----------------------------------------------------------------------
    def _parent(self, parents: list[Any], start: int) -> str:
        from mlflow.entities import RunTag

        if parents:
            parent_id = parents[0].info.run_id
            for extra in parents[1:]:  # left by two logs of one study at the same moment
                self.client.delete_run(extra.info.run_id)
        else:
            parent_id = self.client.create_run(
                self.experiment_id, start_time=start, run_name=self.study
            ).info.run_id
        index = self.index
        resolved = index.resolved
        dataset, protocol = index.dataset, index.protocol
        tags = {
            "study": self.study,
            ROLE: "study",
            "dataset": dataset.get("name", ""),
            "task": resolved.get("task", ""),
            "baseline": index.baseline or "",
            "primary_metric": resolved.get("primary_metric", ""),
            # the checkpoint the report compares (an index from before it: the best weights)
            "evaluate": resolved.get("evaluate", "best"),
            "variants": ", ".join(index.variants),
            "seeds": ", ".join(str(s) for s in index.seeds),
            "validated_on": protocol.get("validated_on", ""),
            "backend": resolved.get("backend", ""),
            "engines": ", ".join(index.engines),
            "store": str(self.store.root.resolve()),
            NOTE: (index.description or f"tricklab study {self.study}")
            + "\n\nThe study's report: report.html in this run's artifacts.",
        }
        self.client.log_batch(
            parent_id, tags=[RunTag(k, _cut_tag(str(v))) for k, v in tags.items()]
        )
        return parent_id

    def _log_report(self, parent_id: str, end: int) -> None:
        from tricklab.report import build_report

        report = build_report(self.store.root)  # written from the store as it is now
        for path in (report.html, report.markdown, self.store.index_path):
            self.client.log_artifact(parent_id, str(path))
        figures = report.markdown.parent / "figures"
        if figures.is_dir():
            self.client.log_artifacts(parent_id, str(figures), "figures")
        self.client.set_terminated(parent_id, status="FINISHED", end_time=end)

    # -- child runs ---------------------------------------------------------------------------
    def _child_tags(self, result: RunResult, parent_id: str) -> dict[str, str]:
        return {
            "study": self.study,
            ROLE: "run",
            "variant": result.variant,
            "seed": str(result.seed),
            "key": result.key,
            "engine": result.engine,
            "backend": result.backend,
            "status": result.status.value,
            "validated_on": result.validated_on,
            LOGGED: f"{LOG_FORMAT}:{result.finished_at}",
            PARENT: parent_id,
        }

    def _create_child(
        self, result: RunResult, params: dict[str, str], tags: dict[str, str], span: tuple[int, int]
    ) -> None:
        from mlflow.entities import Param

        start, end = span
        run_id = self.client.create_run(
            self.experiment_id,
            start_time=start,
            tags=tags,
            run_name=f"{result.variant}/seed-{result.seed}",
        ).info.run_id
        self.client.log_batch(
            run_id,
            metrics=_metrics(result, start, end),
            params=[Param(k, v) for k, v in params.items()],
        )
        for path in self.store.run_files(result.variant, result.seed, RUN_ARTIFACTS):
            self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, status="FINISHED", end_time=end)

    def _update_child(self, run: Any, params: dict[str, str], tags: dict[str, str]) -> str:
        from mlflow.entities import Param, RunTag

        new_params = [Param(k, v) for k, v in params.items() if k not in run.data.params]
        new_tags = [RunTag(k, v) for k, v in tags.items() if run.data.tags.get(k) != v]
        if not new_params and not new_tags:
            return "unchanged"
        self.client.log_batch(run.info.run_id, params=new_params, tags=new_tags)
        return "updated"


def _reusable(run: Any, tags: dict[str, str], params: dict[str, str]) -> bool:
    """The child logged this very run (same format and finish), and no param has to change."""
    if run.data.tags.get(LOGGED) != tags[LOGGED]:
        return False
    logged = run.data.params
    return all(logged.get(k, v) == v for k, v in params.items())


def _metrics(result: RunResult, start: int, end: int) -> list[Any]:
    """The run's metrics with timestamps derived from the run itself, so they never change."""
    from mlflow.entities import Metric

    out = []
    for name, values in result.history.items():
        for epoch, value in enumerate(values, 1):
            stamp = start + (end - start) * epoch // max(len(values), 1)
            out.append(Metric(clean_key(name), float(value), stamp, epoch))
    for which in ("best", "last"):
        for name, score in (result.test.get(which) or {}).items():
            if score is not None:
                out.append(Metric(clean_key(f"test.{which}.{name}"), float(score), end, 0))
    for field, name in SCALARS.items():
        scalar = getattr(result, field)
        if scalar is not None:
            out.append(Metric(name, float(scalar), end, 0))
    return out


def _span(result: RunResult) -> tuple[int, int]:
    """The run's start and end in milliseconds since the epoch (MLflow's run times)."""
    try:
        end = int(dt.datetime.fromisoformat(result.finished_at).timestamp() * 1000)
    except ValueError:  # a result without its finish time: now
        end = int(time.time() * 1000)
    return end - int(result.seconds_total * 1000), end


def _artifact_location(uri: str) -> str | None:
    """Artifacts of a SQLite tracking store go beside its file, not into the working folder."""
    if not uri.startswith("sqlite:///"):
        return None  # MLflow's default for servers and other stores
    database = Path(uri.removeprefix("sqlite:///")).resolve()
    return (database.parent / "mlartifacts").as_uri()


def _cut_tag(text: str) -> str:
    from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

    return text if len(text) <= MAX_TAG_VAL_LENGTH else text[: MAX_TAG_VAL_LENGTH - 3] + "..."


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """MLflow's (and its database migrations') INFO lines, warnings and artifact progress bars
    stay off the terminal."""
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [logger.level for logger in loggers]
    bar = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        if bar is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = bar
