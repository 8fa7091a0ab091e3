from __future__ import annotations

import asyncio
import math
import threading
from pathlib import Path

import numpy as np
import pytest
from doubles import (
    BlockingCrossEncoder,
    FunctionCrossEncoder,
    TableCrossEncoder,
    WordOverlapCrossEncoder,
)
from langchain_classic.retrievers.document_compressors import DocumentCompressorPipeline
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import InMemoryVectorStore
from pydantic import ValidationError

from langchain_ce_rerank import (
    CrossEncoderCompressor,
    ModelNotFoundError,
    NonFiniteScoreError,
)
from langchain_ce_rerank import compressor as compressor_module


def _docs(*texts: str) -> list[Document]:
    return [
        Document(page_content=t, id=f"id-{i}", metadata={"retrieval_rank": i + 1})
        for i, t in enumerate(texts)
    ]


def test_sorted_by_score_with_relevance_score_in_metadata() -> None:
    model = TableCrossEncoder({"a": 1.0, "b": 3.0, "c": 2.0})
    out = CrossEncoderCompressor(model=model, top_n=None).compress_documents(
        _docs("a", "b", "c"), "q"
    )
    assert [d.page_content for d in out] == ["b", "c", "a"]
    assert [d.metadata["relevance_score"] for d in out] == [3.0, 2.0, 1.0]


def test_ties_keep_input_order() -> None:
    model = TableCrossEncoder({"x1": 1.0, "x2": 1.0, "top": 5.0, "x3": 1.0})
    out = CrossEncoderCompressor(model=model, top_n=None).compress_documents(
        _docs("x1", "x2", "top", "x3"), "q"
    )
    assert [d.page_content for d in out] == ["top", "x1", "x2", "x3"]


def test_id_text_and_existing_metadata_are_kept_and_inputs_untouched() -> None:
    docs = [
        Document(
            page_content="a",
            id="doc-a",
            metadata={"retrieval_score": 0.5, "retrieval_rank": 2, "src": "f.md"},
        )
    ]
    snapshot = [d.model_copy(deep=True) for d in docs]
    out = CrossEncoderCompressor(
        model=TableCrossEncoder({"a": 2.5})
    ).compress_documents(docs, "q")
    assert out[0].id == "doc-a"
    assert out[0].page_content == "a"
    assert out[0].metadata == {
        "retrieval_score": 0.5,
        "retrieval_rank": 2,
        "src": "f.md",
        "relevance_score": 2.5,
    }
    assert docs == snapshot
    assert out[0] is not docs[0]


def test_top_n_cuts_and_none_keeps_all() -> None:
    model = TableCrossEncoder({str(i): float(i) for i in range(10)})
    docs = _docs(*[str(i) for i in range(10)])
    assert (
        len(CrossEncoderCompressor(model=model, top_n=3).compress_documents(docs, "q"))
        == 3
    )
    assert (
        len(
            CrossEncoderCompressor(model=model, top_n=None).compress_documents(
                docs, "q"
            )
        )
        == 10
    )
    big = CrossEncoderCompressor(model=model, top_n=50).compress_documents(
        docs[:4], "q"
    )
    assert [d.page_content for d in big] == ["3", "2", "1", "0"]


def test_default_top_n_is_five() -> None:
    assert CrossEncoderCompressor().top_n == 5


def test_threshold_applies_after_top_n() -> None:
    model = TableCrossEncoder({"a": 0.9, "b": 0.5, "c": 0.1, "d": 0.8})
    docs = _docs("a", "b", "c", "d")
    out = CrossEncoderCompressor(
        model=model, top_n=3, score_threshold=0.55
    ).compress_documents(docs, "q")
    assert [d.page_content for d in out] == ["a", "d"]
    out = CrossEncoderCompressor(
        model=model, top_n=1, score_threshold=0.95
    ).compress_documents(docs, "q")
    assert out == []


def test_empty_candidate_list_makes_no_model_call() -> None:
    model = TableCrossEncoder()
    assert CrossEncoderCompressor(model=model).compress_documents([], "q") == []
    assert model.calls == []


@pytest.mark.parametrize("query", ["", "  ", "\n"])
def test_blank_query_is_an_error(query: str) -> None:
    model = TableCrossEncoder()
    with pytest.raises(ValueError, match="query is empty or only whitespace"):
        CrossEncoderCompressor(model=model).compress_documents(_docs("a"), query)
    assert model.calls == []


@pytest.mark.parametrize(
    ("field", "value"), [("top_n", 0), ("batch_size", 0), ("max_length", 0)]
)
def test_bad_settings_are_rejected_at_construction(field: str, value: int) -> None:
    with pytest.raises(ValidationError, match=field):
        CrossEncoderCompressor(**{field: value})


def test_misspelt_option_is_rejected() -> None:
    with pytest.raises(ValidationError, match="topn"):
        CrossEncoderCompressor(topn=3)  # type: ignore[call-arg]


def test_activation_is_validated_and_sigmoid_maps_to_probabilities() -> None:
    with pytest.raises(ValidationError, match="activation"):
        CrossEncoderCompressor(activation="softmax")  # type: ignore[arg-type]
    model = TableCrossEncoder({"a": 0.0, "b": 2.0, "c": -800.0, "d": 800.0})
    out = CrossEncoderCompressor(
        model=model, activation="sigmoid", top_n=None
    ).compress_documents(_docs("a", "b", "c", "d"), "q")
    scores = {d.page_content: d.metadata["relevance_score"] for d in out}
    assert scores["a"] == pytest.approx(0.5)
    assert scores["b"] == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert scores["c"] == pytest.approx(0.0)
    assert scores["d"] == pytest.approx(1.0)


def test_duplicate_texts_are_scored_once() -> None:
    model = TableCrossEncoder({"same": 2.0, "other": 1.0})
    docs = [
        Document(page_content="same", id="a"),
        Document(page_content="other", id="b"),
        Document(page_content="same", id="c"),
    ]
    out = CrossEncoderCompressor(model=model, top_n=None).compress_documents(docs, "q")
    assert [d.id for d in out] == ["a", "c", "b"]
    assert len(model.calls) == 1
    assert sorted(model.calls[0]) == [("q", "other"), ("q", "same")]


def test_nan_scores_raise_instead_of_being_ranked() -> None:
    model = FunctionCrossEncoder(lambda q, t: math.nan if t == "bad" else float(len(t)))
    compressor = CrossEncoderCompressor(model=model, top_n=None)
    with pytest.raises(NonFiniteScoreError, match="1 NaN or missing score"):
        compressor.compress_documents(_docs("bad", "a", "abc"), "q")


def test_wrong_number_of_scores_is_an_error() -> None:
    model = FunctionCrossEncoder(lambda q, t: 0.0)
    model.score = lambda pairs: [1.0]  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="1 scores for 2 pairs"):
        CrossEncoderCompressor(model=model).compress_documents(_docs("a", "b"), "q")


def test_loading_options_with_a_loaded_model_are_an_error() -> None:
    with pytest.raises(ValidationError, match="device configure loading"):
        CrossEncoderCompressor(model=TableCrossEncoder(), device="cpu")
    with pytest.raises(ValidationError, match="model_kwargs"):
        CrossEncoderCompressor(
            model=TableCrossEncoder(), model_kwargs={"revision": "x"}
        )


def test_model_of_wrong_type_is_an_error() -> None:
    with pytest.raises(ValidationError, match="model"):
        CrossEncoderCompressor(model=42)  # type: ignore[arg-type]


def test_model_loads_lazily_once_even_from_many_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads: list[str] = []
    gate = threading.Barrier(8)

    def fake_load(model: str | Path, **kwargs: object) -> TableCrossEncoder:
        loads.append(str(model))
        return TableCrossEncoder({"a": 1.0})

    monkeypatch.setattr(compressor_module, "load_cross_encoder", fake_load)
    compressor = CrossEncoderCompressor(model="some/model")
    assert loads == []  # nothing loaded at construction
    results: list[float] = []

    def work() -> None:
        gate.wait()
        doc = compressor.compress_documents(_docs("a"), "q")[0]
        results.append(doc.metadata["relevance_score"])

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads == ["some/model"]
    assert results == [1.0] * 8


def test_missing_model_is_a_clear_error_and_never_a_fallback(tmp_path: Path) -> None:
    compressor = CrossEncoderCompressor(model="no-such-org/no-such-reranker")
    with pytest.raises(ModelNotFoundError) as info:
        compressor.compress_documents(_docs("a"), "q")
    message = str(info.value)
    assert "'no-such-org/no-such-reranker'" in message
    assert "HF_HUB_OFFLINE=1" in message
    assert "Hugging Face cache" in message
    assert "model='/path/to/model'" in message
    missing = tmp_path / "not-here"
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        CrossEncoderCompressor(model=missing).load_model()


async def test_acompress_keeps_the_event_loop_responsive() -> None:
    model = BlockingCrossEncoder()
    compressor = CrossEncoderCompressor(model=model, top_n=None)
    task = asyncio.create_task(compressor.acompress_documents(_docs("aa", "a"), "q"))
    # While the model is busy in a worker thread, this coroutine keeps running
    # and is the one that lets the model finish.
    while not model.started.is_set():
        await asyncio.sleep(0)
    ticks = 0
    for _ in range(10):
        await asyncio.sleep(0)
        ticks += 1
    model.release.set()
    out = await task
    assert ticks == 10
    assert [d.page_content for d in out] == ["aa", "a"]


def test_works_after_a_non_faiss_retriever_and_in_a_pipeline() -> None:
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=8))
    store.add_texts(["red apple", "green pear", "red cherry", "blue sky"])
    candidates = store.as_retriever(search_kwargs={"k": 4}).invoke("red")
    compressor = CrossEncoderCompressor(model=WordOverlapCrossEncoder(), top_n=2)
    out = compressor.compress_documents(candidates, "red fruit")
    assert {d.page_content for d in out} == {"red apple", "red cherry"}

    pipeline = DocumentCompressorPipeline(transformers=[compressor])
    piped = pipeline.compress_documents(candidates, "red fruit")
    assert [d.page_content for d in piped] == [d.page_content for d in out]


class _RecordingPredictor:
    """A sentence-transformers-like model that records its batch sizes."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.batch_sizes: list[int] = []

    def predict(self, inputs, batch_size, **kwargs):
        self.batch_sizes.append(batch_size)
        return np.array([float(len(text)) for _, text in inputs])


@pytest.mark.parametrize(
    ("device", "given", "expected"),
    [("cpu", None, 4), ("cuda:0", None, 32), ("mps", None, 32), ("cpu", 16, 16)],
)
def test_batch_size_defaults_by_device(
    device: str, given: int | None, expected: int
) -> None:
    model = _RecordingPredictor(device)
    compressor = CrossEncoderCompressor(model=model, batch_size=given, top_n=None)
    out = compressor.compress_documents(
        [Document(page_content="a"), Document(page_content="abc")], "q"
    )
    assert [d.page_content for d in out] == ["abc", "a"]
    assert model.batch_sizes == [expected]
