"""One-object summaries (the store): a plain repr and a two-column HTML table."""

from __future__ import annotations

from collections.abc import Mapping

from langchain_ce_rerank.display.render import MUTED, TABLE, TD, TH, esc

__all__ = ["summary_html", "summary_text"]


def summary_text(name: str, fields: Mapping[str, object]) -> str:
    """`Name(key=value, ...)`, the plain repr of a summarised object.

    Args:
        name: The class name.
        fields: What to show, in order.
    """
    inner = ", ".join(f"{key}={value!r}" for key, value in fields.items())
    return f"{name}({inner})"


def summary_html(name: str, fields: Mapping[str, object]) -> str:
    """A two-column HTML table of `fields` under `name`, values escaped.

    Args:
        name: The class name.
        fields: What to show, in order.
    """
    body = "".join(
        f'<tr><th style="{TH};text-align:left;background:transparent;'
        f'font-weight:400;{MUTED}">{esc(key)}</th>'
        f'<td style="{TD};text-align:left">'
        f"{esc('—' if value is None else str(value))}</td></tr>"
        for key, value in fields.items()
    )
    return (
        f'<div style="color:inherit"><b>{esc(name)}</b>'
        f'<table class="ce-rerank" style="{TABLE}"><tbody>{body}</tbody></table>'
        "</div>"
    )
