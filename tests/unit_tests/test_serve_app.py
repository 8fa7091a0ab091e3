"""`ce-rerank serve`'s app in process: schema, batching, limits, auth, health.

Every test drives the real FastAPI app through `httpx.ASGITransport` with the
app's lifespan running (so the scoring thread is real), and a deterministic
model double behind a real `Reranker`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")

from doubles import TableCrossEncoder, WordOverlapCrossEncoder

from langchain_ce_rerank.engine import Reranker
from langchain_ce_rerank.optional import install_hint
from langchain_ce_rerank.serving import ServeSettings, create_app
from langchain_ce_rerank.serving.remote_apis import API_SPECS, read_scores
from langchain_ce_rerank.serving.schemas import RerankResponse

MODEL = "test-model"


@asynccontextmanager
async def serving(
    model: Any, *, wait_ready: bool = True, **settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    engine = model if isinstance(model, Reranker) else Reranker(model=model)
    app = create_app(engine, ServeSettings(model_name=MODEL, **settings))
    async with app.router.lifespan_context(app):
        if wait_ready:
            ready = app.state.ce_rerank.batcher.ready
            assert await asyncio.to_thread(ready.wait, 30), "the model never loaded"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://serve.test"
        ) as client:
            yield client, app


def body(
    documents: list[Any], query: str = "red apple", **extra: Any
) -> dict[str, Any]:
    return {"model": MODEL, "query": query, "documents": documents, **extra}


# -- the Cohere v2 schema --------------------------------------------------------


async def test_results_are_sorted_floats_mapped_to_request_indexes() -> None:
    table = TableCrossEncoder({"a": 1.0, "b": 3.0, "c": 2.0, "d": -1})
    async with serving(table) as (client, _):
        response = await client.post("/v2/rerank", json=body(["a", "b", "c", "d"]))
    assert response.status_code == 200
    payload = response.json()
    parsed = RerankResponse.model_validate(payload)
    assert [r.index for r in parsed.results] == [1, 2, 0, 3]
    assert [r["relevance_score"] for r in payload["results"]] == [3.0, 2.0, 1.0, -1.0]
    assert all(type(r["relevance_score"]) is float for r in payload["results"])
    assert payload["meta"] == {"api_version": {"version": "2"}, "model": MODEL}
    assert payload["id"]
    # The client of this package reads it back to input order.
    assert read_scores(API_SPECS["cohere"], payload, 4) == [1.0, 3.0, 2.0, -1.0]


async def test_every_document_comes_back_without_top_n_and_top_n_cuts() -> None:
    texts = [f"t{i}" for i in range(7)]  # more than the engine's default top_n of 5
    table = TableCrossEncoder({t: float(i) for i, t in enumerate(texts)})
    async with serving(table) as (client, _):
        everything = (await client.post("/v2/rerank", json=body(texts))).json()
        top = (await client.post("/v2/rerank", json=body(texts, top_n=2))).json()
        beyond = (await client.post("/v2/rerank", json=body(texts, top_n=50))).json()
    assert [r["index"] for r in everything["results"]] == [6, 5, 4, 3, 2, 1, 0]
    assert [r["index"] for r in top["results"]] == [6, 5]
    assert len(beyond["results"]) == 7


async def test_ties_keep_request_order_and_no_documents_is_no_results() -> None:
    async with serving(TableCrossEncoder()) as (client, _):
        tied = (await client.post("/v2/rerank", json=body(["x", "y", "z"]))).json()
        empty = await client.post("/v2/rerank", json=body([]))
    assert [r["index"] for r in tied["results"]] == [0, 1, 2]
    assert empty.status_code == 200
    assert empty.json()["results"] == []


async def test_model_may_be_omitted_but_another_name_is_404() -> None:
    async with serving(TableCrossEncoder()) as (client, _):
        omitted = await client.post(
            "/v2/rerank", json={"query": "q", "documents": ["a"]}
        )
        other = await client.post(
            "/v2/rerank", json={**body(["a"]), "model": "rerank-v3.5"}
        )
    assert omitted.status_code == 200
    assert other.status_code == 404
    message = other.json()["message"]
    assert "'rerank-v3.5' is not served here" in message
    assert repr(MODEL) in message


async def test_max_tokens_per_doc_truncates_before_scoring() -> None:
    table = TableCrossEncoder({"one two": 5.0})
    async with serving(table) as (client, _):
        response = await client.post(
            "/v2/rerank",
            json=body(["one two three four", "five"], max_tokens_per_doc=2),
        )
    assert response.status_code == 200
    assert sorted(text for _, text in table.calls[-1]) == ["five", "one two"]
    assert response.json()["results"][0] == {"index": 0, "relevance_score": 5.0}


async def test_groups_keep_the_best_per_group_our_extension() -> None:
    table = TableCrossEncoder({"a1": 4.0, "a2": 3.0, "b1": 2.0, "a3": 1.0})
    documents = ["a1", "a2", "b1", "a3"]
    groups = ["a.md", "a.md", "b.md", "a.md"]
    async with serving(table) as (client, _):
        one = await client.post("/v2/rerank", json=body(documents, groups=groups))
        two = await client.post(
            "/v2/rerank",
            json=body(documents, groups=groups, max_per_group=2, top_n=2),
        )
    assert one.status_code == 200, one.text
    assert [r["index"] for r in one.json()["results"]] == [0, 2]
    assert [r["index"] for r in two.json()["results"]] == [0, 1]
    RerankResponse.model_validate(one.json())  # still Cohere's response shape


async def test_groups_then_diversity_in_one_request() -> None:
    # Groups cut first (one per file), then diversity picks among the groups'
    # best: b.md's only document repeats a.md's best word for word, so with
    # diversity the slot goes to c.md.
    documents = ["red apple pie", "red apple tart", "Red apple pie!", "green pear"]
    groups = ["a.md", "a.md", "b.md", "c.md"]
    table = {documents[0]: 3.0, documents[1]: 2.95, documents[2]: 2.9}
    table[documents[3]] = 1.0
    request = body(documents, groups=groups, top_n=2)
    async with serving(TableCrossEncoder(table)) as (client, _):
        grouped = await client.post("/v2/rerank", json=request)
        diverse = await client.post("/v2/rerank", json={**request, "diversity": 0.5})
        two = await client.post(
            "/v2/rerank",
            json={**request, "diversity": 0.5, "max_per_group": 2, "top_n": 3},
        )
    assert grouped.status_code == diverse.status_code == two.status_code == 200
    assert [r["index"] for r in grouped.json()["results"]] == [0, 2]
    assert [r["index"] for r in diverse.json()["results"]] == [0, 3]
    assert [r["relevance_score"] for r in diverse.json()["results"]] == [3.0, 1.0]
    # Two per file: a.md's second ("red apple tart", 2 of 4 words shared) is
    # kept before the exact repeat b.md, which diversity leaves last.
    assert [r["index"] for r in two.json()["results"]] == [0, 1, 3]
    RerankResponse.model_validate(diverse.json())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"groups": ["x"]}, "groups has 1 labels for 2 documents"),
        ({"max_per_group": 2}, "max_per_group needs groups"),
        ({"groups": ["x", "y"], "max_per_group": 0}, "max_per_group"),
        ({"max_context_tokens": 10}, "max_context_tokens"),
    ],
)
async def test_the_group_extension_is_checked_like_cohere_fields(
    extra: dict[str, Any], message: str
) -> None:
    async with serving(TableCrossEncoder()) as (client, _):
        response = await client.post("/v2/rerank", json=body(["a", "b"], **extra))
    assert response.status_code == 422, response.text
    assert message in response.json()["message"]


# -- errors: every one is JSON naming the field or the limit -----------------------


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**body(["a"]), "return_documents": True}, "return_documents"),
        (body([1]), "documents[0]"),
        (body([{"text": "a"}]), "documents[0]"),  # v1 objects: not Cohere v2
        (body("a"), "documents"),
        (body(["a"], top_n="2"), "top_n"),
        (body(["a"], top_n=0), "top_n"),
        (body(["a"], max_tokens_per_doc=0), "max_tokens_per_doc"),
        (body(["a"], query="   "), "query"),
        ({"documents": ["a"]}, "query"),
        ({**body(["a"]), "model": 3}, "model"),
        (["a"], "body"),
        (body(["ok", "bad \ud800 text"]), "documents[1]"),
    ],
)
async def test_bad_fields_are_422_naming_the_field(payload: Any, field: str) -> None:
    async with serving(TableCrossEncoder()) as (client, _):
        response = await client.post(
            "/v2/rerank",
            content=json.dumps(payload).encode(),  # lone surrogates as \ud800 escapes
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 422, response.text
    error = response.json()
    assert field in [e["field"] for e in error["errors"]]
    assert field in error["message"]


async def test_blank_query_message_says_what_to_send() -> None:
    async with serving(TableCrossEncoder()) as (client, _):
        response = await client.post("/v2/rerank", json=body(["a"], query=""))
    assert response.status_code == 422
    assert "query: query is empty or only whitespace" in response.json()["message"]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"query": "q", "documents": ["a"', "not valid JSON"),
        (b"", "not valid JSON"),
        (b'{"query": "q\xff"}', "not UTF-8"),
    ],
)
async def test_malformed_bodies_are_400_with_a_message(raw: bytes, words: str) -> None:
    async with serving(TableCrossEncoder()) as (client, _):
        response = await client.post("/v2/rerank", content=raw)
    assert response.status_code == 400
    assert words in response.json()["message"]


async def test_too_many_documents_is_413_naming_limit_and_value() -> None:
    async with serving(TableCrossEncoder(), max_documents=3) as (client, _):
        response = await client.post("/v2/rerank", json=body(["a", "b", "c", "d"]))
    assert response.status_code == 413
    error = response.json()
    assert (error["limit"], error["value"]) == (3, 4)
    assert "documents has 4 items, over the limit of 3" in error["message"]
    assert "--max-documents" in error["message"]


async def test_a_long_document_is_413_naming_it() -> None:
    async with serving(TableCrossEncoder(), max_document_chars=10) as (client, _):
        response = await client.post("/v2/rerank", json=body(["short", "x" * 11]))
    assert response.status_code == 413
    error = response.json()
    assert (error["limit"], error["value"]) == (10, 11)
    assert error["message"].startswith("documents[1] has 11 characters")


async def test_body_over_the_limit_by_content_length_is_413() -> None:
    raw = json.dumps(body(["x" * 2000])).encode()
    async with serving(TableCrossEncoder(), max_body_bytes=1000) as (client, _):
        response = await client.post("/v2/rerank", content=raw)
    assert response.status_code == 413
    error = response.json()
    assert (error["limit"], error["value"]) == (1000, len(raw))
    assert (
        f"request body of {len(raw)} bytes exceeds the limit of 1000"
        in (error["message"])
    )


async def test_streamed_body_over_the_limit_is_413_without_content_length() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "q", "documents": ["'
        for _ in range(10):
            yield b"x" * 300
        yield b'"]}'

    async with serving(TableCrossEncoder(), max_body_bytes=1000) as (client, _):
        request = client.build_request("POST", "/v2/rerank", content=chunks())
        assert "content-length" not in request.headers
        response = await client.send(request)
    assert response.status_code == 413
    error = response.json()
    assert error["limit"] == 1000
    assert error["value"] > 1000
    assert "bytes received so far" in error["message"]


async def test_the_server_keeps_serving_after_bad_requests() -> None:
    table = TableCrossEncoder({"b": 1.0})
    async with serving(table, api_key="s3cret", max_body_bytes=1024 * 1024) as (
        client,
        _,
    ):
        auth = {"Authorization": "Bearer s3cret"}
        answers = [
            await client.post(
                "/v2/rerank", json=body([f"d{i}" for i in range(10_000)]), headers=auth
            ),
            await client.post("/v2/rerank", json=body(["x" * 2_000_000]), headers=auth),
            await client.post("/v2/rerank", content=b"{not json", headers=auth),
            await client.post(
                "/v2/rerank", json=body(["a"]), headers={"Authorization": "Bearer no"}
            ),
        ]
        good = await client.post("/v2/rerank", json=body(["a", "b"]), headers=auth)
    assert [a.status_code for a in answers] == [413, 413, 400, 401]
    assert good.status_code == 200
    assert [r["index"] for r in good.json()["results"]] == [1, 0]


# -- auth --------------------------------------------------------------------------


async def test_api_key_guards_rerank_and_metrics_not_health() -> None:
    async with serving(TableCrossEncoder(), api_key="s3cret") as (client, _):
        missing = await client.post("/v2/rerank", json=body(["a"]))
        wrong = await client.post(
            "/v2/rerank", json=body(["a"]), headers={"Authorization": "Bearer s3cre"}
        )
        basic = await client.post(
            "/v2/rerank", json=body(["a"]), headers={"Authorization": "Basic s3cret"}
        )
        right = await client.post(
            "/v2/rerank", json=body(["a"]), headers={"Authorization": "Bearer s3cret"}
        )
        metrics = await client.get("/metrics")
        health = [await client.get("/healthz"), await client.get("/readyz")]
    for refused in (missing, wrong, basic, metrics):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "Authorization: Bearer <key>" in refused.json()["message"]
    assert right.status_code == 200
    assert [h.status_code for h in health] == [200, 200]


async def test_a_nan_score_is_a_500_naming_the_model_and_other_requests_still_score() -> (
    None
):
    import math

    table = TableCrossEncoder({"a": 1.0, "b": 2.0, "bad": math.nan})
    async with serving(table) as (client, _):
        broken, fine = await asyncio.gather(
            client.post("/v2/rerank", json=body(["a", "bad"])),
            client.post("/v2/rerank", json=body(["a", "b"])),
        )
    assert broken.status_code == 500
    message = broken.json()["message"]
    assert message.startswith("scoring failed: NonFiniteScoreError: scorer ")
    assert "TableCrossEncoder" in message
    assert "1 NaN or missing score(s)" in message
    assert fine.status_code == 200
    assert [r["index"] for r in fine.json()["results"]] == [1, 0]


# -- readiness ---------------------------------------------------------------------


async def test_readyz_is_503_until_the_model_has_loaded() -> None:
    release = threading.Event()
    model = WordOverlapCrossEncoder()

    def loader(name: Any, **kwargs: Any) -> WordOverlapCrossEncoder:
        assert release.wait(30)
        return model

    engine = Reranker(model="slow/model", loader=loader)
    async with serving(engine, wait_ready=False) as (client, app):
        loading = await client.get("/readyz")
        early = await client.post("/v2/rerank", json=body(["red"]))
        alive = await client.get("/healthz")
        release.set()
        assert await asyncio.to_thread(app.state.ce_rerank.batcher.ready.wait, 30)
        ready = await client.get("/readyz")
        later = await client.post("/v2/rerank", json=body(["red"]))
    assert (loading.status_code, loading.json()["status"]) == (503, "loading")
    assert early.status_code == 503
    assert "still loading" in early.json()["message"]
    assert alive.json() == {"status": "ok"}
    assert ready.json() == {"model": MODEL, "status": "ready"}
    assert later.status_code == 200


async def test_a_model_that_fails_to_load_is_reported() -> None:
    def loader(name: Any, **kwargs: Any) -> Any:
        msg = "no such folder: /nowhere"
        raise OSError(msg)

    app = create_app(
        Reranker(model="/nowhere", loader=loader), ServeSettings(model_name=MODEL)
    )
    async with app.router.lifespan_context(app):
        await asyncio.to_thread(app.state.ce_rerank.batcher._thread.join, 30)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t"
        ) as client:
            readyz = await client.get("/readyz")
            rerank = await client.post("/v2/rerank", json=body(["a"]))
    assert readyz.status_code == 503
    assert readyz.json()["status"] == "failed"
    assert "no such folder: /nowhere" in readyz.json()["message"]
    assert rerank.status_code == 503
    assert "failed to load" in rerank.json()["message"]


async def test_draining_refuses_new_requests_with_503() -> None:
    async with serving(TableCrossEncoder()) as (client, app):
        app.state.ce_rerank.drain()
        refused = await client.post("/v2/rerank", json=body(["a"]))
        readyz = await client.get("/readyz")
        healthz = await client.get("/healthz")
    assert refused.status_code == 503
    assert "shutting down" in refused.json()["message"]
    assert refused.headers["connection"] == "close"
    assert (readyz.status_code, readyz.json()["status"]) == (503, "draining")
    assert healthz.status_code == 200


# -- metrics -----------------------------------------------------------------------


async def test_metrics_count_requests_pairs_batches_and_cache_hits() -> None:
    async with serving(TableCrossEncoder({"b": 1.0})) as (client, _):
        await client.post("/v2/rerank", json=body(["a", "b", "c"]))
        await client.post("/v2/rerank", json=body(["a", "b", "c"]))  # from the cache
        await client.post("/v2/rerank", json=body(["a"], top_n=0))
        text = (await client.get("/metrics")).text
    assert 'ce_rerank_requests_total{status="200"} 2.0' in text
    assert 'ce_rerank_requests_total{status="422"} 1.0' in text
    assert "ce_rerank_pairs_scored_total 6.0" in text
    assert "ce_rerank_cache_hits_total 3.0" in text
    assert "ce_rerank_cache_misses_total 3.0" in text
    assert "ce_rerank_batch_pairs_count 2.0" in text
    assert "ce_rerank_batch_requests_count 2.0" in text
    for histogram in ("queue_wait", "model", "request"):
        assert f"ce_rerank_{histogram}_seconds_bucket" in text
    assert "ce_rerank_model_ready 1.0" in text
    assert "ce_rerank_requests_in_flight 0.0" in text


async def test_each_app_has_its_own_registry() -> None:
    async with serving(TableCrossEncoder()) as (first, _):
        await first.post("/v2/rerank", json=body(["a"]))
        async with serving(TableCrossEncoder()) as (second, _):
            text = (await second.get("/metrics")).text
    assert 'ce_rerank_requests_total{status="200"}' not in text


# -- dynamic batching --------------------------------------------------------------


class GatedScorer:
    """Holds the first model call until every other request is queued, so the
    rest must arrive at the model together; records each call's pairs, thread
    and whether two calls ever overlapped."""

    def __init__(self, requests: int, fail_on: str | None = None) -> None:
        self.requests = requests
        self.fail_on = fail_on
        self.batcher: Any = None
        self.calls: list[list[tuple[str, str]]] = []
        self.threads: set[int] = set()
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self.threads.add(threading.get_ident())
            self.calls.append(list(pairs))
            if len(self.calls) == 1:
                in_this_call = len({query for query, _ in pairs})
                queued = self.batcher.wait_queued(self.requests - in_this_call, 30)
                assert queued, "the other requests never reached the queue"
            if self.fail_on is not None and any(t == self.fail_on for _, t in pairs):
                msg = f"cannot score {self.fail_on!r}"
                raise RuntimeError(msg)
            return [float(len(text)) for _, text in pairs]
        finally:
            with self.lock:
                self.active -= 1


async def _concurrent(client: httpx.AsyncClient, count: int) -> list[httpx.Response]:
    return await asyncio.gather(
        *(
            client.post(
                "/v2/rerank", json=body([f"doc {i}", f"document {i}"], query=f"q{i}")
            )
            for i in range(count)
        )
    )


async def test_concurrent_requests_share_model_calls() -> None:
    count = 8
    scorer = GatedScorer(count)
    async with serving(scorer) as (client, app):
        scorer.batcher = app.state.ce_rerank.batcher
        responses = await _concurrent(client, count)
        text = (await client.get("/metrics")).text
    assert all(r.status_code == 200 for r in responses)
    # The first call went alone (or with whoever had arrived); all the others
    # waited behind it and reached the model together in one more call.
    assert len(scorer.calls) <= 2
    queries = [{q for q, _ in call} for call in scorer.calls]
    assert set().union(*queries) == {f"q{i}" for i in range(count)}
    assert max(len(q) for q in queries) >= count // 2
    assert f"ce_rerank_batch_pairs_count {len(scorer.calls)}.0" in text
    # Each request still gets its own scores, in its own order.
    for i, response in enumerate(responses):
        results = response.json()["results"]
        assert [r["index"] for r in results] == [1, 0]
        assert results[0]["relevance_score"] == float(len(f"document {i}"))


async def test_without_batching_each_request_is_its_own_model_call() -> None:
    count = 4
    scorer = GatedScorer(count)
    async with serving(scorer, max_batch_pairs=0, max_batch_wait_ms=0) as (
        client,
        app,
    ):
        scorer.batcher = app.state.ce_rerank.batcher
        responses = await _concurrent(client, count)
    assert all(r.status_code == 200 for r in responses)
    assert [len({q for q, _ in call}) for call in scorer.calls] == [1] * count


async def test_the_pair_budget_splits_batches() -> None:
    count = 6
    scorer = GatedScorer(count)
    # 2 pairs a request, at most 4 pairs a call: at most 2 requests per call.
    async with serving(scorer, max_batch_pairs=4) as (client, app):
        scorer.batcher = app.state.ce_rerank.batcher
        responses = await _concurrent(client, count)
    assert all(r.status_code == 200 for r in responses)
    assert all(len(call) <= 4 for call in scorer.calls)
    assert len(scorer.calls) >= 3


async def test_the_model_is_never_entered_concurrently_nor_on_the_loop() -> None:
    count = 16
    scorer = GatedScorer(count)
    async with serving(scorer, max_batch_pairs=6) as (client, app):
        scorer.batcher = app.state.ce_rerank.batcher
        responses = await _concurrent(client, count)
    assert all(r.status_code == 200 for r in responses)
    assert scorer.max_active == 1
    assert len(scorer.threads) == 1
    assert threading.get_ident() not in scorer.threads


async def test_a_failing_request_does_not_fail_its_batch_mates() -> None:
    count = 3
    scorer = GatedScorer(count, fail_on="document 2")
    async with serving(scorer) as (client, app):
        scorer.batcher = app.state.ce_rerank.batcher
        responses = await _concurrent(client, count)
        after = await client.post("/v2/rerank", json=body(["fine"]))
    assert [r.status_code for r in responses] == [200, 200, 500]
    assert "cannot score 'document 2'" in responses[2].json()["message"]
    assert after.status_code == 200


# -- overload: a bounded queue, and callers that go away ---------------------------


class HeldScorer:
    """Holds its first model call until `release` is set; records every call."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls: list[list[tuple[str, str]]] = []

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        self.calls.append(list(pairs))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(30), "the test never released the model"
        return [float(len(text)) for _, text in pairs]


async def _hold_the_model(
    client: httpx.AsyncClient, scorer: HeldScorer
) -> asyncio.Task[httpx.Response]:
    """Send a first request and return once the model is busy with it."""
    first = asyncio.ensure_future(client.post("/v2/rerank", json=body(["x", "y"])))
    assert await asyncio.to_thread(scorer.entered.wait, 30)
    return first


async def test_a_full_queue_is_503_with_retry_after_and_the_server_recovers() -> None:
    scorer = HeldScorer()
    # Four pairs may wait; the model is held by a first request meanwhile.
    async with serving(scorer, max_queued_pairs=4, max_batch_pairs=0) as (
        client,
        app,
    ):
        batcher = app.state.ce_rerank.batcher
        first = await _hold_the_model(client, scorer)
        second = asyncio.ensure_future(
            client.post("/v2/rerank", json=body(["a", "b", "c"]))
        )
        assert await asyncio.to_thread(batcher.wait_queued, 1, 30)
        refused = await client.post("/v2/rerank", json=body(["d", "e"]))
        metrics = (await client.get("/metrics")).text
        scorer.release.set()
        answered = [await first, await second]
        retried = await client.post("/v2/rerank", json=body(["d", "e"]))
    assert refused.status_code == 503
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    error = refused.json()
    assert (error["limit"], error["value"]) == (4, 3)
    assert "--max-queued-pairs" in error["message"]
    assert "ce_rerank_queued_pairs 3.0" in metrics
    assert [r.status_code for r in answered] == [200, 200]
    assert retried.status_code == 200
    # The refused request never reached the model.
    assert [len(call) for call in scorer.calls] == [2, 3, 2]


async def test_a_request_over_the_queue_limit_alone_is_still_served() -> None:
    async with serving(TableCrossEncoder(), max_queued_pairs=2) as (client, _):
        response = await client.post("/v2/rerank", json=body(["a", "b", "c", "d"]))
    assert response.status_code == 200
    assert len(response.json()["results"]) == 4


async def test_a_request_whose_caller_left_is_dropped_unscored() -> None:
    scorer = HeldScorer()
    async with serving(scorer, max_batch_pairs=0) as (client, app):
        batcher = app.state.ce_rerank.batcher
        first = await _hold_the_model(client, scorer)
        leaving = asyncio.ensure_future(
            client.post("/v2/rerank", json=body(["gone", "away"], query="left"))
        )
        assert await asyncio.to_thread(batcher.wait_queued, 1, 30)
        leaving.cancel()  # the caller gives up while its request waits
        with pytest.raises(asyncio.CancelledError):
            await leaving
        assert batcher.queued() == 0
        scorer.release.set()
        assert (await first).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert "ce_rerank_requests_abandoned_total 1.0" in metrics
    assert "ce_rerank_queued_pairs 0.0" in metrics
    assert all(query != "left" for call in scorer.calls for query, _ in call)


# -- imports and the command line ----------------------------------------------------


def _modules_after(statement: str) -> str:
    import subprocess
    import sys

    code = (
        f"import sys; {statement}; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'prometheus_client', 'torch') "
        "if m in sys.modules))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_serving_package_and_its_cli_import_no_server_framework() -> None:
    loaded = _modules_after(
        "import langchain_ce_rerank.serving, langchain_ce_rerank.cli.serve"
    )
    assert loaded == "[]"


def test_without_fastapi_the_error_names_the_extra() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['fastapi'] = None\n"
        "from langchain_ce_rerank.serving import create_app"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert install_hint("serve") in result.stderr


def test_the_serve_parser_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from langchain_ce_rerank.cli.serve import add_serve_parser, run_serve

    monkeypatch.setenv("CE_RERANK_API_KEY", "from-env")
    parser = argparse.ArgumentParser(prog="ce-rerank")
    add_serve_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve"])
    assert args.func is run_serve
    assert (args.host, args.port, args.api_key) == ("127.0.0.1", 8080, "from-env")
    assert (args.max_batch_wait_ms, args.max_batch_pairs) == (5.0, 256)
    assert args.max_queued_pairs == 10_000
    assert (args.max_documents, args.log_level, args.cache) == (1000, "info", True)
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--port", "70000"])
