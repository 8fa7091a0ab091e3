"""Shared table rendering: inline HTML styles, escaping, cells, rich to plain text.

Used by every table of the package (explanations, store summaries, the
evaluation report in `evaluation/rendering.py`, and `ce-rerank query`'s table,
which `fitted_table` sizes to the terminal).
"""

from __future__ import annotations

import html
import io
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table

__all__ = [
    "DOWN",
    "MUTED",
    "NUMBER",
    "TABLE",
    "TD",
    "TH",
    "UP",
    "FittedColumn",
    "esc",
    "fitted_table",
    "number_cell",
    "render_text",
    "score_text",
    "shorten_left",
    "snippet",
    "text_width",
]

# Inline styles only: notebook sanitizers drop <style> blocks, and colours are
# left to the theme (text inherits it; greys are translucent) so light and dark
# themes both stay legible. The two accents are mid-tones readable on either.
TABLE = (
    "border-collapse:collapse;margin:0.25em 0 0.5em 0;table-layout:auto;"
    "font-size:0.92em;line-height:1.35;color:inherit"
)
TH = (
    "padding:0.3em 0.7em;border-bottom:1px solid rgba(127,127,127,0.55);"
    "background:rgba(127,127,127,0.12);font-weight:600;white-space:nowrap;"
    "vertical-align:bottom"
)
TD = (
    "padding:0.3em 0.7em;border-bottom:1px solid rgba(127,127,127,0.22);"
    "vertical-align:top;background:transparent"
)
NUMBER = "text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap"
UP, DOWN = "#2f9e44", "#e8590c"
MUTED = "opacity:0.72"


def score_text(value: float | None) -> str:
    """A score as shown in tables (3 decimals), or blank when there is none."""
    return "" if value is None else f"{value:.3f}"


def esc(text: str) -> str:
    """`text` escaped for HTML, quotes included."""
    return html.escape(text, quote=True)


def snippet(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def shorten_left(text: str, limit: int) -> str:
    """Keep the end of a long path: the file name matters most."""
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def number_cell(value: float | None) -> str:
    """An HTML table cell holding a right-aligned score."""
    return f'<td style="{TD};{NUMBER}">{score_text(value)}</td>'


def text_width() -> int:
    """The terminal's width (120 when unknown, at least 80)."""
    return max(80, shutil.get_terminal_size((120, 24)).columns)


def render_text(*renderables: RenderableType, width: int | None = None) -> str:
    """Render with rich into a string: no colour codes, the terminal's width."""
    from rich.console import Console

    width = width or text_width()
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        color_system=None,
        force_terminal=False,
        force_jupyter=False,
        highlight=False,
        emoji=False,
    )
    for renderable in renderables:
        console.print(renderable)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


@dataclass(frozen=True)
class FittedColumn:
    """A column of `fitted_table`: its header, alignment and how it gives way."""

    header: str
    justify: Literal["left", "right"] = "right"
    shrink: Literal["never", "start", "end"] = "never"
    """When the table is wider than the terminal: `"never"` (ranks, movement,
    scores: always whole), `"start"` cuts the start of each cell (paths keep
    their file name), `"end"` cuts the end (text)."""
    limit: int | None = None
    """The widest the column grows, in terminal cells; None: its widest cell."""
    keep: int = 0
    """Cells a shrinking column keeps while the others can still give way."""


def _cut_start(text: str, width: int) -> str:
    """`text` in at most `width` cells, its start replaced by an ellipsis."""
    from rich.cells import cell_len

    if cell_len(text) <= width:
        return text
    kept = ""
    for char in reversed(text):
        if cell_len(char + kept) > width - 1:
            break
        kept = char + kept
    return "…" + kept


def _cut_end(text: str, width: int) -> str:
    """`text` in at most `width` cells, its end replaced by an ellipsis."""
    from rich.text import Text

    cell = Text(text)
    cell.truncate(width, overflow="ellipsis")
    return cell.plain


def fitted_table(
    columns: Sequence[FittedColumn],
    rows: Sequence[Sequence[str]],
    width: int,
    *,
    title: str | None = None,
) -> Table:
    """A rich table at most `width` cells wide, where only text columns give way.

    rich shrinks every column of a table that is too wide, numbers included
    (`10 -> 3` becomes `10 ->…`). Here the columns that must stay whole never
    shrink; the others (`shrink="end"` first, then `shrink="start"`, rightmost
    first) give up what the row needs, down to their header's width, and their
    cells are cut with an ellipsis. Markup in cells and title is shown as
    written.

    Args:
        columns: The columns, left to right.
        rows: One string per column for each row.
        width: The terminal's width in cells.
        title: Shown above the table, left-aligned.

    Returns:
        The table, to print on a console at least `width` cells wide.
    """
    from rich.cells import cell_len
    from rich.table import Table
    from rich.text import Text

    sizes = []
    for number, column in enumerate(columns):
        widest = max([cell_len(row[number]) for row in rows], default=0)
        if column.limit is not None:
            widest = min(widest, column.limit)
        sizes.append(max(cell_len(column.header), widest))
    # Each column takes its padding and one border (3 cells); one more closes.
    over = sum(sizes) + 3 * len(columns) + 1 - width
    for keeping in (True, False):  # down to `keep` first, then to the header
        for kind in ("end", "start"):
            for number in reversed(range(len(columns))):
                column = columns[number]
                if over <= 0 or column.shrink != kind:
                    continue
                floor = cell_len(column.header)
                if keeping:
                    floor = max(floor, column.keep)
                cut = max(0, min(over, sizes[number] - floor))
                sizes[number] -= cut
                over -= cut
    table = Table(
        title=Text(title) if title is not None else None, title_justify="left"
    )
    for column, size in zip(columns, sizes, strict=True):
        table.add_column(
            column.header, justify=column.justify, no_wrap=True, width=size
        )
    for row in rows:
        cells = []
        for column, size, text in zip(columns, sizes, row, strict=True):
            if column.shrink == "start":
                text = _cut_start(text, size)
            elif column.shrink == "end":
                text = _cut_end(text, size)
            cells.append(Text(text))
        table.add_row(*cells)
    return table
