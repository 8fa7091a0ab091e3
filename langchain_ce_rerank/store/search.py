"""Reading a `FaissVectorStore`: similarity and MMR search, with scores.

`StoreSearch` holds the store's read side; `FaissVectorStore` (vectorstore.py)
owns the state it reads and every write. Split out so each file keeps one
concept: here, turning a query into ranked copies of stored documents.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from langchain_ce_rerank.store import faiss_index
from langchain_ce_rerank.store.bm25 import BM25Index, BM25Settings, TermCache
from langchain_ce_rerank.store.filters import (
    MetadataFilter,
    Predicate,
    filter_key,
    to_predicate,
)

DistanceStrategy: TypeAlias = Literal["cosine", "l2", "inner_product"]
SEARCH_OPTIONS = frozenset({"filter", "fetch_k"})
Vectors: TypeAlias = npt.NDArray[np.float32]
Scored: TypeAlias = list[tuple[Document, float]]


def check_k(name: str, value: int) -> None:
    """Raise unless `value` is a positive integer."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        msg = f"{name} must be a positive integer, got {value!r}"
        raise ValueError(msg)


def reject_unknown(kwargs: dict[str, Any], allowed: frozenset[str]) -> None:
    """Raise a TypeError naming any option not in `allowed`."""
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        msg = f"unexpected search option(s) {unknown}; accepted: {sorted(allowed)}"
        raise TypeError(msg)


def no_bm25_error(asked: str) -> ValueError:
    """The error for a keyword search (`asked`) on a store without BM25."""
    return ValueError(
        f"{asked} needs the store's BM25 keyword index, but this store has "
        "none (it was made, or saved, with bm25=False). Turn it on with "
        "store.set_bm25(True): the index is built on the first keyword search "
        "and save_local keeps it; for a saved folder, "
        "FaissVectorStore.load_local(folder, bm25=True) then save_local (an "
        "index made by `ce-rerank index --no-bm25`: run it again with --bm25). "
        "Or search by similarity: search_type='similarity'."
    )


def _same(doc: Document) -> Document:
    return doc


class StoreSearch:
    """The read side of `FaissVectorStore` (see that class for the contract)."""

    # State owned and written by FaissVectorStore.
    _index: Any
    _docs: dict[str, Document]
    _int_of: dict[str, int]
    _str_of: dict[int, str]
    _lock: threading.RLock
    _embedding: Embeddings
    _distance: DistanceStrategy
    _bm25_settings: BM25Settings | None  # None: the store keeps no keyword index
    _bm25: BM25Index | None  # None until the first keyword search after a write
    _bm25_terms: TermCache | None

    def _as_matrix(self, vectors: npt.ArrayLike, expected: int) -> Vectors:
        raise NotImplementedError  # FaissVectorStore validates and normalizes

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Return copies of the stored documents with these ids, in that order.

        Ids that are not stored are skipped.
        """
        with self._lock:
            return [self._copy(self._docs[i]) for i in ids if i in self._docs]

    def get_embeddings(self, ids: Sequence[str], /) -> list[list[float] | None]:
        """The stored vector of each id, as the index holds it (None if not stored).

        One `reconstruct_batch` call, no embedding model: the vectors FAISS
        searched (normalized for cosine; approximate for PQ and SQ indexes).

        Args:
            ids: Document ids.

        Returns:
            One list of floats per id, in order; None for an id not stored.
        """
        with self._lock:
            numbers = [self._int_of.get(i) for i in ids]
            found = [n for n in numbers if n is not None]
            if not found:
                return [None] * len(ids)
            rows = iter(
                self._index.reconstruct_batch(np.asarray(found, dtype=np.int64))
                .astype(np.float64)
                .tolist()
            )
            return [None if n is None else next(rows) for n in numbers]

    @staticmethod
    def _copy(doc: Document) -> Document:
        # Stored documents were validated when added, so no validation again:
        # model_copy copies the fields as they are (measured 1.9 us a document
        # against model_construct's 2.5 us, which walks every field's default),
        # and the metadata, the only mutable field, is copied deeply.
        return doc.model_copy(
            update={"metadata": copy.deepcopy(doc.metadata) if doc.metadata else {}}
        )

    def _embed_query(self, query: str) -> Vectors:
        return self._as_matrix([self._embedding.embed_query(query)], 1)

    def _native_score(self, raw: float) -> float:
        # FAISS reports squared distances for L2; users expect the distance.
        return float(np.sqrt(max(raw, 0.0))) if self._distance == "l2" else float(raw)

    def _search(
        self,
        query: Vectors,
        k: int,
        predicate: Predicate | None,
        fetch_k: int,
    ) -> list[tuple[Document, float, int]]:
        """Top-k (stored doc, native score, faiss id) of one query; lock held."""
        return self._search_many(query, k, predicate, fetch_k)[0]

    def _search_many(
        self,
        queries: Vectors,
        k: int,
        predicate: Predicate | None,
        fetch_k: int,
    ) -> list[list[tuple[Document, float, int]]]:
        """Top-k hits for each row of `queries`, filtered; caller holds lock.

        All rows go to FAISS in one search call (one matrix product for a flat
        index). With a filter, a row short of `k` matches is searched again in
        growing rounds until `k` match or the whole index has been read, so a
        filtered search returns `k` results whenever `k` documents match.
        """
        if self._index is None or self._index.ntotal == 0:
            return [[] for _ in range(len(queries))]
        if queries.shape[1] != self._index.d:
            msg = (
                f"the query vector has dimension {queries.shape[1]} but this store "
                f"holds dimension {self._index.d}"
            )
            raise ValueError(msg)
        total = int(self._index.ntotal)
        first = min(k if predicate is None else max(k, fetch_k), total)
        distances, numbers = faiss_index.search(self._index, queries, first)
        results = []
        for row in range(len(queries)):
            hits = self._hits(distances[row], numbers[row], k, predicate)
            want = first
            while len(hits) < k and want < total:
                want = min(want * 4, total)
                more_distances, more_numbers = faiss_index.search(
                    self._index, queries[row : row + 1], want
                )
                hits = self._hits(more_distances[0], more_numbers[0], k, predicate)
            results.append(hits)
        return results

    def _hits(
        self,
        distances: npt.NDArray[np.float32],
        numbers: npt.NDArray[np.int64],
        k: int,
        predicate: Predicate | None,
    ) -> list[tuple[Document, float, int]]:
        """The first `k` of one row of FAISS results that exist and match."""
        hits: list[tuple[Document, float, int]] = []
        for raw, number in zip(distances.tolist(), numbers.tolist(), strict=True):
            if number < 0:
                continue
            doc = self._docs[self._str_of[number]]
            if predicate is not None and not predicate(dict(doc.metadata)):
                continue
            hits.append((doc, self._native_score(raw), number))
            if len(hits) == k:
                break
        return hits

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents nearest to a vector, with their native scores.

        Args:
            embedding: The query vector.
            k: Number of documents to return.
            **kwargs: `filter` (metadata dict or callable) and `fetch_k`
                (first candidate pool size when filtering, default 20).

        Returns:
            `(document, score)` pairs, best first; documents are copies.
        """
        return self._scored(self._as_matrix([embedding], 1), k, kwargs)

    def _scored(
        self, query: Vectors, k: int, options: dict[str, Any]
    ) -> list[tuple[Document, float]]:
        """Copies of the top-k documents with native scores, for one query row."""
        return self._scored_many(query, k, options)[0]

    def _scored_many(
        self, queries: Vectors, k: int, options: dict[str, Any], copies: bool = True
    ) -> list[list[tuple[Document, float]]]:
        """`_scored` for every row of `queries`, in one FAISS search call.

        `copies=False` gives the stored documents themselves (see
        `_both_sides_many`).
        """
        check_k("k", k)
        reject_unknown(options, SEARCH_OPTIONS)
        predicate = to_predicate(options.get("filter"))
        fetch_k = int(options.get("fetch_k", 20))
        hand_out = self._copy if copies else _same
        with self._lock:
            rows = self._search_many(queries, k, predicate, fetch_k)
            return [[(hand_out(doc), score) for doc, score, _ in hits] for hits in rows]

    def similarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents most similar to `query`, with native scores (see the class).

        Args:
            query: The query text.
            k: Number of documents to return.
            **kwargs: `filter` and `fetch_k`, as in
                `similarity_search_with_score_by_vector`.
        """
        check_k("k", k)
        reject_unknown(kwargs, SEARCH_OPTIONS)
        return self._scored(self._embed_query(query), k, kwargs)

    def similarity_search(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[Document]:
        """Documents most similar to `query` (copies, best first)."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        """Documents nearest to a vector (copies, best first)."""
        pairs = self.similarity_search_with_score_by_vector(embedding, k, **kwargs)
        return [doc for doc, _ in pairs]

    # -- keyword (BM25) search ------------------------------------------------

    def _fresh_bm25(self) -> BM25Index | None:
        """The BM25 index of the documents stored now (lock held); None if empty.

        Writes drop the index; the first keyword search (or save) after them
        rebuilds it from every stored document, because bm25s cannot add or
        delete documents in place.

        Raises:
            ValueError: The store keeps no keyword index (`bm25=False`).
        """
        if self._bm25_terms is None:
            raise no_bm25_error("a keyword search")
        if self._bm25 is None and self._docs:
            docs = self._docs
            self._bm25 = self._bm25_terms.build(
                list(docs), lambda doc_id: docs[doc_id].page_content
            )
        return self._bm25

    def _keyword_hits(
        self, query: str, k: int, filter: MetadataFilter | None
    ) -> Scored | None:
        """Copies of the top-k BM25 hits that match (lock held).

        None when no term of the query occurs in any stored document (a query
        of stopwords, punctuation or emoji, or of unknown words): BM25 has
        nothing to rank by, and callers may fall back to dense search.
        """
        return self._keyword_hits_many([query], k, filter)[0]

    def _keyword_hits_many(
        self,
        queries: Sequence[str],
        k: int,
        filter: MetadataFilter | None,
        copies: bool = True,
    ) -> list[Scored | None]:
        """`_keyword_hits` of each query: one tokenizing call, one filter mask.

        `copies=False` gives the stored documents themselves (see
        `_both_sides_many`).
        """
        index = self._fresh_bm25()
        if index is None:
            return [[] for _ in queries]
        terms = index.terms_many(queries)
        mask = None
        predicate = to_predicate(filter)
        if predicate is not None and any(terms):
            docs, ids = self._docs, index.ids
            mask = index.mask(
                lambda row: predicate(dict(docs[ids[row]].metadata)),
                filter_key(filter),
            )
        hand_out = self._copy if copies else _same
        found: list[Scored | None] = []
        for query_terms, hits in zip(
            terms, index.search_many(terms, k, mask), strict=True
        ):
            found.append(
                [(hand_out(self._docs[index.ids[row]]), score) for row, score in hits]
                if query_terms
                else None
            )
        return found

    def bm25_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Documents ranked by BM25 for `query`, with their BM25 scores.

        Only documents holding at least one query term are returned; a filter
        drops the others before ranking, so `k` matching documents come back
        whenever `k` of them hold a query term. A query with no term in any
        document (only stopwords, punctuation, emoji or unknown words) returns
        no documents; the retriever's `"bm25"` and `"hybrid"` search types
        fall back to dense search then.

        Args:
            query: The query text, tokenized with the store's `BM25Settings`.
            k: Number of documents to return.
            **kwargs: `filter` (metadata dict or callable).

        Returns:
            `(document, score)` pairs, best first; documents are copies.

        Raises:
            ValueError: The store keeps no keyword index (`bm25=False`; see
                `set_bm25`).
        """
        check_k("k", k)
        reject_unknown(kwargs, frozenset({"filter"}))
        to_predicate(kwargs.get("filter"))  # a bad filter fails before the lock
        with self._lock:
            if self._bm25_terms is None:
                raise no_bm25_error("bm25_search_with_score")
            return self._keyword_hits(query, k, kwargs.get("filter")) or []

    def _both_sides_many(
        self,
        queries: Sequence[str],
        vectors: Vectors | None,
        dense_k: int,
        bm25_k: int,
        options: dict[str, Any],
    ) -> list[tuple[Scored, Scored | None]]:
        """Each query's dense hits (none if `vectors` is None) and BM25 hits.

        Row `i` of `vectors` embeds `queries[i]`. One FAISS search for every
        vector and one BM25 pass for every query, all under one hold of the
        lock: every query, and both its sides, read one state of the store, so
        a document is never in one side's view and missing from the other's.
        The documents are the stored ones, not copies, so that a caller fusing
        the sides copies only those it returns (it must copy them); a write
        replaces stored documents and never changes one in place, so they stay
        as read after the lock is released.
        """
        reject_unknown(options, SEARCH_OPTIONS)
        predicate = to_predicate(options.get("filter"))
        fetch_k = int(options.get("fetch_k", 20))
        with self._lock:
            dense: list[Scored] = [[] for _ in queries]
            if vectors is not None:
                rows = self._search_many(vectors, dense_k, predicate, fetch_k)
                dense = [[(doc, score) for doc, score, _ in hits] for hits in rows]
            keyword = self._keyword_hits_many(
                queries, bm25_k, options.get("filter"), copies=False
            )
            return list(zip(dense, keyword, strict=True))

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        if self._distance == "cosine":
            return lambda similarity: (1.0 + similarity) / 2.0
        if self._distance == "l2":
            # Exact for unit vectors, whose distance lies in [0, 2].
            return lambda distance: max(0.0, 1.0 - distance / 2.0)
        msg = (
            "relevance scores in [0, 1] are undefined for unnormalized inner "
            "products; use distance_strategy='cosine' or similarity_search_with_score"
        )
        raise NotImplementedError(msg)

    def max_marginal_relevance_search_with_score_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Diverse documents by maximal marginal relevance, with native scores.

        Args:
            embedding: The query vector.
            k: Number of documents to return.
            fetch_k: Candidates (nearest first) that MMR chooses from.
            lambda_mult: 1 favours relevance, 0 favours diversity.
            **kwargs: `filter`.

        Returns:
            `(document, score)` pairs in MMR order; the score is the document's
            similarity (or distance) to the query.
        """
        check_k("k", k)
        check_k("fetch_k", fetch_k)
        reject_unknown(kwargs, frozenset({"filter"}))
        if not 0.0 <= lambda_mult <= 1.0:
            msg = f"lambda_mult must be between 0 and 1, got {lambda_mult!r}"
            raise ValueError(msg)
        predicate = to_predicate(kwargs.get("filter"))
        query = self._as_matrix([embedding], 1)
        with self._lock:
            hits = self._search(query, max(k, fetch_k), predicate, fetch_k)
            if not hits:
                return []
            vectors = np.vstack([self._index.reconstruct(n) for _, _, n in hits])
            chosen = maximal_marginal_relevance(
                query[0], vectors.tolist(), lambda_mult=lambda_mult, k=k
            )
            return [(self._copy(hits[i][0]), hits[i][1]) for i in chosen]

    def max_marginal_relevance_search_with_score(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """MMR search for a text query; see the `_by_vector` variant."""
        vector = self._embed_query(query)[0].tolist()
        return self.max_marginal_relevance_search_with_score_by_vector(
            vector, k, fetch_k, lambda_mult, **kwargs
        )

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """Diverse documents by maximal marginal relevance (copies)."""
        pairs = self.max_marginal_relevance_search_with_score_by_vector(
            embedding, k, fetch_k, lambda_mult, **kwargs
        )
        return [doc for doc, _ in pairs]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """Diverse documents for a text query by maximal marginal relevance."""
        pairs = self.max_marginal_relevance_search_with_score(
            query, k, fetch_k, lambda_mult, **kwargs
        )
        return [doc for doc, _ in pairs]
