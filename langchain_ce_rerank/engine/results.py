"""The engine's result types: a score with its passage, and a ranked candidate."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from langchain_ce_rerank.engine.windows import Span

__all__ = ["RerankResult", "ScoredText"]


class ScoredText(NamedTuple):
    """One candidate's score, before any ordering (unpacks as `score, passage`).

    Attributes:
        score: The model's score after `activation` (a plain float).
        passage: For `long_documents="max_passage"`, the `(start, end)`
            character span of the best window in the scored text; else None.
    """

    score: float
    passage: Span | None = None


@dataclass(frozen=True, slots=True)
class RerankResult:
    """One candidate in the reranked order.

    Attributes:
        index: Position of the candidate in the input list.
        score: The cross-encoder's score after `activation` (a plain float).
        rank: 1-based position in the reranked order.
        passage: Character span of the best window (`"max_passage"`), else None.
        fused_score: The RRF score when `fusion="rrf"`, else None.

    Example:
        ```python
        from langchain_ce_rerank.engine import RerankResult

        result = RerankResult(index=3, score=2.5, rank=1)
        print(result.to_dict())
        ```
    """

    index: int
    score: float
    rank: int
    passage: Span | None = None
    fused_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the passage as a two-item list)."""
        data = asdict(self)
        if self.passage is not None:
            data["passage"] = list(self.passage)
        return data
