"""`ce-rerank serve` with a calibration: our extension of Cohere's Rerank API v2.

`min_probability` in the request and `relevance_probability` in the results,
only on a server with a calibration; a Cohere exchange stays exactly Cohere's.
The real app runs in process (`httpx.ASGITransport`, lifespan running) over a
table double whose probabilities are known (`sigmoid(score)`).
"""

from __future__ import annotations

import argparse
import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from doubles import TableCrossEncoder

from langchain_ce_rerank.engine import Reranker, ScoreCalibration, ScoringIdentity
from langchain_ce_rerank.engine.probability import PlattMapping
from langchain_ce_rerank.serving import ServeSettings, create_app

MODEL = "test-model"
SCORES = {"a": 2.0, "b": -1.0, "c": 0.5}
CALIBRATION = ScoreCalibration(
    mapping=PlattMapping(slope=1.0, intercept=0.0),
    fitted_for=ScoringIdentity(model="doubles.TableCrossEncoder"),
)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@asynccontextmanager
async def serving(engine: Reranker) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(engine, ServeSettings(model_name=MODEL))
    async with app.router.lifespan_context(app):
        ready = app.state.ce_rerank.batcher.ready
        assert await asyncio.to_thread(ready.wait, 30), "the model never loaded"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://serve.test"
        ) as client:
            yield client


def body(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "query": "q", "documents": ["a", "b", "c"], **extra}


async def test_a_calibrated_server_adds_relevance_probability_and_cuts_by_it() -> None:
    engine = Reranker(model=TableCrossEncoder(SCORES), calibration=CALIBRATION)
    async with serving(engine) as client:
        everything = (await client.post("/v2/rerank", json=body())).json()
        cut = (await client.post("/v2/rerank", json=body(min_probability=0.6))).json()
        none = await client.post("/v2/rerank", json=body(min_probability=0.99))
    assert [r["index"] for r in everything["results"]] == [0, 2, 1]
    for result in everything["results"]:
        text = "abc"[result["index"]]
        assert result["relevance_probability"] == pytest.approx(_sigmoid(SCORES[text]))
        assert type(result["relevance_probability"]) is float
    assert [r["index"] for r in cut["results"]] == [0, 2]  # 0.881, 0.622; not 0.269
    assert none.status_code == 200
    assert none.json()["results"] == []


async def test_only_the_requests_min_probability_cuts_so_cohere_clients_get_all() -> (
    None
):
    from langchain_ce_rerank.serving.remote_apis import API_SPECS, read_scores

    engine = Reranker(
        model=TableCrossEncoder(SCORES), calibration=CALIBRATION, min_probability=0.7
    )
    async with serving(engine) as client:
        plain = (await client.post("/v2/rerank", json=body())).json()
        asked = (await client.post("/v2/rerank", json=body(min_probability=0.7))).json()
    assert len(plain["results"]) == 3
    assert read_scores(API_SPECS["cohere"], plain, 3) == [2.0, -1.0, 0.5]
    assert [r["index"] for r in asked["results"]] == [0]


async def test_without_a_calibration_the_answer_is_cohere_exactly() -> None:
    async with serving(Reranker(model=TableCrossEncoder(SCORES))) as client:
        answer = (await client.post("/v2/rerank", json=body())).json()
        refused = await client.post("/v2/rerank", json=body(min_probability=0.5))
    assert all(set(r) == {"index", "relevance_score"} for r in answer["results"])
    assert refused.status_code == 422
    error = refused.json()
    assert [e["field"] for e in error["errors"]] == ["min_probability"]
    assert "--calibration FILE" in error["message"]


@pytest.mark.parametrize("bad", [1.5, -0.2, "0.5"])
async def test_a_min_probability_that_is_not_a_probability_is_422(bad: object) -> None:
    engine = Reranker(model=TableCrossEncoder(SCORES), calibration=CALIBRATION)
    async with serving(engine) as client:
        response = await client.post("/v2/rerank", json=body(min_probability=bad))
    assert response.status_code == 422
    assert "min_probability" in [e["field"] for e in response.json()["errors"]]


async def test_groups_diversity_and_min_probability_in_one_request() -> None:
    # One per file (groups), ordered for diversity, then cut by probability:
    # the exact repeat "Red apple pie!" moves below "green pear" (0.622), and
    # at 0.7 the pear goes while the repeat (0.870) stays.
    documents = ["red apple pie", "Red apple pie!", "green pear", "blue plum"]
    table = dict(zip(documents, [2.0, 1.9, 0.5, -1.0], strict=True))
    engine = Reranker(model=TableCrossEncoder(table), calibration=CALIBRATION)
    request = {
        **body(),
        "documents": documents,
        "groups": ["a.md", "b.md", "c.md", "c.md"],
        "top_n": 3,
    }
    async with serving(engine) as client:
        plain = (await client.post("/v2/rerank", json=request)).json()
        diverse = (
            await client.post(
                "/v2/rerank", json={**request, "diversity": 0.5, "min_probability": 0.6}
            )
        ).json()
        cut = (
            await client.post(
                "/v2/rerank", json={**request, "diversity": 0.5, "min_probability": 0.7}
            )
        ).json()
    assert [r["index"] for r in plain["results"]] == [0, 1, 2]
    assert [r["index"] for r in diverse["results"]] == [0, 2, 1]
    assert [r["relevance_probability"] for r in diverse["results"]] == pytest.approx(
        [_sigmoid(2.0), _sigmoid(0.5), _sigmoid(1.9)]
    )
    assert [r["index"] for r in cut["results"]] == [0, 1]


def _serve_args(**given: Any) -> argparse.Namespace:
    from langchain_ce_rerank.cli.serve import add_serve_parser

    parser = argparse.ArgumentParser(prog="ce-rerank")
    add_serve_parser(parser.add_subparsers(dest="command"))
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in given.items()]
    return parser.parse_args(["serve", *flags])


def test_serve_takes_a_calibration_file(tmp_path: Path) -> None:
    args = _serve_args(calibration=tmp_path / "c.json")
    assert args.calibration == str(tmp_path / "c.json")
    assert _serve_args().calibration is None
