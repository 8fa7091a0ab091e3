"""Tables people would rather look at than read: reranked results, reports, stores.

`explain(retriever, query)` runs a query and returns a `RerankExplanation`: the
documents plus what the reranker did to them (final rank, movement from the
first stage, both stages' scores, source, snippet). Jupyter renders it as an
HTML table (`_repr_html_`); `print()` in a terminal shows the same table as
text. Nothing here changes what `invoke` returns: chains keep receiving plain
`Document` lists.

The `EvaluationReport` table is built here too, once, for both `ce-rerank eval`
and notebooks. All user text is HTML-escaped; rendering never calls a model.
"""

from langchain_ce_rerank.display.explanation import (
    RankedDocument,
    RerankExplanation,
    ScoreKind,
    explain,
)
from langchain_ce_rerank.display.report import report_html, report_table, report_text
from langchain_ce_rerank.display.summary import summary_html, summary_text

__all__ = [
    "RankedDocument",
    "RerankExplanation",
    "ScoreKind",
    "explain",
    "report_html",
    "report_table",
    "report_text",
    "summary_html",
    "summary_text",
]
