"""The stand-in of each family loads and scores through the real path.

Each stand-in folder goes through `Reranker(model=folder)` (our loader, then
sentence-transformers' `CrossEncoder`), exactly as a Hub id or a local folder
would, with the Hub offline; the tests pin what makes it a faithful stand-in:
the family's tokenizer kind, its pair format as sentence-transformers builds
it, where an instruction goes, and, for the causal LM, that the score is the
"yes" logit minus the "no" logit at the last position.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from sentence_transformers import CrossEncoder

from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.models.families import FAMILIES, family_of
from langchain_ce_rerank.testing import (
    DEFAULT_INSTRUCTION,
    STANDIN_FAMILIES,
    build_standin,
)
from langchain_ce_rerank.testing.standin_causal import RERANKER_SYSTEM_PROMPT

QUERY = "how do i move a docker volume to another host?"
DOCS = [
    "tar the docker volume, copy the archive to the new host, untar it.",
    "cats purr when content.",
    "docker logs shows what a container printed.",
    "move a volume: stop the container before copying the volume.",
    "release checklist: tag the images and push them.",
]


def _st(folder: Path) -> CrossEncoder:
    return CrossEncoder(str(folder), device="cpu", local_files_only=True)


def _qwen3_prompt(query: str, document: str, instruction: str) -> str:
    """Qwen3-Reranker's prompt, as its model card spells it out."""
    return (
        f"<|im_start|>system\n{RERANKER_SYSTEM_PROMPT}<|im_end|>\n"
        f"<|im_start|>user\n<Instruct>: {instruction}\n<Query>: {query}\n"
        f"<Document>: {document}<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )


def test_the_hub_is_off() -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"


@pytest.mark.onnx
@pytest.mark.parametrize("family", STANDIN_FAMILIES)
def test_standins_build_and_load_in_the_accelerated_environment(
    family: str, standin_paths: Callable[[str], Path]
) -> None:
    # The onnx/openvino environment has an older transformers and
    # sentence-transformers: the stand-ins must build and load there too.
    folder = standin_paths(family)
    scores = Reranker(model=folder, device="cpu").score(QUERY, DOCS[:3])
    reference = _st(folder).predict(
        [(QUERY, doc) for doc in DOCS[:3]], activation_fn=torch.nn.Identity()
    )
    assert scores == pytest.approx([float(x) for x in reference], rel=1e-4, abs=1e-5)
    assert family_of(folder).name == family


@pytest.mark.parametrize("family", STANDIN_FAMILIES)
def test_scores_as_sentence_transformers_does(
    family: str, standin_paths: Callable[[str], Path]
) -> None:
    folder = standin_paths(family)
    engine = Reranker(model=folder, device="cpu")
    scores = engine.score(QUERY, DOCS)
    assert all(type(score) is float for score in scores)
    pairs = [(QUERY, doc) for doc in DOCS]
    reference = _st(folder).predict(pairs, activation_fn=torch.nn.Identity())
    assert scores == pytest.approx([float(x) for x in reference], rel=1e-4, abs=1e-5)
    # Random weights, yet the pairs get clearly different scores.
    assert max(scores) - min(scores) > 0.01
    order = sorted(range(len(DOCS)), key=lambda i: -scores[i])
    want = sorted(range(len(DOCS)), key=lambda i: -float(reference[i]))
    assert order == want


@pytest.mark.parametrize("family", STANDIN_FAMILIES)
def test_sigmoid_is_sentence_transformers_default(
    family: str, standin_paths: Callable[[str], Path]
) -> None:
    folder = standin_paths(family)
    scores = Reranker(model=folder, device="cpu", activation="sigmoid").score(
        QUERY, DOCS[:3]
    )
    reference = _st(folder).predict([(QUERY, doc) for doc in DOCS[:3]])
    assert scores == pytest.approx([float(x) for x in reference], rel=1e-4)


def _tokenizer_json(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "tokenizer.json").read_text())
    return data


def _types(node: object) -> set[str]:
    """Every component `type` in a tokenizer.json subtree."""
    if isinstance(node, dict):
        found = {str(node["type"])} if "type" in node else set()
        return found.union(*(_types(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_types(value) for value in node))
    return set()


@pytest.mark.parametrize(
    ("family", "model", "byte_level", "tokenizer_class"),
    [
        ("bert", "WordPiece", False, "BertTokenizer"),
        ("xlm-roberta", "Unigram", False, "XLMRobertaTokenizer"),
        ("modernbert", "BPE", True, "PreTrainedTokenizerFast"),
        ("causal-lm", "BPE", True, "Qwen2Tokenizer"),
    ],
)
def test_tokenizer_is_the_familys_kind(
    family: str,
    model: str,
    byte_level: bool,
    tokenizer_class: str,
    standin_paths: Callable[[str], Path],
) -> None:
    folder = standin_paths(family)
    # The class the family's real tokenizer names, which transformers 4 and 5
    # both know (not transformers 5's "TokenizersBackend").
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    assert settings["tokenizer_class"] == tokenizer_class
    data = _tokenizer_json(folder)
    assert data["model"]["type"] == model
    assert FAMILIES[family].tokenizer_kind.split()[0] == model  # type: ignore[index]
    assert ("ByteLevel" in _types(data["pre_tokenizer"])) is byte_level
    if model == "Unigram":
        assert "Metaspace" in _types(data["pre_tokenizer"])


def _ids(cross_encoder: CrossEncoder, text: str) -> list[int]:
    ids: list[int] = cross_encoder.tokenizer(text, add_special_tokens=False)[
        "input_ids"
    ]
    return ids


def _built_ids(
    cross_encoder: CrossEncoder, query: str, document: str, **kwargs: Any
) -> list[int]:
    """The input ids sentence-transformers builds for one pair."""
    features = cross_encoder.preprocess([(query, document)], **kwargs)
    ids: list[int] = features["input_ids"][0].tolist()
    return ids


@pytest.mark.parametrize("family", ["bert", "xlm-roberta", "modernbert"])
@pytest.mark.parametrize("prompt", [None, "Represent this: "])
def test_encoder_pair_format(
    family: str, prompt: str | None, standin_paths: Callable[[str], Path]
) -> None:
    # An encoder reads one pair as its tokenizer's pair template; a prompt is
    # glued in front of the query text (sentence-transformers' text modality).
    ce = _st(standin_paths(family))
    tok = ce.tokenizer
    query, doc = QUERY, DOCS[0]
    q = _ids(ce, (prompt or "") + query)
    d = _ids(ce, doc)
    want = {
        "bert": [tok.cls_token_id, *q, tok.sep_token_id, *d, tok.sep_token_id],
        "xlm-roberta": [
            tok.bos_token_id,
            *q,
            tok.eos_token_id,
            tok.eos_token_id,
            *d,
            tok.eos_token_id,
        ],
        "modernbert": [tok.cls_token_id, *q, tok.sep_token_id, *d, tok.sep_token_id],
    }[family]
    assert _built_ids(ce, query, doc, prompt=prompt) == want
    special = {
        "bert": ("[CLS]", "[SEP]"),
        "xlm-roberta": ("<s>", "</s>"),
        "modernbert": ("[CLS]", "[SEP]"),
    }[family]
    assert tok.convert_ids_to_tokens(want[:1])[0] == special[0]
    assert tok.convert_ids_to_tokens(want[-1:])[0] == special[1]


@pytest.mark.parametrize(
    ("kwargs", "instruction"),
    [
        ({}, DEFAULT_INSTRUCTION),
        ({"prompt": "Find the shell command"}, "Find the shell command"),
    ],
)
def test_causal_lm_pair_format(
    kwargs: dict[str, str], instruction: str, causal_lm_standin_path: Path
) -> None:
    # The pair becomes (query, document) chat roles, a prompt a system message,
    # and the chat template renders Qwen3-Reranker's prompt from them.
    ce = _st(causal_lm_standin_path)
    built = _built_ids(ce, QUERY, DOCS[0], **kwargs)
    assert built == _ids(ce, _qwen3_prompt(QUERY, DOCS[0], instruction))
    assert ce.tokenizer.padding_side == "left"


def test_causal_lm_saved_prompt(causal_lm_standin_path: Path) -> None:
    ce = _st(causal_lm_standin_path)
    assert ce.prompts["web_search"] == DEFAULT_INSTRUCTION
    assert ce.default_prompt_name is None
    pairs = [(QUERY, doc) for doc in DOCS[:2]]
    by_name = ce.predict(pairs, prompt_name="web_search")
    plain = ce.predict(pairs)
    assert by_name.tolist() == pytest.approx(plain.tolist(), abs=1e-6)


@pytest.mark.parametrize("instruction", [None, "Find the shell command"])
def test_causal_lm_score_is_yes_minus_no_logit(
    instruction: str | None, causal_lm_standin_path: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = causal_lm_standin_path
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    yes, no = tokenizer.convert_tokens_to_ids(["yes", "no"])
    assert isinstance(yes, int)
    assert isinstance(no, int)
    assert tokenizer.tokenize("yes") == ["yes"]
    assert tokenizer.tokenize("no") == ["no"]
    # The ChatML markers and thinking tags are never split.
    markers = ["<|im_start|>", "<|im_end|>", "<think>", "</think>"]
    assert tokenizer.tokenize("".join(markers)) == markers
    direct = []
    for doc in DOCS:
        text = _qwen3_prompt(QUERY, doc, instruction or DEFAULT_INSTRUCTION)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
        with torch.no_grad():
            logits = model(**ids).logits[0, -1]
        direct.append(float(logits[yes] - logits[no]))
    ce = _st(folder)
    got = ce.predict(
        [(QUERY, doc) for doc in DOCS],
        prompt=instruction,
        activation_fn=torch.nn.Identity(),
    )
    assert [float(x) for x in got] == pytest.approx(direct, rel=1e-4, abs=1e-5)
    assert [type(m).__name__ for m in ce] == ["Transformer", "LogitScore"]


def test_causal_lm_folder_is_a_sentence_transformers_save(
    causal_lm_standin_path: Path,
) -> None:
    folder = causal_lm_standin_path
    modules = json.loads((folder / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == [
        "Transformer",
        "LogitScore",
    ]
    logit_score = json.loads((folder / "1_LogitScore" / "config.json").read_text())
    tokenizer = _st(folder).tokenizer
    assert logit_score["true_token_id"] == tokenizer.convert_tokens_to_ids("yes")
    assert logit_score["false_token_id"] == tokenizer.convert_tokens_to_ids("no")
    st_config = json.loads((folder / "sentence_bert_config.json").read_text())
    assert st_config["transformer_task"] == "text-generation"
    assert (folder / "chat_template.jinja").is_file()
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["Qwen3ForCausalLM"]


@pytest.mark.parametrize(
    ("family", "architecture"),
    [
        ("bert", "BertForSequenceClassification"),
        ("xlm-roberta", "XLMRobertaForSequenceClassification"),
        ("modernbert", "ModernBertForSequenceClassification"),
        ("causal-lm", "Qwen3ForCausalLM"),
    ],
)
def test_family_of_saved_and_loaded(
    family: str, architecture: str, standin_paths: Callable[[str], Path]
) -> None:
    folder = standin_paths(family)
    assert family_of(folder).name == family
    assert family_of(str(folder)).name == family
    engine = Reranker(model=folder, device="cpu")
    loaded = engine.load_model()
    assert family_of(loaded).name == family  # type: ignore[arg-type]
    assert FAMILIES[family].architecture == architecture  # type: ignore[index]
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == [architecture]
    if family != "causal-lm":
        assert config["id2label"] == {"0": "LABEL_0"}


@pytest.mark.parametrize("family", ["xlm-roberta", "modernbert", "causal-lm"])
def test_same_seed_same_model(family: str, tmp_path: Path) -> None:
    first = build_standin(family, tmp_path / "a")
    again = build_standin(family, tmp_path / "b")
    other = build_standin(family, tmp_path / "c", seed=1)
    for name in ("tokenizer.json", "model.safetensors"):
        assert (first / name).read_bytes() == (again / name).read_bytes()
    assert (first / "model.safetensors").read_bytes() != (
        other / "model.safetensors"
    ).read_bytes()


def test_a_built_folder_is_reused(standin_paths: Callable[[str], Path]) -> None:
    folder = standin_paths("modernbert")
    before = (folder / "model.safetensors").stat().st_mtime_ns
    assert build_standin("modernbert", folder, seed=7) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == before


def test_unknown_family_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"family must be one of 'bert'.*'gpt2'"):
        build_standin("gpt2", tmp_path)


def _examples() -> list[tuple[str, object]]:
    from langchain_ce_rerank import testing
    from langchain_ce_rerank.models import families
    from langchain_ce_rerank.testing import standin_text, standin_tokenizers

    named: list[tuple[str, object]] = [
        (f"testing.{name}", getattr(testing, name))
        for name in (
            "build_standin",
            "build_xlm_roberta_standin",
            "build_modernbert_standin",
            "build_causal_lm_standin",
        )
    ]
    named += [
        (f"families.{name}", getattr(families, name))
        for name in ("ModelFamily", "family_from_config", "family_of")
    ]
    named += [
        (f"standin_tokenizers.{name}", getattr(standin_tokenizers, name))
        for name in ("train_unigram", "train_byte_level_bpe", "train_chatml_bpe")
    ]
    named.append(("standin_text", standin_text.tokenizer_training_text))
    return named


@pytest.mark.parametrize(("name", "obj"), _examples())
def test_docstring_examples_run(
    name: str, obj: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", obj.__doc__ or "", re.S)
    assert blocks, f"{name} has no example"
    monkeypatch.chdir(tmp_path)
    code = "\n".join(textwrap.dedent(block) for block in blocks)
    exec(compile(code, f"<{name} docstring>", "exec"), {})
