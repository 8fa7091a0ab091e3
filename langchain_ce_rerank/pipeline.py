"""`build_reranking_retriever`: the two stages wired together in one call."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.cross_encoders import BaseCrossEncoder
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.embeddings import Embeddings

from langchain_ce_rerank.compressor import CrossEncoderCompressor, CrossEncoderLike
from langchain_ce_rerank.models import DEFAULT_CROSS_ENCODER, load_embeddings
from langchain_ce_rerank.vectorstore import FaissVectorStore

__all__ = ["build_reranking_retriever"]


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
) -> ContextualCompressionRetriever:
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
        A `ContextualCompressionRetriever`; `invoke(query, k=...)` overrides `k`.

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
    return ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=vectorstore.as_retriever(k=k)
    )
