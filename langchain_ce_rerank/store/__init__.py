"""The FAISS vector store: writes, search and MMR, BM25, filters, persistence.

Code outside `store/` opens a saved folder with `open_index` (keyed on the
folder's manifest), makes a new index with `new_index`, and holds the result
as an `IndexStore`.

Names are imported on first use, like the package's own. The modules import
in one direction only (filters, search <- retriever <- vectorstore <- opening;
the retriever searches the store's read side, `StoreSearch`, so it never
imports the store class), and importing one of them does not load the others
through this package.

Example:
    ```python
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_ce_rerank.store import FaissVectorStore

    store = FaissVectorStore(DeterministicFakeEmbedding(size=16))
    store.add_texts(["cats purr", "dogs bark"], ids=["a", "b"])
    ```
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_ce_rerank.lazy import lazy_exports
from langchain_ce_rerank.store.bm25 import BM25Settings
from langchain_ce_rerank.store.filters import MetadataFilter
from langchain_ce_rerank.store.search import DistanceStrategy

if TYPE_CHECKING:
    from langchain_ce_rerank.store.opening import (
        IndexStore,
        has_bm25_index,
        new_index,
        open_index,
        read_index_manifest,
    )
    from langchain_ce_rerank.store.vectorstore import FaissVectorStore

# Public name -> the module that defines it, imported on first use.
_EXPORTS = {
    "FaissVectorStore": "vectorstore",
    "IndexStore": "opening",
    "has_bm25_index": "opening",
    "new_index": "opening",
    "open_index": "opening",
    "read_index_manifest": "opening",
}

__all__ = [
    "BM25Settings",
    "DistanceStrategy",
    "FaissVectorStore",
    "IndexStore",
    "MetadataFilter",
    "has_bm25_index",
    "new_index",
    "open_index",
    "read_index_manifest",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
