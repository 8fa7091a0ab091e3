"""The HTTP shapes of `ce-rerank serve`: Cohere's Rerank API v2, and its errors.

Cohere Rerank API v2 (https://docs.cohere.com/reference/rerank):
`POST /v2/rerank {model, query, documents, top_n?, max_tokens_per_doc?}` ->
`{id, results: [{index, relevance_score}], meta}`, results sorted by relevance.
Cohere documents `documents` as a "list of string" in v2 (v1 also took
`{"text": ...}` objects; v2 does not), so only strings are accepted here.
`RemoteCrossEncoder(url, api="cohere", model=...)` speaks exactly this.

Our extensions, which Cohere's API does not have, change nothing in a
Cohere exchange: a client that never sends them sees Cohere's schema
unchanged.

- `groups` (one label per document, say its source file) with
  `max_per_group`: the engine's `group_by` for documents that are plain
  strings without metadata.
- `diversity` (see `RerankRequest.diversity`) changes only the order of the
  results.
- `instruction` (see `RerankRequest.instruction`): the task an LLM-based
  reranker (Qwen3-Reranker, mxbai-rerank-v2) judges relevance for. Neither
  Cohere nor TEI, Infinity or vLLM's rerank APIs have such a field; a
  server whose model reads no instruction refuses it with 422 (field
  `instruction`) rather than ignore it.
- `min_probability`, for a server started with a calibration (`ce-rerank
  serve --calibration FILE`): a request may send it, and each result then
  also carries `relevance_probability`. A server without a calibration
  answers in Cohere's exact shape, and a client that never sends
  `min_probability` is never cut by it (as with `score_threshold`, the
  engine's own setting does not apply over HTTP), so a client that needs
  every document's score (`RemoteCrossEncoder`) gets them.

There is no `max_context_tokens` field: the answer holds indices and scores,
not texts, so it could not say where a result was cut to fit; a client
applies its budget to the texts it holds (the library's doors do). There is
no `deadline_ms` field: an answer with unscored documents would need
results without a `relevance_score`, which Cohere's response cannot carry,
and the server coalesces concurrent requests into shared model calls, so one
request's pairs are not scored in batches of their own. A client keeps a
deadline itself: `RemoteCrossEncoder` under `deadline_ms`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import Self

from langchain_ce_rerank.engine.results import ScoredText

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
    diversity: float | None = Field(default=None, ge=0.0, le=1.0)
    """Our extension, not in Cohere's API: order the results by maximal
    marginal relevance with this λ (0 or left out: by score alone), so that
    near-copies do not fill the top (`top_n` is then the first picks). The
    documents are compared by the overlap of their word sets (the server has
    no embeddings of them); scores stay the model's."""

    min_probability: float | None = Field(default=None, ge=0.0, le=1.0)
    """Not Cohere's: drop results whose `relevance_probability` is below this,
    after `diversity` and `top_n`. Only on a server with a calibration (`ce-rerank serve
    --calibration FILE`); elsewhere it is refused with 422. None: no cut."""

    instruction: str | None = None
    """Our extension, not in Cohere's API: the instruction the model scores
    every pair under (sentence-transformers' `prompt`, which an LLM-based
    reranker's chat template puts in its instruction slot). Left out: the
    server's default (its engine's `instruction` setting, else the model's
    own). A server whose model reads no instruction answers 422 naming
    this field; it is never dropped silently."""

    @field_validator("instruction")
    @classmethod
    def _instruction_not_blank(cls, instruction: str | None) -> str | None:
        if instruction is not None and not instruction.strip():
            msg = (
                "instruction is empty or only whitespace; send the task text "
                "or leave it out"
            )
            raise ValueError(msg)
        return instruction

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

    relevance_probability: float | None = None
    """Not Cohere's: the probability that the document is relevant, from the
    server's calibration; left out of the answer on a server without one."""


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
    order ties and cut alike. With the ranker's `calibration`, each result
    carries `relevance_probability` and the request's `min_probability` cuts
    last (the ranker's own `score_threshold` and `min_probability` do not
    apply: a Cohere client gets every document unless it asks otherwise).

    Args:
        ranker: The engine whose ordering rules apply.
        scores: One finite score per document, in request order.
        body: The request: its `top_n` (None keeps all), and our extensions
            `groups` with `max_per_group`, `diversity` (its documents
            compared by word sets) and `min_probability` (None: no cut).
        model: The served model name, for `meta`.
    """
    grouped = body.groups is not None
    ranking = ranker.for_call(
        # The request names each document's group; no key to read.
        group_by="groups" if grouped else None,
        max_per_group=body.max_per_group,
        # The answer holds no text to cut, and a request has no deadline.
        max_context_tokens=None,
        deadline_ms=None,
    )
    ranked = ranker.order(
        [ScoredText(score) for score in scores],
        ranking,
        top_n=body.top_n,
        score_threshold=None,
        diversity=body.diversity or 0.0,
        fusion="none",
        texts=body.documents,
        min_probability=body.min_probability,
        groups=body.groups,
    )
    return RerankResponse(
        id=str(uuid.uuid4()),
        results=[
            RerankResultItem(
                index=r.index,
                relevance_score=r.score,
                relevance_probability=r.probability,
            )
            for r in ranked
        ],
        meta=RerankMeta(model=model),
    )
