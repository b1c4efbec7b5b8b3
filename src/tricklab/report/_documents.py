"""The report's documents: ``report.md``, the self-contained ``report.html`` and ``figures/``.

:func:`write_report` is the only part of the report that writes files::

    report.md          Markdown; figures referenced as files
    report.html        one file: CSS inline, figures inlined as data: URIs, no scripts
    figures/*.png      the figures of report.md

and :func:`write_tables` the CSV tables of ``tricklab report --csv`` (:mod:`._frames`).

Both documents open with the headline (the verdict in words) and what each variant changes.
Text tricklab did not write itself (the description, class labels, column names, lint notes)
is escaped in both: ``<``, ``>`` and ``&`` become entities, so it cannot inject HTML; the
description's Markdown is kept in ``report.md`` (``report.html`` shows it as written).

Every file is written beside its old version and renamed onto it (:func:`write_bytes`), so a
reader, or a report killed halfway, sees old or new files, each whole; old figures that the new
report does not draw go only once the new documents are in place.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from tricklab.base.version import __version__
from tricklab.engines.contract import RunResult
from tricklab.report._figures import report_figures, title_and_caption
from tricklab.report._format import DASH
from tricklab.report._frames import runs_frame, variants_frame
from tricklab.report._headline import headline, recipe_changes
from tricklab.report._notes import runs_behind, seconds_note
from tricklab.report._sentences import FLOOR_NOTE, beats_note, comparison_sentence, interval_note
from tricklab.report._tables import (
    caption,
    checkpoints,
    confidence,
    diagnostics_summary,
    metrics_table,
    summary_columns,
    summary_rows,
    training_table,
)
from tricklab.stats import POWER, percent
from tricklab.store import write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from tricklab.report._model import Report

FIGURES = "figures"
#: Resolution of the PNG figures (the HTML shows them at most 1000 px wide).
DPI = 110


def write_report(report: Report, figures: dict[str, Figure] | None = None) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html`` and ``figures/*.png`` under ``report.root``;
    their paths (Markdown, HTML). ``figures``: the report's figures if already drawn
    (:func:`~tricklab.report.report_figures`)."""
    folder = report.root / FIGURES
    _remove_leftovers(folder, ".*.tmp")
    _remove_leftovers(report.root, f".{report.markdown.name}.*.tmp", f".{report.html.name}.*.tmp")
    images = _write_figures(folder, report_figures(report) if figures is None else figures)
    context = _context(report, images)
    markdown = _render("report.md.j2", context, html=False)
    write_bytes(report.markdown, markdown.encode("utf-8"))
    write_bytes(report.html, _render("report.html.j2", context, html=True).encode("utf-8"))
    for old in folder.glob("*.png"):  # the new documents no longer show it
        if old.stem not in images:
            old.unlink(missing_ok=True)
    return report.markdown, report.html


def write_tables(report: Report, path: str | Path) -> tuple[Path, Path]:
    """Write one row per run to ``path`` and one row per variant (and reference model) to
    ``path`` with ``-variants`` before its suffix (``results.csv`` -> ``results-variants.csv``);
    their paths."""
    path = Path(path)
    variants = path.with_name(f"{path.stem}-variants{path.suffix}")
    for frame, where in ((runs_frame(report), path), (variants_frame(report), variants)):
        write_bytes(where, frame.to_csv(index=False).encode("utf-8"))
    return path, variants


def _write_figures(folder: Path, figures: dict[str, Figure]) -> dict[str, dict[str, str]]:
    """Save each figure as ``folder/<name>.png``, each file replaced whole; their files and data
    URIs."""
    pngs = {}
    for name, figure in figures.items():  # all drawn first: the slow part changes no file
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
        pngs[name] = buffer.getvalue()
    out: dict[str, dict[str, str]] = {}
    for name, data in pngs.items():
        write_bytes(folder / f"{name}.png", data)
        out[name] = {
            "file": f"{FIGURES}/{name}.png",
            "uri": "data:image/png;base64," + base64.b64encode(data).decode("ascii"),
        }
    return out


def _remove_leftovers(folder: Path, *patterns: str) -> None:
    """Remove the temporary files a killed report left in ``folder``, named
    ``.<name>.<pid>.<thread>.tmp`` by :func:`write_bytes`; a live process's are being written."""
    for path in (p for pattern in patterns for p in folder.glob(pattern)):
        pid = path.name.split(".")[-3]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


# -- the template context ------------------------------------------------------------------------
def _figure_entries(report: Report, images: dict[str, dict[str, str]]) -> list[dict[str, str]]:
    entries = []
    for name in images:
        title, text = title_and_caption(report, name)
        entries.append({"name": name, "title": title, "caption": text, **images[name]})
    return entries


def _lint_entries(findings: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    if findings is None:
        return None

    def line(f: dict[str, Any]) -> dict[str, str]:
        where = ": ".join(p for p in (f.get("scope"), f.get("path")) if p)
        return {
            "code": str(f.get("code", "")),
            "severity": str(f.get("severity", "warning")),
            "where": where,
            "message": str(f.get("message", "")),
            "fix": str(f.get("fix", "")),
            "ignored": "" if f.get("ignored") is None else str(f["ignored"]),
        }

    entries = [line(f) for f in findings]
    return {
        "active": [e for e in entries if not e["ignored"]],
        "ignored": [e for e in entries if e["ignored"]],
    }


def _versions(results: Sequence[RunResult]) -> str:
    found: dict[str, list[str]] = {}
    for result in results:
        for package, version in result.versions.items():
            seen = found.setdefault(package, [])
            if version not in seen:
                seen.append(version)
    parts = [f"{package} {' / '.join(versions)}" for package, versions in found.items()]
    mixed = any(len(v) > 1 for v in found.values())
    return ", ".join(parts) + (" (runs trained with different versions)" if mixed else "")


def protocol(report: Report) -> list[tuple[str, str]]:
    """The Protocol section: (name, text) items."""
    facts = report.facts
    data = facts.dataset
    settings = facts.protocol
    items: list[tuple[str, str]] = []

    def add(name: str, text: str) -> None:
        items.append((name, text))

    dataset = f"{data.get('name', '?')} ({facts.task or 'task not recorded'}"
    if facts.classes:
        dataset += f", {len(facts.classes)} classes: {', '.join(facts.classes)}"
    if data.get("features") is not None:
        dataset += f"; {data['features']} features"
    if data.get("input_shape"):
        dataset += f", input shape ({', '.join(map(str, data['input_shape']))})"
    add("Dataset", dataset + ")")
    if data.get("majority_fraction") is not None:
        add("Majority class", f"{data['majority_fraction']:.1%} of the rows")
    if data.get("intake"):  # what intake did: rows, one-hot expansions, the task and why
        add("Data intake", "; ".join(data["intake"]))
    add("Source", str(data.get("source") or DASH))
    add("Citation", str(data.get("citation") or DASH))
    sizes = settings.get("split_sizes", {})
    if sizes:
        add("Split sizes (rows)", ", ".join(f"{k} {v}" for k, v in sizes.items()))
    if report.validated_on_test:
        add(
            "Validation",
            "THE TEST SET: the best epoch (checkpoint) and early stopping were chosen on the "
            "test rows, so the study is validated on the test set and its test scores are "
            "optimistic",
        )
    else:
        fraction = settings.get("validation")
        share = f" ({fraction:.0%} of the non-test rows)" if isinstance(fraction, float) else ""
        add("Validation", f"a validation split carved from the training data{share}")
    if settings.get("kind") == "cv":
        split = str(settings.get("description"))
    elif settings.get("resplit"):
        split = "drawn anew for every seed (split seed = run seed), the same for every variant"
    else:
        split = f"one fixed split for every run, drawn with seed {settings.get('split_seed', 0)}"
    add("Split", split)
    seeds = facts.seeds
    if settings.get("kind") == "cv":
        add(
            "Runs per variant",
            f"{len(seeds)} planned: run r x {settings.get('folds')} + f tests on fold f of "
            "repeat r, the same rows for every variant; repeat r fixes initial weights, dropout "
            "masks and batch order with seed r",
        )
    else:
        add(
            "Seeds",
            f"{', '.join(map(str, seeds))} ({len(seeds)} planned per variant); a seed fixes "
            "initial weights, dropout masks and batch order",
        )
    runs = f"{len(report.results)} of {facts.runs_planned} planned runs finished"
    if report.missing:
        runs += "; missing: " + "; ".join(
            f"{m['variant']} seed {m['seed']} ({m['why']})" for m in report.missing
        )
    add("Runs", runs)
    monitors = " / ".join(sorted({r.monitor for r in report.results if r.monitor}))
    add(
        "Weights",
        f"best = the checkpoint of the epoch with the best {monitors or 'monitored value'}; "
        f"last = after the final epoch; compared: the {report.weights} weights "
        "(train.evaluate)",
    )
    statistics = f"mean ± sample std over {runs_behind(report)}, {interval_note(facts.correction)}"
    if report.rule:
        statistics += (
            f"; variants paired with the baseline by {facts.unit[:-1]}, {report.rule}; "
            f"{beats_note(report.comparisons[0])}; minimum detectable difference at power "
            f"{POWER:g} and the adjusted alpha" + ("; " + FLOOR_NOTE if facts.correction else "")
        )
    statistics += (
        "; numbers are rounded to two significant digits of their interval's half-width; "
        "intervals of bounded metrics are clipped to the metric's range"
    )
    add("Statistics", statistics)
    engines = sorted({r.engine for r in report.results})
    backends = sorted({r.backend for r in report.results}) or [facts.backend]
    add("Backend", f"{', '.join(backends)}; engine {', '.join(engines)}")
    add("Library versions", _versions(report.results) or DASH)
    finished = sorted(r.finished_at for r in report.results if r.finished_at)
    if finished:
        add(
            "Trained",
            finished[0]
            if finished[0] == finished[-1]
            else " to ".join((finished[0], finished[-1])),
        )
    if facts.source:
        add("Study file", facts.source)
    if facts.updated_at:
        add("Study index updated", facts.updated_at)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    add("Report written", f"{now} by tricklab {__version__}")
    return items


def _comparison_lead(report: Report) -> str:
    metric, unit = report.primary_metric, report.facts.unit
    compared = len(report.comparisons)
    if not compared:
        if report.baseline not in {r.variant for r in report.results}:
            return f"No comparison: the baseline variant ({report.baseline}) has no finished run."
        return "No comparison: the study has a single variant."
    head = (
        f"Each variant is compared with the baseline variant ({report.baseline}) on the primary "
        f"metric, test {metric} of the {report.weights} weights: the difference variant − "
        f"baseline, paired by {unit[:-1]}."
    )
    tested = report.comparisons[0].tests
    if not tested:
        return f"{head} No comparison has two paired {unit}: none could be tested."
    untested = (
        f" ({compared - tested} of the {compared} had too few paired {unit} to test)"
        if tested < compared
        else ""
    )
    return (
        f"{head} The rule — {report.rule}. A verdict is “better” or “worse” exactly when its "
        f"{percent(report.comparisons[0].confidence)} interval excludes 0{untested}. "
        f"For information: {beats_note(report.comparisons[0])}; the minimum detectable "
        f"difference, the smallest difference the rule detects with power {POWER:g} at this "
        f"many {unit} and the observed spread"
        + ("; " + FLOOR_NOTE if report.facts.correction else "")
        + "."
    )


def _context(report: Report, images: dict[str, dict[str, str]]) -> dict[str, Any]:
    metric = report.primary_metric
    lines = headline(report)
    return {
        "study": report.study,
        "description": report.facts.description,
        "test_set": report.validated_on_test,
        "primary_metric": metric,
        "weights": report.weights,
        "other_weights": checkpoints(report)[1],
        "direction": report.direction.better,
        "baseline": report.baseline,
        "headline": lines[0],
        "headline_notes": lines[1:],
        "changes": recipe_changes(report),
        "summary": {"columns": summary_columns(report), "rows": summary_rows(report)},
        "results": {"columns": summary_columns(report, wide=False), "rows": summary_rows(report)},
        "confidence": percent(confidence(report)),
        "caption": caption(report),
        "unit": report.facts.unit,
        "one": report.facts.unit[:-1],
        "runs": runs_behind(report),
        "seconds_note": seconds_note(report),
        "comparison_lead": _comparison_lead(report),
        "rule": report.rule,
        "sentences": [comparison_sentence(c) for c in report.comparisons],
        "figures": _figure_entries(report, images),
        "metrics_table": metrics_table(report),
        "training_table": training_table(report),
        "diagnostics_table": diagnostics_summary(report),
        "lint": _lint_entries(report.facts.lint),
        "protocol": protocol(report),
        "missing": report.missing,
        "version": __version__,
    }


# -- rendering -----------------------------------------------------------------------------------
def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_text(value: Any) -> str:
    """Text tricklab did not write, for Markdown: its Markdown kept, no HTML (``<``, ``>``, ``&``
    as entities, which Markdown shows as the characters)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md_code(value: Any) -> str:
    """A Markdown code span showing ``value`` literally: fenced with more backticks than any run
    in it, so no backtick in the text can end the span early."""
    text = str(value).replace("\n", " ")
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _breakable(value: Any) -> Any:
    """HTML text with a line-break opportunity after each underscore (long variant names)."""
    from markupsafe import Markup, escape

    return Markup("_<wbr>").join(escape(part) for part in str(value).split("_"))


_ENVIRONMENTS: dict[bool, jinja2.Environment] = {}


def _environment(html: bool) -> jinja2.Environment:
    if html not in _ENVIRONMENTS:
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("tricklab", "templates"),
            autoescape=html,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            undefined=jinja2.StrictUndefined,
        )
        env.filters["md"] = _md_cell
        env.filters["breakable"] = _breakable
        if not html:  # HTML escapes every value itself (autoescape)
            env.filters["text"] = _md_text
            env.filters["code"] = _md_code
        _ENVIRONMENTS[html] = env
    return _ENVIRONMENTS[html]


def _render(template: str, context: dict[str, Any], *, html: bool) -> str:
    return _environment(html).get_template(template).render(**context)
