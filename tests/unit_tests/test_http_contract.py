"""One request contract on both HTTP doors: `ce-rerank serve` and Ray Serve.

The same bad requests are sent to the FastAPI app (lifespan running, real
batcher) and to the Ray Serve ingress class (in process; its scoring handle
scores through `score_jobs`, the replicas' own path, since `@serve.batch`
only runs inside a Serve replica: `tests/integration_tests/test_ray.py`
sends the same refusals through a real Ray Serve deployment); each must
answer with the same status code and the same body, but for the name of the
setting at fault, which each door spells as its operator sets it
(`--max-documents` against `args.max_documents in the Serve config`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")
pytest.importorskip("ray.serve", reason='needs the [ray] extra: pip install ".[ray]"')

import http_doors
from doubles import WordOverlapCrossEncoder
from http_doors import serve_door

from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.serving import ServeSettings
from langchain_ce_rerank.serving.contract import (
    CLI_FLAGS,
    SERVE_CONFIG_ARGS,
    RequestLimits,
)
from langchain_ce_rerank.serving.ray_serve import RayServeArgs

MODEL = "contract-model"
KEY = "s3cret"
LIMITS = {"max_documents": 50, "max_document_chars": 200, "max_body_bytes": 20_000}
AUTH = {"Authorization": f"Bearer {KEY}"}
TEXTS = ["red apples are sweet", "the sky is blue", "an apple a day"]


def plain_door() -> AbstractAsyncContextManager[httpx.AsyncClient]:
    engine = Reranker(model=WordOverlapCrossEncoder())
    return serve_door(engine, ServeSettings(model_name=MODEL, api_key=KEY, **LIMITS))


def ray_door() -> AbstractAsyncContextManager[httpx.AsyncClient]:
    args = RayServeArgs(model="unused", model_name=MODEL, api_key=KEY, **LIMITS)
    return http_doors.ray_door({"model": WordOverlapCrossEncoder()}, args)


DOORS: dict[str, tuple[Callable[[], Any], dict[str, str]]] = {
    "ce-rerank serve": (plain_door, dict(CLI_FLAGS)),
    "ray serve": (ray_door, dict(SERVE_CONFIG_ARGS)),
}


def _request(documents: list[str], **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "query": "red apple", "documents": documents, **extra}


# (what is sent, expected status, the setting its message must name)
CASES: dict[str, tuple[dict[str, Any], int, str | None]] = {
    "no key": ({"json": _request(TEXTS), "headers": {}}, 401, "api_key"),
    "wrong key": (
        {"json": _request(TEXTS), "headers": {"Authorization": "Bearer s3creT"}},
        401,
        "api_key",
    ),
    "not json": ({"content": b"{nope", "headers": AUTH}, 400, None),
    "not utf-8": ({"content": b"\xff\xfe{}", "headers": AUTH}, 400, None),
    "a body over the byte limit": (
        {"json": _request(["d"] * 10_000), "headers": AUTH},
        413,
        "max_body_bytes",
    ),
    "too many documents": (
        {"json": _request(["d"] * 51), "headers": AUTH},
        413,
        "max_documents",
    ),
    "a long document": (
        {"json": _request(["x" * 201]), "headers": AUTH},
        413,
        "max_document_chars",
    ),
    "another model": (
        {"json": {**_request(TEXTS), "model": "other"}, "headers": AUTH},
        404,
        None,
    ),
    "blank query": ({"json": _request(TEXTS, query="  "), "headers": AUTH}, 422, None),
    "unknown field": (
        {"json": _request(TEXTS, return_documents=True), "headers": AUTH},
        422,
        None,
    ),
    "top_n of 0": ({"json": _request(TEXTS, top_n=0), "headers": AUTH}, 422, None),
    "an instruction the model cannot read": (
        {"json": _request(TEXTS, instruction="find fruit"), "headers": AUTH},
        422,
        None,
    ),
    "a blank instruction": (
        {"json": _request(TEXTS, instruction=" "), "headers": AUTH},
        422,
        None,
    ),
}


async def _answers(door: str) -> dict[str, httpx.Response]:
    open_door, _ = DOORS[door]
    async with open_door() as client:
        answers = {
            case: await client.post("/v2/rerank", **sent)
            for case, (sent, _, _) in CASES.items()
        }
        # The door still serves after every refusal.
        answers["valid"] = await client.post(
            "/v2/rerank", json=_request(TEXTS, top_n=2), headers=AUTH
        )
        answers["no route"] = await client.get("/v1/nothing", headers=AUTH)
        answers["wrong method"] = await client.get("/v2/rerank", headers=AUTH)
    return answers


@pytest.fixture(scope="module")
def answers() -> dict[str, dict[str, httpx.Response]]:
    return {door: asyncio.run(_answers(door)) for door in DOORS}


@pytest.mark.parametrize("door", list(DOORS))
@pytest.mark.parametrize("case", list(CASES))
def test_each_door_refuses_with_the_contract_s_status_naming_its_setting(
    answers: dict[str, dict[str, httpx.Response]], door: str, case: str
) -> None:
    _, status, setting = CASES[case]
    response = answers[door][case]
    assert response.status_code == status, response.text
    message = response.json()["message"]
    if setting is not None:
        assert DOORS[door][1][setting] in message
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    if status == 413:
        assert {"limit", "value"} <= set(response.json())


@pytest.mark.parametrize("case", [*CASES, "valid", "no route", "wrong method"])
def test_both_doors_answer_alike(
    answers: dict[str, dict[str, httpx.Response]], case: str
) -> None:
    plain, ray = (answers[door][case] for door in DOORS)
    assert plain.status_code == ray.status_code

    def same_words(response: httpx.Response, names: dict[str, str]) -> Any:
        text = response.text
        for setting, spelled in names.items():
            text = text.replace(json.dumps(spelled)[1:-1], f"<{setting}>")
        body = json.loads(text)
        body.pop("id", None)  # a fresh id per answer
        return body

    assert same_words(plain, CLI_FLAGS) == same_words(ray, SERVE_CONFIG_ARGS)


def test_unknown_routes_are_404_and_wrong_methods_405_in_the_error_shape(
    answers: dict[str, dict[str, httpx.Response]],
) -> None:
    for door in DOORS:
        assert answers[door]["no route"].status_code == 404
        assert "POST /v2/rerank" in answers[door]["no route"].json()["message"]
        wrong = answers[door]["wrong method"]
        assert wrong.status_code == 405
        assert wrong.headers["allow"] == "POST"


def test_a_valid_request_is_ranked_on_both_doors(
    answers: dict[str, dict[str, httpx.Response]],
) -> None:
    expected = Reranker(model=WordOverlapCrossEncoder()).rank(
        "red apple", TEXTS, top_n=2
    )
    for door in DOORS:
        results = answers[door]["valid"].json()["results"]
        assert [r["index"] for r in results] == [r.index for r in expected]
        assert [r["relevance_score"] for r in results] == [r.score for r in expected]


def test_the_serve_config_sets_the_limits_and_the_key_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CE_RERANK_API_KEY", "from-env")
    limits = RayServeArgs.model_validate({"model": "m", **LIMITS}).request_limits()
    assert limits.max_documents == 50
    assert limits.max_document_chars == 200
    assert limits.max_body_bytes == 20_000
    assert limits.api_key is not None
    assert limits.api_key.get_secret_value() == "from-env"
    # A key in the config wins over the environment.
    given = RayServeArgs(model="m", api_key="in-config").request_limits()
    assert given.api_key is not None
    assert given.api_key.get_secret_value() == "in-config"
    monkeypatch.delenv("CE_RERANK_API_KEY")
    assert RayServeArgs(model="m").request_limits().api_key is None


def test_the_config_refuses_a_bad_limit_naming_it() -> None:
    with pytest.raises(ValueError, match="max_documents"):
        RayServeArgs.model_validate({"model": "m", "max_documents": 0})


def test_plain_server_settings_are_the_shared_limits() -> None:
    assert set(RequestLimits.model_fields) <= set(ServeSettings.model_fields)
    assert set(RequestLimits.model_fields) <= set(RayServeArgs.model_fields)
    for name, field in RequestLimits.model_fields.items():
        assert ServeSettings.model_fields[name].default == field.default
        assert RayServeArgs.model_fields[name].default == field.default


@pytest.mark.parametrize("door", list(DOORS))
def test_an_instruction_refusal_names_the_field_and_the_model(
    answers: dict[str, dict[str, httpx.Response]], door: str
) -> None:
    body = answers[door]["an instruction the model cannot read"].json()
    assert body["errors"][0]["field"] == "instruction"
    assert "WordOverlapCrossEncoder" in body["message"]
    assert "the request's instruction field" in body["message"]
