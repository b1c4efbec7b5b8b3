"""The report in a terminal: the headline, what each variant changes, and a table that fits.

:func:`print_report` prints, in this order, the headline (the verdict in words), one line per
variant saying what it changes relative to the baseline's recipe, and the compact table
(:func:`terminal_table`: variant, primary metric, Δ vs the baseline, verdict; 80 columns
suffice); ``wide=True`` prints every column, the diagnostics and the comparison sentences too.
"""

from __future__ import annotations

import textwrap
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tricklab.report._headline import headline, recipe_changes
from tricklab.report._model import Report
from tricklab.report._sentences import BASELINE, comparison_sentence, short_verdict
from tricklab.report._tables import (
    caption,
    compact_caption,
    compact_rows,
    confidence,
    diagnostics_summary,
    summary_columns,
    summary_rows,
)
from tricklab.stats import CONFIDENCE, Verdict, percent

VERDICT_STYLES = {
    short_verdict(Verdict.BETTER): "green",
    short_verdict(Verdict.WORSE): "red",
    BASELINE: "bold",
}
#: Widest line of the headline, the changes and the compact table.
TEXT_WIDTH = 100


def print_report(console: Console, report: Report, *, wide: bool = False) -> None:
    """The headline, each variant's changes and the table (``wide``: every column, the
    diagnostics and one sentence per comparison). Text wraps at the console's width (at most
    :data:`TEXT_WIDTH`), also on a console that soft-wraps, so no line is cut or overlong."""
    width = min(console.width, TEXT_WIDTH)

    def show(renderable: Any) -> None:
        console.print(renderable, soft_wrap=False, width=width)

    lines = headline(report)
    show(Text(lines[0], style="bold"))
    for line in lines[1:]:
        show(Text(line, style="dim"))
    changes = recipe_changes(report)
    if changes:
        show(Text(f"What each variant changes in {report.baseline}'s recipe:"))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(overflow="fold", max_width=34)
        grid.add_column(overflow="fold")
        for variant, items in changes.items():
            grid.add_row(Text(f"  {variant}", style="bold"), Text("; ".join(items)))
        show(grid)
    if wide:  # as wide as the console: the columns need it
        console.print(terminal_table(report, wide=True), soft_wrap=False)
        diagnostics = diagnostics_terminal_table(report)
        if diagnostics is not None:
            console.print(diagnostics, soft_wrap=False)
        for comparison in report.comparisons:
            show(Text(f"  {comparison_sentence(comparison)}"))
    else:
        show(terminal_table(report))


def _title(report: Report) -> str:
    return (
        f"{report.study}: test {report.primary_metric} ({report.direction.better} is better), "
        f"baseline {report.baseline}"
    )


def terminal_table(report: Report, *, wide: bool = False) -> Table:
    """The study in one rich table, a row per variant, best primary metric first.

    By default the compact table: the variant (names wrap), the primary metric of the study's
    checkpoint (best or last weights, as its caption says) with its 95% interval, Δ vs the
    baseline with its adjusted interval, and the verdict in one word; numbers never wrap.
    ``wide=True``: every column of the Markdown report.
    """
    if wide:
        return _wide_table(report)
    test_set = report.validated_on_test
    table = Table(
        title=_title(report),
        caption=Text(compact_caption(report), style="bold red" if test_set else "dim"),
        caption_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    metric = report.primary_metric
    table.add_column("variant", overflow="fold", min_width=10)
    table.add_column(f"{metric}\n{CONFIDENCE:.0%} CI", justify="right", no_wrap=True)
    table.add_column(
        f"Δ vs baseline\n{percent(confidence(report))} CI", justify="right", no_wrap=True
    )
    table.add_column("verdict", no_wrap=True)
    for cells in compact_rows(report):
        verdict = cells["verdict"]["text"]
        values = []
        for key in ("variant", "primary", "diff", "verdict"):
            text = Text(
                cells[key]["text"],
                style=VERDICT_STYLES.get(verdict, "") if key == "verdict" else "",
            )
            if cells[key]["sub"]:
                text.append("\n" + cells[key]["sub"], style="dim")
            values.append(text)
        table.add_row(*values, style="bold" if verdict == BASELINE else None)
    return table


def _wide_table(report: Report) -> Table:
    columns = summary_columns(report)
    test_set = report.validated_on_test
    table = Table(
        title=_title(report),
        caption=Text(caption(report), style="bold red" if test_set else "dim"),
        caption_justify="left",
        header_style="bold",
    )
    rows = []
    for cells in summary_rows(report):
        verdict = cells["verdict"]["text"]
        values = []
        for column in columns:
            cell = cells[column.key]
            style = VERDICT_STYLES.get(verdict, "") if column.key == "verdict" else ""
            # "±" sticks to the std: a narrow terminal wraps before it, not after it.
            text = Text(cell["text"].replace(" ± ", " ±"), style=style)
            if cell["sub"]:
                text.append("\n" + cell["sub"], style="dim")
            values.append(text)
        rows.append((values, "bold" if verdict == BASELINE else None))
    for number, column in enumerate(columns):
        # A header no wider than its numbers: the width goes to the numbers, not to the header.
        content = max(
            (len(line) for values, _ in rows for line in values[number].plain.split("\n")),
            default=0,
        )
        header = column.header
        if column.numeric:
            header = textwrap.fill(header, width=max(content, 6), break_long_words=False)
        table.add_column(header, justify="right" if column.numeric else "left")
    for values, row_style in rows:
        table.add_row(*values, style=row_style)
    return table


def diagnostics_terminal_table(report: Report) -> Table | None:
    """The diagnostics summary (see the report's Diagnostics section), or None without any."""
    content = diagnostics_summary(report)
    if content is None:
        return None
    table = Table(
        title=f"{report.study}: training diagnostics (last epoch, mean ± std over seeds)",
        header_style="bold",
    )
    for column in content["columns"]:
        table.add_column(column.header, justify="right" if column.numeric else "left")
    for row in content["rows"]:
        table.add_row(*(cell["text"] for cell in row))
    return table
