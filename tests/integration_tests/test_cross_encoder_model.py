"""The compressor on a real (architecture-identical, untrained) cross-encoder."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
import torch
from langchain_core.documents import Document
from sentence_transformers import CrossEncoder

from langchain_ce_rerank import CrossEncoderCompressor

QUERY = "How do I restore a Docker volume backup on another host?"
TEXTS = [
    "Create a tar archive from a Docker volume and extract it on the new host.",
    "Inspect container logs with docker logs.",
    "",
    "Ünïcödé: 日本語のテキスト, עברית, emoji 🐳🚀, and math ∑∫√.",
    "docker volume backup " * 12_500,  # 100k+ characters
    "List Docker images and tags.",
]


@pytest.fixture(scope="module")
def compressor(standin_ce_path: Path) -> CrossEncoderCompressor:
    return CrossEncoderCompressor(model=str(standin_ce_path), top_n=None, device="cpu")


@pytest.fixture(scope="module")
def raw_model(standin_ce_path: Path) -> CrossEncoder:
    return CrossEncoder(str(standin_ce_path), device="cpu")


def _docs() -> list[Document]:
    return [Document(page_content=t, id=str(i)) for i, t in enumerate(TEXTS)]


def test_scores_equal_raw_predict_logits(
    compressor: CrossEncoderCompressor, raw_model: CrossEncoder
) -> None:
    out = compressor.compress_documents(_docs(), QUERY)
    expected = raw_model.predict(
        [(QUERY, t) for t in TEXTS], activation_fn=torch.nn.Identity()
    )
    got = {int(d.id): d.metadata["relevance_score"] for d in out}  # type: ignore[arg-type]
    assert len(got) == len(TEXTS)  # empty, Unicode and 100k-char texts all scored
    for i, value in enumerate(expected):
        assert got[i] == pytest.approx(float(value), abs=1e-5)
    assert all(math.isfinite(v) for v in got.values())


def test_sigmoid_activation_gives_probabilities_of_the_same_logits(
    standin_ce_path: Path, compressor: CrossEncoderCompressor
) -> None:
    logits = {
        d.id: d.metadata["relevance_score"]
        for d in compressor.compress_documents(_docs(), QUERY)
    }
    probs = CrossEncoderCompressor(
        model=standin_ce_path, activation="sigmoid", top_n=None, device="cpu"
    ).compress_documents(_docs(), QUERY)
    for doc in probs:
        assert 0.0 < doc.metadata["relevance_score"] < 1.0
        assert doc.metadata["relevance_score"] == pytest.approx(
            1 / (1 + math.exp(-logits[doc.id])), abs=1e-6
        )


def test_max_length_and_batch_size_reach_the_model(standin_ce_path: Path) -> None:
    compressor = CrossEncoderCompressor(
        model=standin_ce_path, max_length=64, batch_size=2, device="cpu"
    )
    model = compressor.load_model()
    assert isinstance(model, CrossEncoder)
    assert model.max_seq_length == 64
    assert compressor.load_model() is model  # loaded once


def test_a_loaded_cross_encoder_can_be_passed_in(raw_model: CrossEncoder) -> None:
    out = CrossEncoderCompressor(model=raw_model, top_n=2).compress_documents(
        _docs(), QUERY
    )
    assert len(out) == 2


def test_shared_between_threads(compressor: CrossEncoderCompressor) -> None:
    expected = [
        (d.id, d.metadata["relevance_score"])
        for d in compressor.compress_documents(_docs()[:4], QUERY)
    ]
    results: list[list[tuple[str | None, float]]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            docs = compressor.compress_documents(_docs()[:4], QUERY)
            results.append([(d.id, d.metadata["relevance_score"]) for d in docs])
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 6
    for result in results:
        assert [i for i, _ in result] == [i for i, _ in expected]
        for (_, got), (_, want) in zip(result, expected, strict=True):
            assert got == pytest.approx(want, abs=1e-5)
