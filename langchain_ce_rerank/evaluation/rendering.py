"""The `EvaluationReport` table: a rich `Table`, plain text and HTML.

The report renders itself (`str(report)`, Jupyter's `_repr_html_`) with these,
and `ce-rerank eval` prints `report_table`; the cells are drawn with the
package's shared primitives (`display/render.py`), which know nothing of
reports.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from langchain_ce_rerank.display.render import (
    MUTED,
    NUMBER,
    TABLE,
    TD,
    TH,
    esc,
    render_text,
)

if TYPE_CHECKING:
    from rich.table import Table

    from langchain_ce_rerank.evaluation.report import EvaluationReport

__all__ = ["LEGEND", "report_html", "report_table", "report_text"]

_LATENCIES = (
    ("first_stage", "first stage ms"),
    ("rerank", "rerank ms"),
    ("total", "total ms"),
)
LEGEND = "ms: mean per query; bold: best value of each metric"
"""What the table's latency columns and bold values mean (under the table)."""


def _group_ends(report: EvaluationReport) -> list[bool]:
    """Per configuration: whether the next row belongs to another first stage."""
    stages = [config.first_stage for config in report.configurations]
    return [a != b for a, b in itertools.pairwise(stages)] + [False]


def _report_cells(
    report: EvaluationReport,
) -> tuple[str, list[str], list[list[tuple[str, bool]]]]:
    """Title, headers and rows of (text, is the column's best) for a report."""
    title = f"{report.num_queries} queries, k={report.k}, top_n={report.top_n}"
    configs = report.configurations
    names = list(configs[0].metrics) if configs else []
    # Bold marks a winner: a column where every configuration ties has none.
    best: dict[str, float] = {}
    for name in names:
        values = [c.metrics[name] for c in configs]
        if len(set(values)) > 1:
            best[name] = max(values)
    headers = ["configuration", *names, *(label for _, label in _LATENCIES)]
    rows = [
        [
            (c.name, False),
            *((f"{c.metrics[n]:.4f}", c.metrics[n] == best.get(n)) for n in names),
            *((f"{c.latency_ms[key]:.1f}", False) for key, _ in _LATENCIES),
        ]
        for c in configs
    ]
    return title, headers, rows


def report_table(report: EvaluationReport) -> Table:
    """The `ce-rerank eval` table as a rich `Table` (best metric values in bold).

    One row per configuration, a rule between first stages, the legend of
    latency and bold as its caption.

    Args:
        report: What `evaluate` returned.
    """
    from rich.table import Table
    from rich.text import Text

    title, headers, rows = _report_cells(report)
    table = Table(
        title=title, title_justify="left", caption=LEGEND, caption_justify="left"
    )
    for position, header in enumerate(headers):
        table.add_column(header, justify="left" if position == 0 else "right")
    # A rule between first stages: each one's rows read as a group.
    for row, group_ends in zip(rows, _group_ends(report), strict=True):
        table.add_row(
            *(Text(text, style="bold" if best else "") for text, best in row),
            end_section=group_ends,
        )
    return table


def report_text(report: EvaluationReport) -> str:
    """The `ce-rerank eval` table as plain text.

    Args:
        report: What `evaluate` returned.
    """
    return render_text(report_table(report))


def report_html(report: EvaluationReport) -> str:
    """The `ce-rerank eval` table as an HTML table (best metric values in bold).

    Args:
        report: What `evaluate` returned.
    """
    title, headers, rows = _report_cells(report)
    head = "".join(
        f'<th style="{TH};text-align:{"left" if i == 0 else "right"}">{esc(h)}</th>'
        for i, h in enumerate(headers)
    )
    # A stronger rule under each first stage's last row, as in the text table.
    rule = ";border-bottom:1px solid rgba(127,127,127,0.7)"
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="{TD};'
            f"{'text-align:left;white-space:nowrap' if i == 0 else NUMBER}"
            f'{";font-weight:700" if best else ""}{rule if group_ends else ""}">'
            f"{esc(text)}</td>"
            for i, (text, best) in enumerate(row)
        )
        + "</tr>"
        for row, group_ends in zip(rows, _group_ends(report), strict=True)
    )
    return (
        '<div class="ce-rerank-report" style="color:inherit">'
        f'<div style="margin:0.2em 0">{esc(title)}</div>'
        f'<table class="ce-rerank" style="{TABLE}">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f'<div style="font-size:0.82em;{MUTED}">{esc(LEGEND)}</div></div>'
    )
