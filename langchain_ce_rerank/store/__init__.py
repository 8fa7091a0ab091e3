"""The FAISS vector store: writes, search and MMR, BM25, filters, persistence.

`FaissVectorStore` is imported on first use: `store/retriever.py` (the first
stage, `FaissRetriever`) imports the read side and the filters from here, and
`store/vectorstore.py` imports `store/retriever.py`, so loading the class with
the package would make the two import each other.

Example:
    ```python
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_ce_rerank.store import FaissVectorStore

    store = FaissVectorStore(DeterministicFakeEmbedding(size=16))
    store.add_texts(["cats purr", "dogs bark"], ids=["a", "b"])
    ```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_ce_rerank.store.bm25 import BM25Settings
from langchain_ce_rerank.store.filters import MetadataFilter
from langchain_ce_rerank.store.search import DistanceStrategy

if TYPE_CHECKING:
    from langchain_ce_rerank.store.vectorstore import FaissVectorStore

__all__ = ["BM25Settings", "DistanceStrategy", "FaissVectorStore", "MetadataFilter"]


def __getattr__(name: str) -> Any:
    if name == "FaissVectorStore":
        from langchain_ce_rerank.store import vectorstore

        return vectorstore.FaissVectorStore
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
