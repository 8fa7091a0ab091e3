"""An instruction on each family's stand-in, through Python, HTTP and the CLI.

The encoder stand-ins (BERT, XLM-RoBERTa, ModernBERT) read plain text pairs:
given an instruction they are refused before scoring, in the words of the
door (a parameter, the HTTP field, a flag), unless loaded with
sentence-transformers `prompts` (`model_kwargs={"prompts": {...}}`, the
documented way), when sentence-transformers puts it before the query. The
causal-LM stand-in reads it in its chat template, and scores exactly as
`sentence_transformers.CrossEncoder(folder).predict(pairs, prompt=...)`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("ray.serve", reason='needs the [ray] extra: pip install ".[ray]"')

import http_doors
from query_indexes import QUESTION, build_index, fake_bi_encoder

from langchain_ce_rerank import CrossEncoderCompressor, InstructionNotSupportedError
from langchain_ce_rerank.cli import main
from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.engine.instructions import instruction_refusal
from langchain_ce_rerank.models.families import FAMILIES, family_of
from langchain_ce_rerank.testing import STANDIN_FAMILIES

INSTRUCTION = "Find the capital city"
QUERY = "where is paris"
TEXTS = ["Paris is the capital of France.", "Lyon has old silk mills."]
PAIRS = [(QUERY, text) for text in TEXTS]
ENCODERS = [family for family in STANDIN_FAMILIES if family != "causal-lm"]
PROMPTS = {"task": "Retrieve: "}


def _decoded_inputs(model: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every input the model's first module tokenizes for scoring, decoded.

    The engine also measures pairs untruncated (to size each document's
    share of the window); those measurements are not what the model scores.
    """
    seen: list[str] = []
    preprocess = model[0].preprocess

    def spy(inputs: Any, *args: Any, **kwargs: Any) -> Any:
        features = preprocess(inputs, *args, **kwargs)
        measuring = kwargs.get("processing_kwargs", {}).get("text", {})
        if measuring.get("truncation") is not False:
            seen.extend(model.tokenizer.batch_decode(features["input_ids"]))
        return features

    monkeypatch.setattr(model[0], "preprocess", spy)
    return seen


def _sentence_transformers(folder: Path, **kwargs: Any) -> Any:
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(folder), device="cpu", local_files_only=True, **kwargs)


# -- Python -------------------------------------------------------------------


@pytest.mark.parametrize("family", ENCODERS)
def test_an_encoder_refuses_naming_the_model_and_parameter(
    family: str, standin_paths: Callable[[str], Path]
) -> None:
    folder = standin_paths(family)
    engine = Reranker(model=folder, device="cpu", instruction=INSTRUCTION)
    with pytest.raises(InstructionNotSupportedError) as caught:
        engine.score(QUERY, TEXTS)
    message = str(caught.value)
    assert caught.value.model == str(folder)
    assert str(folder) in message
    assert "instruction=" in message
    assert "takes no instruction" in message
    # The per-call option and the LangChain door say the same.
    plain = Reranker(model=folder, device="cpu")
    with pytest.raises(InstructionNotSupportedError, match="instruction="):
        plain.rank(QUERY, TEXTS, instruction=INSTRUCTION)
    compressor = CrossEncoderCompressor(model=folder, device="cpu")
    with pytest.raises(InstructionNotSupportedError, match="instruction="):
        compressor.compress_documents([], QUERY, instruction=INSTRUCTION)
    # Without one, it scores as before.
    assert len(plain.score(QUERY, TEXTS)) == 2


@pytest.mark.parametrize("family", ENCODERS)
def test_an_encoder_given_prompts_reads_it_before_the_query(
    family: str,
    standin_paths: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    folder = standin_paths(family)
    engine = Reranker(model=folder, device="cpu", model_kwargs={"prompts": PROMPTS})
    model: Any = engine.load_model()
    assert instruction_refusal(model) is None
    seen = _decoded_inputs(model, monkeypatch)
    instructed = engine.score(QUERY, TEXTS, instruction=INSTRUCTION)
    # Glued in front of the query (with no space: sentence-transformers joins
    # prompt + query as they are), which comes before the document.
    pairs = [text.lower() for text in seen if QUERY in text.lower()]
    assert len(pairs) == len(TEXTS)
    for text, document in zip(pairs, TEXTS, strict=True):
        assert f"{INSTRUCTION.lower()}{QUERY}" in text
        assert text.index(QUERY) < text.index(document.lower().rstrip("."))
    direct = _sentence_transformers(folder, prompts=PROMPTS).predict(
        PAIRS, prompt=INSTRUCTION, activation_fn=torch.nn.Identity()
    )
    assert instructed == pytest.approx([float(s) for s in direct], abs=1e-5)
    assert instructed != engine.score(QUERY, TEXTS)


def test_the_causal_lm_reads_it_in_its_template_and_scores_as_sentence_transformers(
    causal_lm_standin_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = causal_lm_standin_path
    # sigmoid: the family's documented activation, and the one its folder saves.
    assert FAMILIES["causal-lm"].default_activation == "sigmoid"
    engine = Reranker(model=folder, device="cpu", activation="sigmoid")
    model: Any = engine.load_model()
    seen = _decoded_inputs(model, monkeypatch)
    instructed = engine.score(QUERY, TEXTS, instruction=INSTRUCTION)
    assert len(seen) == len(TEXTS)
    assert all(f"<Instruct>: {INSTRUCTION}\n<Query>: {QUERY}" in s for s in seen)
    direct = _sentence_transformers(folder).predict(PAIRS, prompt=INSTRUCTION)
    assert instructed == pytest.approx([float(s) for s in direct], abs=1e-6)
    assert all(type(score) is float for score in instructed)
    assert instructed != engine.score(QUERY, TEXTS)


# -- the family table and the rule agree ---------------------------------------


@pytest.mark.parametrize("family", STANDIN_FAMILIES)
def test_family_of_agrees_with_the_instruction_rule(
    family: str, standin_paths: Callable[[str], Path]
) -> None:
    folder = standin_paths(family)
    model: Any = Reranker(model=folder, device="cpu").load_model()
    described = family_of(model)
    assert described.name == family_of(folder).name == family
    # The rule (engine.instructions, the only one that decides) takes the
    # stand-in's word for what a published model of the family does: only a
    # system-message family reads one ...
    reads = instruction_refusal(model) is None
    assert reads == (described.instruction == "system-message")
    # ... and a refusal names the family.
    if not reads:
        assert f"a {family} cross-encoder" in str(instruction_refusal(model))


# -- HTTP, in process -----------------------------------------------------------


async def _post(door: str, folder: Path, body: dict[str, Any]) -> httpx.Response:
    settings: dict[str, Any] = {"model": folder, "device": "cpu"}
    opened = (
        http_doors.serve_door(Reranker(**settings))
        if door == "ce-rerank serve"
        else http_doors.ray_door(settings)
    )
    async with opened as client:
        return await client.post("/v2/rerank", json=body)


@pytest.mark.parametrize("door", ["ce-rerank serve", "ray serve"])
@pytest.mark.parametrize("family", STANDIN_FAMILIES)
def test_http_instruction_field(
    family: str, door: str, standin_paths: Callable[[str], Path]
) -> None:
    folder = standin_paths(family)
    body = {"query": QUERY, "documents": TEXTS, "instruction": INSTRUCTION}
    answer = asyncio.run(_post(door, folder, body))
    if family == "causal-lm":
        assert answer.status_code == 200, answer.text
        by_index = {r["index"]: r["relevance_score"] for r in answer.json()["results"]}
        direct = Reranker(model=folder, device="cpu").score(
            QUERY, TEXTS, instruction=INSTRUCTION
        )
        assert [by_index[i] for i in range(len(TEXTS))] == pytest.approx(direct)
        return
    assert answer.status_code == 422, answer.text
    error = answer.json()
    assert error["errors"][0]["field"] == "instruction"
    assert str(folder) in error["message"]
    assert "takes no instruction" in error["message"]
    assert "instruction=" not in error["message"]


# -- the CLI ------------------------------------------------------------------


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with fake_bi_encoder(monkeypatch):
        yield build_index(tmp_path, "ix")


@pytest.mark.parametrize("family", STANDIN_FAMILIES)
def test_cli_query_instruction(
    family: str,
    index: Path,
    standin_paths: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = standin_paths(family)
    capsys.readouterr()
    status = main(
        [
            "query",
            str(index),
            QUESTION,
            "--embedding",
            "fake",
            "--reranker",
            str(folder),
            "--instruction",
            INSTRUCTION,
            "--json",
        ]
    )
    said = capsys.readouterr()
    if family == "causal-lm":
        assert status == 0, said.err
        assert json.loads(said.out)["instruction"] == INSTRUCTION
        return
    assert status == 1
    err = said.err.strip()
    assert err.startswith("ce-rerank: error: ")
    assert str(folder) in err
    assert "takes no instruction" in err
    assert "Leave --instruction unset" in err
    assert "instruction=" not in err
