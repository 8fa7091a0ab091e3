"""LangChain's standard suites: our contract with the ecosystem."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import (
    RetrieversIntegrationTests,
    VectorStoreIntegrationTests,
)

from langchain_ce_rerank import FaissRetriever, FaissVectorStore


class TestFaissVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self) -> VectorStore:
        return FaissVectorStore(self.get_embeddings())


class TestFaissRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[FaissRetriever]:
        return FaissRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        store = FaissVectorStore(DeterministicFakeEmbedding(size=6))
        store.add_texts([f"document number {i}" for i in range(10)])
        return {"vectorstore": store, "k": 4}

    @property
    def retriever_query_example(self) -> str:
        return "document number 3"
