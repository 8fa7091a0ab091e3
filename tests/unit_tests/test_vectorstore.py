from __future__ import annotations

import math
import threading

import pytest
from doubles import AxisEmbeddings
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_ce_rerank import FaissVectorStore

WORDS = ["red", "green", "blue", "cat", "dog", "fish", "alpha", "beta"]


@pytest.fixture
def embedding() -> AxisEmbeddings:
    return AxisEmbeddings(WORDS)


@pytest.fixture
def store(embedding: AxisEmbeddings) -> FaissVectorStore:
    store = FaissVectorStore(embedding)
    store.add_texts(
        ["red", "red green", "blue", "cat dog"],
        [{"n": 1, "src": "a"}, {"n": 2, "src": "b"}, {"n": 3, "src": "a"}, {"n": 4}],
        ids=["r", "rg", "b", "cd"],
    )
    return store


def test_cosine_scores_are_similarities_best_first(store: FaissVectorStore) -> None:
    pairs = store.similarity_search_with_score("red", k=3)
    assert [d.id for d, _ in pairs] == ["r", "rg", pairs[2][0].id]
    assert pairs[0][1] == pytest.approx(1.0, abs=1e-5)
    assert pairs[1][1] == pytest.approx(1 / math.sqrt(2), abs=1e-5)
    assert pairs[0][1] > pairs[1][1] > pairs[2][1]


def test_l2_scores_are_euclidean_distances(embedding: AxisEmbeddings) -> None:
    store = FaissVectorStore(embedding, distance_strategy="l2")
    store.add_texts(["red", "green"], ids=["r", "g"])
    pairs = store.similarity_search_with_score("red", k=2)
    assert [d.id for d, _ in pairs] == ["r", "g"]
    assert pairs[0][1] == pytest.approx(0.0, abs=1e-5)
    assert pairs[1][1] == pytest.approx(math.sqrt(2), abs=1e-4)


def test_inner_product_scores_are_raw_dot_products(embedding: AxisEmbeddings) -> None:
    store = FaissVectorStore(embedding, distance_strategy="inner_product")
    store.add_texts(["red red", "red"], ids=["rr", "r"])
    pairs = store.similarity_search_with_score("red", k=2)
    assert [d.id for d, _ in pairs] == ["rr", "r"]
    assert pairs[0][1] == pytest.approx(2.0, abs=1e-4)


def test_unknown_distance_strategy_is_rejected(embedding: AxisEmbeddings) -> None:
    with pytest.raises(ValueError, match="'manhattan' is not supported"):
        FaissVectorStore(embedding, distance_strategy="manhattan")


def test_embedding_must_be_langchain_embeddings() -> None:
    with pytest.raises(TypeError, match="Embeddings instance"):
        FaissVectorStore("all-MiniLM-L6-v2")  # type: ignore[arg-type]


def test_generated_ids_are_unique_strings(embedding: AxisEmbeddings) -> None:
    store = FaissVectorStore(embedding)
    ids = store.add_texts(["red", "blue", "red"])
    assert len(set(ids)) == 3
    assert all(isinstance(i, str) and i for i in ids)
    assert store.ids == ids


def test_adding_an_existing_id_replaces_the_document(store: FaissVectorStore) -> None:
    store.add_texts(["dog"], [{"n": 9}], ids=["r"])
    assert store.get_by_ids(["r"]) == [
        Document(id="r", page_content="dog", metadata={"n": 9})
    ]
    assert len(store.ids) == 4
    assert store.similarity_search("red", k=1)[0].id == "rg"


def test_repeated_id_in_one_call_is_an_error(embedding: AxisEmbeddings) -> None:
    store = FaissVectorStore(embedding)
    with pytest.raises(ValueError, match="'x' appears twice"):
        store.add_texts(["red", "blue"], ids=["x", "x"])
    assert store.ids == []


def test_length_mismatches_are_errors(embedding: AxisEmbeddings) -> None:
    store = FaissVectorStore(embedding)
    with pytest.raises(ValueError, match="2 texts but 1 metadatas"):
        store.add_texts(["red", "blue"], [{}])
    with pytest.raises(ValueError, match="2 texts but 3 ids"):
        store.add_texts(["red", "blue"], ids=["a", "b", "c"])


def test_unknown_keyword_is_an_error(store: FaissVectorStore) -> None:
    with pytest.raises(TypeError, match="filtr"):
        store.similarity_search("red", k=1, filtr={"n": 1})


def test_k_below_one_is_an_error(store: FaissVectorStore) -> None:
    with pytest.raises(ValueError, match="k must be a positive integer, got 0"):
        store.similarity_search("red", k=0)


def test_dimension_change_is_an_error(store: FaissVectorStore) -> None:
    other = FaissVectorStore(DeterministicFakeEmbedding(size=3))
    other.add_texts(["a"])
    other._embedding = store.embeddings  # a different model behind the same store
    with pytest.raises(
        ValueError, match="dimension 9 but this store holds dimension 3"
    ):
        other.add_texts(["red"])


def test_stored_documents_are_isolated_from_the_caller(
    embedding: AxisEmbeddings,
) -> None:
    metadata = {"tags": ["x"]}
    store = FaissVectorStore(embedding)
    store.add_texts(["red"], [metadata], ids=["r"])
    metadata["tags"].append("changed")
    found = store.similarity_search("red", k=1)[0]
    assert found.metadata == {"tags": ["x"]}
    found.metadata["tags"].append("mutated result")
    assert store.get_by_ids(["r"])[0].metadata == {"tags": ["x"]}


def test_add_documents_uses_document_ids(embedding: AxisEmbeddings) -> None:
    store = FaissVectorStore(embedding)
    docs = [Document(page_content="red", id="one"), Document(page_content="blue")]
    ids = store.add_documents(docs)
    assert ids[0] == "one"
    assert ids[1]
    assert docs[1].id is None  # the caller's document is not mutated


def test_get_by_ids_keeps_order_and_skips_missing(store: FaissVectorStore) -> None:
    assert [d.id for d in store.get_by_ids(["b", "nope", "r"])] == ["b", "r"]


def test_delete(store: FaissVectorStore) -> None:
    assert store.delete(["r", "missing"]) is True
    assert store.delete(["missing"]) is False
    assert "r" not in store.ids
    assert store.similarity_search("red", k=1)[0].id == "rg"


def test_an_id_listed_twice_is_deleted_once_from_both_indexes(
    store: FaissVectorStore,
) -> None:
    # Found by test_store_model.py: the second "r" raised KeyError after FAISS
    # had dropped the vector, leaving "r" in the docstore without a vector.
    assert store.delete(["r", "r"]) is True
    assert "r" not in store.ids
    assert len(store.similarity_search("red", k=10)) == 3
    assert [d.id for d, _ in store.bm25_search_with_score("red")] == ["rg"]
    store.add_texts(["red"], ids=["r"])
    assert [d.id for d in store.similarity_search("red", k=1)] == ["r"]


def test_delete_takes_any_iterable_of_ids_but_not_one_string(
    store: FaissVectorStore,
) -> None:
    # A generator was read twice: the first id went to a membership check and
    # only the rest were deleted. A string was read as its characters.
    assert store.delete(doc_id for doc_id in ["r", "rg"]) is True
    assert sorted(store.ids) == ["b", "cd"]
    with pytest.raises(TypeError, match=r"store\.delete\(\['cd'\]\)"):
        store.delete("cd")  # type: ignore[arg-type]
    assert sorted(store.ids) == ["b", "cd"]


def test_delete_without_ids_refuses_to_empty_the_store(store: FaissVectorStore) -> None:
    with pytest.raises(ValueError, match=r"store\.delete\(store\.ids\)"):
        store.delete()
    assert len(store.ids) == 4
    store.delete(store.ids)
    assert store.similarity_search("red", k=4) == []


def test_filter_dict_still_returns_k_results(embedding: AxisEmbeddings) -> None:
    store = FaissVectorStore(embedding)
    # 50 near documents that do not match and 3 far ones that do.
    store.add_texts(["red"] * 50, [{"src": "near"}] * 50)
    store.add_texts(["blue", "blue green", "green"], [{"src": "far"}] * 3)
    docs = store.similarity_search("red", k=3, filter={"src": "far"})
    assert len(docs) == 3
    assert {d.page_content for d in docs} == {"blue", "blue green", "green"}


def test_filter_list_value_means_any_of(store: FaissVectorStore) -> None:
    docs = store.similarity_search("red", k=4, filter={"n": [1, 3]})
    assert sorted(d.metadata["n"] for d in docs) == [1, 3]


def test_filter_missing_key_does_not_match(store: FaissVectorStore) -> None:
    docs = store.similarity_search("cat", k=4, filter={"src": "a"})
    assert {d.id for d in docs} == {"r", "b"}


def test_filter_callable(store: FaissVectorStore) -> None:
    docs = store.similarity_search("red", k=4, filter=lambda m: m["n"] % 2 == 0)
    assert [d.id for d in docs] == ["rg", "cd"]


def test_filter_of_wrong_type_is_an_error(store: FaissVectorStore) -> None:
    with pytest.raises(TypeError, match="filter must be a dict"):
        store.similarity_search("red", k=1, filter="src=a")


def test_similarity_search_by_vector(store: FaissVectorStore) -> None:
    vector = store.embeddings.embed_query("blue")
    assert store.similarity_search_by_vector(vector, k=1)[0].id == "b"


def test_relevance_scores_are_in_unit_interval(store: FaissVectorStore) -> None:
    pairs = store.similarity_search_with_relevance_scores("red", k=4)
    assert pairs[0][1] == pytest.approx(1.0, abs=1e-5)
    assert all(0.0 <= s <= 1.0 for _, s in pairs)


def test_mmr_prefers_diverse_documents(embedding: AxisEmbeddings) -> None:
    store = FaissVectorStore(embedding)
    store.add_texts(["red", "red", "red alpha", "red cat"], ids=["a", "b", "c", "d"])
    plain = [d.id for d in store.similarity_search("red", k=2)]
    diverse = store.max_marginal_relevance_search(
        "red", k=2, fetch_k=4, lambda_mult=0.3
    )
    assert set(plain) == {"a", "b"}  # exact duplicates crowd out the rest
    assert diverse[0].id in {"a", "b"}
    assert diverse[1].id in {"c", "d"}


def test_mmr_with_scores_and_filter(store: FaissVectorStore) -> None:
    pairs = store.max_marginal_relevance_search_with_score(
        "red", k=2, fetch_k=4, filter={"src": "a"}
    )
    assert {d.id for d, _ in pairs} == {"r", "b"}
    assert dict((d.id, s) for d, s in pairs)["r"] == pytest.approx(1.0, abs=1e-5)


def test_mmr_rejects_bad_lambda(store: FaissVectorStore) -> None:
    with pytest.raises(ValueError, match="lambda_mult"):
        store.max_marginal_relevance_search("red", k=1, lambda_mult=2.0)


def test_from_texts_and_from_documents(embedding: AxisEmbeddings) -> None:
    store = FaissVectorStore.from_texts(["red", "blue"], embedding, ids=["r", "b"])
    assert store.similarity_search("blue", k=1)[0].id == "b"
    store2 = FaissVectorStore.from_documents(
        [Document(page_content="dog", id="d")], embedding, distance_strategy="l2"
    )
    assert store2.distance_strategy == "l2"
    assert store2.get_by_ids(["d"])[0].page_content == "dog"


async def test_async_variants(embedding: AxisEmbeddings) -> None:
    store = FaissVectorStore(embedding)
    ids = await store.aadd_texts(["red", "blue"], ids=["r", "b"])
    assert ids == ["r", "b"]
    assert (await store.asimilarity_search("blue", k=1))[0].id == "b"
    pairs = await store.asimilarity_search_with_score("red", k=1)
    assert pairs[0][1] == pytest.approx(1.0, abs=1e-5)
    assert len(await store.amax_marginal_relevance_search("red", k=2)) == 2
    assert (await store.aget_by_ids(["r"]))[0].page_content == "red"
    await store.adelete(["r"])
    assert store.ids == ["b"]
    built = await FaissVectorStore.afrom_texts(["dog"], embedding, ids=["d"])
    assert built.ids == ["d"]


def test_concurrent_reads_and_writes_never_see_half_added_documents(
    embedding: AxisEmbeddings,
) -> None:
    store = FaissVectorStore(embedding)
    store.add_texts(["red"], [{"version": 0}], ids=["seed"])
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(worker: int) -> None:
        try:
            for i in range(150):
                doc_id = f"w{worker}-{i % 10}"
                # The text encodes id and version, so a reader can check both
                # halves of a document come from the same add.
                store.add_texts(
                    [f"red {doc_id} {i}"], [{"id": doc_id, "version": i}], ids=[doc_id]
                )
                if i % 7 == 0:
                    store.delete([f"w{worker}-{(i + 3) % 10}"])
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    def reader() -> None:
        try:
            while not stop.is_set():
                for doc, _ in store.similarity_search_with_score("red", k=8):
                    if doc.id == "seed":
                        continue
                    _, text_id, version = doc.page_content.split()
                    assert text_id == doc.id == doc.metadata["id"]
                    assert int(version) == doc.metadata["version"]
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    readers = [threading.Thread(target=reader) for _ in range(3)]
    for thread in writers + readers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert errors == []
    assert len(store.ids) == len(set(store.ids))
    assert len(store.similarity_search("red", k=100)) == len(store.ids)


def test_add_embeddings_takes_precomputed_vectors(embedding: AxisEmbeddings) -> None:
    import numpy as np

    store = FaissVectorStore(embedding)
    vectors = np.array([embedding.embed_query("red"), embedding.embed_query("blue")])
    embedding.calls = 0
    ids = store.add_embeddings(
        ["red", "blue"], vectors, [{"n": 1}, {"n": 2}], ids=["r", "b"]
    )
    assert ids == ["r", "b"]
    assert embedding.calls == 0  # nothing re-embedded
    assert store.similarity_search("blue", k=1)[0].metadata == {"n": 2}
    with pytest.raises(ValueError, match="expected 2 vectors"):
        store.add_embeddings(["a", "b"], vectors[:1])
    with pytest.raises(ValueError, match="ragged"):
        store.add_embeddings(["a", "b"], [[1.0, 2.0], [1.0]])
