"""The store, driven by random writes, searches and save/load cycles, against a model.

A Hypothesis state machine adds (with and without ids), upserts, deletes,
searches (similarity, bm25, hybrid; no filter, dict filters, a callable) and
saves and reloads a `FaissVectorStore`, and checks after every step that it
holds what a plain dict of `id -> (text, metadata)` holds and that every
ranking equals a brute-force one computed from that dict (store_reference.py),
whatever order tied documents come in. Texts come from eight words, ids from
six, so replacing an id, repeating a text and tying scores happen often.

The profile in tests/conftest.py derandomizes the run, so it cannot flake;
`HYPOTHESIS_PROFILE=explore` searches further with random seeds.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from doubles import AxisEmbeddings
from hypothesis import settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)
from langchain_core.documents import Document
from store_reference import (
    bm25_scores,
    check_top_k,
    cosine_scores,
    rrf,
    terms,
    tie_ranks,
)

from langchain_ce_rerank import FaissVectorStore

DENSE_WORDS = ["red", "green", "blue", "cat", "dog"]  # the embedding's axes
# "zebra": a term only BM25 sees; "the", "on": stopwords only the embedding
# ignores too (a query of them has no BM25 term: hybrid falls back to dense).
WORDS = [*DENSE_WORDS, "zebra", "the", "on"]
ID_POOL = ["a", "b", "c", "d", "e", "f"]
MAX_DOCS = 16  # below the retriever's default depth (20): hybrid sees them all
ALL = 20  # a k that returns every matching document
DENSE_TOLERANCE = 1e-5  # FAISS computes in float32
BM25_TOLERANCE = 1e-4  # so does bm25s, on scores up to about 5


def even_n(metadata: dict[str, Any]) -> bool:
    """A callable filter: documents whose `n` is even."""
    return int(metadata.get("n", 1)) % 2 == 0


FILTERS: list[Any] = [
    None,
    {"color": "red"},
    {"color": ["red", "blue"], "n": 1},
    even_n,
]

texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join)
queries = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)
metadatas = st.fixed_dictionaries(
    {"n": st.integers(0, 3)}, optional={"color": st.sampled_from(["red", "blue"])}
)


def matches(filter: Any, metadata: Mapping[str, Any]) -> bool:
    """The documented filter semantics, written out for the model."""
    if filter is None:
        return True
    if callable(filter):
        return bool(filter(dict(metadata)))
    for key, wanted in filter.items():
        if key not in metadata:
            return False
        if isinstance(wanted, list):
            if metadata[key] not in wanted:
                return False
        elif metadata[key] != wanted:
            return False
    return True


class StoreMachine(RuleBasedStateMachine):
    # Ids are drawn by their place in self.model (insertion order), never by
    # sorting: generated ids are random UUIDs, and a replayed run must draw the
    # same documents.

    def __init__(self) -> None:
        super().__init__()
        self.embedding = AxisEmbeddings(DENSE_WORDS)
        self.store = FaissVectorStore(self.embedding)
        self.model: dict[str, tuple[str, dict[str, Any]]] = {}
        self.folder = Path(tempfile.mkdtemp(prefix="store-model-"))

    def teardown(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- writes -----------------------------------------------------------------

    @precondition(lambda self: len(self.model) <= MAX_DOCS - 3)
    @rule(
        new_texts=st.lists(texts, min_size=1, max_size=3),
        data=st.data(),
    )
    def add_texts(self, new_texts: list[str], data: st.DataObject) -> None:
        count = len(new_texts)
        ids: list[str | None] | None = None
        if data.draw(st.booleans(), label="with ids"):
            pool = data.draw(st.permutations(ID_POOL), label="ids")[:count]
            keep = data.draw(st.lists(st.booleans(), min_size=count, max_size=count))
            ids = [
                doc_id if kept else None
                for doc_id, kept in zip(pool, keep, strict=True)
            ]
        metas = data.draw(
            st.none() | st.lists(metadatas, min_size=count, max_size=count),
            label="metadatas",
        )
        before = set(self.model)
        returned = self.store.add_texts(new_texts, metas, ids=ids)  # type: ignore[arg-type]
        assert len(returned) == count
        assert len(set(returned)) == count
        for position, doc_id in enumerate(returned):
            if ids is not None and ids[position] is not None:
                assert doc_id == ids[position]
            else:
                assert doc_id not in before, "a generated id replaced a document"
            meta = dict(metas[position]) if metas is not None else {}
            self.model[doc_id] = (new_texts[position], meta)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), text=texts, meta=metadatas, as_document=st.booleans())
    def upsert(
        self, data: st.DataObject, text: str, meta: dict[str, Any], as_document: bool
    ) -> None:
        doc_id = data.draw(st.sampled_from(list(self.model)), label="id")
        if as_document:
            document = Document(id=doc_id, page_content=text, metadata=meta)
            assert self.store.add_documents([document]) == [doc_id]
        else:
            assert self.store.add_texts([text], [meta], ids=[doc_id]) == [doc_id]
        self.model[doc_id] = (text, dict(meta))

    @rule(data=st.data(), shape=st.sampled_from([list, tuple, iter]))
    def delete(self, data: st.DataObject, shape: Any) -> None:
        # Ids may repeat, be unknown, and come as any iterable.
        ids = data.draw(
            st.lists(st.sampled_from([*self.model, *ID_POOL]), max_size=3),
            label="ids",
        )
        existed = any(doc_id in self.model for doc_id in ids)
        assert self.store.delete(shape(ids)) is existed
        for doc_id in ids:
            self.model.pop(doc_id, None)

    @rule(reload=st.booleans())
    def save_local(self, reload: bool) -> None:
        self.store.save_local(self.folder)
        if reload:
            self.store = FaissVectorStore.load_local(self.folder, self.embedding)

    # -- searches ---------------------------------------------------------------

    def _kept(self, filter: Any) -> dict[str, str]:
        return {
            i: text for i, (text, meta) in self.model.items() if matches(filter, meta)
        }

    def _bm25_reference(self, query: str, filter: Any) -> dict[str, float]:
        # Scored over every stored document; the filter only drops results.
        kept = self._kept(filter)
        every = {i: text for i, (text, _) in self.model.items()}
        return {i: s for i, s in bm25_scores(every, query).items() if i in kept}

    def _check_copies(self, docs: list[Document]) -> None:
        for doc in docs:
            text, meta = self.model[str(doc.id)]
            assert doc.page_content == text
            assert {key: doc.metadata[key] for key in meta} == meta

    @rule(query=queries, k=st.integers(1, 6), filter=st.sampled_from(FILTERS))
    def similarity(self, query: str, k: int, filter: Any) -> None:
        pairs = self.store.similarity_search_with_score(query, k=k, filter=filter)
        self._check_copies([doc for doc, _ in pairs])
        check_top_k(
            [(str(doc.id), score) for doc, score in pairs],
            cosine_scores(self.embedding, self._kept(filter), query),
            k,
            tolerance=DENSE_TOLERANCE,
            what=f"similarity {query!r} k={k} filter={filter!r}",
        )

    @rule(query=queries, k=st.integers(1, 6), filter=st.sampled_from(FILTERS))
    def bm25(self, query: str, k: int, filter: Any) -> None:
        pairs = self.store.bm25_search_with_score(query, k=k, filter=filter)
        self._check_copies([doc for doc, _ in pairs])
        for doc, _ in pairs:
            assert matches(filter, doc.metadata), f"{doc.id} is filtered out"
            assert set(terms(query)) & set(terms(doc.page_content)), (
                f"{doc.id} holds no term of {query!r}"
            )
        check_top_k(
            [(str(doc.id), score) for doc, score in pairs],
            self._bm25_reference(query, filter),
            k,
            tolerance=BM25_TOLERANCE,
            what=f"bm25 {query!r} k={k} filter={filter!r}",
        )

    @rule(query=queries, k=st.integers(1, 6), filter=st.sampled_from(FILTERS))
    def hybrid(self, query: str, k: int, filter: Any) -> None:
        retriever = self.store.as_retriever(search_type="hybrid", filter=filter)
        dense = cosine_scores(self.embedding, self._kept(filter), query)
        keyword = self._bm25_reference(query, filter)
        what = f"hybrid {query!r} filter={filter!r}"
        # Every candidate: check both sides' rankings and the fusion exactly.
        full = retriever.invoke(query, k=ALL)
        self._check_copies(full)
        assert {d.id for d in full} == set(dense) | set(keyword), what
        assert len(full) == len(set(dense) | set(keyword)), what
        for side, reference, tolerance in (
            ("dense", dense, DENSE_TOLERANCE),
            ("bm25", keyword, BM25_TOLERANCE),
        ):
            allowed = tie_ranks(reference, tolerance)
            ranked = {
                str(d.id): d.metadata[f"{side}_rank"]
                for d in full
                if d.metadata[f"{side}_rank"] is not None
            }
            assert set(ranked) == set(reference), f"{what}: {side} side {ranked}"
            assert sorted(ranked.values()) == list(range(1, len(ranked) + 1)), what
            for doc in full:
                if str(doc.id) in ranked:
                    assert ranked[str(doc.id)] in allowed[str(doc.id)], (
                        f"{what}: {side} rank of {doc.id} breaks the order"
                    )
                    assert doc.metadata[f"{side}_score"] == _approx(
                        reference[str(doc.id)], tolerance
                    ), what
        fused = [d.metadata["retrieval_score"] for d in full]
        for doc, score in zip(full, fused, strict=True):
            expected = rrf([doc.metadata["dense_rank"], doc.metadata["bm25_rank"]])
            assert score == _approx(expected, 1e-12), what
        assert fused == sorted(fused, reverse=True), what
        assert [d.metadata["retrieval_rank"] for d in full] == list(
            range(1, len(full) + 1)
        )
        # A smaller k returns the first k of those (fused ties in any order).
        top = retriever.invoke(query, k=k)
        by_id = {d.id: d for d in full}
        assert len(top) == min(k, len(full)), what
        for doc, expected in zip(top, full, strict=False):
            assert doc.metadata["retrieval_score"] == _approx(
                expected.metadata["retrieval_score"], 1e-12
            ), what
            for key in ("dense_rank", "bm25_rank", "retrieval_score"):
                assert doc.metadata[key] == by_id[doc.id].metadata[key], what

    # -- invariants ---------------------------------------------------------------

    @invariant()
    def holds_what_the_model_holds(self) -> None:
        assert set(self.store.ids) == set(self.model)
        assert len(self.store.ids) == len(self.model)
        docs = self.store.get_by_ids(sorted(self.model))
        assert [(d.id, d.page_content, d.metadata) for d in docs] == [
            (i, *self.model[i]) for i in sorted(self.model)
        ]

    @invariant()
    def every_document_is_in_both_indexes(self) -> None:
        # FAISS holds one vector per document, the vector of its current text.
        self.similarity("red cat", ALL, None)
        # BM25 holds every document's current terms (and no deleted document's).
        self.bm25(" ".join(WORDS), ALL, None)


def _approx(value: float, tolerance: float) -> Any:
    import pytest

    return pytest.approx(value, abs=tolerance)


StoreMachine.TestCase.settings = settings(stateful_step_count=25)
test_store_matches_the_model = StoreMachine.TestCase
