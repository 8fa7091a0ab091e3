"""A tiny index for in-process `ce-rerank query` runs, on a fake bi-encoder.

`with fake_bi_encoder(monkeypatch) as loaded:` replaces the embedding loader with
`AxisEmbeddings(WORDS)` (each load's model name is recorded in the list it
returns); `build_index(tmp_path, name, *flags)` runs `ce-rerank index` on four
short files. The fake knows only `WORDS`: "E0425" is visible to BM25 alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from doubles import AxisEmbeddings
from langchain_core.embeddings import Embeddings

from langchain_ce_rerank import models
from langchain_ce_rerank.cli import main

WORDS = ["docker", "volume", "backup", "logs"]
QUESTION = "docker E0425"


@contextmanager
def fake_bi_encoder(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Load `AxisEmbeddings(WORDS)` for every embedding model; names recorded."""
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "error")
    loaded: list[str] = []

    def load(model: str, **kwargs: object) -> Embeddings:
        loaded.append(model)
        return AxisEmbeddings(WORDS)

    monkeypatch.setattr(models, "load_embeddings", load)
    # `ce-rerank index` sets this logger's level; put it back afterwards.
    ingest_logger = logging.getLogger("langchain_ce_rerank.ingest")
    level = ingest_logger.level
    try:
        yield loaded
    finally:
        ingest_logger.setLevel(level)


def build_index(tmp_path: Path, name: str, *flags: str) -> Path:
    """`ce-rerank index` of four short files into `tmp_path/name`."""
    docs = tmp_path / f"{name}-docs"
    docs.mkdir()
    texts = {
        "backup.md": "docker volume backup",
        "logs.md": "docker logs",
        "tail.md": "logs",
        "errors.md": "error E0425 explained",
    }
    for file, text in texts.items():
        (docs / file).write_text(text, encoding="utf-8")
    out = tmp_path / name
    assert main(["index", str(docs), "--out", str(out), *flags]) == 0
    return out
