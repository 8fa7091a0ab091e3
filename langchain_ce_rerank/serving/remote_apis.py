"""The remote rerank APIs `RemoteCrossEncoder` speaks: Cohere, TEI, Infinity, vLLM.

The request and response shapes of other people's servers, as the client sees
them; the schema this package's own server (`ce-rerank serve`) accepts is in
`schemas.py`, and `"ce-rerank"` speaks it: Cohere's v2 plus our extensions.

Instructions: only `"ce-rerank"` has a place for one (the request's
`instruction` field). Cohere's v2, TEI's and Infinity's rerank requests have
no such field, and neither has vLLM's `RerankRequest`
(`vllm/entrypoints/pooling/scoring/protocol.py`, as read for this package);
TEI and vLLM ignore a field they do not know, so sending one anyway would
drop it silently. `RemoteCrossEncoder` refuses an instruction for them.

Each server gets one `ApiSpec`: where it listens, how many documents one request
may carry by default, how to build a request body and how to read the
`(index, score)` pairs out of a response. Reading is strict: a response that
does not hold exactly one finite score for every document sent raises
`ValueError` naming the problem, so a score is never attached to the wrong text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["API_SPECS", "ApiName", "ApiSpec", "error_message", "read_scores"]

ApiName = Literal["cohere", "tei", "infinity", "vllm", "ce-rerank"]

Body = dict[str, Any]


def _cohere_body(
    query: str,
    texts: Sequence[str],
    model: str | None,
    raw_scores: bool | None,
    instruction: str | None,
) -> Body:
    # Cohere Rerank API v2, https://docs.cohere.com/reference/rerank
    # POST /v2/rerank {model (required), query, documents, top_n?, max_tokens_per_doc?}
    # -> {id, results: [{index, relevance_score}], meta}, sorted by relevance.
    # top_n is left out so every document comes back with a score.
    return {"model": model, "query": query, "documents": list(texts)}


def _tei_body(
    query: str,
    texts: Sequence[str],
    model: str | None,
    raw_scores: bool | None,
    instruction: str | None,
) -> Body:
    # Hugging Face text-embeddings-inference, docs/openapi.json ("RerankRequest",
    # "Rank", "RerankResponse") in github.com/huggingface/text-embeddings-inference
    # POST /rerank {query, texts, raw_scores?, return_text?, truncate?,
    # truncation_direction?} -> a bare array [{index, score, text?}] sorted by
    # score. Without raw_scores the server applies a sigmoid; raw_scores=true
    # returns the logits, comparable with CrossEncoderCompressor's raw scores.
    # Inputs over --max-client-batch-size (default 32) are refused with HTTP 413.
    # truncate=true cuts pairs longer than the model's window, as an in-process
    # CrossEncoder does, instead of failing the request with HTTP 422.
    return {
        "query": query,
        "texts": list(texts),
        "raw_scores": bool(raw_scores),
        "truncate": True,
    }


def _infinity_body(
    query: str,
    texts: Sequence[str],
    model: str | None,
    raw_scores: bool | None,
    instruction: str | None,
) -> Body:
    # Infinity (github.com/michaelfeil/infinity), RerankInput and ReRankResult in
    # libs/infinity_emb/infinity_emb/fastapi_schemas/pymodels.py
    # POST /rerank {query, documents, return_documents?, raw_scores?, model?,
    # top_n?} -> {object: "rerank", results: [{relevance_score, index,
    # document?}], model, usage, id, created} (the Cohere shape). The request
    # limit is INFINITY_MAX_CLIENT_BATCH_SIZE, 2048 by default.
    body: Body = {
        "query": query,
        "documents": list(texts),
        "return_documents": False,
        "raw_scores": bool(raw_scores),
    }
    if model is not None:
        body["model"] = model
    return body


def _vllm_body(
    query: str,
    texts: Sequence[str],
    model: str | None,
    raw_scores: bool | None,
    instruction: str | None,
) -> Body:
    # vLLM's Jina/Cohere-compatible rerank API ("Re-rank API" in
    # https://docs.vllm.ai/en/stable/serving/openai_compatible_server.html;
    # RerankRequest/RerankResponse in vllm/entrypoints/openai/protocol.py)
    # POST /v1/rerank (also /rerank and /v2/rerank) {model?, query, documents,
    # top_n?} -> {id, model, usage, results: [{index, document: {text},
    # relevance_score}]}. top_n=0 (the default) returns every document.
    body: Body = {"query": query, "documents": list(texts)}
    if model is not None:
        body["model"] = model
    return body


def _ce_rerank_body(
    query: str,
    texts: Sequence[str],
    model: str | None,
    raw_scores: bool | None,
    instruction: str | None,
) -> Body:
    # This package's own server (`ce-rerank serve`, or its Ray Serve door):
    # Cohere v2 (see schemas.py), with `model` optional and our `instruction`.
    body: Body = {"query": query, "documents": list(texts)}
    if model is not None:
        body["model"] = model
    if instruction is not None:
        body["instruction"] = instruction
    return body


def _results_list(payload: object, key: str | None) -> list[object]:
    if key is None:
        if not isinstance(payload, list):
            msg = f"expected a JSON array of ranks, got {_kind(payload)}"
            raise ValueError(msg)
        return payload
    if not isinstance(payload, dict) or not isinstance(payload.get(key), list):
        msg = f'expected a JSON object with a "{key}" array, got {_kind(payload)}'
        raise ValueError(msg)
    results: list[object] = payload[key]
    return results


@dataclass(frozen=True)
class ApiSpec:
    """How to talk to one kind of reranking server."""

    name: ApiName
    path: str
    """Endpoint appended to a base URL."""
    max_batch_size: int | None
    """Default documents per request; `None` sends every document at once."""
    build_body: Callable[
        [str, Sequence[str], str | None, bool | None, str | None], Body
    ]
    """`(query, texts, model, raw_scores, instruction)` -> the request body."""
    results_key: str | None
    """Key of the results array in the response; `None` for a bare array."""
    score_key: str
    supports_raw_scores: bool
    needs_model: bool
    supports_instruction: bool = False
    """Whether a request has a field for an instruction."""
    label: str = ""
    """How errors name the API."""

    def instruction_refusal(self) -> str | None:
        """Why this API cannot carry an instruction, or None when it can."""
        if self.supports_instruction:
            return None
        return (
            f"the {self.label or self.name} rerank API has no instruction field; "
            "ce-rerank serve has one, reached with RemoteCrossEncoder(url, "
            "api='ce-rerank')"
        )


API_SPECS: Mapping[ApiName, ApiSpec] = {
    "cohere": ApiSpec(
        "cohere", "/v2/rerank", 1000, _cohere_body, "results", "relevance_score",
        supports_raw_scores=False, needs_model=True, label="Cohere v2",
    ),
    "tei": ApiSpec(
        "tei", "/rerank", 32, _tei_body, None, "score",
        supports_raw_scores=True, needs_model=False,
        label="text-embeddings-inference",
    ),
    "infinity": ApiSpec(
        "infinity", "/rerank", 2048, _infinity_body, "results", "relevance_score",
        supports_raw_scores=True, needs_model=False, label="Infinity",
    ),
    "vllm": ApiSpec(
        "vllm", "/v1/rerank", None, _vllm_body, "results", "relevance_score",
        supports_raw_scores=False, needs_model=False, label="vLLM",
    ),
    # ce-rerank serve's default --max-documents.
    "ce-rerank": ApiSpec(
        "ce-rerank", "/v2/rerank", 1000, _ce_rerank_body, "results",
        "relevance_score", supports_raw_scores=False, needs_model=False,
        supports_instruction=True, label="ce-rerank serve",
    ),
}  # fmt: skip


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object with keys " + ", ".join(sorted(map(str, value))[:6])
    return {list: "an array", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def read_scores(spec: ApiSpec, payload: object, n_texts: int) -> list[float]:
    """Scores of one response, in the order the `n_texts` documents were sent.

    Scores are mapped by each result's `index`, never by its position.

    Raises:
        ValueError: The response does not hold exactly one finite score for
            every index in `range(n_texts)`; the message names the problem.
    """
    results = _results_list(payload, spec.results_key)
    scores: list[float | None] = [None] * n_texts
    for position, item in enumerate(results):
        if not isinstance(item, dict):
            msg = f"result #{position} is {_kind(item)}, not an object"
            raise ValueError(msg)
        index = item.get("index")
        score = item.get(spec.score_key)
        if not isinstance(index, int) or isinstance(index, bool):
            msg = f'result #{position} has no integer "index" (got {index!r})'
            raise ValueError(msg)
        if not 0 <= index < n_texts:
            msg = f"index {index} is out of range for the {n_texts} documents sent"
            raise ValueError(msg)
        if scores[index] is not None:
            msg = f"index {index} appears more than once"
            raise ValueError(msg)
        if not isinstance(score, int | float) or isinstance(score, bool):
            msg = f'result for index {index} has no numeric "{spec.score_key}"'
            raise ValueError(msg)
        if not math.isfinite(score):
            msg = f"result for index {index} has the non-finite score {score!r}"
            raise ValueError(msg)
        scores[index] = float(score)
    missing = [i for i, value in enumerate(scores) if value is None]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (
            ", ..." if len(missing) > 10 else ""
        )
        msg = f"{len(missing)} of {n_texts} documents sent got no score (index {shown})"
        raise ValueError(msg)
    return [float(value) for value in scores if value is not None]


def error_message(text: str, limit: int = 300) -> str:
    """The server's own error message from an error body, else a snippet of it.

    Understands TEI's `{"error": "..."}`, the OpenAI-style
    `{"error": {"message": "..."}}` of Infinity and vLLM, Cohere's
    `{"message": "..."}` and FastAPI's `{"detail": ...}`.
    """
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    found: object = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            found = error.get("message")
        else:
            found = error or payload.get("message") or payload.get("detail")
    message = str(found) if found else text.strip()
    if len(message) > limit:
        message = message[:limit] + "..."
    return message or "(empty body)"
