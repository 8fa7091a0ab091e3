"""Searches and saves on several threads while another thread writes.

The writer keeps one invariant in every state it leaves: documents come in
pairs (`pN/a`, `pN/b`) written, replaced and deleted together, in one call,
and both carry the pair's generation in their text and metadata. Every text
holds the word "common", so a search with a large k sees every stored
document. A reader that saw half a write (a document in one index but not the
other, an index built from other documents than the docstore, a vector or
BM25 row of a replaced text) would see a broken pair, a text of another
generation than its metadata, or scores that differ from the brute-force ones
computed from the documents it got back (store_reference.py).

The writer pauses every few writes until each reader has finished a search, so
the readers provably run between writes; between the pauses they race freely,
with a short thread switch interval. Loops are bounded by counts, not clocks.
"""

from __future__ import annotations

import random
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from store_reference import bm25_scores, check_top_k, cosine_scores, rrf

from langchain_ce_rerank import FaissVectorStore

WRITES = 160
SYNC_EVERY = 8  # writes between two waits for every reader
PAIRS = 12  # pair numbers in use; at most 24 documents
EVERYTHING = 1000  # a k (and depth) above any number of stored documents
HANG_LIMIT_SECONDS = 120  # a safety net against a deadlock, not a measure


def _texts(pair: int, generation: int) -> list[str]:
    return [
        f"common pair{pair} gen{generation} left",
        f"common pair{pair} gen{generation} right side",
    ]


def _even(metadata: dict[str, Any]) -> bool:
    return int(metadata["generation"]) % 2 == 0


def _check_pairs(docs: list[Document], what: str) -> dict[str, str]:
    """Every document's partner is there with the same generation; id -> text."""
    by_pair: dict[str, list[Document]] = {}
    for doc in docs:
        pair, side = str(doc.id).split("/")
        generation = doc.metadata["generation"]
        expected = _texts(int(pair[1:]), generation)[{"a": 0, "b": 1}[side]]
        assert doc.page_content == expected, (
            f"{what}: {doc.id} holds a text of another generation than "
            f"{generation}: {doc.page_content!r}"
        )
        by_pair.setdefault(pair, []).append(doc)
    for pair, members in by_pair.items():
        assert len(members) == 2, f"{what}: half of pair {pair}: {members}"
        generations = {doc.metadata["generation"] for doc in members}
        assert len(generations) == 1, f"{what}: pair {pair} mixes {generations}"
    return {str(doc.id): doc.page_content for doc in docs}


class Race:
    """Readers report each finished search; the writer waits for them all."""

    def __init__(self, readers: list[str]) -> None:
        self.readers = readers
        self.done = threading.Event()
        self.errors: list[BaseException] = []
        self._searches: Counter[str] = Counter()
        self._changed = threading.Condition()

    def searched(self, reader: str) -> None:
        with self._changed:
            self._searches[reader] += 1
            self._changed.notify_all()

    def searches(self, reader: str) -> int:
        with self._changed:
            return self._searches[reader]

    def wait_for_every_reader(self) -> None:
        with self._changed:
            before = dict(self._searches)
            if not self._changed.wait_for(
                lambda: (
                    all(self._searches[r] > before.get(r, 0) for r in self.readers)
                    or bool(self.errors)
                ),
                timeout=HANG_LIMIT_SECONDS,
            ):
                msg = "a reader stopped searching (deadlock?)"
                raise AssertionError(msg)

    def run(self, name: str, work: Callable[[], None], *, loop: bool) -> None:
        try:
            while True:
                work()
                if not loop:
                    return
                finished = self.done.is_set()
                self.searched(name)
                if finished or self.errors:
                    return
        except BaseException as error:  # reported by the test's thread
            self.errors.append(error)
            with self._changed:
                self._changed.notify_all()


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads every 10 microseconds, so searches and writes interleave."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def test_searches_and_saves_never_see_half_a_write(
    fast_switching: None, tmp_path: Path
) -> None:
    embedding = DeterministicFakeEmbedding(size=16)
    store = FaissVectorStore(embedding)
    hybrid = store.as_retriever(
        search_type="hybrid",
        k=EVERYTHING,
        dense_depth=EVERYTHING,
        bm25_depth=EVERYTHING,
    )
    store.bm25_search_with_score("common")  # bm25s imported before the race
    folder = tmp_path / "saved"

    def similarity() -> None:
        pairs = store.similarity_search_with_score("common", k=EVERYTHING)
        texts = _check_pairs([doc for doc, _ in pairs], "similarity")
        check_top_k(
            [(str(doc.id), score) for doc, score in pairs],
            cosine_scores(embedding, texts, "common"),
            EVERYTHING,
            tolerance=1e-5,
            what="similarity: a vector of another text",
        )

    def bm25() -> None:
        pairs = store.bm25_search_with_score("common left", k=EVERYTHING)
        texts = _check_pairs([doc for doc, _ in pairs], "bm25")
        # Every stored document holds "common": these are all of them, and
        # their scores depend on every document's length and terms.
        check_top_k(
            [(str(doc.id), score) for doc, score in pairs],
            bm25_scores(texts, "common left"),
            EVERYTHING,
            tolerance=1e-4,
            what="bm25: an index of other documents than the docstore's",
        )

    def fused(filter: Any) -> None:
        docs = hybrid.invoke("common right", filter=filter)
        texts = _check_pairs(docs, "hybrid")
        if filter is None:
            keyword = bm25_scores(texts, "common right")
            dense = cosine_scores(embedding, texts, "common right")
        for doc in docs:
            meta = doc.metadata
            # Both sides see every (kept) document: neither missed a write.
            assert meta["dense_rank"] is not None, f"hybrid: only BM25 has {doc.id}"
            assert meta["bm25_rank"] is not None, f"hybrid: only FAISS has {doc.id}"
            assert meta["retrieval_score"] == pytest.approx(
                rrf([meta["dense_rank"], meta["bm25_rank"]])
            )
            if filter is None:  # scores of these documents, of no other state
                assert meta["bm25_score"] == pytest.approx(keyword[doc.id], abs=1e-4), (
                    f"hybrid: {doc.id}'s BM25 score is from an index of other texts"
                )
                assert meta["dense_score"] == pytest.approx(dense[doc.id], abs=1e-5), (
                    f"hybrid: {doc.id}'s vector is not its text's"
                )

    hybrid_reads = iter(range(10**9))

    def hybrid_search() -> None:
        fused(None if next(hybrid_reads) % 2 else _even)

    def save_and_load() -> None:
        store.save_local(folder)
        loaded = FaissVectorStore.load_local(folder, embedding)
        texts = _check_pairs(loaded.get_by_ids(loaded.ids), "saved")
        pairs = loaded.bm25_search_with_score("common", k=EVERYTHING)
        assert {str(doc.id) for doc, _ in pairs} == set(texts)

    readers = {
        "similarity": similarity,
        "bm25": bm25,
        "hybrid": hybrid_search,
        "save": save_and_load,
    }
    race = Race(list(readers))
    rng = random.Random(14)
    generations = iter(range(1, 10**9))

    def write() -> None:
        stored: set[int] = set()
        for step in range(WRITES):
            pair = rng.randrange(PAIRS)
            ids = [f"p{pair}/a", f"p{pair}/b"]
            if pair in stored and rng.random() < 0.4:
                assert store.delete(ids) is True
                stored.discard(pair)
            else:  # a new pair, or both documents replaced at once
                generation = next(generations)
                store.add_texts(
                    _texts(pair, generation),
                    [{"generation": generation}] * 2,
                    ids=ids,
                )
                stored.add(pair)
            if step % SYNC_EVERY == SYNC_EVERY - 1:
                race.wait_for_every_reader()
        race.done.set()

    threads = [
        threading.Thread(target=race.run, args=(name, work), kwargs={"loop": True})
        for name, work in readers.items()
    ]
    threads.append(
        threading.Thread(
            target=race.run, args=("writer", write), kwargs={"loop": False}
        )
    )
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=HANG_LIMIT_SECONDS)
    assert not [t for t in threads if t.is_alive()], "a thread never finished"
    if race.errors:
        raise race.errors[0]
    for name in readers:
        # Each ran between writes at least once per pause of the writer.
        assert race.searches(name) >= WRITES // SYNC_EVERY, name
