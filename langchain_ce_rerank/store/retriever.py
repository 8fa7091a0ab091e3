"""`FaissRetriever`: the first stage, returning documents with their scores."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
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
from langchain_ce_rerank.store.filters import MetadataFilter
from langchain_ce_rerank.store.search import StoreSearch

__all__ = ["FaissRetriever"]

_OPTIONS = ("k", "filter", "fetch_k", "lambda_mult", "score_threshold")

_Hits = list[tuple[Document, float]]
# Results of one batched search, visible to the per-query runs of the `batch`
# call that made them (LangChain copies the context into its worker threads
# and tasks) and to nothing else. Keyed by retriever identity and query.
_PREFETCHED: ContextVar[dict[tuple[int, str], tuple[dict[str, Any], _Hits]] | None] = (
    ContextVar("faiss_retriever_prefetched", default=None)
)


class FaissRetriever(VectorStoreRetriever):
    """First-stage retriever over a `FaissVectorStore`.

    Returns copies of the stored documents, carrying their `id`, with
    `metadata["retrieval_score"]` (the store's native score: cosine similarity
    by default) and `metadata["retrieval_rank"]` (1-based). Every option can also
    be given per call: `retriever.invoke(query, k=5, filter={...})`.

    `batch`/`abatch` embed every query first and search FAISS once for all of
    them (one matrix product instead of one scan per query); each query then
    runs as usual, with its own callbacks and trace, on those results.

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
        ```
    """

    vectorstore: VectorStore
    """The `FaissVectorStore` to search. (Typed by its read side, so this
    module needs nothing from store/vectorstore.py, which imports it.)"""

    search_type: Literal["similarity", "mmr", "similarity_score_threshold"] = (
        "similarity"
    )
    """`"similarity"` (nearest first), `"mmr"` (maximal marginal relevance) or
    `"similarity_score_threshold"` (nearest first, relevance >= score_threshold)."""

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

    allowed_search_types: ClassVar[tuple[str, ...]] = (
        "similarity",
        "mmr",
        "similarity_score_threshold",
    )

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
        if (
            values.get("search_type") == "similarity_score_threshold"
            and values.get("score_threshold") is None
        ):
            msg = "search_type='similarity_score_threshold' needs score_threshold=..."
            raise ValueError(msg)
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

    @property
    def _store(self) -> StoreSearch:
        return cast("StoreSearch", self.vectorstore)

    def _options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(overrides) - set(_OPTIONS))
        if unknown:
            msg = f"unexpected argument(s) {unknown}; accepted: {list(_OPTIONS)}"
            raise TypeError(msg)
        options = {name: getattr(self, name) for name in _OPTIONS} | overrides
        k = options["k"]
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            msg = f"k must be a positive integer, got {k!r}"
            raise ValueError(msg)
        return options

    def _search(
        self, query: str, options: dict[str, Any]
    ) -> list[tuple[Document, float]]:
        store = self._store
        k, filter_ = options["k"], options["filter"]
        if self.search_type == "mmr":
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
                else found
            )
        threshold = options["score_threshold"]
        if threshold is not None:
            relevance = store._select_relevance_score_fn()
            pairs = [(d, s) for d, s in pairs if relevance(s) >= threshold]
        return pairs

    def _take_prefetched(self, query: str, options: dict[str, Any]) -> _Hits | None:
        prefetched = _PREFETCHED.get()
        if prefetched is None:
            return None
        # pop: a query repeated in the batch searches again for its own copies.
        entry = prefetched.pop((id(self), query), None)
        if entry is None or entry[0] != options:
            return None
        return entry[1]

    def _prefetch(
        self, inputs: list[str], kwargs: dict[str, Any]
    ) -> dict[tuple[int, str], tuple[dict[str, Any], _Hits]] | None:
        """Embed all queries and search FAISS once; None where that cannot apply.

        Invalid options or queries also give None: each run then raises its own
        error, exactly as `invoke` would.
        """
        if self.search_type == "mmr" or len(inputs) < 2:
            return None
        try:
            options = self._options(kwargs)
            queries = list(dict.fromkeys(check_query(q) for q in inputs))
        except (TypeError, ValueError):
            return None
        store = self._store
        vectors = store._as_matrix(
            [store._embedding.embed_query(q) for q in queries],
            len(queries),
        )
        rows = store._scored_many(
            vectors,
            options["k"],
            {"filter": options["filter"], "fetch_k": options["fetch_k"]},
        )
        return {
            (id(self), query): (options, hits)
            for query, hits in zip(queries, rows, strict=True)
        }

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
        pairs = self._search(check_query(query), options)
        # The store returns fresh copies, so their metadata is ours to extend.
        for rank, (doc, score) in enumerate(pairs, start=1):
            doc.metadata["retrieval_score"] = float(score)
            doc.metadata["retrieval_rank"] = rank
        return [doc for doc, _ in pairs]

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
