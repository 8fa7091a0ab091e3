"""The store's BM25 index (store/bm25.py): consistency, tokenizing, filters."""

from __future__ import annotations

import importlib.util
import itertools
import math
from collections import Counter

import numpy as np
import pytest
from doubles import AxisEmbeddings
from pydantic import ValidationError

from langchain_ce_rerank import BM25Settings, FaissVectorStore
from langchain_ce_rerank.store import bm25 as bm25_module

WORDS = ["red", "green", "blue", "cat"]
TEXTS = {
    "flag": "raise --max-queued-pairs when the queue is full",
    "code": "error E0425 means an unresolved name",
    "js": "call setInterval to repeat a function",
    "cat": "the red cat sleeps",
    "dog": "a green dog barks at the cat",
}


@pytest.fixture
def store() -> FaissVectorStore:
    store = FaissVectorStore(AxisEmbeddings(WORDS))
    store.add_texts(
        list(TEXTS.values()),
        [{"n": i, "even": i % 2 == 0} for i in range(len(TEXTS))],
        ids=list(TEXTS),
    )
    return store


def _ids(pairs: list[tuple[object, float]]) -> list[str]:
    return [doc.id for doc, _ in pairs]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("--max-queued-pairs", "flag"),
        ("E0425", "code"),
        ("setInterval", "js"),
        ("SETINTERVAL", "js"),
    ],
)
def test_identifiers_are_found_by_name(
    store: FaissVectorStore, query: str, expected: str
) -> None:
    assert _ids(store.bm25_search_with_score(query, k=2))[0] == expected


def test_only_documents_holding_a_query_term_come_back(store: FaissVectorStore) -> None:
    pairs = store.bm25_search_with_score("cat", k=10)
    assert sorted(_ids(pairs)) == ["cat", "dog"]
    assert all(score > 0 for _, score in pairs)
    assert [s for _, s in pairs] == sorted((s for _, s in pairs), reverse=True)


def test_scores_follow_the_bm25_formula(store: FaissVectorStore) -> None:
    """A reference BM25 (Lucene idf, k1=1.5, b=0.75) gives the same scores."""
    settings = store.bm25_settings
    docs = {i: settings.tokenize([t])[0] for i, t in TEXTS.items()}
    average = sum(map(len, docs.values())) / len(docs)

    def reference(term: str, tokens: list[str]) -> float:
        df = sum(term in d for d in docs.values())
        idf = math.log(1 + (len(docs) - df + 0.5) / (df + 0.5))
        tf = Counter(tokens)[term]
        return idf * tf / (tf + 1.5 * (1 - 0.75 + 0.75 * len(tokens) / average))

    for doc, score in store.bm25_search_with_score("cat barks", k=10):
        expected = sum(reference(t, docs[str(doc.id)]) for t in ("cat", "barks"))
        assert score == pytest.approx(expected, rel=1e-5)


def test_writes_are_seen_by_the_next_search(store: FaissVectorStore) -> None:
    assert _ids(store.bm25_search_with_score("zebra")) == []  # index built
    store.add_texts(["a zebra grazes"], ids=["zebra"])
    assert _ids(store.bm25_search_with_score("zebra")) == ["zebra"]
    store.add_texts(["a giraffe grazes"], ids=["zebra"])  # upsert: new text
    assert _ids(store.bm25_search_with_score("zebra")) == []
    assert _ids(store.bm25_search_with_score("giraffe")) == ["zebra"]
    store.delete(["zebra", "code"])
    assert _ids(store.bm25_search_with_score("giraffe E0425")) == []
    assert "zebra" not in store.ids


def test_the_index_is_rebuilt_once_after_writes_and_only_when_searched(
    store: FaissVectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[int] = []
    tokenized: list[str] = []
    from_ids = bm25_module.BM25Index.from_ids.__func__  # type: ignore[attr-defined]
    tokenize = BM25Settings.tokenize

    def counting_build(cls, settings, ids, corpus, vocab):  # type: ignore[no-untyped-def]
        builds.append(len(ids))
        return from_ids(cls, settings, ids, corpus, vocab)

    def counting_tokenize(self, texts):  # type: ignore[no-untyped-def]
        tokenized.extend(texts)
        return tokenize(self, texts)

    monkeypatch.setattr(bm25_module.BM25Index, "from_ids", classmethod(counting_build))
    monkeypatch.setattr(BM25Settings, "tokenize", counting_tokenize)
    store.bm25_search_with_score("cat")
    assert sorted(tokenized) == sorted([*TEXTS.values(), "cat"])
    tokenized.clear()
    store.add_texts(["one more cat"], ids=["x"])
    store.add_texts(["and another cat"], ids=["y"])
    store.add_texts(["a new text for the code"], ids=["code"])  # upsert
    store.delete(["flag"])
    assert builds == [5]  # the writes themselves build nothing
    assert tokenized == []
    store.bm25_search_with_score("cat")
    store.bm25_search_with_score("dog")
    assert builds == [5, 6]
    # Only the written documents are tokenized again (and the two queries).
    assert sorted(tokenized) == sorted(
        ["one more cat", "and another cat", "a new text for the code", "cat", "dog"]
    )
    assert [d.id for d, _ in store.bm25_search_with_score("code")] == ["code"]
    assert store.bm25_search_with_score("E0425") == []


def test_a_query_without_indexed_terms_finds_nothing_and_raises_nothing(
    store: FaissVectorStore,
) -> None:
    for query in ("the and of", "?!...", "🙂🙂", "unknownword"):
        assert store.bm25_search_with_score(query) == []


def test_k_larger_than_the_store_and_an_empty_store() -> None:
    store = FaissVectorStore(AxisEmbeddings(WORDS))
    assert store.bm25_search_with_score("cat", k=50) == []
    store.add_texts(["cat"], ids=["c"])
    assert _ids(store.bm25_search_with_score("cat", k=50)) == ["c"]
    store.delete(["c"])
    assert store.bm25_search_with_score("cat", k=50) == []


def test_non_latin_text_and_emoji_index_and_search() -> None:
    store = FaissVectorStore(AxisEmbeddings(WORDS))
    store.add_texts(
        ["مرحبا بالعالم", "东京大学的研究", "🙂🎉", "東京タワー", "Привет мир"],
        ids=["ar", "zh", "emoji", "ja", "ru"],
    )
    assert _ids(store.bm25_search_with_score("بالعالم")) == ["ar"]
    # One term per character: 京 is in both the Chinese and the Japanese text.
    assert _ids(store.bm25_search_with_score("东京")) == ["zh", "ja"]
    assert _ids(store.bm25_search_with_score("研究")) == ["zh"]
    assert _ids(store.bm25_search_with_score("タワー")) == ["ja"]
    assert _ids(store.bm25_search_with_score("привет")) == ["ru"]
    assert store.bm25_search_with_score("🎉") == []


def test_stopwords_are_settings() -> None:
    texts = ["the cat", "a dog"]
    default = FaissVectorStore.from_texts(texts, AxisEmbeddings(WORDS), ids=["1", "2"])
    assert default.bm25_search_with_score("the") == []
    kept = FaissVectorStore.from_texts(
        texts,
        AxisEmbeddings(WORDS),
        ids=["1", "2"],
        bm25=BM25Settings(stopwords=False),
    )
    assert _ids(kept.bm25_search_with_score("the")) == ["1"]
    own = FaissVectorStore.from_texts(
        texts,
        AxisEmbeddings(WORDS),
        ids=["1", "2"],
        bm25=BM25Settings(stopwords=["cat"]),
    )
    assert own.bm25_search_with_score("cat") == []
    assert _ids(own.bm25_search_with_score("the")) == ["1"]


def test_language_chooses_the_stopwords() -> None:
    settings = BM25Settings(language="german")
    assert settings.tokenize(["Die Katze und der Hund"]) == [["katze", "hund"]]


@pytest.mark.skipif(
    importlib.util.find_spec("Stemmer") is None, reason="PyStemmer not installed"
)
def test_stemming_matches_word_forms() -> None:
    store = FaissVectorStore.from_texts(
        ["she runs daily", "he swims"],
        AxisEmbeddings(WORDS),
        ids=["run", "swim"],
        bm25=BM25Settings(stemming=True),
    )
    assert _ids(store.bm25_search_with_score("running")) == ["run"]
    plain = FaissVectorStore.from_texts(
        ["she runs daily"], AxisEmbeddings(WORDS), ids=["run"]
    )
    assert plain.bm25_search_with_score("running") == []


def test_unknown_language_and_bad_settings_say_what_to_do() -> None:
    with pytest.raises(ValidationError, match="stopwords=False"):
        BM25Settings(language="klingon")
    with pytest.raises(ValidationError, match="extra"):
        BM25Settings(stopword=False)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="BM25Settings"):
        FaissVectorStore(AxisEmbeddings(WORDS), bm25={"language": "german"})  # type: ignore[arg-type]


def test_stemming_without_pystemmer_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    bm25_module._stemmer.cache_clear()
    monkeypatch.setitem(sys.modules, "Stemmer", None)
    try:
        with pytest.raises(ImportError, match=r"langchain-ce-rerank\[stemming\]"):
            BM25Settings(stemming=True)
    finally:
        bm25_module._stemmer.cache_clear()


@pytest.mark.parametrize(
    "filter_",
    [{"even": True}, lambda metadata: metadata["even"]],
    ids=["dict", "callable"],
)
def test_filters_return_k_matches_and_never_a_filtered_out_document(
    filter_: object,
) -> None:
    store = FaissVectorStore(AxisEmbeddings(WORDS))
    # The best BM25 matches (many "cat"s) are odd and filtered out.
    texts = [("cat " * (20 - i)).strip() + f" filler{i}" for i in range(20)]
    metas = [{"even": i % 2 == 0} for i in range(20)]
    store.add_texts(texts, metas, ids=[str(i) for i in range(20)])
    for k in (1, 5, 10):
        pairs = store.bm25_search_with_score("cat", k=k, filter=filter_)
        assert len(pairs) == k
        assert all(doc.metadata["even"] for doc, _ in pairs)
        assert all(score > 0 for _, score in pairs)
    pairs = store.bm25_search_with_score("cat", k=15, filter=filter_)
    assert sorted(_ids(pairs), key=int) == [str(i) for i in range(0, 20, 2)]
    assert store.bm25_search_with_score("cat", k=3, filter={"even": "no"}) == []


def test_returned_documents_are_copies(store: FaissVectorStore) -> None:
    (doc, _), *_ = store.bm25_search_with_score("cat")
    doc.metadata["n"] = "changed"
    assert store.get_by_ids([str(doc.id)])[0].metadata["n"] != "changed"


def test_unknown_options_are_errors(store: FaissVectorStore) -> None:
    with pytest.raises(TypeError, match="fetch_k"):
        store.bm25_search_with_score("cat", fetch_k=3)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        store.bm25_search_with_score("cat", k=0)


def test_a_dict_filter_reads_each_document_once_per_build(
    store: FaissVectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_ce_rerank.store import search

    calls: list[dict[str, object]] = []
    original = search.to_predicate

    def counting(filter_):  # type: ignore[no-untyped-def]
        predicate = original(filter_)
        if predicate is None:
            return None

        def spy(metadata):  # type: ignore[no-untyped-def]
            calls.append(metadata)
            return predicate(metadata)

        return spy

    monkeypatch.setattr(search, "to_predicate", counting)
    query = "cat dog E0425 setInterval"
    first = store.bm25_search_with_score(query, k=5, filter={"n": [1, 3, 4]})
    assert len(calls) == 5  # once per document
    assert store.bm25_search_with_score(query, k=5, filter={"n": [1, 3, 4]}) == first
    assert len(calls) == 5  # the mask was kept
    # A tuple is an equality, not "any of": it must not reuse the list's mask.
    assert store.bm25_search_with_score(query, filter={"n": (1, 3, 4)}) == []
    store.bm25_search_with_score(query, filter=lambda m: m["n"] > 0)
    store.bm25_search_with_score(query, filter=lambda m: m["n"] > 0)
    assert len(calls) == 5 + 5 + 10  # callables are never cached
    store.add_texts(["cat"], [{"n": 9}], ids=["new"])
    again = store.bm25_search_with_score(query, k=5, filter={"n": [1, 3, 4]})
    assert _ids(again) == _ids(first)
    assert len(calls) == 20 + 6  # a write starts a new build and new masks


def test_bm25s_debug_lines_stay_out_of_an_application_logging_at_warning() -> None:
    # As ce-rerank sets logging up: the root at WARNING, a handler of no level.
    import logging

    class Collect(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    root = logging.getLogger()
    handler, level = Collect(), root.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    try:
        store = FaissVectorStore(AxisEmbeddings(["red"]))
        store.add_texts(["red apple", "green pear"], ids=["a", "b"])
        store.bm25_search_with_score("apple", k=1)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert [r.getMessage() for r in handler.records if r.name == "bm25s"] == []


def _tied_store() -> FaissVectorStore:
    """Documents in tied groups (repeats), with shuffled ids and many zeros."""
    store = FaissVectorStore(AxisEmbeddings(WORDS))
    texts = [
        "the red cat sleeps on the mat",
        "a red dog",
        "red red cat",
        "a blue whale sings",
        "the mat is red and the cat is blue",
    ]
    rows = [texts[i % len(texts)] for i in range(40)] + ["nothing to see"] * 60
    store.add_texts(rows, ids=[f"d{(i * 37) % 100}" for i in range(100)])
    return store


@pytest.mark.parametrize("query", ["red cat", "blue", "mat cat red whale", "red"])
@pytest.mark.parametrize("k", [1, 3, 8, 50])
def test_search_agrees_with_bm25s_retrieve_up_to_ties(query: str, k: int) -> None:
    """The reference: bm25s's own `retrieve` over the same index and terms."""
    store = _tied_store()
    store.bm25_search_with_score(query)
    index = store._bm25
    assert index is not None
    terms = index.terms(query)
    ours = index.search(terms, k, None)
    rows, scores = index.model.retrieve([terms], k=k, show_progress=False, n_threads=0)
    reference = [
        (row, score)
        for row, score in zip(rows[0].tolist(), scores[0].tolist(), strict=True)
        if score > 0
    ]
    assert ours
    assert [s for _, s in ours] == pytest.approx([s for _, s in reference])
    # Rows may differ only inside the group tied at the k-th score.
    last = ours[-1][1]
    assert {r for r, s in ours if s > last + 1e-6} == {
        r for r, s in reference if s > last + 1e-6
    }
    score_of = dict(index.search(terms, 100, None))
    for row, score in ours + reference:
        assert score_of[row] == pytest.approx(score)


def test_tied_scores_go_to_the_earlier_row_in_every_copy_of_a_store(
    tmp_path: object,
) -> None:
    store = _tied_store()
    first = _ids(store.bm25_search_with_score("red cat", k=7))
    store.save_local(str(tmp_path))
    loaded = FaissVectorStore.load_local(str(tmp_path), AxisEmbeddings(WORDS))
    assert _ids(loaded.bm25_search_with_score("red cat", k=7)) == first
    index = store._bm25
    assert index is not None
    pairs = index.search(index.terms("red cat"), 7, None)
    for (row, score), (next_row, next_score) in itertools.pairwise(pairs):
        assert score > next_score or (score == next_score and row < next_row)


def test_search_many_equals_search_for_each_query() -> None:
    store = _tied_store()
    store.bm25_search_with_score("red")
    index = store._bm25
    assert index is not None
    queries = ["red cat", "the of", "blue whale", "zebra", "red cat"]
    terms = index.terms_many(queries)
    assert terms == [index.terms(q) for q in queries]
    assert terms[1] == []
    assert terms[3] == []
    mask = np.asarray([i % 2 for i in range(100)], dtype=np.float32)
    for m in (None, mask):
        assert index.search_many(terms, 4, m) == [index.search(t, 4, m) for t in terms]


def test_a_rebuild_after_writes_equals_bm25s_built_from_the_texts(
    store: FaissVectorStore,
) -> None:
    """The term cache renumbers kept ids; the reference indexes the text anew."""
    store.bm25_search_with_score("cat")
    store.add_texts(["a zebra grazes near the cat"], ids=["zebra"])
    store.add_texts(["unresolved names again: E0425"], ids=["code"])  # upsert
    store.delete(["flag"])  # its terms (max, queued, pairs, ...) drop out
    store.bm25_search_with_score("cat")
    index = store._bm25
    assert index is not None
    texts = [doc.page_content for doc in store.get_by_ids(list(index.ids))]
    reference = bm25_module._bm25s().BM25()
    reference.index(store.bm25_settings.tokenize(texts), show_progress=False)
    assert set(index.model.vocab_dict) == set(reference.vocab_dict) - {""}
    assert "queued" not in index.model.vocab_dict
    for terms in (["cat"], ["zebra", "grazes"], ["e0425", "unresolved", "cat"]):
        np.testing.assert_allclose(
            index.model.get_scores(terms), reference.get_scores(terms), rtol=1e-6
        )
