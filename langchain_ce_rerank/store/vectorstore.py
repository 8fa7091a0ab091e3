"""`FaissVectorStore`: a thread-safe, pickle-free LangChain vector store on FAISS."""

from __future__ import annotations

import copy
import logging
import os
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from typing_extensions import override

from langchain_ce_rerank.errors import StoreLoadError
from langchain_ce_rerank.models import embedding_model_name, load_embeddings
from langchain_ce_rerank.store import faiss_index, manifest, persistence
from langchain_ce_rerank.store.bm25 import (
    BM25Index,
    BM25Settings,
    TermCache,
    choose_settings,
)
from langchain_ce_rerank.store.retriever import FaissRetriever
from langchain_ce_rerank.store.search import (
    DistanceStrategy,
    StoreSearch,
    Vectors,
    reject_unknown,
)

__all__ = ["DistanceStrategy", "FaissVectorStore"]

logger = logging.getLogger(__name__)

_DISTANCE_ALIASES: dict[str, DistanceStrategy] = {
    "cosine": "cosine",
    "l2": "l2",
    "euclidean": "l2",
    "euclidean_distance": "l2",
    "inner_product": "inner_product",
    "max_inner_product": "inner_product",
    "dot": "inner_product",
}


class FaissVectorStore(StoreSearch, VectorStore):
    """A LangChain `VectorStore` backed by a FAISS index (exact by default).

    Documents get string ids (generated when absent); adding an existing id
    replaces that document. Searches and writes may run from many threads: a
    search never sees a half-added document. `save_local` / `load_local` use JSON
    and FAISS's own format, never pickle, and saving is atomic.

    Scores from `similarity_search_with_score` are in the store's native unit:
    cosine similarity for `"cosine"` (higher is better), Euclidean distance for
    `"l2"` (lower is better), raw dot product for `"inner_product"`.

    Args:
        embedding: Any LangChain `Embeddings`.
        distance_strategy: `"cosine"` (vectors are L2-normalized; default),
            `"l2"` or `"inner_product"`.
        index_factory: The FAISS index, as a `faiss.index_factory` string:
            `"Flat"` (exact; default), `"HNSW32"` (graph: fast approximate
            search, no deletes), or an IVF index with scalar or product
            quantization for corpora past memory, e.g. `"IVF1024,SQ8"` or
            `"IVF4096,PQ32"`. IVF and PQ indexes train on the first documents
            added, or on a sample passed to `train()`.
        nprobe: IVF lists searched per query (more is slower and more exact).
        ef_search: HNSW candidate-list size per query (likewise).
        bm25: The keyword (BM25) index: `BM25Settings` say how it tokenizes
            text (language, stopwords, stemming); None or True use the
            defaults (English stopwords, no stemming); False keeps no keyword
            index at all: nothing BM25 is built or saved, and keyword searches
            are errors until `set_bm25` turns it on. The BM25 index holds the
            same documents and ids as FAISS; it is built on the first keyword
            search (`bm25_search_with_score`, or a retriever with
            `search_type="bm25"` or `"hybrid"`) and rebuilt on the first one
            after any write, since bm25s cannot change an index in place.

    Example:
        ```python
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_ce_rerank import FaissVectorStore

        store = FaissVectorStore(DeterministicFakeEmbedding(size=16))
        store.add_texts(["cats purr", "dogs bark"], ids=["a", "b"])
        docs = store.similarity_search("cats purr", k=1)
        assert docs[0].id == "a"
        ```
    """

    def __init__(
        self,
        embedding: Embeddings,
        *,
        distance_strategy: str = "cosine",
        index_factory: str = "Flat",
        nprobe: int | None = None,
        ef_search: int | None = None,
        bm25: BM25Settings | bool | None = None,
    ) -> None:
        if not isinstance(embedding, Embeddings):
            msg = (
                "embedding must be a langchain_core Embeddings instance, got "
                f"{type(embedding).__name__}; e.g. "
                "langchain_ce_rerank.load_embeddings()"
            )
            raise TypeError(msg)
        strategy = _DISTANCE_ALIASES.get(str(distance_strategy).lower())
        if strategy is None:
            msg = (
                f"distance_strategy {distance_strategy!r} is not supported; use "
                "'cosine', 'l2' or 'inner_product'"
            )
            raise ValueError(msg)
        if not isinstance(index_factory, str) or not index_factory.strip():
            msg = (
                "index_factory must be a faiss.index_factory string, got "
                f"{index_factory!r}"
            )
            raise ValueError(msg)
        for name, value in (("nprobe", nprobe), ("ef_search", ef_search)):
            if value is not None and (not isinstance(value, int) or value < 1):
                msg = f"{name} must be a positive integer, got {value!r}"
                raise ValueError(msg)
        settings = choose_settings(bm25, current=None)
        self._embedding = embedding
        self._distance: DistanceStrategy = strategy
        self._factory = index_factory.strip()
        self._nprobe = nprobe
        self._ef_search = ef_search
        self._index: Any = None  # created by the first add or train
        self._docs: dict[str, Document] = {}
        self._int_of: dict[str, int] = {}
        self._str_of: dict[int, str] = {}
        self._next_int = 0
        self._bm25_settings = settings
        self._bm25: BM25Index | None = None
        self._bm25_terms = None if settings is None else TermCache(settings)
        self._lock = threading.RLock()

    # -- properties -------------------------------------------------------------

    @property
    def embeddings(self) -> Embeddings:
        """The embedding model used for documents and queries."""
        return self._embedding

    @property
    def distance_strategy(self) -> DistanceStrategy:
        """How vectors are compared: `"cosine"`, `"l2"` or `"inner_product"`."""
        return self._distance

    @property
    def index_factory(self) -> str:
        """The FAISS index type, as a `faiss.index_factory` string."""
        return self._factory

    @property
    def bm25_settings(self) -> BM25Settings | None:
        """How the keyword (BM25) index tokenizes text; None: no keyword index."""
        return self._bm25_settings

    @property
    def bm25_enabled(self) -> bool:
        """Whether the store keeps a keyword (BM25) index (see `set_bm25`)."""
        return self._bm25_settings is not None

    def set_bm25(self, bm25: BM25Settings | bool = True) -> None:
        """Turn the keyword (BM25) index on or off, or change its settings.

        Nothing is tokenized here: the index is built on the next keyword
        search or `save_local`, and `save_local` records the choice, so
        `load_local` restores it.

        Args:
            bm25: True turns the index on (with the default `BM25Settings`,
                or keeps the current settings when it is on already); a
                `BM25Settings` turns it on with those settings; False drops
                it, and keyword searches become errors.

        Example:
            ```python
            from langchain_core.embeddings import DeterministicFakeEmbedding
            from langchain_ce_rerank import FaissVectorStore

            store = FaissVectorStore(DeterministicFakeEmbedding(size=8), bm25=False)
            store.add_texts(["error E0425"], ids=["a"])
            store.set_bm25(True)
            assert store.bm25_search_with_score("E0425")[0][0].id == "a"
            ```
        """
        with self._lock:
            settings = choose_settings(bm25, current=self._bm25_settings)
            if settings == self._bm25_settings:
                return
            self._bm25_settings = settings
            self._bm25 = None
            self._bm25_terms = None if settings is None else TermCache(settings)

    @property
    def ids(self) -> list[str]:
        """Ids of the stored documents, in insertion order (a copy)."""
        with self._lock:
            return list(self._docs)

    def _summary(self) -> dict[str, object]:
        """What the store holds, without embedding anything (for reprs)."""
        with self._lock:
            dimension = None if self._index is None else int(self._index.d)
            size = len(self._docs)
        return {
            "size": size,
            "dimension": dimension,
            "index": self._factory,
            "distance": self._distance,
            "embedding": embedding_model_name(self._embedding)
            or type(self._embedding).__name__,
            "bm25": self.bm25_enabled,
        }

    def __repr__(self) -> str:
        from langchain_ce_rerank.display import summary_text

        return summary_text(type(self).__name__, self._summary())

    def _repr_html_(self) -> str:
        from langchain_ce_rerank.display import summary_html

        return summary_html(type(self).__name__, self._summary())

    # -- writing ----------------------------------------------------------------

    @override
    def _as_matrix(self, vectors: npt.ArrayLike, expected: int) -> Vectors:
        try:
            matrix = np.asarray(vectors, dtype=np.float32)
        except ValueError as err:
            msg = f"expected {expected} vectors of one dimension, got ragged vectors"
            raise ValueError(msg) from err
        if matrix.ndim != 2 or matrix.shape[0] != expected:
            msg = (
                f"expected {expected} vectors of one dimension (one per text), got "
                f"an array of shape {matrix.shape}"
            )
            raise ValueError(msg)
        if not np.isfinite(matrix).all():
            msg = "the embedding returned NaN or infinite values"
            raise ValueError(msg)
        matrix = np.ascontiguousarray(matrix)
        if self._distance == "cosine":
            faiss.normalize_L2(matrix)
        return matrix

    def _new_index(self, dimension: int) -> Any:
        metric = (
            faiss.METRIC_L2 if self._distance == "l2" else faiss.METRIC_INNER_PRODUCT
        )
        index = faiss_index.build(self._factory, dimension, metric)
        faiss_index.set_search_params(index, self._nprobe, self._ef_search)
        return index

    def _ready_index(self, matrix: Vectors) -> None:
        """Create and, if needed, train the index (caller holds the lock)."""
        if self._index is None:
            self._index = self._new_index(matrix.shape[1])
        elif matrix.shape[1] != self._index.d:
            msg = (
                f"the embedding returned vectors of dimension {matrix.shape[1]} "
                f"but this store holds dimension {self._index.d}; use the "
                "embedding model the store was built with"
            )
            raise ValueError(msg)
        if not self._index.is_trained:
            faiss_index.train(self._index, matrix, self._factory)

    def train(
        self,
        texts: Sequence[str] | None = None,
        *,
        embeddings: npt.ArrayLike | None = None,
    ) -> None:
        """Train an IVF or PQ index on a representative sample.

        Not needed for `"Flat"` or `"HNSW32"`. Without it, the first add trains
        the index on the documents it adds.

        Args:
            texts: Sample texts, embedded with the store's embedding model.
            embeddings: Or sample vectors computed elsewhere (one of the two).

        Raises:
            ValueError: Neither or both given, the index is already trained, or
                the sample is too small.
        """
        if (texts is None) == (embeddings is None):
            msg = "train() needs either texts or embeddings (exactly one)"
            raise ValueError(msg)
        if texts is not None:
            sample = list(texts)
            matrix = self._as_matrix(
                self._embedding.embed_documents(sample), len(sample)
            )
        else:
            vectors = np.asarray(embeddings, dtype=np.float32)
            matrix = self._as_matrix(vectors, len(vectors))
        with self._lock:
            if self._index is not None and self._index.is_trained:
                msg = f"the {self._factory!r} index is already trained"
                raise ValueError(msg)
            self._ready_index(matrix)

    def _check_removable(self, what: str) -> None:
        if not faiss_index.supports_removal(self._factory):
            msg = (
                f"cannot {what}: FAISS cannot remove vectors from a "
                f"{self._factory!r} index; rebuild the store, or use "
                "index_factory='Flat' or an IVF index if documents change"
            )
            raise NotImplementedError(msg)

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and add texts; an id that already exists is replaced.

        Args:
            texts: Texts to add.
            metadatas: One metadata dict per text (copied, never mutated).
            ids: One id per text; None entries (or no list) get a new UUID.
            **kwargs: Not used; any key is an error.

        Returns:
            The ids of the added texts, in order.

        Raises:
            ValueError: Lengths differ, an id repeats, or the vector dimension
                does not match the index.
        """
        reject_unknown(kwargs, frozenset())
        texts, metas, final_ids = self._prepare(texts, metadatas, ids)
        if not texts:
            return []
        # Embedding is the slow part and runs outside the lock, so searches
        # continue meanwhile; the index and docstore then change in one step.
        vectors = self._embedding.embed_documents(texts)
        return self._insert(texts, metas, final_ids, vectors)

    def add_embeddings(
        self,
        texts: Sequence[str],
        embeddings: npt.ArrayLike,
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
    ) -> list[str]:
        """Add texts with vectors computed elsewhere (e.g. a batch job).

        Args:
            texts: Texts to add.
            embeddings: One vector per text: a (n, dimension) array or lists.
            metadatas: One metadata dict per text (copied).
            ids: One id per text; None entries (or no list) get a new UUID.

        Returns:
            The ids of the added texts, in order.
        """
        texts, metas, final_ids = self._prepare(texts, metadatas, ids)
        if not texts:
            return []
        return self._insert(texts, metas, final_ids, embeddings)

    def _prepare(
        self,
        texts: Iterable[str],
        metadatas: list[dict[Any, Any]] | None,
        ids: list[str] | None,
    ) -> tuple[list[str], list[dict[Any, Any]], list[str]]:
        """Validated texts, copied metadata and final ids (generated if absent)."""
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            msg = f"got {len(texts)} texts but {len(metadatas)} metadatas"
            raise ValueError(msg)
        if ids is not None and len(ids) != len(texts):
            msg = f"got {len(texts)} texts but {len(ids)} ids"
            raise ValueError(msg)
        for text in texts:
            if not isinstance(text, str):
                msg = f"texts must be strings, got {type(text).__name__}: {text!r}"
                raise TypeError(msg)
        # add_documents passes doc.id for every document, None where unset.
        given: list[str | None] = list(ids) if ids is not None else [None] * len(texts)
        final_ids = [i if i else str(uuid.uuid4()) for i in given]
        seen: set[str] = set()
        for doc_id in final_ids:
            if not isinstance(doc_id, str):
                msg = f"ids must be strings, got {type(doc_id).__name__}: {doc_id!r}"
                raise TypeError(msg)
            if doc_id in seen:
                msg = f"id {doc_id!r} appears twice in one add; ids must be unique"
                raise ValueError(msg)
            seen.add(doc_id)
        metas = [copy.deepcopy(dict(m)) for m in (metadatas or [{}] * len(texts))]
        return texts, metas, final_ids

    def _insert(
        self,
        texts: list[str],
        metas: list[dict[Any, Any]],
        final_ids: list[str],
        vectors: npt.ArrayLike,
    ) -> list[str]:
        matrix = self._as_matrix(vectors, len(texts))
        with self._lock:
            if any(doc_id in self._docs for doc_id in final_ids):
                self._check_removable("replace existing ids")
            self._ready_index(matrix)
            self._remove(final_ids)
            new_ints = np.arange(
                self._next_int, self._next_int + len(texts), dtype=np.int64
            )
            self._index.add_with_ids(matrix, new_ints)
            self._next_int += len(texts)
            self._bm25 = None  # rebuilt by the next keyword search
            for doc_id, number, text, meta in zip(
                final_ids, new_ints.tolist(), texts, metas, strict=True
            ):
                self._docs[doc_id] = Document(
                    id=doc_id, page_content=text, metadata=meta
                )
                self._int_of[doc_id] = number
                self._str_of[number] = doc_id
        return final_ids

    def _remove(self, ids: Iterable[str]) -> int:
        """Drop the given ids (caller holds the lock); returns how many existed."""
        # dict.fromkeys: an id listed twice is dropped once (a second pop would
        # fail after FAISS had already let go of its vector).
        numbers = [self._int_of[i] for i in dict.fromkeys(ids) if i in self._int_of]
        if not numbers:
            return 0
        self._index.remove_ids(np.asarray(numbers, dtype=np.int64))
        self._bm25 = None  # rebuilt by the next keyword search
        removed = [self._str_of.pop(number) for number in numbers]
        if self._bm25_terms is not None:
            self._bm25_terms.forget(removed)
        for doc_id in removed:
            del self._int_of[doc_id]
            del self._docs[doc_id]
        return len(numbers)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete documents by id; ids that are not stored are ignored.

        Args:
            ids: The ids to delete (a list, or any iterable of ids but a single
                string). Required: None is an error, so a stray call never
                empties the store (`store.delete(store.ids)` does that).
            **kwargs: Not used; any key is an error.

        Returns:
            True when at least one document was deleted, else False.
        """
        reject_unknown(kwargs, frozenset())
        if ids is None:
            msg = (
                "delete() needs the ids to delete; to empty the store call "
                "store.delete(store.ids)"
            )
            raise ValueError(msg)
        if isinstance(ids, str):
            msg = (
                f"ids must be a list of ids, got the string {ids!r}; to delete "
                f"one document call store.delete([{ids!r}])"
            )
            raise TypeError(msg)
        ids = list(ids)  # read once: a generator is read by the check and the removal
        with self._lock:
            if any(doc_id in self._docs for doc_id in ids):
                self._check_removable("delete documents")
            return self._remove(ids) > 0

    # -- construction, retriever, persistence ----------------------------------

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        distance_strategy: str = "cosine",
        index_factory: str = "Flat",
        nprobe: int | None = None,
        ef_search: int | None = None,
        bm25: BM25Settings | bool | None = None,
        **kwargs: Any,
    ) -> FaissVectorStore:
        """Build a store from texts.

        Args:
            texts: Texts to add.
            embedding: Any LangChain `Embeddings`.
            metadatas: One metadata dict per text.
            ids: One id per text (generated when absent).
            distance_strategy: See the class.
            index_factory: See the class.
            nprobe: See the class.
            ef_search: See the class.
            bm25: See the class.
            **kwargs: Not used; any key is an error.
        """
        reject_unknown(kwargs, frozenset())
        store = cls(
            embedding,
            distance_strategy=distance_strategy,
            index_factory=index_factory,
            nprobe=nprobe,
            ef_search=ef_search,
            bm25=bm25,
        )
        store.add_texts(texts, metadatas, ids=ids)
        return store

    def as_retriever(self, **kwargs: Any) -> FaissRetriever:
        """A `FaissRetriever` over this store.

        Args:
            **kwargs: `FaissRetriever` fields: `k`, `filter`, `search_type`
                (`"similarity"`, `"mmr"`, `"similarity_score_threshold"`,
                `"bm25"`, `"hybrid"`), `fetch_k`, `lambda_mult`,
                `score_threshold`, the fusion settings (`fusion`, `alpha`,
                `rrf_k`, `dense_depth`, `bm25_depth`), and also the
                LangChain-style `search_kwargs={...}` holding the same keys.

        Example:
            ```python
            retriever = store.as_retriever(k=20, filter={"source": "a.md"})
            ```
        """
        tags = kwargs.pop("tags", None) or self._get_retriever_tags()
        return FaissRetriever(vectorstore=self, tags=tags, **kwargs)

    def save_local(self, folder: str | os.PathLike[str]) -> None:
        """Save to `folder` atomically, without pickle.

        A crash or error during the save leaves the previously saved index in
        `folder` intact. Metadata must be JSON data (str, numbers, bool, None,
        lists, str-keyed dicts); anything else is an error naming the document.
        The BM25 index (built first if writes left it stale) and its
        `BM25Settings` are saved beside FAISS, from the same state; a store
        made with `bm25=False` saves none, and its manifest says `"bm25":
        false`.
        """
        from langchain_ce_rerank import __version__

        with self._lock:
            index = None if self._index is None else faiss.clone_index(self._index)
            records = [
                persistence.Record(
                    id=doc_id,
                    faiss_id=self._int_of[doc_id],
                    page_content=doc.page_content,
                    metadata=copy.deepcopy(doc.metadata),
                )
                for doc_id, doc in self._docs.items()
            ]
            bm25 = self._fresh_bm25() if self._bm25_settings is not None else None
            settings = self._bm25_settings
        persistence.save(
            folder,
            persistence.Snapshot(
                index=index,
                records=records,
                distance_strategy=self._distance,
                embedding_model=embedding_model_name(self._embedding),
                library_version=__version__,
                index_factory=self._factory,
                search_params={"nprobe": self._nprobe, "ef_search": self._ef_search},
                bm25_settings=False if settings is None else settings,
                bm25=bm25,
            ),
        )

    @staticmethod
    def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
        """The manifest of a saved folder (dimension, distance, count, model...).

        Raises:
            FileNotFoundError: No folder or no manifest.
            StoreLoadError: The manifest is damaged or of an unknown format.
        """
        return manifest.read_manifest(Path(folder))

    @classmethod
    def load_local(
        cls,
        folder: str | os.PathLike[str],
        embedding: Embeddings | None = None,
        *,
        bm25: BM25Settings | bool | None = None,
    ) -> FaissVectorStore:
        """Load a folder written by `save_local`; never executes code.

        Args:
            folder: The saved folder.
            embedding: The embedding model the index was built with; its vector
                dimension is checked against the index. None loads the model
                named in the manifest with `load_embeddings`.
            bm25: None (default): the keyword index as saved (on for folders
                saved before it could be turned off). Otherwise what
                `set_bm25` takes, applied once loaded: True to add a keyword
                index to a folder saved with `bm25=False`, False to drop it;
                `save_local` then records the change.

        Raises:
            FileNotFoundError: No folder or no manifest.
            StoreLoadError: A file is missing, truncated or modified, the
                dimension does not match `embedding`, or no embedding was given
                and none is recorded.
            ModelNotFoundError: The recorded embedding model cannot be loaded.
        """
        snapshot = persistence.load(folder)
        if embedding is None:
            if not snapshot.embedding_model:
                msg = (
                    f"{os.path.join(folder, manifest.MANIFEST)} records no "
                    "embedding model; pass embedding=... to load_local"
                )
                raise StoreLoadError(msg)
            embedding = load_embeddings(snapshot.embedding_model)
        params = snapshot.search_params or {}
        store = cls(
            embedding,
            distance_strategy=snapshot.distance_strategy,
            index_factory=snapshot.index_factory,
            nprobe=params.get("nprobe"),
            ef_search=params.get("ef_search"),
            # None: a folder saved before BM25, which gets the defaults.
            bm25=snapshot.bm25_settings,
        )
        index = snapshot.index
        if index is not None:
            probe = len(embedding.embed_query("dimension check"))
            if probe != index.d:
                msg = (
                    f"{os.path.join(folder, manifest.MANIFEST)}: the index holds "
                    f"{index.d}-dimensional vectors but the embedding returns "
                    f"{probe}-dimensional ones; load it with the model it was "
                    f"built with ({snapshot.embedding_model or 'name not recorded'})"
                )
                raise StoreLoadError(msg)
        current = embedding_model_name(embedding)
        if snapshot.embedding_model and current and current != snapshot.embedding_model:
            logger.warning(
                "Index in %s was built with %r but is loaded with %r; scores are "
                "only meaningful with the same model.",
                folder,
                snapshot.embedding_model,
                current,
            )
        if index is not None:
            faiss_index.set_search_params(index, store._nprobe, store._ef_search)
        store._index = index
        for record in snapshot.records:
            store._docs[record.id] = Document(
                id=record.id, page_content=record.page_content, metadata=record.metadata
            )
            store._int_of[record.id] = record.faiss_id
            store._str_of[record.faiss_id] = record.id
        store._next_int = max(store._str_of, default=-1) + 1
        # Folders saved before BM25 existed carry none: built on first use.
        store._bm25 = snapshot.bm25
        if bm25 is not None:
            store.set_bm25(bm25)
        return store
