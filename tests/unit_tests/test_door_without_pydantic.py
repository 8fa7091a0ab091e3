"""A door for a framework whose components cannot be pydantic models.

Haystack's `@component` classes are made by its own metaclass, so a Haystack
door cannot subclass `EngineDoor`. This skeleton of one (no Haystack install:
a local `Document` of the same shape) holds a `Reranker` and its own
`RankingSettings` and uses only the engine's public names, yet ranks, takes
per-call options and writes metadata exactly as the LangChain door does: the
rules live in the engine once, not in a third copy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from doubles import TableCrossEncoder, WordOverlapCrossEncoder
from langchain_core.documents import Document as LangChainDocument

from langchain_ce_rerank import CrossEncoderCompressor, engine
from langchain_ce_rerank.engine import (
    UNSET,
    RankingSettings,
    Reranker,
    first_stage_ranks,
    result_metadata,
)


@dataclass(frozen=True)
class Document:
    """The fields of `haystack.Document` a ranker reads and writes."""

    content: str
    id: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    score: float | None = None


class CrossEncoderRanker:
    """What a Haystack `@component` ranker holds and does (decorator left out)."""

    def __init__(
        self,
        *,
        top_k: int | None = 5,
        score_threshold: float | None = None,
        fusion: Literal["none", "rrf"] = "none",
        **engine_settings: Any,
    ) -> None:
        self.ranking = RankingSettings(
            top_n=top_k, score_threshold=score_threshold, fusion=fusion
        )
        self.engine = Reranker(**engine_settings)

    def run(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        **options: Any,
    ) -> dict[str, list[Document]]:
        ranking = self.ranking.for_call(
            top_n=UNSET if top_k is None else top_k, **options
        )
        texts = [
            self.engine.render(doc.content, doc.meta, f"document {doc.id!r}")
            for doc in documents
        ]
        [scored] = self.engine.score_batch([(query, texts)])
        ranks = (
            first_stage_ranks([doc.meta for doc in documents])
            if ranking.fusion == "rrf"
            else None
        )
        results = self.engine.order(scored, ranking, first_stage_ranks=ranks)
        return {
            "documents": [
                dataclasses.replace(
                    documents[result.index],
                    score=result.score,
                    meta={**documents[result.index].meta, **result_metadata(result)},
                )
                for result in results
            ]
        }


TABLE = {"a": 1.0, "bb": 3.0, "ccc": 2.0, "dddd": 0.5}


def _docs(*texts: str) -> list[Document]:
    return [
        Document(content=t, id=t, meta={"retrieval_rank": i + 1})
        for i, t in enumerate(texts)
    ]


def test_it_uses_only_the_engine_s_public_names() -> None:
    used = {"UNSET", "RankingSettings", "Reranker", "first_stage_ranks"}
    assert used | {"result_metadata"} <= set(engine.__all__)


def test_it_ranks_best_first_and_cuts_to_top_k() -> None:
    ranker = CrossEncoderRanker(model=TableCrossEncoder(TABLE), top_k=3)
    out = ranker.run("q", _docs(*TABLE))["documents"]
    assert [d.id for d in out] == ["bb", "ccc", "a"]
    assert [d.score for d in out] == [3.0, 2.0, 1.0]


def test_per_call_options_win_over_the_settings_for_one_call() -> None:
    ranker = CrossEncoderRanker(model=TableCrossEncoder(TABLE), top_k=3)
    assert [d.id for d in ranker.run("q", _docs(*TABLE), top_k=1)["documents"]] == [
        "bb"
    ]
    kept = ranker.run("q", _docs(*TABLE), score_threshold=1.5)["documents"]
    assert [d.id for d in kept] == ["bb", "ccc"]
    assert len(ranker.run("q", _docs(*TABLE))["documents"]) == 3
    with pytest.raises(ValueError, match="top_n must be a positive integer"):
        ranker.run("q", _docs(*TABLE), top_k=0)


def test_an_unknown_option_is_rejected_naming_the_accepted_ones() -> None:
    ranker = CrossEncoderRanker(model=TableCrossEncoder(TABLE))
    with pytest.raises(TypeError) as info:
        ranker.run("q", _docs(*TABLE), threshold=0.5)
    message = str(info.value)
    assert "'threshold'" in message
    assert "top_n" in message
    assert "score_threshold" in message


@pytest.mark.parametrize(
    ("settings", "written"),
    [
        ({}, {"relevance_score"}),
        ({"fusion": "rrf"}, {"relevance_score", "fused_score"}),
        (
            {
                "long_documents": "max_passage",
                "passage_tokens": 8,
                "passage_overlap": 2,
            },
            {"relevance_score", "relevance_passage"},
        ),
        (
            {"content_template": "{title}: {page_content}", "activation": "sigmoid"},
            {"relevance_score"},
        ),
    ],
)
def test_it_writes_the_langchain_door_s_metadata(
    settings: dict[str, Any], written: set[str]
) -> None:
    texts = [
        "red apple and a long tail of words that pushes the match far away red",
        "blue sky",
        "green red apple",
        "red",
    ]
    meta = [
        {"title": f"t{i}", "retrieval_rank": rank, "retrieval_score": 0.9 - i / 10}
        for i, rank in enumerate([2, 1, 4, 3])
    ]
    compressor = CrossEncoderCompressor(
        model=WordOverlapCrossEncoder(), top_n=None, **settings
    )
    expected = compressor.compress_documents(
        [
            LangChainDocument(page_content=t, id=str(i), metadata=m)
            for i, (t, m) in enumerate(zip(texts, meta, strict=True))
        ],
        "red apple",
    )
    ranker = CrossEncoderRanker(model=WordOverlapCrossEncoder(), top_k=None, **settings)
    out = ranker.run(
        "red apple",
        [
            Document(content=t, id=str(i), meta=m)
            for i, (t, m) in enumerate(zip(texts, meta, strict=True))
        ],
    )["documents"]
    assert [d.id for d in out] == [d.id for d in expected]
    assert [d.meta for d in out] == [d.metadata for d in expected]
    assert [d.score for d in out] == [d.metadata["relevance_score"] for d in expected]
    assert set(expected[0].metadata) - set(meta[0]) == written
