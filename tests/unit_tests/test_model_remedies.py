"""A model that cannot be found is explained in the words of the entry point used."""

from __future__ import annotations

import pytest
from doubles import AxisEmbeddings
from langchain_core.documents import Document

from langchain_ce_rerank import (
    CrossEncoderCompressor,
    ModelNotFoundError,
    Reranker,
    build_reranking_retriever,
)

MISSING = "no-such-org/no-such-reranker"
DOCS = [Document(page_content="red apple")]


def _message(call: object) -> str:
    with pytest.raises(ModelNotFoundError) as info:
        call()  # type: ignore[operator]
    assert info.value.model == MISSING
    return str(info.value)


def test_build_reranking_retriever_names_its_reranker_parameter() -> None:
    message = _message(
        lambda: build_reranking_retriever(
            DOCS, embedding=AxisEmbeddings(["red", "apple"]), reranker=MISSING
        )
    )
    assert "build_reranking_retriever(reranker='/path/to/model')" in message
    assert "CrossEncoderCompressor(model=" not in message
    assert "build_standin_cross_encoder" in message  # the offline way out


def test_a_missing_reranker_fails_before_any_document_is_embedded() -> None:
    embedding = AxisEmbeddings(["red", "apple"])
    corpus = [Document(page_content=f"red apple {i}") for i in range(1000)]
    with pytest.raises(ModelNotFoundError) as info:
        build_reranking_retriever(corpus, embedding=embedding, reranker=MISSING)
    assert embedding.calls == 0
    # Raised by the function the user called, not from deep inside a query.
    assert info.traceback[-1].name == "build_reranking_retriever"


def test_the_compressor_and_the_engine_name_their_model_parameter() -> None:
    compressor = CrossEncoderCompressor(model=MISSING)
    message = _message(lambda: compressor.compress_documents(DOCS, "red"))
    assert "CrossEncoderCompressor(model='/path/to/model')" in message
    message = _message(lambda: Reranker(model=MISSING).score("red", ["apple"]))
    assert "model='/path/to/model'" in message
    assert "HF_HUB_OFFLINE=1" in message  # where it looked is still said
