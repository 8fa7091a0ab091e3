from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import langchain_ce_rerank

EXPECTED_ALL = [
    "BM25Settings",
    "CrossEncoderCompressor",
    "EvaluationReport",
    "FaissRetriever",
    "FaissVectorStore",
    "InstructionNotSupportedError",
    "ModelNotFoundError",
    "NonFiniteScoreError",
    "RemoteCrossEncoder",
    "RemoteRerankError",
    "RemoteRerankTimeoutError",
    "RerankExplanation",
    "RerankResult",
    "RerankedDocuments",
    "Reranker",
    "RerankingRetriever",
    "ScoreCalibration",
    "SourceFiles",
    "StoreLoadError",
    "__version__",
    "build_reranking_retriever",
    "calibrate",
    "evaluate",
    "explain",
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


def test_dir_lists_every_public_name_before_it_is_imported() -> None:
    code = (
        "import langchain_ce_rerank as p; "
        "print(sorted(set(p.__all__) - set(dir(p))), "
        "sorted(set(p.__all__) & set(vars(p)) - {'__version__'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[] []"  # all listed, none imported yet


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


def _modules_after(statement: str, prefixes: tuple[str, ...]) -> list[str]:
    code = (
        f"import sys; {statement}; "
        f"print(sorted(m for m in sys.modules if m.startswith({prefixes!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return eval(out.stdout)  # a printed list of strings


def test_the_engine_imports_no_langchain() -> None:
    loaded = _modules_after("import langchain_ce_rerank.engine", ("langchain",))
    assert "langchain_ce_rerank.engine.reranker" in loaded
    assert [m for m in loaded if not m.startswith("langchain_ce_rerank")] == []
    # ... and none of our LangChain doors either.
    assert "langchain_ce_rerank.compressor" not in loaded


def test_the_package_imports_no_llama_index_even_when_used() -> None:
    statement = (
        "import langchain_ce_rerank as m; "
        "[getattr(m, n) for n in m.__all__ if n != '__version__']"
    )
    assert _modules_after(statement, ("llama_index",)) == []
    assert "langchain_core" in str(_modules_after(statement, ("langchain_core",)))


def test_the_store_and_retriever_modules_do_not_import_each_other() -> None:
    loaded = _modules_after(
        "import langchain_ce_rerank.store.retriever", ("langchain_ce_rerank.",)
    )
    assert "langchain_ce_rerank.store.retriever" in loaded
    assert "langchain_ce_rerank.vectorstore" not in loaded
    assert "langchain_ce_rerank.store.vectorstore" not in loaded


@pytest.mark.parametrize(
    ("old", "names"),
    [
        ("pipeline", ["RerankingRetriever", "build_reranking_retriever"]),
        ("retriever", ["FaissRetriever"]),
    ],
)
def test_old_module_paths_still_import_with_a_deprecation_warning(
    old: str, names: list[str]
) -> None:
    sys.modules.pop(f"langchain_ce_rerank.{old}", None)
    with pytest.warns(DeprecationWarning, match=rf"langchain_ce_rerank\.{old} is"):
        module = importlib.import_module(f"langchain_ce_rerank.{old}")
    for name in names:
        assert getattr(module, name) is getattr(langchain_ce_rerank, name)


def test_the_package_does_not_import_the_old_paths() -> None:
    statement = (
        "import langchain_ce_rerank as m; "
        "[getattr(m, n) for n in m.__all__ if n != '__version__']"
    )
    loaded = _modules_after(statement, ("langchain_ce_rerank.",))
    assert "langchain_ce_rerank.reranking_retriever" in loaded
    assert "langchain_ce_rerank.pipeline" not in loaded
    assert "langchain_ce_rerank.retriever" not in loaded
