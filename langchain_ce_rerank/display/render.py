"""Shared table rendering: inline HTML styles, escaping, cells, rich to plain text.

Used by every table of the package (explanations, store summaries, and the
evaluation report in `evaluation/rendering.py`).
"""

from __future__ import annotations

import html
import io
import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = [
    "DOWN",
    "MUTED",
    "NUMBER",
    "TABLE",
    "TD",
    "TH",
    "UP",
    "esc",
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
