"""`FaissRetriever`: the first stage, returning documents with their scores."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import run_in_executor
from langchain_core.vectorstores import VectorStore, VectorStoreRetriever
from pydantic import ConfigDict, Field, field_validator, model_validator
from typing_extensions import override

from langchain_ce_rerank.engine.checks import check_query
from langchain_ce_rerank.engine.diversity import EMBEDDING_KEY
from langchain_ce_rerank.store.filters import MetadataFilter
from langchain_ce_rerank.store.fusion import (
    DEFAULT_ALPHA,
    DEFAULT_DEPTH,
    DEFAULT_RRF_K,
    Candidate,
    FusionMethod,
    fuse,
)
from langchain_ce_rerank.store.search import StoreSearch, Vectors, no_bm25_error

__all__ = ["FaissRetriever"]

logger = logging.getLogger(__name__)

_OPTIONS = (
    "k",
    "filter",
    "fetch_k",
    "lambda_mult",
    "score_threshold",
    "search_type",
    "fusion",
    "alpha",
    "rrf_k",
    "dense_depth",
    "bm25_depth",
    "include_embeddings",
)
_SEARCH_TYPES = ("similarity", "mmr", "similarity_score_threshold", "bm25", "hybrid")
_KEYWORD_TYPES = ("bm25", "hybrid")

_Hits = list[tuple[Document, float]]
# One query's two sides: dense hits, and BM25 hits (None: no query term is
# indexed, so the dense hits stand in for them).
_Sides = tuple[_Hits, _Hits | None]


@dataclass(frozen=True)
class _Found:
    """One query's results from a batched search, for the run that asks."""

    options: dict[str, Any]
    dense: _Hits
    keyword: _Hits | None = None


# Results of one batched search, visible to the per-query runs of the `batch`
# call that made them (LangChain copies the context into its worker threads
# and tasks) and to nothing else. Keyed by retriever identity and query; one
# entry, with documents of its own, for each time the query is in the batch.
_PREFETCHED: ContextVar[dict[tuple[int, str], list[_Found]] | None] = ContextVar(
    "faiss_retriever_prefetched", default=None
)


class FaissRetriever(VectorStoreRetriever):
    """First-stage retriever over a `FaissVectorStore`.

    Returns copies of the stored documents, carrying their `id`, with
    `metadata["retrieval_score"]` (the store's native score: cosine similarity
    by default) and `metadata["retrieval_rank"]` (1-based). Every option can also
    be given per call: `retriever.invoke(query, k=5, filter={...})`.

    `search_type="bm25"` ranks by the store's keyword index and `"hybrid"`
    fuses it with dense search (see `fusion`, `alpha`, `rrf_k` and the depths);
    their documents also carry `dense_score` / `dense_rank` and `bm25_score` /
    `bm25_rank` (None where that side did not return the document), with the
    fused values in `retrieval_score` / `retrieval_rank`. A query with no term
    in any document (only stopwords, punctuation or emoji) gets dense results
    from both. Hybrid is for recall: hand its candidates to the reranker for
    order. A store made with `bm25=False` has no keyword index: those two
    search types are then an error (when the retriever is made, or per call)
    that says how to turn it on.

    `batch`/`abatch` embed every query first and search FAISS once for all of
    them (one matrix product instead of one scan per query); `"bm25"` and
    `"hybrid"` also tokenize every query in one call and score them in one
    pass over the keyword index. Each query then runs as usual, with its own
    callbacks and trace, on those results, which equal what `invoke` gives.

    Example:
        ```python
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_ce_rerank import FaissVectorStore

        store = FaissVectorStore.from_texts(
            ["cats purr", "dogs bark", "birds sing"],
            DeterministicFakeEmbedding(size=16),
        )
        retriever = store.as_retriever(k=2)
        docs = retriever.invoke("cats purr")
        print(docs[0].metadata["retrieval_score"], docs[0].metadata["retrieval_rank"])
        hybrid = store.as_retriever(search_type="hybrid", k=2)
        print(hybrid.invoke("dogs", alpha=0.7)[0].metadata["bm25_rank"])
        ```
    """

    vectorstore: VectorStore
    """The `FaissVectorStore` to search. (Typed by its read side, so this
    module needs nothing from store/vectorstore.py, which imports it.)"""

    search_type: Literal[
        "similarity", "mmr", "similarity_score_threshold", "bm25", "hybrid"
    ] = "similarity"
    """`"similarity"` (nearest first), `"mmr"` (maximal marginal relevance),
    `"similarity_score_threshold"` (nearest first, relevance >= score_threshold),
    `"bm25"` (keyword ranking) or `"hybrid"` (dense and BM25, fused)."""

    k: int = Field(default=4, ge=1)
    """Number of documents to return."""

    filter: MetadataFilter | None = None
    """Metadata filter: a dict of equalities or a callable on the metadata."""

    fetch_k: int = Field(default=20, ge=1)
    """Candidates MMR chooses from; also the first pool size when filtering."""

    lambda_mult: float = Field(default=0.5, ge=0.0, le=1.0)
    """MMR trade-off: 1 favours relevance, 0 favours diversity."""

    score_threshold: float | None = None
    """Minimum relevance score in [0, 1] (for cosine, `(1 + similarity) / 2`;
    LangChain's normalized relevance, not the raw `retrieval_score`): hits
    below it are dropped, whatever the `search_type`. Required by
    `"similarity_score_threshold"`."""

    fusion: FusionMethod = "rrf"
    """How `"hybrid"` fuses the two rankings: `"rrf"` (Reciprocal Rank Fusion,
    by rank only) or `"weighted"` (sum of min-max normalized scores)."""

    alpha: float = Field(default=DEFAULT_ALPHA, ge=0.0, le=1.0)
    """Weight of the dense side in `"hybrid"` (BM25 gets `1 - alpha`), for
    both fusions; 0.5 weighs them equally (plain RRF). The default, 0.7, was
    tuned on held-out sets (see `store.fusion`)."""

    rrf_k: int = Field(default=DEFAULT_RRF_K, ge=0)
    """RRF's rank offset: a document at rank r on a side adds
    `weight / (rrf_k + r)`; larger values flatten the gap between top ranks."""

    dense_depth: int | None = Field(default=None, ge=1)
    """Candidates the dense side hands to fusion; None: `max(k, 50)`."""

    bm25_depth: int | None = Field(default=None, ge=1)
    """Candidates the BM25 side hands to fusion; None: `max(k, 50)`."""

    include_embeddings: bool = False
    """Attach each document's stored vector as
    `metadata["retrieval_embedding"]` (a list of floats, as the index holds
    it), so a reranker with `diversity` compares candidates by the first
    stage's own vectors instead of embedding them again. Off by default: a
    384-dimensional vector is about 12 KB of Python floats per document, which
    would travel through every chain and trace. `RerankingRetriever` turns it
    on per call when its reranker has `diversity` and removes the key from
    what it returns."""

    allowed_search_types: ClassVar[tuple[str, ...]] = _SEARCH_TYPES

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def validate_search_type(cls, values: Any) -> Any:
        """Lift LangChain-style `search_kwargs` into fields; reject unknown keys."""
        if not isinstance(values, Mapping):
            return values
        values = dict(values)
        search_kwargs = dict(values.pop("search_kwargs", None) or {})
        unknown = sorted(set(search_kwargs) - set(_OPTIONS))
        if unknown:
            msg = f"unknown search_kwargs {unknown}; accepted: {list(_OPTIONS)}"
            raise ValueError(msg)
        for key, value in search_kwargs.items():
            if key in values:
                msg = f"{key!r} given both directly and in search_kwargs"
                raise ValueError(msg)
            values[key] = value
        _check_combination(values.get("search_type"), values.get("score_threshold"))
        return values

    @field_validator("vectorstore")
    @classmethod
    def _searchable(cls, store: VectorStore) -> VectorStore:
        if not isinstance(store, StoreSearch):
            msg = (
                f"FaissRetriever searches a FaissVectorStore, got a "
                f"{type(store).__name__}; call that store's own as_retriever()"
            )
            raise ValueError(msg)
        return store

    @model_validator(mode="after")
    def _keyword_index_present(self) -> FaissRetriever:
        _check_keyword_index(self._store, self.search_type)
        return self

    @property
    def _store(self) -> StoreSearch:
        return cast("StoreSearch", self.vectorstore)

    def _options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(overrides) - set(_OPTIONS))
        if unknown:
            msg = f"unexpected argument(s) {unknown}; accepted: {list(_OPTIONS)}"
            raise TypeError(msg)
        options = {name: getattr(self, name) for name in _OPTIONS} | overrides
        for name in ("k", "dense_depth", "bm25_depth", "rrf_k"):
            value = options[name]
            if value is None and name.endswith("_depth"):
                continue
            low = 0 if name == "rrf_k" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                kind = "a non-negative" if low == 0 else "a positive"
                msg = f"{name} must be {kind} integer, got {value!r}"
                raise ValueError(msg)
        if options["search_type"] not in _SEARCH_TYPES:
            msg = (
                f"search_type must be one of {list(_SEARCH_TYPES)}, got "
                f"{options['search_type']!r}"
            )
            raise ValueError(msg)
        if options["fusion"] not in ("rrf", "weighted"):
            msg = f"fusion must be 'rrf' or 'weighted', got {options['fusion']!r}"
            raise ValueError(msg)
        alpha = options["alpha"]
        if isinstance(alpha, bool) or not isinstance(alpha, int | float):
            msg = f"alpha must be a number between 0 and 1, got {alpha!r}"
            raise ValueError(msg)
        if not 0.0 <= alpha <= 1.0:
            msg = f"alpha must be between 0 and 1 (the dense weight), got {alpha!r}"
            raise ValueError(msg)
        if not isinstance(options["include_embeddings"], bool):
            msg = (
                "include_embeddings must be True or False, got "
                f"{options['include_embeddings']!r}"
            )
            raise ValueError(msg)
        _check_combination(options["search_type"], options["score_threshold"])
        _check_keyword_index(self._store, options["search_type"])
        return options

    def _search(
        self, query: str, options: dict[str, Any]
    ) -> list[tuple[Document, float]]:
        store = self._store
        k, filter_ = options["k"], options["filter"]
        if options["search_type"] == "mmr":
            pairs = store.max_marginal_relevance_search_with_score(
                query,
                k=k,
                fetch_k=options["fetch_k"],
                lambda_mult=options["lambda_mult"],
                filter=filter_,
            )
        else:
            found = self._take_prefetched(query, options)
            pairs = (
                store.similarity_search_with_score(
                    query, k=k, filter=filter_, fetch_k=options["fetch_k"]
                )
                if found is None
                else found.dense
            )
        threshold = options["score_threshold"]
        if threshold is not None:
            relevance = store._select_relevance_score_fn()
            pairs = [(d, s) for d, s in pairs if relevance(s) >= threshold]
        return pairs

    def _take_prefetched(self, query: str, options: dict[str, Any]) -> _Found | None:
        prefetched = _PREFETCHED.get()
        if prefetched is None:
            return None
        try:
            # pop: each run of a query repeated in the batch takes its own copy.
            found = prefetched.get((id(self), query), []).pop()
        except IndexError:
            return None
        return found if found.options == options else None

    def _embed(self, queries: list[str]) -> Vectors:
        store = self._store
        return store._as_matrix(
            [store._embedding.embed_query(q) for q in queries], len(queries)
        )

    def _keyword_sides(
        self, queries: list[str], options: dict[str, Any]
    ) -> list[_Sides]:
        """Both sides of `"bm25"` or `"hybrid"` for each query, searched together.

        One embedding pass, one FAISS search and one BM25 pass for all of
        them; `invoke` runs this with one query, so a batch gets its results.
        The documents are the store's own: `_keyword_search` copies the ones
        it returns.
        """
        store = self._store
        k = options["k"]
        store_options = {"filter": options["filter"], "fetch_k": options["fetch_k"]}
        if options["search_type"] == "hybrid":
            return store._both_sides_many(
                queries,
                self._embed(queries),
                options["dense_depth"] or max(k, DEFAULT_DEPTH),
                options["bm25_depth"] or max(k, DEFAULT_DEPTH),
                store_options,
            )
        sides = store._both_sides_many(queries, None, k, k, store_options)
        missing = [i for i, (_, keyword) in enumerate(sides) if keyword is None]
        if missing:  # no query term in any document: dense results instead
            vectors = self._embed([queries[i] for i in missing])
            dense = store._scored_many(vectors, k, store_options, copies=False)
            for i, hits in zip(missing, dense, strict=True):
                sides[i] = (hits, None)
        return sides

    def _prefetch(
        self, inputs: list[str], kwargs: dict[str, Any]
    ) -> dict[tuple[int, str], list[_Found]] | None:
        """Search every query of a batch at once; None where that cannot apply.

        Invalid options give None, and invalid queries are left out: each run
        then raises its own error, exactly as `invoke` would. So does a search
        that fails here (each run searches again, and reports its own error).
        """
        if len(inputs) < 2:
            return None
        try:
            options = self._options(kwargs)
        except (TypeError, ValueError):
            return None
        if options["search_type"] == "mmr":
            return None
        counts = Counter(q for q in inputs if isinstance(q, str) and q.strip())
        queries = list(counts)
        if not queries:
            return None
        store = self._store
        try:
            if options["search_type"] in _KEYWORD_TYPES:
                sides = self._keyword_sides(queries, options)
            else:
                rows = store._scored_many(
                    self._embed(queries),
                    options["k"],
                    {"filter": options["filter"], "fetch_k": options["fetch_k"]},
                )
                sides = [(hits, None) for hits in rows]
        except Exception:  # each run searches on its own and raises its error
            logger.debug("the batched search failed", exc_info=True)
            return None
        prefetched: dict[tuple[int, str], list[_Found]] = {}
        for query, (dense, keyword) in zip(queries, sides, strict=True):
            found = [_Found(options, dense, keyword)] * counts[query]
            if options["search_type"] not in _KEYWORD_TYPES:
                # Similarity hits are the copies a run returns: one set each.
                found[1:] = [_Found(options, _copies(store, dense)) for _ in found[1:]]
            prefetched[(id(self), query)] = found
        return prefetched

    @override
    def batch(
        self,
        inputs: list[str],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[list[Document]]:
        token = _PREFETCHED.set(self._prefetch(inputs, kwargs))
        try:
            return super().batch(
                inputs, config, return_exceptions=return_exceptions, **kwargs
            )
        finally:
            _PREFETCHED.reset(token)

    @override
    async def abatch(
        self,
        inputs: list[str],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[list[Document]]:
        prefetched = await run_in_executor(None, self._prefetch, inputs, kwargs)
        token = _PREFETCHED.set(prefetched)
        try:
            return await super().abatch(
                inputs, config, return_exceptions=return_exceptions, **kwargs
            )
        finally:
            _PREFETCHED.reset(token)

    @override
    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        options = self._options(kwargs)
        if options["search_type"] in _KEYWORD_TYPES:
            docs = self._keyword_search(check_query(query), options)
        else:
            pairs = self._search(check_query(query), options)
            # The store returns fresh copies, so their metadata is ours to extend.
            for rank, (doc, score) in enumerate(pairs, start=1):
                doc.metadata["retrieval_score"] = float(score)
                doc.metadata["retrieval_rank"] = rank
            docs = [doc for doc, _ in pairs]
        if options["include_embeddings"]:
            vectors = self._store.get_embeddings([str(doc.id) for doc in docs])
            for doc, vector in zip(docs, vectors, strict=True):
                if vector is not None:  # else deleted since the search
                    doc.metadata[EMBEDDING_KEY] = vector
        return docs

    def _keyword_search(self, query: str, options: dict[str, Any]) -> list[Document]:
        """`"bm25"` or `"hybrid"` results, with both sides' scores and ranks."""
        store = self._store
        k = options["k"]
        found = self._take_prefetched(query, options)
        dense, keyword = (
            self._keyword_sides([query], options)[0]
            if found is None
            else (found.dense, found.keyword)
        )
        if keyword is None:  # no query term in any document: dense results
            logger.info("no term of the query %r is indexed; using dense search", query)
            keyword = []
        docs = {doc.id: doc for doc, _ in dense} | {doc.id: doc for doc, _ in keyword}
        dense_ids = [(str(doc.id), score) for doc, score in dense]
        bm25_ids = [(str(doc.id), score) for doc, score in keyword]
        if options["search_type"] == "bm25":
            # One side: its own scores, unfused (dense only in the fallback).
            fused = [
                Candidate(id=i, score=score, dense_score=score, dense_rank=rank)
                for rank, (i, score) in enumerate(dense_ids, start=1)
            ] + [
                Candidate(id=i, score=score, bm25_score=score, bm25_rank=rank)
                for rank, (i, score) in enumerate(bm25_ids, start=1)
            ]
        else:
            fused = fuse(
                dense_ids,
                bm25_ids,
                method=options["fusion"],
                alpha=float(options["alpha"]),
                rrf_k=options["rrf_k"],
                dense_higher_is_better=store._distance != "l2",
            )
        results = []
        for rank, candidate in enumerate(fused[:k], start=1):
            # The sides hold the store's own documents: copy the ones returned.
            doc = store._copy(docs[candidate.id])
            doc.metadata.update(
                dense_score=candidate.dense_score,
                dense_rank=candidate.dense_rank,
                bm25_score=candidate.bm25_score,
                bm25_rank=candidate.bm25_rank,
                retrieval_score=candidate.score,
                retrieval_rank=rank,
            )
            results.append(doc)
        return results

    @override
    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        **kwargs: Any,
    ) -> list[Document]:
        # FAISS search is CPU work: run it off the event loop, with scores.
        return await run_in_executor(
            None,
            self._get_relevant_documents,
            query,
            run_manager=run_manager.get_sync(),
            **kwargs,
        )


def _check_keyword_index(store: StoreSearch, search_type: object) -> None:
    """Raise when a keyword search type is asked of a store without BM25."""
    if search_type in _KEYWORD_TYPES and store._bm25_settings is None:
        raise no_bm25_error(f"search_type={search_type!r}")


def _copies(store: StoreSearch, hits: _Hits) -> _Hits:
    """Fresh copies of `hits`' documents, for another run of the same query."""
    return [(store._copy(doc), score) for doc, score in hits]


def _check_combination(search_type: object, score_threshold: object) -> None:
    """Raise for a search type and threshold that cannot go together."""
    if search_type == "similarity_score_threshold" and score_threshold is None:
        msg = "search_type='similarity_score_threshold' needs score_threshold=..."
        raise ValueError(msg)
    if search_type in _KEYWORD_TYPES and score_threshold is not None:
        msg = (
            f"score_threshold is a dense relevance in [0, 1] and does not apply to "
            f"search_type={search_type!r}; drop it, or use search_type='similarity'"
        )
        raise ValueError(msg)
