"""The HTTP shapes of `ce-rerank serve`: Cohere's Rerank API v2, and its errors.

Cohere Rerank API v2 (https://docs.cohere.com/reference/rerank):
`POST /v2/rerank {model, query, documents, top_n?, max_tokens_per_doc?}` ->
`{id, results: [{index, relevance_score}], meta}`, results sorted by relevance.
Cohere documents `documents` as a "list of string" in v2 (v1 also took
`{"text": ...}` objects; v2 does not), so only strings are accepted here.
`RemoteCrossEncoder(url, api="cohere", model=...)` speaks exactly this.

Our extension of the request: `groups` (one label per document, say its
source file) with `max_per_group`, the engine's `group_by` for documents that
are plain strings without metadata. A Cohere client never sends them, and a
request without them is answered exactly as Cohere's schema says.
`max_context_tokens` has no field: the answer holds indices and scores, not
texts, so it could not say where a result was cut to fit; a client applies
its budget to the texts it holds (the library's doors do).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import Self

from langchain_ce_rerank.engine.results import ScoredText
from langchain_ce_rerank.engine.settings import RankingSettings

if TYPE_CHECKING:
    from langchain_ce_rerank.engine import Reranker

__all__ = [
    "ErrorBody",
    "FieldError",
    "RerankMeta",
    "RerankRequest",
    "RerankResponse",
    "RerankResultItem",
    "ranked_response",
]


class RerankRequest(BaseModel):
    """The body of `POST /v2/rerank` (Cohere v2); unknown fields are refused.

    Example:
        ```python
        from langchain_ce_rerank.serving.schemas import RerankRequest

        body = RerankRequest(query="Where is Paris?", documents=["Paris is in France."])
        print(body.model_dump(exclude_none=True))
        ```
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str | None = None
    """The served model's name (`ce-rerank serve --model-name`). Cohere requires
    it; this server also accepts it left out. A different name is refused with
    404, so a client never gets scores from a model it did not ask for."""

    query: str
    """The search query; blank is refused."""

    documents: list[str]
    """The texts to score against `query`, as plain strings."""

    top_n: int | None = Field(default=None, ge=1)
    """Return only the best `top_n` results; None returns every document."""

    max_tokens_per_doc: int | None = Field(default=None, ge=1)
    """Cut each document to its first `max_tokens_per_doc` tokens (the served
    model's tokenizer, or whitespace words for a model without one) before
    scoring. None leaves documents to the model's own window."""

    groups: list[str] | None = None
    """Our extension: each document's group (its source, its parent
    document), one per document. The answer then holds at most
    `max_per_group` documents per group, the best first, and `top_n` counts
    what is left."""

    max_per_group: int | None = Field(default=None, ge=1)
    """Our extension: documents kept per group with `groups`; 1 by default."""

    @field_validator("query")
    @classmethod
    def _query_not_blank(cls, query: str) -> str:
        if not query.strip():
            msg = "query is empty or only whitespace; send the question text"
            raise ValueError(msg)
        return query

    @model_validator(mode="after")
    def _groups_match_documents(self) -> Self:
        if self.groups is not None and len(self.groups) != len(self.documents):
            msg = (
                f"groups has {len(self.groups)} labels for {len(self.documents)} "
                "documents; send one group per document, in the same order"
            )
            raise ValueError(msg)
        if self.max_per_group is not None and self.groups is None:
            msg = "max_per_group needs groups: one group label per document"
            raise ValueError(msg)
        return self


class RerankResultItem(BaseModel):
    """One scored document: its position in the request and its score."""

    model_config = ConfigDict(extra="forbid")

    index: int
    """Position of the document in the request's `documents`."""

    relevance_score: float
    """The model's score (raw logit, or 0..1 with `--activation sigmoid`)."""


class RerankMeta(BaseModel):
    """Response metadata, in Cohere's shape."""

    model_config = ConfigDict(extra="forbid")

    api_version: dict[str, str] = Field(default_factory=lambda: {"version": "2"})
    """The API version answered: `{"version": "2"}`."""

    model: str
    """The served model's name."""


class RerankResponse(BaseModel):
    """The answer to `POST /v2/rerank`: results sorted best first."""

    model_config = ConfigDict(extra="forbid")

    id: str
    """A fresh UUID per request."""

    results: list[RerankResultItem]
    """Best first; ties keep request order."""

    meta: RerankMeta
    """API version and served model."""


class FieldError(BaseModel):
    """One problem with one field of a request."""

    model_config = ConfigDict(extra="forbid")

    field: str
    """The offending field, e.g. `documents[3]`."""

    message: str
    """What was wrong with it."""


class ErrorBody(BaseModel):
    """Every error answer: `{"message": ...}` (Cohere's shape), plus details."""

    model_config = ConfigDict(extra="forbid")

    message: str
    """What was wrong and how to fix it."""

    errors: list[FieldError] | None = None
    """Per field problems (422 answers)."""

    limit: int | None = None
    """The limit exceeded (413 answers)."""

    value: int | None = None
    """The value that exceeded it (413 answers)."""


def ranked_response(
    ranker: Reranker, scores: Sequence[float], body: RerankRequest, model: str
) -> RerankResponse:
    """The Cohere v2 response for one request's scores: sorted, cut to `top_n`.

    Shared by the two HTTP doors (`ce-rerank serve` and Ray Serve), so they
    order ties and cut alike.

    Args:
        ranker: The engine whose ordering rules apply.
        scores: One finite score per document, in request order.
        body: The request: its `top_n` (None keeps all), and our `groups`
            extension with `max_per_group`.
        model: The served model name, for `meta`.
    """
    grouped = body.groups is not None
    ranking = RankingSettings(
        top_n=body.top_n,
        # The request names each document's group; no key to read.
        group_by="groups" if grouped else None,
        max_per_group=body.max_per_group,
    )
    ranked = ranker.order(
        [ScoredText(score) for score in scores], ranking, groups=body.groups
    )
    return RerankResponse(
        id=str(uuid.uuid4()),
        results=[
            RerankResultItem(index=r.index, relevance_score=r.score) for r in ranked
        ],
        meta=RerankMeta(model=model),
    )
