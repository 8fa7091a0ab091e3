"""Odd input through the real model path: long texts in windows, bad Unicode."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.documents import Document

from langchain_ce_rerank import CrossEncoderCompressor

SCRIPT = """
import sys
from langchain_core.documents import Document
from langchain_ce_rerank import CrossEncoderCompressor

compressor = CrossEncoderCompressor(
    model=sys.argv[1], device="cpu", long_documents="max_passage", top_n=None
)
long_text = " ".join(f"word{i} about docker volumes" for i in range(3000))
out = compressor.compress_documents(
    [Document(page_content=long_text), Document(page_content="short")], "docker"
)
print("passage", out[0].metadata.get("relevance_passage") is not None)
"""


def test_max_passage_windows_trigger_no_false_length_warning(
    standin_ce_path: Path,
) -> None:
    # Seen by a user: "Token indices sequence length is longer than the
    # specified maximum sequence length for this model (43760 > 512). Running
    # this sequence through the model will result in indexing errors", although
    # the library only ever sends windows that fit.
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(standin_ce_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PATH": ""},
    )
    assert "passage True" in run.stdout
    assert "Token indices sequence length" not in run.stderr
    assert "indexing errors" not in run.stderr


def test_lone_surrogate_with_the_real_tokenizer_is_a_clear_error(
    standin_ce_path: Path,
) -> None:
    # Seen by a user: TypeError: TextEncodeInput must be Union[...] from deep
    # inside the tokenizer.
    compressor = CrossEncoderCompressor(model=standin_ce_path, device="cpu")
    docs = [
        Document(page_content="ok", id="a"),
        Document(page_content="\ud800", id="b"),
    ]
    with pytest.raises(ValueError, match=r"document 1 \(id='b'\) contains a lone"):
        compressor.compress_documents(docs, "query")
    assert compressor.score("query", ["ok"])  # still usable afterwards
