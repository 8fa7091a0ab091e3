"""Chunks fit the real all-MiniLM-L6-v2's window of 256 word pieces."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings

from langchain_ce_rerank.ingest import load_corpus
from langchain_ce_rerank.models import embedding_window


def _man_page(options: int) -> str:
    """Option lookups as man pages write them: flags, codes, numbers, names."""
    paragraphs = [
        f"--max-queued-pairs-{i}=N, -q{i} N\n"
        f"    Limit the queue to N pairs (default 0x{i * 7919:04X}); exits with "
        f"E{i:04d} when ce_rerank_{i}.setInterval({i * 13}ms) overruns. See "
        f"ce-rerank-serve({i % 9}) and RFC {i * 31 % 9000}."
        for i in range(options)
    ]
    return "\n\n".join(paragraphs)


def _tokens(embedding: Embeddings, text: str) -> int:
    """What the model itself reads of `text`, special tokens included."""
    model: Any = embedding._client  # type: ignore[attr-defined]
    return len(model.tokenizer(text, verbose=False)["input_ids"])


@pytest.fixture
def page(tmp_path: Path) -> Path:
    path = tmp_path / "ce-rerank.1.txt"
    path.write_text(_man_page(120), encoding="utf-8")
    return path


def test_default_chunks_fit_the_window(
    page: Path, minilm_embeddings: Embeddings
) -> None:
    window = embedding_window(minilm_embeddings)
    assert window is not None
    assert (window.size, window.text_tokens) == (256, 254)
    corpus = load_corpus([page], embedding=minilm_embeddings)
    sizes = [_tokens(minilm_embeddings, d.page_content) for d in corpus.documents]
    assert max(sizes) <= 256
    assert sorted(sizes)[len(sizes) // 2] > 180  # chunks fill the window
    assert corpus.too_long == []
    text = page.read_text(encoding="utf-8")
    for doc in corpus.documents:  # offsets still point into the file
        start = doc.metadata["start_index"]
        assert text[start : start + len(doc.page_content)] == doc.page_content


def test_chunks_in_characters_past_the_window_warn_with_the_share(
    page: Path, minilm_embeddings: Embeddings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="langchain_ce_rerank.ingest"):
        corpus = load_corpus([page], embedding=minilm_embeddings, chunk_size=1000)
    assert max(len(d.page_content) for d in corpus.documents) <= 1000
    over = [
        d.id
        for d in corpus.documents
        if _tokens(minilm_embeddings, d.page_content) > 256
    ]
    assert 0 < len(over) <= len(corpus.documents)
    assert corpus.too_long == over
    share = len(over) / len(corpus.documents)
    [record] = caplog.records
    assert record.getMessage().startswith(
        f"{len(over)} of {len(corpus.documents)} chunks ({share:.1%}) are longer "
        "than the embedding model's window of 256 tokens"
    )


def test_the_tokenizer_alone_gives_the_loaded_models_window() -> None:
    from langchain_ce_rerank.models import (
        embedding_window,
        load_embeddings,
        load_token_window,
    )

    read = load_token_window()
    loaded = embedding_window(load_embeddings())
    assert read is not None
    assert loaded is not None
    assert (read.size, read.reserved) == (loaded.size, loaded.reserved)
    text = "Tar the volume, copy it to the new host, and extract it there."
    assert read.count(text) == loaded.count(text)
