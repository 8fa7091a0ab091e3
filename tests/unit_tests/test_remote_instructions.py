"""`RemoteCrossEncoder` sends an instruction only where the server has a field."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from doubles import InstructedCrossEncoder, WordOverlapCrossEncoder
from pydantic import ValidationError

from langchain_ce_rerank import (
    InstructionNotSupportedError,
    RemoteCrossEncoder,
    RemoteRerankError,
)
from langchain_ce_rerank.engine import Reranker

PAIRS = [("tax", "statutes of tax"), ("tax", "cases of tax")]
NO_FIELD = {
    "cohere": "Cohere v2",
    "tei": "text-embeddings-inference",
    "infinity": "Infinity",
    "vllm": "vLLM",
}


class Recorder:
    """A Cohere-shaped server double that keeps every body it was sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        results = [
            {"index": i, "relevance_score": float(len(text))}
            for i, text in enumerate(body.get("documents") or body.get("texts"))
        ]
        return httpx.Response(200, json={"results": results})


@pytest.mark.parametrize("api", list(NO_FIELD))
def test_an_instruction_setting_is_refused_at_construction(api: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RemoteCrossEncoder("http://h", api, model="m", instruction="find statutes")  # type: ignore[arg-type]
    message = str(caught.value)
    assert f"the {NO_FIELD[api]} rerank API has no instruction field" in message
    assert "api='ce-rerank'" in message


@pytest.mark.parametrize("api", list(NO_FIELD))
def test_a_call_s_instruction_is_refused_before_anything_is_sent(api: str) -> None:
    server = Recorder()
    remote = RemoteCrossEncoder(
        "http://h",
        api,
        model="m",
        transport=httpx.MockTransport(server),  # type: ignore[arg-type]
    )
    with pytest.raises(InstructionNotSupportedError) as caught:
        remote.score(PAIRS, instruction="find statutes")
    assert f"api={api!r}" in str(caught.value)
    with pytest.raises(InstructionNotSupportedError):
        asyncio.run(remote.ascore(PAIRS, instruction="find statutes"))
    assert server.bodies == []
    assert not remote.takes_instruction


@pytest.mark.parametrize("api", list(NO_FIELD))
def test_the_engine_refuses_it_for_an_api_without_a_field(api: str) -> None:
    remote = RemoteCrossEncoder(
        "http://h",
        api,
        model="m",
        transport=httpx.MockTransport(Recorder()),  # type: ignore[arg-type]
    )
    engine = Reranker(model=remote, instruction="find statutes")
    with pytest.raises(InstructionNotSupportedError, match=NO_FIELD[api]):
        engine.score("tax", ["statutes of tax"])


def test_ce_rerank_api_sends_the_setting_and_a_call_s_override() -> None:
    server = Recorder()
    remote = RemoteCrossEncoder(
        "http://h",
        "ce-rerank",
        instruction="find statutes",
        transport=httpx.MockTransport(server),
    )
    assert remote.takes_instruction
    assert remote.endpoint == "http://h/v2/rerank"
    remote.score(PAIRS)
    remote.score(PAIRS, instruction="find cases")
    remote.score_within(PAIRS, 30.0, instruction="within")
    plain = RemoteCrossEncoder(
        "http://h", "ce-rerank", transport=httpx.MockTransport(server)
    )
    plain.score(PAIRS)
    assert [body.get("instruction") for body in server.bodies] == [
        "find statutes",
        "find cases",
        "within",
        None,
    ]
    assert "instruction" not in server.bodies[-1]
    assert server.bodies[0]["documents"] == ["statutes of tax", "cases of tax"]


async def _through_the_real_server(scorer: Any, instruction: str) -> list[Any]:
    from langchain_ce_rerank.serving import ServeSettings, create_app

    app = create_app(Reranker(model=scorer), ServeSettings(model_name="m"))
    async with app.router.lifespan_context(app):
        ready = app.state.ce_rerank.batcher.ready
        assert await asyncio.to_thread(ready.wait, 30), "the model never loaded"
        remote = RemoteCrossEncoder(
            "http://t", "ce-rerank", transport=httpx.ASGITransport(app=app)
        )
        engine = Reranker(model=remote)
        scored = await engine.ascore_batch(
            [("tax", ["statutes of tax", "cases of tax"])], instruction=instruction
        )
        await remote.aclose()
    return [item.score for item in scored[0]]


def test_an_engine_reranks_under_an_instruction_through_ce_rerank_serve() -> None:
    scorer = InstructedCrossEncoder()
    scores = asyncio.run(_through_the_real_server(scorer, "find statutes"))
    assert scores == [2.0, 1.0]
    assert {call[0] for call in scorer.calls} == {"find statutes"}
    scores = asyncio.run(_through_the_real_server(scorer, "find cases"))
    assert scores == [1.0, 2.0]


def test_a_served_model_that_reads_none_answers_422_through_the_client() -> None:
    with pytest.raises(RemoteRerankError) as caught:
        asyncio.run(_through_the_real_server(WordOverlapCrossEncoder(), "x"))
    assert "422" in str(caught.value)
    assert "instruction" in str(caught.value)


def test_a_remote_s_own_instruction_is_part_of_the_scoring_identity() -> None:
    from langchain_ce_rerank.engine.identity import scoring_identity

    remote = RemoteCrossEncoder("http://h", "ce-rerank", instruction="find statutes")
    assert scoring_identity(Reranker(model=remote)).instruction == "find statutes"
    overridden = Reranker(model=remote, instruction="find cases")
    assert scoring_identity(overridden).instruction == "find cases"
