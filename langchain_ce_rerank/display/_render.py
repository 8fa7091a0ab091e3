"""Shared table rendering: inline HTML styles, escaping, cells, rich to plain text."""

from __future__ import annotations

import html
import io
import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import RenderableType

# Inline styles only: notebook sanitizers drop <style> blocks, and colours are
# left to the theme (text inherits it; greys are translucent) so light and dark
# themes both stay legible. The two accents are mid-tones readable on either.
_TABLE = (
    "border-collapse:collapse;margin:0.25em 0 0.5em 0;table-layout:auto;"
    "font-size:0.92em;line-height:1.35;color:inherit"
)
_TH = (
    "padding:0.3em 0.7em;border-bottom:1px solid rgba(127,127,127,0.55);"
    "background:rgba(127,127,127,0.12);font-weight:600;white-space:nowrap;"
    "vertical-align:bottom"
)
_TD = (
    "padding:0.3em 0.7em;border-bottom:1px solid rgba(127,127,127,0.22);"
    "vertical-align:top;background:transparent"
)
_NUMBER = "text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap"
_UP, _DOWN = "#2f9e44", "#e8590c"
_MUTED = "opacity:0.72"


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _snippet(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _shorten_left(text: str, limit: int) -> str:
    """Keep the end of a long path: the file name matters most."""
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def _number_cell(value: float | None) -> str:
    return f'<td style="{_TD};{_NUMBER}">{_score(value)}</td>'


def _text_width() -> int:
    """The terminal's width (120 when unknown, at least 80)."""
    return max(80, shutil.get_terminal_size((120, 24)).columns)


def _render_text(*renderables: RenderableType, width: int | None = None) -> str:
    """Render with rich into a string: no colour codes, the terminal's width."""
    from rich.console import Console

    width = width or _text_width()
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
