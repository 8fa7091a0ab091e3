"""Tables people would rather look at than read: reranked results, reports, stores.

`explain(retriever, query)` runs a query and returns a `RerankExplanation`: the
documents plus what the reranker did to them (final rank, movement from the
first stage, both stages' scores, source, snippet; the candidates it
dropped, with why). Jupyter renders it as an
HTML table (`_repr_html_`); `print()` in a terminal shows the same table as
text. Nothing here changes what `invoke` returns: chains keep receiving plain
`Document` lists.

The `EvaluationReport` table lives with the report
(`langchain_ce_rerank.evaluation.rendering`), drawn with this package's
shared primitives (`render.py`). All user text is HTML-escaped; rendering
never calls a model.
"""

import warnings
from typing import Any

from langchain_ce_rerank.display.explanation import (
    DroppedDocument,
    RankedDocument,
    RerankExplanation,
    ScoreKind,
    explain,
)
from langchain_ce_rerank.display.summary import summary_html, summary_text

__all__ = [
    "DroppedDocument",
    "RankedDocument",
    "RerankExplanation",
    "ScoreKind",
    "explain",
    "summary_html",
    "summary_text",
]

_MOVED = ("report_html", "report_table", "report_text")


def __getattr__(name: str) -> Any:
    # The report's tables moved to evaluation.rendering, so display no longer
    # imports evaluation (which imports display to draw them): kept here for
    # code written against the old path.
    if name in _MOVED:
        warnings.warn(
            f"langchain_ce_rerank.display.{name} moved to "
            f"langchain_ce_rerank.evaluation.rendering.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        from langchain_ce_rerank.evaluation import rendering

        return getattr(rendering, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
