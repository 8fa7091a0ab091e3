"""The engine's results: scores, ranked and dropped candidates, door metadata."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from langchain_ce_rerank.engine.windows import Span

__all__ = [
    "DROP_REASONS",
    "RESULT_METADATA_KEYS",
    "DroppedCandidate",
    "RerankResult",
    "ScoredText",
    "Selection",
    "UnscoredText",
    "result_metadata",
]

RESULT_METADATA_KEYS = (
    "relevance_score",
    "retrieval_score",
    "retrieval_rank",
    "fused_score",
    "relevance_passage",
    "context_tokens",
    "context_cut",
    "relevance_probability",
    "reranked",
)
"""Every metadata key `result_metadata` may write."""

DROP_REASONS: dict[str, str] = {
    "top_n": "ranked past top_n",
    "score_threshold": "relevance_score below score_threshold",
    "group_full": "its group already had max_per_group results",
    "context_budget": "max_context_tokens was full",
    "diversity": "diversity picked a less similar candidate in its place",
    "min_probability": "relevance_probability below min_probability",
}
"""Why a candidate was not returned: each reason the engine records,
and the words the explanation shows for it. A new way of dropping candidates
adds its reason here (one line) and drops with `DroppedCandidate(..., reason)`."""


class ScoredText(NamedTuple):
    """One candidate's score, before any ordering (unpacks as `score, passage`).

    Attributes:
        score: The model's score after `activation` (a plain float).
        passage: For `long_documents="max_passage"`, the `(start, end)`
            character span of the best window in the scored text; else None.
    """

    score: float
    passage: Span | None = None

    @property
    def scored(self) -> bool:
        """False for an `UnscoredText`, which `deadline_ms` left unscored."""
        return True


class UnscoredText(ScoredText):
    """A candidate `deadline_ms` left unscored: `score` is NaN, no passage.

    Example:
        ```python
        import math

        from langchain_ce_rerank.engine.results import UnscoredText

        item = UnscoredText(math.nan)
        print(item.scored, item.passage)  # False None
        ```
    """

    __slots__ = ()

    @property
    def scored(self) -> bool:
        """Always False."""
        return False


@dataclass(frozen=True, slots=True)
class RerankResult:
    """One candidate in the reranked order.

    Attributes:
        index: Position of the candidate in the input list.
        score: The cross-encoder's score after `activation` (a plain float).
        rank: 1-based position in the reranked order.
        passage: Character span of the best window (`"max_passage"`), else None.
        fused_score: The RRF score when `fusion="rrf"`, else None.
        probability: The probability that the candidate is relevant, from
            the door's `calibration`; None without one, and for a candidate
            `deadline_ms` left unscored.
        reranked: False for a candidate that `deadline_ms` left unscored: it
            follows the scored ones in first-stage order, and its `score` is
            NaN (None in `to_dict`).

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
    tokens: int | None = None
    cut: Span | None = None
    probability: float | None = None
    reranked: bool = True

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (spans as two-item lists)."""
        data = asdict(self)
        for name in ("passage", "cut"):
            if data[name] is not None:
                data[name] = list(data[name])
        if not self.reranked:
            data["score"] = None
        return data

    def content(self, text: str) -> str:
        """`text` (the candidate's content) as this result returns it.

        The whole text, or the part `cut` keeps when the result alone was
        over `max_context_tokens`.
        """
        return text if self.cut is None else text[self.cut[0] : self.cut[1]]


@dataclass(frozen=True, slots=True)
class DroppedCandidate:
    """A candidate the engine did not return, and why.

    Attributes:
        index: Position of the candidate in the input list.
        score: Its score after `activation` (a plain float; NaN for one a
            deadline left unscored).
        reason: A key of `DROP_REASONS`: `"top_n"`, `"score_threshold"`,
            `"group_full"`, `"context_budget"`, `"diversity"` or
            `"min_probability"`.
        reranked: False for a candidate `deadline_ms` left unscored.

    Example:
        ```python
        from langchain_ce_rerank.engine import DroppedCandidate

        dropped = DroppedCandidate(index=4, score=0.2, reason="group_full")
        print(dropped.explanation)  # its group already had max_per_group results
        ```
    """

    index: int
    score: float
    reason: str
    reranked: bool = True

    def __post_init__(self) -> None:
        """Refuse a reason `DROP_REASONS` does not know."""
        if self.reason not in DROP_REASONS:
            msg = (
                f"unknown drop reason {self.reason!r}; known: {list(DROP_REASONS)} "
                "(a new one is added to DROP_REASONS in engine/results.py)"
            )
            raise ValueError(msg)

    @property
    def explanation(self) -> str:
        """The reason in words, as the explanation table shows it."""
        return DROP_REASONS[self.reason]


@dataclass(frozen=True)
class Selection:
    """What one ordering pass kept, in order, and what it dropped, with why.

    Every candidate is in exactly one of the two lists.

    Example:
        ```python
        from langchain_ce_rerank.engine import RankingSettings, Reranker, ScoredText

        engine = Reranker(model="unused-for-ordering")
        picked = engine.select(
            [ScoredText(1.0), ScoredText(3.0), ScoredText(2.0)],
            RankingSettings(top_n=2),
        )
        print([r.index for r in picked.results], picked.dropped)
        ```
    """

    results: list[RerankResult] = field(default_factory=list)
    """The kept candidates, best first (`rank` 1, 2, ...)."""
    dropped: list[DroppedCandidate] = field(default_factory=list)
    """The others, in the order they were ranked before being dropped."""


def result_metadata(
    result: RerankResult,
    *,
    score_field: bool = False,
    first_stage_score: float | None = None,
) -> dict[str, Any]:
    """The metadata a door adds to a kept candidate's copy, written once here.

    `fused_score` (for `fusion="rrf"`), `relevance_passage` (for
    `long_documents="max_passage"`, as a `[start, end]` list),
    `relevance_probability` (with a `calibration`), and, under
    `max_context_tokens`, `context_tokens` (the tokens the returned content
    counts) and `context_cut` (the `[start, end]` character span of the
    original content kept, only when the result alone was over the budget
    and was cut to its best window) when they apply, `reranked: False` on a
    candidate `deadline_ms` left unscored (which gets no score and no
    probability), and the score:

    - A candidate type without a score of its own (LangChain's `Document`)
      gets `relevance_score`.
    - A type with one (LlamaIndex's `NodeWithScore`), where the door puts
      `result.score`, keeps what that field held: the first stage's 1-based
      position as `retrieval_rank` and, when there was one, its score as
      `retrieval_score`.

    Args:
        result: One candidate from `Reranker.order` or `Reranker.rank`.
        score_field: Whether the door writes the score into a field of the
            candidate type instead of its metadata.
        first_stage_score: With `score_field`, the score the candidate came
            with (None when it had none).

    Returns:
        A new dict, to merge over the candidate's own metadata.

    Example:
        ```python
        from langchain_ce_rerank.engine import RerankResult, result_metadata

        result = RerankResult(index=2, score=3.5, rank=1, passage=(0, 40))
        print(result_metadata(result))
        # {'relevance_score': 3.5, 'relevance_passage': [0, 40]}
        print(result_metadata(result, score_field=True, first_stage_score=0.8))
        # {'retrieval_rank': 3, 'retrieval_score': 0.8, 'relevance_passage': [0, 40]}
        ```
    """
    metadata: dict[str, Any] = {}
    if score_field:
        metadata["retrieval_rank"] = result.index + 1
        if first_stage_score is not None:
            metadata["retrieval_score"] = float(first_stage_score)
    elif result.reranked:
        metadata["relevance_score"] = result.score
    if not result.reranked:
        metadata["reranked"] = False
    if result.fused_score is not None:
        metadata["fused_score"] = result.fused_score
    if result.passage is not None:
        metadata["relevance_passage"] = list(result.passage)
    if result.tokens is not None:
        metadata["context_tokens"] = result.tokens
    if result.cut is not None:
        metadata["context_cut"] = list(result.cut)
    if result.probability is not None:
        metadata["relevance_probability"] = result.probability
    return metadata
