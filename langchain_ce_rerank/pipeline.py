"""`build_reranking_retriever`: the two stages wired together in one call."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.cross_encoders import BaseCrossEncoder
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.embeddings import Embeddings
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import get_config_list
from typing_extensions import override

from langchain_ce_rerank.compressor import CrossEncoderCompressor, CrossEncoderLike
from langchain_ce_rerank.models import DEFAULT_CROSS_ENCODER, load_embeddings
from langchain_ce_rerank.vectorstore import FaissVectorStore

__all__ = ["RerankingRetriever", "build_reranking_retriever"]


class RerankingRetriever(ContextualCompressionRetriever):
    """A `ContextualCompressionRetriever` whose `batch` reranks in one stream.

    `invoke`, `ainvoke`, callbacks and tracing are exactly those of the parent.
    `batch` first runs the first stage for every query, then scores all the
    (query, candidate) pairs in one de-duplicated, length-sorted model stream
    (`CrossEncoderCompressor.score_documents_batch`), which fills the score
    cache; the per-query runs that follow take their scores from it. The first
    stage therefore runs twice per query, which costs milliseconds next to the
    cross-encoder's seconds, and keeps every run traced as usual.

    Example:
        ```python
        from langchain_core.documents import Document
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_ce_rerank import build_reranking_retriever

        from langchain_core.cross_encoders import BaseCrossEncoder


        class Overlap(BaseCrossEncoder):  # counts shared words; any model works
            def score(self, text_pairs):
                return [
                    float(len(set(q.split()) & set(t.split()))) for q, t in text_pairs
                ]


        retriever = build_reranking_retriever(
            [Document(page_content=t) for t in ["red apple", "blue sky", "red sky"]],
            embedding=DeterministicFakeEmbedding(size=8),
            reranker=Overlap(),
            k=3,
            top_n=1,
        )
        print(retriever.batch(["red apple", "blue sky"]))
        ```
    """

    @override
    def batch(
        self,
        inputs: list[str],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[list[Document]]:
        compressor = self.base_compressor
        if not (
            isinstance(compressor, CrossEncoderCompressor)
            and compressor.cache_size > 0
            and len(inputs) > 1
            and not return_exceptions
        ):
            return super().batch(
                inputs, config, return_exceptions=return_exceptions, **kwargs
            )
        configs = get_config_list(config, len(inputs))
        candidates = self.base_retriever.batch(inputs, configs, **kwargs)
        results: list[list[Document]] = []
        start = 0
        while start < len(inputs):
            # Prefetch as many queries as fit in half the cache, so nothing is
            # evicted before its query runs.
            end, pairs = start, 0
            while end < len(inputs) and (
                end == start
                or pairs + len(candidates[end]) <= compressor.cache_size // 2
            ):
                pairs += len(candidates[end])
                end += 1
            compressor.score_documents_batch(
                [(candidates[i], inputs[i]) for i in range(start, end) if candidates[i]]
            )
            results.extend(
                super().batch(inputs[start:end], configs[start:end], **kwargs)
            )
            start = end
        return results


def build_reranking_retriever(
    documents: Iterable[Document] | None = None,
    *,
    vectorstore: FaissVectorStore | None = None,
    embedding: Embeddings | None = None,
    reranker: (
        str
        | os.PathLike[str]
        | BaseCrossEncoder
        | CrossEncoderLike
        | BaseDocumentCompressor
        | None
    ) = None,
    k: int = 20,
    top_n: int | None = 5,
    **compressor_kwargs: Any,
) -> RerankingRetriever:
    """Build a FAISS first stage plus cross-encoder reranker, ready to invoke.

    Args:
        documents: Documents to index in a new `FaissVectorStore`.
        vectorstore: An existing store to search instead (not with `documents`
            or `embedding`; add documents to it yourself).
        embedding: Embeddings for the new store; default
            `sentence-transformers/all-MiniLM-L6-v2`, normalized.
        reranker: A cross-encoder id or folder, a loaded
            `sentence_transformers.CrossEncoder`, a `BaseCrossEncoder`, or a
            ready document compressor (used as is: then `top_n` and
            `compressor_kwargs` are not used). Default
            `cross-encoder/ms-marco-MiniLM-L6-v2`.
        k: Candidates the first stage hands to the reranker.
        top_n: Documents returned after reranking; None keeps all `k`.
        **compressor_kwargs: Other `CrossEncoderCompressor` fields
            (`score_threshold`, `batch_size`, `activation`, ...).

    Returns:
        A `RerankingRetriever` (a `ContextualCompressionRetriever`);
        `invoke(query, k=...)` overrides `k`.

    Raises:
        ValueError: Conflicting arguments, or `k`/`top_n` below 1.

    Example:
        ```python
        from langchain_core.documents import Document
        from langchain_ce_rerank import build_reranking_retriever

        retriever = build_reranking_retriever(
            [Document(page_content="Paris is the capital of France.")], k=20, top_n=5
        )
        docs = retriever.invoke("What is the capital of France?")
        ```
    """
    if vectorstore is not None and (documents is not None or embedding is not None):
        msg = (
            "pass either vectorstore=... or documents/embedding, not both; to add "
            "documents to an existing store call vectorstore.add_documents(...) first"
        )
        raise ValueError(msg)
    if isinstance(reranker, BaseDocumentCompressor):
        if compressor_kwargs:
            msg = (
                f"reranker is a ready compressor; {sorted(compressor_kwargs)} would "
                "be ignored: set them on the compressor instead"
            )
            raise ValueError(msg)
        compressor = reranker
    else:
        compressor = CrossEncoderCompressor(
            model=DEFAULT_CROSS_ENCODER if reranker is None else reranker,
            top_n=top_n,
            **compressor_kwargs,
        )
    if vectorstore is None:
        vectorstore = FaissVectorStore(embedding or load_embeddings())
        if documents is not None:
            vectorstore.add_documents(list(documents))
    return RerankingRetriever(
        base_compressor=compressor, base_retriever=vectorstore.as_retriever(k=k)
    )
