"""The report in a terminal: the headline, what each variant changes, and a table that fits.

:func:`print_report` prints, in this order, the headline (the verdict in words), one line per
variant saying what it changes relative to the baseline's recipe, and the compact table
(:func:`terminal_table`: variant, primary metric, Δ vs the baseline, verdict; 80 columns
suffice); ``wide=True`` prints every column, the diagnostics and the comparison sentences too,
as a :class:`WideTable`: one table where the console is wide enough, else the columns split over
several tables, each with the variant column, so that no number is wrapped, cut or ellipsized.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Sequence
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions
from rich.constrain import Constrain
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
#: The widest a wide table's first column (the variant) gets: longer names fold.
NAME_WIDTH = 24
#: The widest a wide table's text column (the verdict) gets unless one word is wider.
WORDS_WIDTH = 24


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


def terminal_table(report: Report, *, wide: bool = False) -> Table | WideTable:
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
    table.add_column("verdict", overflow="fold")  # how a variant failed wraps below it
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


class WideTable:
    """Every column of a table at any console width: one rich table where it fits, else the
    columns in their order over several tables, each beginning with the first column (the
    variant); the title above them, the caption below them, both wrapped at the console's width
    (at most :data:`TEXT_WIDTH`).

    A numeric column is as wide as its widest line, which never wraps, so no number is cut or
    ellipsized; text (names, verdicts, headers) wraps at words and folds a word wider than its
    column. ``rows`` are ``(cells, style)``: a :class:`~rich.text.Text` per column."""

    def __init__(
        self,
        title: str,
        caption: Text | None,
        headers: Sequence[tuple[str, bool]],
        rows: Sequence[tuple[Sequence[Text], str | None]],
    ) -> None:
        self.title = title
        self.caption = caption
        self.headers = list(headers)  # (header, numeric)
        self.rows = list(rows)

    def _widths(self) -> list[int]:
        """Each column's width: a numeric column's widest line; text, its widest line up to
        :data:`NAME_WIDTH` (the first column) or :data:`WORDS_WIDTH` (or its widest word)."""
        widths = []
        for number, (header, numeric) in enumerate(self.headers):
            lines = [line for cells, _ in self.rows for line in cells[number].plain.split("\n")]
            longest = max(map(len, lines), default=1)
            words = max((len(w) for text in [header, *lines] for w in text.split()), default=1)
            if numeric:  # the header wraps over its lines; a short word of it stays whole
                widths.append(max(longest, min(max(map(len, header.split()), default=0), 12), 6))
                continue
            cap = NAME_WIDTH if number == 0 else max(words, WORDS_WIDTH)
            widths.append(max(min(longest, cap), min(len(header), cap)))
        return widths

    def tables(self, width: int) -> list[Table]:
        """Tables at most ``width`` characters wide that show every column, in order, each
        after the first column. A column too wide for the console even beside the first gets a
        table of its own, and only then do its lines fold (a console under about 40 columns)."""
        widths = self._widths()
        others = max(widths[1:], default=0) + 3  # a column: its width, padding, a rule
        widths[0] = max(min(widths[0], width - 1 - 3 - others), min(widths[0], 8))
        groups: list[list[int]] = []
        used = width
        for number in range(1, len(widths)):
            if not groups or used + widths[number] + 3 > width:
                groups.append([])
                used = 1 + widths[0] + 3
            groups[-1].append(number)
            used += widths[number] + 3
        tables = []
        for group in groups or [[]]:
            table = Table(header_style="bold")
            for number in [0, *group]:
                header, numeric = self.headers[number]
                if numeric:  # the header wraps at words over lines no wider than the numbers
                    header = textwrap.fill(header, width=widths[number], break_on_hyphens=False)
                table.add_column(
                    header,
                    justify="right" if numeric else "left",
                    width=widths[number],
                    # folds rather than crops, where even one column cannot fit
                    no_wrap=numeric and 1 + widths[0] + widths[number] + 6 <= width,
                    overflow="fold",
                )
            for cells, style in self.rows:
                table.add_row(*(cells[n] for n in [0, *group]), style=style)
            tables.append(table)
        return tables

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Any]:
        if self.title:
            yield Constrain(Text(self.title, style="italic"), TEXT_WIDTH)
        yield from self.tables(options.max_width)
        if self.caption is not None:
            yield Constrain(self.caption, TEXT_WIDTH)


def _wide_table(report: Report) -> WideTable:
    columns = summary_columns(report)
    test_set = report.validated_on_test
    rows = []
    for cells in summary_rows(report):
        verdict = cells["verdict"]["text"]
        values = []
        for column in columns:
            cell = cells[column.key]
            style = VERDICT_STYLES.get(verdict, "") if column.key == "verdict" else ""
            text = Text(cell["text"], style=style)
            if cell["sub"]:
                text.append("\n" + cell["sub"], style="dim")
            values.append(text)
        rows.append((values, "bold" if verdict == BASELINE else None))
    return WideTable(
        _title(report),
        Text(caption(report), style="bold red" if test_set else "dim"),
        [(column.header, column.numeric) for column in columns],
        rows,
    )


def diagnostics_terminal_table(report: Report) -> WideTable | None:
    """The diagnostics summary (see the report's Diagnostics section), or None without any."""
    content = diagnostics_summary(report)
    if content is None:
        return None
    unit = report.facts.unit
    return WideTable(
        f"{report.study}: training diagnostics (last epoch, mean ± std over {unit})",
        None,
        [(column.header, column.numeric) for column in content["columns"]],
        [([Text(cell["text"]) for cell in row], None) for row in content["rows"]],
    )
