from __future__ import annotations

import subprocess
import sys

import langchain_ce_rerank

EXPECTED_ALL = [
    "CrossEncoderCompressor",
    "EvaluationReport",
    "FaissRetriever",
    "FaissVectorStore",
    "ModelNotFoundError",
    "RerankingRetriever",
    "StoreLoadError",
    "__version__",
    "build_reranking_retriever",
    "evaluate",
    "load_beir",
    "load_corpus",
    "load_embeddings",
    "sync_store",
]


def test_all_is_pinned() -> None:
    assert sorted(langchain_ce_rerank.__all__) == sorted(EXPECTED_ALL)
    for name in EXPECTED_ALL:
        assert hasattr(langchain_ce_rerank, name)


def test_version_is_a_string() -> None:
    assert isinstance(langchain_ce_rerank.__version__, str)


def test_import_does_no_heavy_work() -> None:
    code = (
        "import sys, langchain_ce_rerank; "
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers', "
        "'langchain_huggingface') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_every_public_class_documents_an_example() -> None:
    for name in EXPECTED_ALL:
        obj = getattr(langchain_ce_rerank, name)
        if isinstance(obj, type):
            assert obj.__doc__, name
            assert "```python" in obj.__doc__, name
