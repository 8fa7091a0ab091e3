"""Opening a saved index folder, and making a new index, without naming a class.

The CLI, `ingest` and `build_reranking_retriever` go through these functions,
so which store class backs an index is decided in one place: `open_index`
reads the folder's manifest and picks the loader registered for its
`format`. Code outside `store/` holds an `IndexStore`, the interface those
callers use.

Example:
    ```python
    from langchain_core.documents import Document
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_ce_rerank.store import new_index, open_index

    embedding = DeterministicFakeEmbedding(size=8)
    index = new_index(embedding)
    index.add_documents([Document(page_content="cats purr", id="a")])
    index.save_local("my-index")
    print(open_index("my-index", embedding).ids)  # ['a']
    ```
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from langchain_ce_rerank.errors import StoreLoadError
from langchain_ce_rerank.store import manifest

if TYPE_CHECKING:
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.retrievers import BaseRetriever

__all__ = [
    "IndexStore",
    "has_bm25_index",
    "new_index",
    "open_index",
    "read_index_manifest",
]


class IndexStore(Protocol):
    """What callers outside `store/` use of an index.

    A LangChain vector store that lists its ids and saves itself to a folder
    `open_index` reads back.

    Example:
        ```python
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_ce_rerank.store import IndexStore, new_index

        index: IndexStore = new_index(DeterministicFakeEmbedding(size=8))
        print(index.ids)  # []
        ```
    """

    @property
    def ids(self) -> list[str]:
        """Ids of the stored documents, in insertion order (a copy)."""
        ...

    @property
    def embeddings(self) -> Embeddings | None:
        """The embedding model used for documents and queries."""
        ...

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Copies of the stored documents with these ids, in that order."""
        ...

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Embed and add documents; an id already stored is replaced."""
        ...

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete documents by id."""
        ...

    def save_local(self, folder: str | os.PathLike[str]) -> None:
        """Save to `folder` (atomically, without pickle)."""
        ...

    def as_retriever(self, **kwargs: Any) -> BaseRetriever:
        """The index's first-stage retriever (`k=...` and its other options)."""
        ...


def _open_faiss(
    folder: Path, embedding: Embeddings | None, **options: Any
) -> IndexStore:
    from langchain_ce_rerank.store.vectorstore import FaissVectorStore

    return FaissVectorStore.load_local(folder, embedding, **options)


# The saved manifest's "format" -> how to open a folder of that format.
_OPENERS: dict[str, Callable[..., IndexStore]] = {
    manifest.FORMAT: _open_faiss,
}


def read_index_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The verified manifest of a saved index (format, count, embedding model...).

    Cheap: reads one JSON file, loads no index and no model.

    Raises:
        FileNotFoundError: No folder or no manifest.
        StoreLoadError: The manifest is damaged, edited or of an unknown format.
    """
    return manifest.read_manifest(Path(folder))


def has_bm25_index(folder: str | os.PathLike[str]) -> bool:
    """Whether a saved index keeps a BM25 keyword index beside its vectors.

    Cheap: reads the manifest only. False for a folder saved with
    `bm25=False` (`ce-rerank index --no-bm25`); True otherwise, including
    folders saved before BM25 existed, whose index is built on first use.

    Raises:
        FileNotFoundError: No folder or no manifest.
        StoreLoadError: The manifest is damaged, edited or of an unknown format.
    """
    return read_index_manifest(folder).get("bm25") is not False


def open_index(
    folder: str | os.PathLike[str],
    embedding: Embeddings | None = None,
    **options: Any,
) -> IndexStore:
    """Open a saved index folder with the loader its manifest names.

    Args:
        folder: A folder written by `save_local` (or `ce-rerank index --out`).
        embedding: The embedding model the index was built with; None loads
            the model its manifest records.
        **options: The loader's own options: for this release's FAISS store,
            `bm25` (see `FaissVectorStore.load_local`), e.g. `bm25=True` to
            add a keyword index to a folder saved without one.

    Returns:
        The loaded store (a `FaissVectorStore` for every folder this release
        writes).

    Raises:
        FileNotFoundError: No folder or no manifest.
        StoreLoadError: A file is missing, damaged or edited, or the manifest's
            format has no loader here.
        ModelNotFoundError: `embedding` is None and the recorded model cannot
            be loaded.
    """
    path = Path(folder)
    kind = read_index_manifest(path).get("format")
    opener = _OPENERS.get(str(kind))
    if opener is None:
        msg = (
            f"{path / manifest.MANIFEST}: no loader for index format {kind!r} "
            f"(this release opens {sorted(_OPENERS)}); upgrade langchain-ce-rerank"
        )
        raise StoreLoadError(msg)
    return opener(path, embedding, **options)


def new_index(embedding: Embeddings, **settings: Any) -> IndexStore:
    """A new, empty index: this release's FAISS store.

    Args:
        embedding: Any LangChain `Embeddings`.
        **settings: The store's settings (`distance_strategy`,
            `index_factory`, `nprobe`, `ef_search`, `bm25`; see
            `FaissVectorStore`).

    Returns:
        The store; `save_local(folder)` writes a folder `open_index` reads.
    """
    from langchain_ce_rerank.store.vectorstore import FaissVectorStore

    return FaissVectorStore(embedding, **settings)
