"""The HTTP `instruction` field: read by a model that takes one, on both doors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("ray.serve", reason='needs the [ray] extra: pip install ".[ray]"')

import http_doors
from doubles import InstructedCrossEncoder, WordOverlapCrossEncoder
from http_doors import serve_door

from langchain_ce_rerank import InstructionNotSupportedError
from langchain_ce_rerank.engine import Reranker, ScoreCalibration, ScoringIdentity
from langchain_ce_rerank.engine.probability import PlattMapping
from langchain_ce_rerank.serving import ServeSettings, create_app
from langchain_ce_rerank.serving.jobs import ScoreJob, score_jobs
from langchain_ce_rerank.serving.ray_serve import RayServeArgs

TEXTS = ["statutes of tax", "cases of tax", "tax"]


def plain_door(
    scorer: Any, **engine: Any
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return serve_door(Reranker(model=scorer, **engine))


def ray_door(
    scorer: Any, **engine: Any
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return http_doors.ray_door({"model": scorer, **engine})


DOORS: dict[str, Callable[..., Any]] = {
    "ce-rerank serve": plain_door,
    "ray serve": ray_door,
}


async def _ask(door: str) -> tuple[list[Any], list[str | None]]:
    scorer = InstructedCrossEncoder()
    async with DOORS[door](scorer) as client:
        bodies = [
            {"query": "tax", "documents": TEXTS},
            {"query": "tax", "documents": TEXTS, "instruction": "find statutes"},
            {"query": "tax", "documents": TEXTS, "instruction": "find cases"},
        ]
        # Sent together, so the batcher may coalesce them.
        answers = await asyncio.gather(
            *(client.post("/v2/rerank", json=body) for body in bodies)
        )
    results = []
    for answer in answers:
        assert answer.status_code == 200, answer.text
        results.append(answer.json()["results"])
    return results, sorted({call[0] for call in scorer.calls}, key=str)


@pytest.mark.parametrize("door", list(DOORS))
def test_each_request_is_scored_under_its_own_instruction(door: str) -> None:
    results, seen = asyncio.run(_ask(door))
    plain, statutes, cases = results
    assert seen == [None, "find cases", "find statutes"]
    assert statutes[0]["index"] == 0
    assert cases[0]["index"] == 1
    assert statutes[0]["relevance_score"] > plain[0]["relevance_score"]


def test_both_doors_answer_an_instruction_alike() -> None:
    plain, ray = (asyncio.run(_ask(door))[0] for door in DOORS)
    assert plain == ray


def test_jobs_under_different_instructions_fail_alone() -> None:
    engine = Reranker(model=WordOverlapCrossEncoder())
    outcomes = score_jobs(
        engine,
        [
            ScoreJob("tax", ["tax law"]),
            ScoreJob("tax", ["tax law"], instruction="find statutes"),
            ScoreJob("law", ["tax law"]),
        ],
    )
    assert outcomes[0] == [1.0]
    assert outcomes[2] == [1.0]
    assert isinstance(outcomes[1], InstructionNotSupportedError)


def test_coalesced_jobs_go_in_one_stream_per_instruction() -> None:
    scorer = InstructedCrossEncoder()
    outcomes = score_jobs(
        Reranker(model=scorer, cache_size=0),
        [
            ScoreJob("tax", ["statutes of tax"], instruction="find statutes"),
            ScoreJob("tax", ["cases of tax"]),
            ScoreJob("tax", ["cases of tax"], instruction="find statutes"),
        ],
    )
    assert outcomes == [[2.0], [1.0], [1.0]]
    assert [(instruction, len(pairs)) for instruction, pairs in scorer.calls] == [
        ("find statutes", 2),
        (None, 1),
    ]


async def _start_with_a_default_instruction() -> httpx.Response:
    engine = Reranker(model=WordOverlapCrossEncoder(), instruction="find statutes")
    app = create_app(engine, ServeSettings(model_name="m"))
    async with app.router.lifespan_context(app):
        await asyncio.to_thread(app.state.ce_rerank.batcher._thread.join, 30)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get("/readyz")


def test_a_default_instruction_the_model_cannot_read_fails_the_start() -> None:
    readyz = asyncio.run(_start_with_a_default_instruction())
    assert readyz.status_code == 503
    assert readyz.json()["status"] == "failed"
    assert "takes no instruction" in readyz.json()["message"]
    # create_app is ce-rerank serve's door: the message names its flag.
    assert "Leave --instruction unset" in readyz.json()["message"]


def test_serve_takes_a_default_instruction_and_refuses_a_blank_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from langchain_ce_rerank.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--instruction", " "])
    assert exit_.value.code == 2
    assert "argument --instruction: is empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "--instruction TEXT" in capsys.readouterr().out


async def _calibrated_answers(door: str) -> list[httpx.Response]:
    calibration = ScoreCalibration(
        mapping=PlattMapping(slope=1.0, intercept=0.0),
        fitted_for=ScoringIdentity(model="doubles.InstructedCrossEncoder"),
    )
    scorer = InstructedCrossEncoder()
    async with DOORS[door](scorer, calibration=calibration) as client:
        return [
            await client.post("/v2/rerank", json={"query": "tax", "documents": TEXTS}),
            await client.post(
                "/v2/rerank",
                json={"query": "tax", "documents": TEXTS, "instruction": "x"},
            ),
        ]


@pytest.mark.parametrize("door", list(DOORS))
def test_a_calibrated_server_refuses_an_instruction_it_was_not_fitted_under(
    door: str,
) -> None:
    plain, instructed = asyncio.run(_calibrated_answers(door))
    assert plain.status_code == 200
    assert "relevance_probability" in plain.json()["results"][0]
    assert instructed.status_code == 422
    assert instructed.json()["errors"][0]["field"] == "instruction"
    assert "calibration was fitted" in instructed.json()["message"]


def test_the_ray_app_takes_a_default_instruction_as_ce_rerank_serve_does(
    causal_lm_standin_path: Path,
) -> None:
    from ray.serve import Application

    from langchain_ce_rerank.serving.ray_serve import app_builder

    args = RayServeArgs(model=str(causal_lm_standin_path), instruction="find statutes")
    assert args.engine_settings()["instruction"] == "find statutes"
    # Bound, not run: no Ray cluster is started.
    assert isinstance(
        app_builder({"model": str(causal_lm_standin_path), "instruction": "x"}),
        Application,
    )


def test_the_ray_app_refuses_at_build_a_default_instruction_the_model_cannot_read(
    standin_ce_path: Path,
) -> None:
    from langchain_ce_rerank.serving.ray_serve import app_builder

    with pytest.raises(InstructionNotSupportedError) as refused:
        app_builder({"model": str(standin_ce_path), "instruction": "find statutes"})
    assert "takes no instruction" in str(refused.value)
    assert "Leave args.instruction unset" in str(refused.value)


@pytest.mark.parametrize("blank", ["", "  "])
def test_the_ray_app_refuses_a_blank_instruction_as_the_plain_server_does(
    blank: str,
) -> None:
    with pytest.raises(ValueError, match="instruction"):
        RayServeArgs(model="m", instruction=blank)
    with pytest.raises(ValueError, match="instruction is given twice"):
        RayServeArgs(
            model="m", instruction="a", reranker={"instruction": "b"}
        ).engine_settings()
