"""The report tables: `EvaluationReport` and `CalibrationReport`.

Each as rich `Table`s, plain text and HTML. The reports render themselves
(`str(report)`, Jupyter's `_repr_html_`) with these, and `ce-rerank eval`
prints the rich tables; the cells are drawn with the package's shared
primitives (`display/render.py`), which know nothing of reports.
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
    from rich.console import RenderableType
    from rich.table import Table

    from langchain_ce_rerank.evaluation.probability_report import CalibrationReport
    from langchain_ce_rerank.evaluation.report import EvaluationReport

__all__ = [
    "LEGEND",
    "calibration_html",
    "calibration_tables",
    "calibration_text",
    "report_html",
    "report_table",
    "report_text",
]

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


# -- CalibrationReport ----------------------------------------------------------

_Section = tuple[str, list[str], list[list[str]]]
"""A table: its caption, headers and rows of cells."""


def _count(number: int, noun: str, plural: str = "") -> str:
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _calibration_parts(
    report: CalibrationReport,
) -> tuple[str, list[_Section], list[str]]:
    """Title, tables and closing lines of a calibration report."""
    calibration = report.calibration
    fitted = calibration.fitted_on
    fit_text = (
        f"fitted on {_count(len(report.fit_queries), 'query', 'queries')}"
        if fitted is None
        else (
            f"fitted on {_count(fitted.queries, 'query', 'queries')} "
            f"({_count(fitted.pairs, 'pair')}, {fitted.relevant} relevant)"
        )
    )
    where = (
        "reported on the same queries (in sample: optimistic)"
        if report.in_sample
        else f"reported on {len(report.report_queries)} held out"
    )
    title = (
        f"{calibration.mapping.kind} calibration of "
        f"{calibration.fitted_for.model}: {fit_text}, {where} "
        f"({_count(report.pairs, 'pair')}, {report.relevant} relevant)"
    )
    brier: _Section = (
        "Brier score",
        ["probabilities", "Brier (lower: better)"],
        [[name, _number(value, 4)] for name, value in report.brier.items()],
    )
    reliability: _Section = (
        "Reliability: pairs by calibrated probability",
        ["probability", "pairs", "mean probability", "fraction relevant"],
        [
            [
                f"{b.low:.1f}-{b.high:.1f}",
                str(b.count),
                _number(b.mean_probability),
                _number(b.fraction_relevant),
            ]
            for b in report.reliability
        ],
    )
    cuts: _Section = (
        "Cuts over every candidate (no top_n): what each returns",
        ["cut", "threshold", "returned", "relevant", "precision", "recall"],
        [
            [
                cut.name,
                _number(cut.threshold, 4),
                str(cut.returned),
                str(cut.relevant),
                _number(cut.precision),
                _number(cut.recall),
            ]
            for cut in report.cuts
        ],
    )
    queries = _count(len(report.report_queries), "query", "queries")
    lines = [
        f"min_probability {report.min_probability:g} leaves "
        f"{report.empty_queries} of {queries} "
        f"with no result ({report.empty_queries_with_relevant} of them had a "
        "relevant candidate).",
        *(f"Note: {note}" for note in report.notes),
    ]
    return title, [brier, reliability, cuts], lines


def calibration_tables(report: CalibrationReport) -> list[RenderableType]:
    """A calibration report as rich renderables: title, tables, closing lines.

    Args:
        report: What `calibrate` returned.
    """
    from rich.table import Table
    from rich.text import Text

    title, sections, lines = _calibration_parts(report)
    shown: list[RenderableType] = [Text(title)]
    for caption, headers, rows in sections:
        table = Table(title=caption, title_justify="left")
        for position, header in enumerate(headers):
            table.add_column(header, justify="left" if position == 0 else "right")
        for row in rows:
            table.add_row(*row)
        shown.append(table)
    shown.extend(Text(line) for line in lines)
    return shown


def calibration_text(report: CalibrationReport) -> str:
    """A calibration report as plain text.

    Args:
        report: What `calibrate` returned.
    """
    return render_text(*calibration_tables(report))


def calibration_html(report: CalibrationReport) -> str:
    """A calibration report as HTML tables (for Jupyter).

    Args:
        report: What `calibrate` returned.
    """
    title, sections, lines = _calibration_parts(report)
    tables = []
    for caption, headers, rows in sections:
        head = "".join(
            f'<th style="{TH};text-align:{"left" if i == 0 else "right"}">{esc(h)}</th>'
            for i, h in enumerate(headers)
        )
        body = "".join(
            "<tr>"
            + "".join(
                f'<td style="{TD};'
                f"{'text-align:left;white-space:nowrap' if i == 0 else NUMBER}"
                f'">{esc(cell)}</td>'
                for i, cell in enumerate(row)
            )
            + "</tr>"
            for row in rows
        )
        tables.append(
            f'<div style="margin:0.5em 0 0.1em 0">{esc(caption)}</div>'
            f'<table class="ce-rerank" style="{TABLE}">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )
    closing = "".join(
        f'<div style="font-size:0.9em;{MUTED}">{esc(line)}</div>' for line in lines
    )
    return (
        '<div class="ce-rerank-calibration" style="color:inherit">'
        f'<div style="margin:0.2em 0;font-weight:600">{esc(title)}</div>'
        f"{''.join(tables)}{closing}"
        '<div style="font-size:0.82em;margin-top:0.3em">report.plot() draws the '
        "reliability diagram</div></div>"
    )
