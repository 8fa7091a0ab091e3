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
    supported_families,
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


def test_where_each_family_reads_an_instruction() -> None:
    # Described, not decided: engine.instructions decides per loaded model
    # (test_family_instructions.py checks the two agree on every stand-in).
    styles = {name: f.instruction for name, f in FAMILIES.items()}
    assert styles == {
        "bert": "query-prefix",
        "xlm-roberta": "query-prefix",
        "modernbert": "query-prefix",
        "causal-lm": "system-message",
        "other": "query-prefix",
    }
    assert "{instruction}" in FAMILIES["causal-lm"].pair_format
    assert not any(hasattr(f, "takes_instruction") for f in FAMILIES.values())


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


# -- where the families show: README, --reranker's help, load errors ----------

README = Path(__file__).resolve().parents[2] / "README.md"
TABLE_MARK = "<!-- families table:"


def _readme_rows() -> list[list[str]]:
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(TABLE_MARK))
    rows = []
    for line in lines[start + 3 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
    return rows


def test_the_readme_table_is_the_family_table() -> None:
    assert _readme_rows() == [
        [
            name,
            str(family.example_model),
            str(family.architecture),
            family.tokenizer_kind,
            family.instruction,
        ]
        for name, family in FAMILIES.items()
        if name != "other"
    ]


def test_supported_families_names_each_with_its_example() -> None:
    text = supported_families()
    for name in STANDIN_FAMILIES:
        assert f"{name} (e.g. {FAMILIES[name].example_model})" in text
    assert "other" not in text


@pytest.mark.parametrize("command", ["serve", "query", "eval"])
def test_reranker_help_names_the_families(
    command: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langchain_ce_rerank.cli import main

    monkeypatch.setenv("COLUMNS", "2000")  # one line per option: no wrapping
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    reranker_help = out[out.index("\n  --reranker") :].split("\n  --", 2)[1]
    assert f"Supported families: {supported_families()}" in reranker_help


def _unknown_architecture(folder: Path) -> Path:
    (folder / "config.json").write_text(
        json.dumps({"model_type": "nosuch", "architectures": ["NoSuchModel"]})
    )
    return folder


def test_a_cross_encoder_that_fails_to_load_names_the_families(tmp_path: Path) -> None:
    from langchain_ce_rerank import ModelNotFoundError
    from langchain_ce_rerank.engine import Reranker

    folder = _unknown_architecture(tmp_path)
    with pytest.raises(ModelNotFoundError) as caught:
        Reranker(model=folder, device="cpu").score("q", ["t"])
    message = str(caught.value)
    assert str(folder) in message
    assert "nosuch" in message  # transformers' own reason
    assert f"Supported cross-encoder families: {supported_families()}" in message
    # The CLI's re-wording keeps it.
    assert supported_families() in str(caught.value.with_remedy("--reranker PATH"))


def test_an_embedding_model_that_fails_to_load_names_no_families(
    tmp_path: Path,
) -> None:
    from langchain_ce_rerank import ModelNotFoundError, load_embeddings

    with pytest.raises(ModelNotFoundError) as caught:
        load_embeddings(_unknown_architecture(tmp_path), device="cpu")
    assert "families" not in str(caught.value)
