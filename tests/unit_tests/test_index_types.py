"""Every index_factory type keeps the VectorStore promises, or says why not."""

from __future__ import annotations

from pathlib import Path

import pytest
from doubles import TableEmbeddings

from langchain_ce_rerank import FaissVectorStore

N = 600
TEXTS = [f"v{i}" for i in range(N)]
QUERIES = [f"v{i}" for i in range(0, N, 15)]
# (factory, search knobs, minimum recall@10 against the exact index)
TYPES = [
    ("Flat", {}, 1.0),
    ("HNSW32", {"ef_search": 64}, 0.95),
    ("IVF16,Flat", {"nprobe": 16}, 1.0),
    ("IVF16,SQ8", {"nprobe": 16}, 0.9),
    ("IVF16,PQ8", {"nprobe": 16}, 0.5),
]


@pytest.fixture(scope="module")
def embedding() -> TableEmbeddings:
    return TableEmbeddings(N)


def _store(embedding: TableEmbeddings, factory: str, **knobs: int) -> FaissVectorStore:
    store = FaissVectorStore(embedding, index_factory=factory, **knobs)  # type: ignore[arg-type]
    store.add_texts(TEXTS, [{"n": i} for i in range(N)], ids=TEXTS)
    return store


def _top10(store: FaissVectorStore) -> dict[str, list[str]]:
    return {q: [str(d.id) for d in store.similarity_search(q, k=10)] for q in QUERIES}


@pytest.fixture(scope="module")
def exact(embedding: TableEmbeddings) -> dict[str, list[str]]:
    return _top10(_store(embedding, "Flat"))


@pytest.mark.parametrize(("factory", "knobs", "min_recall"), TYPES)
def test_search_recall_and_persistence(
    embedding: TableEmbeddings,
    exact: dict[str, list[str]],
    factory: str,
    knobs: dict[str, int],
    min_recall: float,
    tmp_path: Path,
) -> None:
    store = _store(embedding, factory, **knobs)
    found = _top10(store)
    recall = sum(len(set(found[q]) & set(exact[q])) for q in QUERIES) / (
        10 * len(QUERIES)
    )
    assert recall >= min_recall
    for doc in store.similarity_search("v30", k=5):
        assert doc.page_content == doc.id  # ids and documents stay paired
    store.save_local(tmp_path)
    loaded = FaissVectorStore.load_local(tmp_path, embedding)
    assert loaded.index_factory == factory
    assert _top10(loaded) == found
    assert len(loaded.max_marginal_relevance_search("v3", k=3, fetch_k=10)) == 3


@pytest.mark.parametrize("factory", ["Flat", "IVF16,Flat", "IVF16,SQ8"])
def test_delete_and_replace_keep_ids_paired(
    embedding: TableEmbeddings, factory: str
) -> None:
    store = (
        _store(embedding, factory, nprobe=16)
        if "IVF" in factory
        else _store(embedding, factory)
    )
    store.delete([f"v{i}" for i in range(0, N, 2)])
    hits = store.similarity_search("v10", k=20)
    assert "v10" not in {d.id for d in hits}
    assert all(int(str(d.id)[1:]) % 2 == 1 for d in hits)
    assert all(d.page_content == d.id for d in hits)
    store.add_texts(["v10"], [{"n": "again"}], ids=["v11"])  # replace by id
    [doc] = store.get_by_ids(["v11"])
    assert doc.page_content == "v10"
    assert store.similarity_search("v10", k=1)[0].id == "v11"


def test_hnsw_refuses_to_delete_or_replace(embedding: TableEmbeddings) -> None:
    store = _store(embedding, "HNSW32")
    with pytest.raises(NotImplementedError, match=r"cannot delete documents.*'HNSW32'"):
        store.delete(["v1"])
    with pytest.raises(NotImplementedError, match="cannot replace existing ids"):
        store.add_texts(["v2"], ids=["v1"])
    assert store.get_by_ids(["v1"])[0].page_content == "v1"  # nothing changed
    store.delete(["not-stored"])  # deleting nothing is fine
    store.add_texts(["v2"], ids=["new"])  # new ids are fine
    assert len(store.ids) == N + 1


def test_ivf_trains_on_the_first_add_or_on_a_sample(embedding: TableEmbeddings) -> None:
    store = FaissVectorStore(embedding, index_factory="IVF64,Flat")
    with pytest.raises(ValueError, match=r"store\.train\(sample_texts\)"):
        store.add_texts(TEXTS[:10])
    assert store.ids == []
    store.train(TEXTS)
    store.add_texts(TEXTS[:10], ids=TEXTS[:10])
    assert store.similarity_search("v3", k=1)[0].id == "v3"
    with pytest.raises(ValueError, match="already trained"):
        store.train(TEXTS)
    with pytest.raises(ValueError, match="exactly one"):
        store.train()


def test_ivf_trains_on_precomputed_vectors(embedding: TableEmbeddings) -> None:
    store = FaissVectorStore(embedding, index_factory="IVF16,Flat", nprobe=16)
    store.train(embeddings=embedding.vectors)
    store.add_embeddings(TEXTS[:5], embedding.vectors[:5], ids=TEXTS[:5])
    assert store.similarity_search("v2", k=1)[0].id == "v2"


def test_bad_factory_and_knobs(embedding: TableEmbeddings) -> None:
    store = FaissVectorStore(embedding, index_factory="IVF16,PQ7")
    with pytest.raises(ValueError, match="cannot build index_factory='IVF16,PQ7'"):
        store.add_texts(TEXTS[:100])
    with pytest.raises(ValueError, match="nprobe must be a positive integer"):
        FaissVectorStore(embedding, nprobe=0)
    with pytest.raises(ValueError, match="index_factory must be"):
        FaissVectorStore(embedding, index_factory=" ")
