"""The seed's Docker example, through the real bi-encoder: the first acceptance test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from langchain_ce_rerank import FaissVectorStore, build_reranking_retriever

sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))
from docker_corpus import DOCUMENTS, QUERY

# Published in the seed's "Initial embedding search" output.
SEED_COSINES = [0.740, 0.466, 0.364, 0.272]
SEED_ORDER = [0, 1, 4, 2]


@pytest.fixture(scope="module")
def store(minilm_embeddings: Embeddings) -> FaissVectorStore:
    store = FaissVectorStore(minilm_embeddings)
    store.add_documents(
        [Document(page_content=t, id=f"doc-{i}") for i, t in enumerate(DOCUMENTS)]
    )
    return store


def test_first_stage_reproduces_the_published_cosines(store: FaissVectorStore) -> None:
    docs = store.as_retriever(k=4).invoke(QUERY)
    assert [d.id for d in docs] == [f"doc-{i}" for i in SEED_ORDER]
    assert [round(d.metadata["retrieval_score"], 3) for d in docs] == SEED_COSINES
    assert [d.metadata["retrieval_rank"] for d in docs] == [1, 2, 3, 4]


def test_cosines_survive_save_and_load(
    store: FaissVectorStore, minilm_embeddings: Embeddings, tmp_path: Path
) -> None:
    store.save_local(tmp_path)
    loaded = FaissVectorStore.load_local(tmp_path, minilm_embeddings)
    pairs = loaded.similarity_search_with_score(QUERY, k=4)
    assert [round(s, 3) for _, s in pairs] == SEED_COSINES


def test_two_stage_retriever_with_the_real_cross_encoder_path(
    store: FaissVectorStore, standin_ce_path: Path
) -> None:
    retriever = build_reranking_retriever(
        vectorstore=store, reranker=standin_ce_path, k=4, top_n=3, device="cpu"
    )
    docs = retriever.invoke(QUERY)
    assert len(docs) == 3
    scores = [d.metadata["relevance_score"] for d in docs]
    assert scores == sorted(scores, reverse=True)
    for doc in docs:
        position = SEED_ORDER.index(int(doc.id.split("-")[1]))  # type: ignore[union-attr]
        assert doc.metadata["retrieval_rank"] == position + 1
        assert round(doc.metadata["retrieval_score"], 3) == SEED_COSINES[position]


def test_store_with_the_real_model_is_safe_across_threads(
    minilm_embeddings: Embeddings,
) -> None:
    import threading

    store = FaissVectorStore(minilm_embeddings)
    store.add_texts(DOCUMENTS)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(5):
                docs = store.similarity_search(f"{QUERY} {worker} {i}", k=3)
                assert len(docs) == 3
                if worker == 0:
                    store.add_texts([f"extra passage {i} about docker volumes"])
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.ids) == len(DOCUMENTS) + 5
