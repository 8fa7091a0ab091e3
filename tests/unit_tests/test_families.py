"""`models.families`: which family a model is, and what each family is like."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import pytest

from langchain_ce_rerank.models.families import (
    FAMILIES,
    FAMILY_NAMES,
    FamilyName,
    family_from_config,
    family_of,
)
from langchain_ce_rerank.testing import STANDIN_FAMILIES


@pytest.mark.parametrize(
    ("model_type", "architectures", "modules", "family"),
    [
        ("bert", ["BertForSequenceClassification"], [], "bert"),
        ("xlm-roberta", ["XLMRobertaForSequenceClassification"], [], "xlm-roberta"),
        ("modernbert", ["ModernBertForSequenceClassification"], [], "modernbert"),
        ("qwen3", ["Qwen3ForCausalLM"], [], "causal-lm"),
        ("qwen2", ["Qwen2ForCausalLM"], [], "causal-lm"),  # mxbai-rerank-v2
        (
            "qwen3",
            None,
            [
                "sentence_transformers.base.models.Transformer",
                "sentence_transformers.cross_encoder.modules.LogitScore",
            ],
            "causal-lm",
        ),
        # Known to sentence-transformers, but of no family we describe: still
        # loadable, as "other".
        ("deberta-v2", ["DebertaV2ForSequenceClassification"], [], "other"),
        ("qwen3", ["Qwen3ForSequenceClassification"], [], "other"),
        (None, None, [], "other"),
    ],
)
def test_family_from_config(
    model_type: str | None,
    architectures: list[str] | None,
    modules: list[str],
    family: str,
) -> None:
    assert family_from_config(model_type, architectures, modules).name == family


def test_every_family_is_described() -> None:
    assert set(FAMILY_NAMES) == set(get_args(FamilyName))
    assert FAMILY_NAMES[-1] == "other"
    assert set(STANDIN_FAMILIES) == set(FAMILY_NAMES) - {"other"}
    for name, family in FAMILIES.items():
        assert family.name == name
        assert "{query}" in family.pair_format or name == "other"


def test_only_the_causal_lm_takes_an_instruction() -> None:
    taking = {name for name, f in FAMILIES.items() if f.takes_instruction}
    assert taking == {"causal-lm"}
    assert FAMILIES["causal-lm"].instruction == "system-message"
    assert "{instruction}" in FAMILIES["causal-lm"].pair_format


def test_default_activation() -> None:
    # Encoders report raw logits (as the engine always has); a yes/no LM the
    # probability of "yes".
    assert {n: f.default_activation for n, f in FAMILIES.items()} == {
        "bert": "none",
        "xlm-roberta": "none",
        "modernbert": "none",
        "causal-lm": "sigmoid",
        "other": "none",
    }


@pytest.mark.parametrize("family", STANDIN_FAMILIES)
def test_family_of_a_standin_folder(
    family: str, standin_paths: Callable[[str], Path]
) -> None:
    assert family_of(standin_paths(family)).name == family


def test_family_of_an_unknown_folder(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "electra", "architectures": ["ElectraModel"]})
    )
    assert family_of(tmp_path).name == "other"


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("BAAI/bge-reranker-v2-m3", "xlm-roberta"),
        ("Alibaba-NLP/gte-reranker-modernbert-base", "modernbert"),
        ("Qwen/Qwen3-Reranker-0.6B", "causal-lm"),
        ("someone/unknown-reranker", "other"),
    ],
)
def test_family_of_a_hub_id_not_on_disk(name: str, family: str) -> None:
    # The Hub is off in tests, so these are matched by name.
    assert family_of(name).name == family
