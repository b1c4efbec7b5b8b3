"""The Python API: run a study end to end and read its outcome.

    >>> import tricklab
    >>> result = tricklab.run_study("studies/thoracic-losses.toml")
    >>> result.table()          # pandas DataFrame, one row per variant

:func:`run_study` is what ``tricklab run`` does without the terminal: it lints the study (the
findings go into the study index), trains what the store does not hold yet
(:func:`tricklab.study.train_study`) and hands back a :class:`StudyRun`, whose report, tables
and figures are computed from the store on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tricklab.data import ResolvedStudy, resolve
from tricklab.executors import Listener
from tricklab.report import Report, load_report, report_figures, write_report
from tricklab.spec import RunOptions, StudySpec, load_study
from tricklab.stats import comparison_frame
from tricklab.study import Trained, train_study
from tricklab.tools.lint import Finding, lint, refuse

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["StudyRun", "run_study"]


@dataclass
class StudyRun(Trained):
    """The outcome of :func:`run_study`: where it is stored, what each run gave, its report."""

    _report: Report | None = field(default=None, repr=False)
    _figures: dict[str, Figure] | None = field(default=None, repr=False)
    _written: bool = field(default=False, repr=False)

    def _loaded(self) -> Report:
        """The :class:`~tricklab.report.Report`, computed once from the store (no file written)."""
        if self._report is None:
            self._report = load_report(self.root)
        return self._report

    def report(self) -> Report:
        """Write report.md and report.html (once); the :class:`~tricklab.report.Report`."""
        report = self._loaded()
        if not self._written:
            write_report(report, self.figures())
            self._written = True
        return report

    def table(self) -> Any:
        """One row per variant: test metrics, epochs, gap, seconds (a pandas DataFrame);
        computed without writing any file."""
        return self._loaded().table

    def comparisons(self) -> Any:
        """Each variant against the baseline on the primary metric (a pandas DataFrame);
        computed without writing any file."""
        return comparison_frame(self._loaded().comparisons)

    def figures(self) -> dict[str, Figure]:
        """The report's matplotlib figures by name (learning_curves, ...), drawn once."""
        if self._figures is None:
            self._figures = report_figures(self._loaded())
        return self._figures


def run_study(
    study: StudySpec | ResolvedStudy | str | Path,
    *,
    out: str | Path = "runs",
    variants: list[str] | None = None,
    seeds: int | None = None,
    fresh: bool = False,
    listener: Listener | None = None,
    stop_requested: Callable[[], bool] | None = None,
    options: RunOptions | None = None,
    findings: Sequence[Finding] | None = None,
    **run_options: Any,
) -> StudyRun:
    """Train every run of ``study`` not already in ``out/<study>/``; return all results.

    ``variants``/``seeds`` select the runs to train (``--variant``, ``--seeds``); the index
    keeps the whole study. How the runs train is a :class:`~tricklab.spec.RunOptions`, given
    whole as ``options`` or by field (``engine="solo"``, ``executor="process"``, ``workers=2``,
    ``checkpoint_every``, ``lease``, ``renew``, ``wait``, ``poll``, ``address``), checked by its
    rules as the command line's flags are. ``stop_requested`` (Ctrl-C) stops at the next epoch
    boundary with a checkpoint and raises :class:`~tricklab.engines.Interrupted`.
    ``findings``: the study's lint findings if already computed (``tricklab run`` shows them
    first); else the study is linted here. A lint error (a run that cannot fit in memory)
    raises :class:`~tricklab.base.errors.SpecError` before anything trains.
    """
    if options is None:
        options = RunOptions.make(**run_options)
    elif run_options:
        options = RunOptions.make(**{**options.model_dump(), **run_options})
    if isinstance(study, ResolvedStudy):
        resolved = study
    else:
        resolved = resolve(study if isinstance(study, StudySpec) else load_study(study))
    findings = lint(resolved) if findings is None else findings
    refuse(resolved, findings)
    trained = train_study(
        resolved,
        out=out,
        variants=variants,
        seeds=seeds,
        fresh=fresh,
        options=options,
        listener=listener,
        stop_requested=stop_requested,
        findings=[f.to_json() for f in findings],
    )
    return StudyRun(**{name: getattr(trained, name) for name in Trained.__dataclass_fields__})
