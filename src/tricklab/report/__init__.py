"""Reports of a study: the headline, the terminal table, ``report.md`` and ``report.html``.

    >>> from tricklab.report import headline, load_report, print_report, write_report
    >>> report = load_report("runs/thoracic-losses")   # reads the store, writes nothing
    >>> headline(report)[0]                             # the verdict in words
    >>> print_report(rich.get_console(), report)       # headline, changes, compact table
    >>> write_report(report)                            # report.md, report.html, figures/

:func:`load_report` reads the study index (``study.json``) and the finished runs it lists (a run
counts only when its stored key is the one the index plans: results of removed or changed
variants are left out) and computes the statistics of :mod:`tricklab.stats`; :func:`build_report`
does that and writes the documents. The package keeps computing and writing apart:

* ``_model``: the :class:`Report` (numbers, verdicts, which variants did not learn; no I/O);
* ``_sentences``: each :class:`~tricklab.stats.Verdict` in words (labels, one-line sentences);
* ``_headline``: the verdict in words and each variant's recipe changes;
* ``_format``, ``_tables``: numbers rounded to their interval, the tables as cells;
* ``_notes``: what stands beside the numbers (finished runs behind them, in the study's unit;
  the mean predictor's score; population seconds as a share);
* ``_terminal``: rich output (a wide table split to fit the console); ``_plots``,
  ``_diagnostic_plots``, ``_figures``: matplotlib figures;
* ``_frames``: the numbers as flat tables (``report --csv``);
* ``_load``: reading the store; ``_documents``: the only writer of report files.

Nothing here imports Keras.
"""

from __future__ import annotations

from pathlib import Path

from tricklab.report._documents import write_report, write_tables
from tricklab.report._figures import report_figures
from tricklab.report._headline import diff_recipes, headline, recipe_changes
from tricklab.report._load import load_report
from tricklab.report._model import (
    Failure,
    Report,
    StudyFacts,
    chance_level,
    failures,
    make_report,
    study_facts,
)
from tricklab.report._sentences import (
    comparison_sentence,
    failure_words,
    short_verdict,
    verdict_label,
)
from tricklab.report._terminal import diagnostics_terminal_table, print_report, terminal_table

__all__ = [
    "Failure",
    "Report",
    "StudyFacts",
    "build_report",
    "chance_level",
    "comparison_sentence",
    "diagnostics_terminal_table",
    "diff_recipes",
    "failure_words",
    "failures",
    "headline",
    "load_report",
    "make_report",
    "print_report",
    "recipe_changes",
    "report_figures",
    "report_text",
    "short_verdict",
    "study_facts",
    "terminal_table",
    "verdict_label",
    "write_report",
    "write_tables",
]


def build_report(root: str | Path) -> Report:
    """Read the study in ``root`` (``runs/<study>``), write its reports, return them.

    Raises :class:`~tricklab.base.errors.StoreError` when ``root`` holds no study index or none of
    its runs finished.
    """
    report = load_report(root)
    write_report(report)
    return report


def report_text(report: Report) -> str:
    """The Markdown report, for printing or a notebook cell (written by :func:`write_report`)."""
    return report.markdown.read_text(encoding="utf-8")
