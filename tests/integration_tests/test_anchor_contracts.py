"""The compressor contract on LangChain's own rerankers, the anchors we compare
against: `CrossEncoderReranker` (langchain-classic) and `FlashrankRerank`
(langchain-community). Both run offline on the MiniLM stand-in model.

Deselected by default; run with `pytest -m anchors` (needs the `[bench]` extra).
Each anchor's `known_breaks` lists what a real run measured it to break;
`python benchmarks/contract_table.py` reruns everything with `--runxfail` and
prints the table in the README.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest
from langchain_core.documents import BaseDocumentCompressor

from langchain_ce_rerank.testing import CompressorContractTests, CompressorFactory

pytestmark = [
    pytest.mark.anchors,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

NO_CUT = 10**6  # neither anchor has "keep all": top_n=None maps to this


@pytest.fixture(scope="module")
def hf_cross_encoder(standin_ce_path: Path) -> Any:
    pytest.importorskip("langchain_community", reason="needs the [bench] extra")
    from langchain_community.cross_encoders import HuggingFaceCrossEncoder

    return HuggingFaceCrossEncoder(
        model_name=str(standin_ce_path), model_kwargs={"device": "cpu"}
    )


class TestCrossEncoderRerankerContract(CompressorContractTests):
    """`langchain_classic...CrossEncoderReranker` + `HuggingFaceCrossEncoder`."""

    has_score_threshold = False
    known_breaks: ClassVar[Mapping[str, str]] = {
        "test_sorted_by_score": "writes no score into metadata",
        "test_scores_are_plain_floats": "writes no score into metadata",
        "test_returns_new_documents": "returns the caller's Document objects",
        "test_blank_query": "scores a blank query like any other",
    }

    @pytest.fixture
    def compressor_factory(self, hf_cross_encoder: Any) -> CompressorFactory:
        from langchain_classic.retrievers.document_compressors import (
            CrossEncoderReranker,
        )

        def make(
            *, top_n: int | None = None, score_threshold: float | None = None
        ) -> BaseDocumentCompressor:
            assert score_threshold is None
            return CrossEncoderReranker(
                model=hf_cross_encoder, top_n=NO_CUT if top_n is None else top_n
            )

        return make


FLASHRANK_MODEL = "ms-marco-TinyBERT-L-2-v2"  # a name flashrank knows; our weights


@pytest.fixture(scope="module")
def flashrank_cache(
    standin_ce_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A flashrank cache folder holding the stand-in exported to ONNX.

    flashrank downloads its models from the internet unless
    `cache_dir/<model_name>/` already exists; pointing `Ranker(cache_dir=...)`
    at this folder runs it offline on the stand-in's weights.
    """
    pytest.importorskip("langchain_community", reason="needs the [bench] extra")
    pytest.importorskip("flashrank", reason="needs the [bench] extra")
    pytest.importorskip("onnx", reason="the ONNX export needs the [bench] extra")
    import torch
    from flashrank.Config import model_file_map
    from transformers import AutoModelForSequenceClassification

    cache = tmp_path_factory.mktemp("flashrank")
    folder = cache / FLASHRANK_MODEL
    folder.mkdir()
    model = AutoModelForSequenceClassification.from_pretrained(standin_ce_path)
    model.eval()
    ids = torch.ones(2, 8, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    torch.onnx.export(
        model,
        (ids, ids, torch.zeros_like(ids)),
        str(folder / model_file_map[FLASHRANK_MODEL]),
        input_names=names,
        output_names=["logits"],
        dynamic_axes={
            **{n: {0: "batch", 1: "tokens"} for n in names},
            "logits": {0: "batch"},
        },
        dynamo=False,
        opset_version=14,
    )
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(standin_ce_path / name, folder / name)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    special = {
        k: config[k]
        for k in ("cls_token", "mask_token", "pad_token", "sep_token", "unk_token")
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(special))
    return cache


class TestFlashrankRerankContract(CompressorContractTests):
    """`langchain_community...FlashrankRerank`, offline via a local `cache_dir`."""

    known_breaks: ClassVar[Mapping[str, str]] = {
        "test_keeps_id_content_and_metadata": "builds new Documents without the id",
        "test_scores_are_plain_floats": "relevance_score is numpy.float32",
        "test_empty_input": "an empty batch reaches onnxruntime as a rank-1 array",
        "test_blank_query": "scores a blank query like any other",
    }

    @pytest.fixture
    def compressor_factory(self, flashrank_cache: Path) -> CompressorFactory:
        from flashrank import Ranker
        from langchain_community.document_compressors import FlashrankRerank

        ranker = Ranker(model_name=FLASHRANK_MODEL, cache_dir=str(flashrank_cache))

        def make(
            *, top_n: int | None = None, score_threshold: float | None = None
        ) -> BaseDocumentCompressor:
            return FlashrankRerank(
                client=ranker,
                top_n=NO_CUT if top_n is None else top_n,
                score_threshold=float("-inf")
                if score_threshold is None
                else score_threshold,
            )

        return make
