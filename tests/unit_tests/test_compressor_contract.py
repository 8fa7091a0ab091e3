"""The compressor contract, run on `CrossEncoderCompressor`, and checked itself:
each promise's test fails on a compressor that breaks exactly that promise."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from doubles import FunctionCrossEncoder
from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict

from langchain_ce_rerank import CrossEncoderCompressor
from langchain_ce_rerank.testing import CompressorContractTests, CompressorFactory


def overlap(query: str, text: str) -> float:
    """Query words in the text, plus a length tiebreak so every score differs."""
    words = set(re.findall(r"\w+", text.lower()))
    return (
        float(sum(w in words for w in re.findall(r"\w+", query.lower())))
        + len(text) / 1000
    )


def factory_for(**fields: Any) -> CompressorFactory:
    def make(
        *, top_n: int | None = None, score_threshold: float | None = None
    ) -> BaseDocumentCompressor:
        return CrossEncoderCompressor(
            top_n=top_n, score_threshold=score_threshold, **fields
        )

    return make


class TestCrossEncoderCompressorContract(CompressorContractTests):
    @pytest.fixture
    def compressor_factory(self) -> CompressorFactory:
        return factory_for(model=FunctionCrossEncoder(overlap))


class TestNumpyScoringModelContract(CompressorContractTests):
    """A model that returns numpy scalars still yields plain float scores."""

    @pytest.fixture
    def compressor_factory(self) -> CompressorFactory:
        return factory_for(
            model=FunctionCrossEncoder(lambda q, t: np.float32(overlap(q, t)))
        )


class TestFusedCompressorContract(CompressorContractTests):
    """RRF orders by `fused_score` but thresholds `relevance_score`: here the
    cut order is observable, and ours is top_n first."""

    order_key = "fused_score"

    @property
    def documents(self) -> list[Document]:
        # The first stage disagrees with the model, so the fused order does too.
        docs = super().documents
        for i, doc in enumerate(docs):
            doc.metadata["retrieval_rank"] = len(docs) - i
        return docs

    @pytest.fixture
    def compressor_factory(self) -> CompressorFactory:
        return factory_for(model=FunctionCrossEncoder(overlap), fusion="rrf")


@pytest.fixture(scope="module")
def standin_model(standin_ce_path: Path) -> Any:
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(standin_ce_path), device="cpu")


class TestStandinModelContract(CompressorContractTests):
    """The same contract with the real (untrained) MiniLM stand-in model."""

    @pytest.fixture
    def compressor_factory(self, standin_model: Any) -> CompressorFactory:
        return factory_for(model=standin_model)


# -- the contract checks itself ------------------------------------------------


class ToyReranker(BaseDocumentCompressor):
    """A small correct reranker that breaks one promise on request."""

    model_config = ConfigDict(extra="forbid")
    top_n: int | None = None
    score_threshold: float | None = None
    breach: str = ""

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        b = self.breach
        if b == "callbacks" and callbacks is not None:
            raise TypeError("no callbacks here")
        if b == "empty" and not documents:
            raise IndexError("empty")
        if b != "blank" and not query.strip():
            raise ValueError("blank query")
        scored = sorted(
            ((overlap(query, d.page_content), i) for i, d in enumerate(documents)),
            reverse=b != "unsorted",
        )
        if self.top_n is not None and b != "top_n":
            scored = scored[: self.top_n]
        if self.score_threshold is not None and b != "threshold":
            scored = [(s, i) for s, i in scored if s >= self.score_threshold]
        out = []
        for s, i in scored:
            doc = documents[i]
            score: float = np.float64(s) if b == "numpy" else s
            if b == "mutate":
                doc.metadata["relevance_score"] = score
                out.append(doc.model_copy(update={"metadata": dict(doc.metadata)}))
            elif b == "same_objects":
                out.append(doc)
            elif b == "id":
                out.append(
                    Document(
                        page_content=doc.page_content,
                        metadata={**doc.metadata, "relevance_score": score},
                    )
                )
            elif b == "metadata":
                out.append(
                    Document(
                        id=doc.id,
                        page_content=doc.page_content,
                        metadata={"relevance_score": score},
                    )
                )
            else:
                out.append(
                    doc.model_copy(
                        update={"metadata": {**doc.metadata, "relevance_score": score}}
                    )
                )
        if b in {"duplicates", "too_many"} and out:
            out.append(out[0])
        return out

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        out = self.compress_documents(documents, query, callbacks)
        return list(reversed(out)) if self.breach == "async" else out


def toy_factory(breach: str = "") -> CompressorFactory:
    def make(
        *, top_n: int | None = None, score_threshold: float | None = None
    ) -> BaseDocumentCompressor:
        return ToyReranker(top_n=top_n, score_threshold=score_threshold, breach=breach)

    return make


class TestToyRerankerContract(CompressorContractTests):
    """The unbroken toy keeps every promise."""

    @pytest.fixture
    def compressor_factory(self) -> CompressorFactory:
        return toy_factory()


BREACHES = {
    "unsorted": "test_sorted_by_score",
    "top_n": "test_top_n_cuts",
    "threshold": "test_score_threshold_applies",
    "mutate": "test_inputs_not_mutated",
    "same_objects": "test_returns_new_documents",
    "id": "test_keeps_id_content_and_metadata",
    "metadata": "test_keeps_id_content_and_metadata",
    "numpy": "test_scores_are_plain_floats",
    "empty": "test_empty_input",
    "blank": "test_blank_query",
    "async": "test_async_matches_sync",
    "callbacks": "test_callbacks_accepted",
    "duplicates": "test_no_duplicates",
    "too_many": "test_never_more_than_given",
}


def test_every_promise_has_a_breach_that_it_catches() -> None:
    promises = {n for n in dir(CompressorContractTests) if n.startswith("test_")}
    assert promises - set(BREACHES.values()) == {"test_cut_order"}  # checked below


@pytest.mark.parametrize(("breach", "test_name"), sorted(BREACHES.items()))
def test_contract_catches_breach(breach: str, test_name: str) -> None:
    suite = TestToyRerankerContract()
    test: Callable[[CompressorFactory], None] = getattr(suite, test_name)
    with pytest.raises(AssertionError):
        test(toy_factory(breach))
    test(toy_factory())  # and the same test passes without the breach


def test_cut_order_is_checked_where_it_is_observable() -> None:
    fused = factory_for(model=FunctionCrossEncoder(overlap), fusion="rrf")

    class ThresholdFirst(TestFusedCompressorContract):
        cut_order = "threshold_then_top_n"

    TestFusedCompressorContract().test_cut_order(fused)
    with pytest.raises(AssertionError, match="that is top_n_then_threshold"):
        ThresholdFirst().test_cut_order(fused)


def test_blank_query_may_be_declared_to_return_nothing() -> None:
    class ReturnsNothing(TestToyRerankerContract):
        blank_query = "empty"

    with pytest.raises(AssertionError, match="expected none"):
        ReturnsNothing().test_blank_query(toy_factory("blank"))


def test_missing_score_names_the_key() -> None:
    with pytest.raises(AssertionError, match=r"no metadata\['relevance_score'\]"):
        TestToyRerankerContract().test_sorted_by_score(toy_factory("same_objects"))


def test_importing_testing_does_not_import_pytest() -> None:
    code = (
        "import sys; import langchain_ce_rerank.testing as t; "
        "from langchain_ce_rerank.testing import build_standin_cross_encoder; "
        "print('pytest' in sys.modules); "
        "print(t.CompressorContractTests.__name__, 'pytest' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "CompressorContractTests", "True"]
