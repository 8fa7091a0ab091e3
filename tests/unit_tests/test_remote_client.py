"""`RemoteCrossEncoder` against fake Cohere, TEI, Infinity and vLLM servers.

The fakes (tests/fake_rerank_servers.py) implement each server's published
schema. Sync calls go to a real uvicorn subprocess on 127.0.0.1 (faults such as
a dropped connection only exist there); async calls go to the same app
in-process through `httpx.ASGITransport`, or to the subprocess. Timeouts are
tried on `TrickleServer`, a socket server in a thread that answers one byte at
a time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_rerank_servers import (
    FakeRerankServers,
    TrickleServer,
    fake_logit,
    fake_sigmoid,
)
from pydantic import ValidationError

from langchain_ce_rerank import serving
from langchain_ce_rerank.optional import install_hint
from langchain_ce_rerank.serving import (
    RemoteCrossEncoder,
    RemoteRerankError,
    RemoteRerankTimeoutError,
)
from langchain_ce_rerank.serving._retry import backoff_delay, retry_after_seconds

APIS = ["cohere", "tei", "infinity", "vllm"]
MODEL = {"cohere": "rerank-v3.5", "tei": None, "infinity": None, "vllm": None}
RAW = {"cohere": False, "tei": True, "infinity": True, "vllm": False}

QUERY = "how do I move a docker volume"
TEXTS = [
    "Cats purr when they are content.",
    "Tar the docker volume and copy it to the new host.",
    "docker logs shows what a container printed.",
    "Move the volume: tar it, copy it, untar it into a new volume.",
    "Paris is the capital of France.",
]


def expected(api: str, pairs: list[tuple[str, str]]) -> list[float]:
    score = fake_logit if RAW[api] else fake_sigmoid
    return [score(query, text) for query, text in pairs]


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """Base URL of the fake servers running under uvicorn in a subprocess."""
    script = Path(__file__).resolve().parents[1] / "fake_rerank_servers.py"
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def stats(server_url: str, run: str) -> dict[str, Any]:
    return httpx.get(f"{server_url}/_stats/{run}").json()  # type: ignore[no-any-return]


def remote(
    base: str, api: str, fault: str = "", run: str | None = None, **options: Any
) -> tuple[RemoteCrossEncoder, str]:
    """A client for the fake `api` under `base`, tagged with a fresh run id."""
    run = run or uuid.uuid4().hex
    headers = {"x-run": run, "x-fault": fault, **options.pop("headers", {})}
    options.setdefault("backoff", 0.0)
    options.setdefault("api_key", "test-key" if api == "cohere" else None)
    reranker = RemoteCrossEncoder(
        f"{base}/{api}",
        api,  # type: ignore[arg-type]
        model=MODEL[api],
        headers=headers,
        **options,
    )
    return reranker, run


def in_process(
    api: str, fault: str = "", **options: Any
) -> tuple[RemoteCrossEncoder, FakeRerankServers, str]:
    app = FakeRerankServers()
    reranker, run = remote(
        "http://fake", api, fault, transport=httpx.ASGITransport(app=app), **options
    )
    return reranker, app, run


# -- the four schemas ---------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_sync_scores_match_the_server_in_input_order(server_url: str, api: str) -> None:
    reranker, run = remote(server_url, api)
    pairs = [(QUERY, text) for text in TEXTS]
    with reranker:
        scores = reranker.score(pairs)
    assert scores == pytest.approx(expected(api, pairs))
    assert all(type(score) is float for score in scores)
    assert stats(server_url, run)["requests"] == 1


@pytest.mark.parametrize("api", APIS)
async def test_async_scores_match_sync_scores(server_url: str, api: str) -> None:
    pairs = [(QUERY, text) for text in TEXTS] + [("cats", text) for text in TEXTS]
    sync_reranker, _ = remote(server_url, api)
    reranker, app, run = in_process(api)
    async with reranker:
        scores = await reranker.ascore(pairs)
        ranked = await reranker.arank(QUERY, TEXTS)
    assert scores == sync_reranker.score(pairs)
    assert ranked == sync_reranker.rank(QUERY, TEXTS)
    assert all(type(score) is float for score in scores)
    assert app.stats[run].requests == 3  # two queries, then arank's one


@pytest.mark.parametrize("api", APIS)
def test_requests_carry_the_documented_fields(api: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        texts = (
            json.loads(request.content).get("texts")
            or json.loads(request.content)["documents"]
        )
        ranks = [
            {"index": i, "score": 0.5, "relevance_score": 0.5}
            for i in range(len(texts))
        ]
        return httpx.Response(200, json=ranks if api == "tei" else {"results": ranks})

    reranker = RemoteCrossEncoder(
        "http://rerank.internal:9000/prefix/",
        api,  # type: ignore[arg-type]
        model=MODEL[api] or ("served-model" if api != "tei" else None),
        api_key="sk-123",
        transport=httpx.MockTransport(handler),
    )
    reranker.score([("q", "a"), ("q", "b")])
    (request,) = seen
    body = json.loads(request.content)
    path = {
        "cohere": "/v2/rerank",
        "tei": "/rerank",
        "infinity": "/rerank",
        "vllm": "/v1/rerank",
    }
    assert request.url.path == "/prefix" + path[api]
    assert request.headers["authorization"] == "Bearer sk-123"
    assert body["query"] == "q"
    if api == "tei":
        assert body == {
            "query": "q",
            "texts": ["a", "b"],
            "raw_scores": True,
            "truncate": True,
        }
    elif api == "infinity":
        assert body == {
            "query": "q",
            "documents": ["a", "b"],
            "return_documents": False,
            "raw_scores": True,
            "model": "served-model",
        }
    else:
        assert body == {
            "model": MODEL[api] or "served-model",
            "query": "q",
            "documents": ["a", "b"],
        }


def test_a_url_ending_in_rerank_is_used_as_given() -> None:
    reranker = RemoteCrossEncoder("http://h:1/v1/rerank/", "vllm")
    assert reranker.endpoint == "http://h:1/v1/rerank"
    assert RemoteCrossEncoder("http://h:1", "tei").endpoint == "http://h:1/rerank"


def test_tei_scores_are_sigmoid_when_raw_scores_is_off(server_url: str) -> None:
    reranker, _ = remote(server_url, "tei", raw_scores=False)
    assert reranker.score([(QUERY, TEXTS[1])]) == pytest.approx(
        [fake_sigmoid(QUERY, TEXTS[1])]
    )


# -- splitting, grouping, concurrency ------------------------------------------


def test_70_documents_go_as_three_requests_within_teis_limit(server_url: str) -> None:
    texts = [f"docker volume {i} " + "word " * (i % 7) for i in range(70)]
    reranker, run = remote(server_url, "tei", max_concurrency=3)
    scores = reranker.score([(QUERY, text) for text in texts])
    assert scores == pytest.approx([fake_logit(QUERY, text) for text in texts])
    assert sorted(stats(server_url, run)["batch_sizes"]) == [6, 32, 32]


async def test_async_split_maps_every_piece_back(server_url: str) -> None:
    texts = [f"docker volume {i} " + "move " * (i % 5) for i in range(70)]
    reranker, app, run = in_process("infinity", max_batch_size=32)
    scores = await reranker.ascore([(QUERY, text) for text in texts])
    assert scores == pytest.approx([fake_logit(QUERY, text) for text in texts])
    assert sorted(app.stats[run].batch_sizes) == [6, 32, 32]


def test_one_request_per_query_and_output_in_input_order(server_url: str) -> None:
    pairs = [
        ("docker volume", TEXTS[i % 5]) if i % 2 else ("cats purr", TEXTS[i % 5])
        for i in range(10)
    ]
    reranker, run = remote(server_url, "vllm")
    assert reranker.score(pairs) == pytest.approx(expected("vllm", pairs))
    seen = stats(server_url, run)["bodies"]
    # One request per query; they are sent concurrently, so in either order.
    assert sorted(body["query"] for body in seen) == ["cats purr", "docker volume"]


def test_sending_more_than_the_server_takes_is_a_clear_413(server_url: str) -> None:
    reranker, run = remote(server_url, "tei", max_batch_size=40)
    with pytest.raises(
        RemoteRerankError, match=r"HTTP 413: batch size 40 .*max_batch_size"
    ) as info:
        reranker.score([(QUERY, f"text {i}") for i in range(40)])
    assert info.value.status == 413
    assert stats(server_url, run)["requests"] == 1


def test_sync_requests_run_concurrently_up_to_the_bound(server_url: str) -> None:
    # The server holds each request until two are in flight: a serial client
    # would stall (and fail), an unbounded one would show six.
    reranker, run = remote(
        server_url, "tei", "barrier", max_batch_size=2, max_concurrency=2
    )
    texts = [f"text {i}" for i in range(12)]
    assert reranker.score([(QUERY, t) for t in texts]) == pytest.approx(
        expected("tei", [(QUERY, t) for t in texts])
    )
    seen = stats(server_url, run)
    assert seen["requests"] == 6
    assert seen["max_in_flight"] == 2


async def test_async_requests_run_concurrently_up_to_the_bound() -> None:
    reranker, app, run = in_process(
        "cohere",
        "barrier",
        max_batch_size=2,
        max_concurrency=3,
        headers={"x-barrier": "3"},
    )
    texts = [f"text {i}" for i in range(18)]
    await reranker.ascore([(QUERY, t) for t in texts])
    assert app.stats[run].requests == 9
    assert app.stats[run].max_in_flight == 3


# -- faults ----------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["503-once", "502-once", "504-once", "close-once"])
def test_busy_or_dropped_answers_are_retried(
    server_url: str, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    reranker, run = remote(server_url, "tei", fault)
    with caplog.at_level(logging.WARNING):
        scores = reranker.score([(QUERY, t) for t in TEXTS])
    assert scores == pytest.approx(expected("tei", [(QUERY, t) for t in TEXTS]))
    assert stats(server_url, run)["requests"] == 2
    assert "retry 1 of 3" in caplog.text


async def test_async_retries_a_dropped_connection(server_url: str) -> None:
    reranker, run = remote(server_url, "vllm", "close-once")
    async with reranker:
        scores = await reranker.ascore([(QUERY, t) for t in TEXTS])
    assert scores == pytest.approx(expected("vllm", [(QUERY, t) for t in TEXTS]))
    assert stats(server_url, run)["requests"] == 2


def test_retries_give_up_with_the_last_status(server_url: str) -> None:
    reranker, run = remote(server_url, "tei", "503-always", max_retries=2)
    with pytest.raises(
        RemoteRerankError,
        match=r"failed request 1 of 1 .* 3 times.*HTTP 503: Model is overloaded",
    ) as info:
        reranker.score([(QUERY, "a")])
    assert info.value.status == 503
    assert stats(server_url, run)["requests"] == 3


def test_a_connection_dropped_every_time_gives_up(server_url: str) -> None:
    reranker, run = remote(server_url, "infinity", "close-always", max_retries=1)
    with pytest.raises(RemoteRerankError, match="RemoteProtocolError") as info:
        reranker.score([(QUERY, "a")])
    assert not isinstance(info.value, TimeoutError)
    assert stats(server_url, run)["requests"] == 2


def test_a_refused_connection_is_retried_then_named() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    reranker = RemoteCrossEncoder(
        f"http://127.0.0.1:{port}", "tei", max_retries=2, backoff=0.0
    )
    with pytest.raises(
        RemoteRerankError,
        match=rf"tei server at http://127.0.0.1:{port}/rerank failed .* 3 times.*ConnectError",
    ):
        reranker.score([("q", "a")])


def test_429_waits_as_long_as_retry_after_says(
    server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    reranker, run = remote(
        server_url, "cohere", "429-once", headers={"x-retry-after": "1"}
    )
    with caplog.at_level(logging.WARNING):
        reranker.score([(QUERY, "a")])
    first, second = stats(server_url, run)["arrivals"]
    assert second - first >= 0.9  # backoff is 0: only Retry-After made it wait
    assert "in 1.00 s (Retry-After)" in caplog.text


def test_a_slow_server_times_out_without_retrying(server_url: str) -> None:
    reranker, run = remote(server_url, "tei", "slow", timeout=0.3)
    with pytest.raises(
        RemoteRerankTimeoutError,
        match=r"did not answer request 1 of 1 .* within timeout=0.3 s",
    ) as info:
        reranker.score([(QUERY, "a")])
    assert isinstance(info.value, TimeoutError)
    assert stats(server_url, run)["requests"] == 1


async def test_async_slow_server_times_out(server_url: str) -> None:
    reranker, _ = remote(server_url, "vllm", "slow", timeout=0.3)
    with pytest.raises(RemoteRerankTimeoutError):
        await reranker.ascore([(QUERY, "a")])


# -- timeout: one deadline per request, connect to last byte ---------------------

TIMEOUT_MESSAGE = (
    r"did not answer request 1 of 1 \(1 document\) within timeout=1.0 s "
    r"\(connecting, sending and reading the whole answer\); "
    r"pass a larger timeout=, e.g. RemoteCrossEncoder\(..., timeout=2\)"
)


@pytest.mark.parametrize("trickled", ["body", "headers and body"])
def test_an_answer_trickled_past_timeout_raises_at_the_deadline(trickled: str) -> None:
    # One byte every 0.3 s: each read is quick, so httpx's per-read timeout
    # never fires, but the whole answer would take 8 s or more.
    with TrickleServer(0.3, headers=trickled != "body") as server:
        reranker = RemoteCrossEncoder(server.url, "tei", timeout=1.0, backoff=0.0)
        with pytest.raises(RemoteRerankTimeoutError, match=TIMEOUT_MESSAGE):
            reranker.score([(QUERY, "a")])
        assert server.answers_finished == 0  # raised while the server still sent
        assert server.requests == 1  # and a timeout is not retried


@pytest.mark.parametrize("trickled", ["body", "headers and body"])
async def test_async_answer_trickled_past_timeout_raises_at_the_deadline(
    trickled: str,
) -> None:
    with TrickleServer(0.3, headers=trickled != "body") as server:
        reranker = RemoteCrossEncoder(server.url, "tei", timeout=1.0, backoff=0.0)
        async with reranker:
            with pytest.raises(RemoteRerankTimeoutError, match=TIMEOUT_MESSAGE):
                await reranker.ascore([(QUERY, "a")])
        assert server.answers_finished == 0
        assert server.requests == 1


@pytest.mark.parametrize("trickled", ["body", "headers and body"])
async def test_a_trickled_answer_within_timeout_is_read_whole(trickled: str) -> None:
    with TrickleServer(0.002, headers=trickled != "body") as server:
        reranker = RemoteCrossEncoder(server.url, "tei", timeout=60.0)
        assert reranker.score([(QUERY, "a"), (QUERY, "b")]) == [0.5, 0.5]
        async with reranker:
            assert await reranker.ascore([(QUERY, "a")]) == [0.5]
        assert server.answers_finished == 2


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A listening port whose accept queue is full: connecting to it hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        queued = []
        try:
            for _ in range(8):
                sock = socket.socket()
                queued.append(sock)
                sock.settimeout(0.5)
                try:
                    sock.connect(("127.0.0.1", port))
                except TimeoutError:
                    break
            else:
                pytest.skip("this system's TCP stack accepts every connection")
            yield port
        finally:
            for sock in queued:
                sock.close()


async def test_a_connection_not_made_within_timeout_is_retried(
    unanswered_port: int,
) -> None:
    # Unreachable (as a refused connection), not slow: retried, then named.
    reranker = RemoteCrossEncoder(
        f"http://127.0.0.1:{unanswered_port}",
        "tei",
        timeout=0.3,
        max_retries=1,
        backoff=0.0,
    )
    failed = r"failed request 1 of 1 \(1 document\) 2 times, last with ConnectTimeout"
    with pytest.raises(RemoteRerankError, match=failed) as info:
        reranker.score([(QUERY, "a")])
    assert not isinstance(info.value, TimeoutError)
    with pytest.raises(RemoteRerankError, match=failed) as info:
        await reranker.ascore([(QUERY, "a")])
    assert not isinstance(info.value, TimeoutError)


@pytest.mark.parametrize(
    ("api", "message"),
    [
        ("cohere", r"HTTP 400: invalid request: query must not be blank"),
        ("tei", r"HTTP 422: Input validation error: `query` is too long"),
        ("infinity", r"HTTP 400: ModelNotDeployedError: model=`nope`"),
        ("vllm", r"HTTP 400: The model `nope` does not exist."),
    ],
)
def test_client_errors_raise_the_servers_message_without_retrying(
    server_url: str, api: str, message: str
) -> None:
    reranker, run = remote(server_url, api, "reject")
    with pytest.raises(
        RemoteRerankError,
        match=f"{api} server at .* rejected request 1 of 1 .*{message}",
    ) as info:
        reranker.score([(QUERY, "a")])
    assert info.value.status in (400, 422)
    assert "error" in info.value.body or "message" in info.value.body
    assert stats(server_url, run)["requests"] == 1


def test_malformed_json_is_an_error_not_a_retry(server_url: str) -> None:
    reranker, run = remote(server_url, "infinity", "malformed")
    with pytest.raises(
        RemoteRerankError, match=r"malformed JSON.*no scores were attached"
    ):
        reranker.score([(QUERY, t) for t in TEXTS])
    assert stats(server_url, run)["requests"] == 1


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        ("index-out-of-range", "index 5 is out of range for the 5 documents sent"),
        ("index-missing", r"1 of 5 documents sent got no score \(index \d\)"),
        ("index-duplicate", r"index \d appears more than once"),
    ],
)
@pytest.mark.parametrize("api", APIS)
def test_a_response_without_one_score_per_document_is_refused(
    server_url: str, api: str, fault: str, problem: str
) -> None:
    reranker, _ = remote(server_url, api, fault)
    with pytest.raises(
        RemoteRerankError,
        match=f"{api} server at .* answered request 1 of 1 .*unusably: {problem}",
    ):
        reranker.score([(QUERY, t) for t in TEXTS])


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        ("score-nan", r"result for index \d has the non-finite score nan"),
        ("score-null", r'result for index \d has no numeric "(score|relevance_score)"'),
    ],
)
@pytest.mark.parametrize("api", APIS)
async def test_a_nan_or_null_score_from_a_server_is_refused_never_returned(
    server_url: str, api: str, fault: str, problem: str
) -> None:
    from langchain_ce_rerank import Reranker

    reranker, _ = remote(server_url, api, fault)
    engine = Reranker(model=reranker, top_n=None)
    with pytest.raises(RemoteRerankError, match=f"unusably: {problem}"):
        engine.rank(QUERY, TEXTS)
    with pytest.raises(RemoteRerankError, match=f"unusably: {problem}"):
        await engine.ascore_batch([(QUERY, TEXTS)])
    with pytest.raises(RemoteRerankError, match=f"unusably: {problem}"):
        engine.rank(QUERY, TEXTS, deadline_ms=30_000)


@pytest.mark.parametrize("api", APIS)
async def test_shuffled_results_are_mapped_by_index(api: str) -> None:
    texts = [f"docker volume {'move ' * i}" for i in range(12)]
    pairs = [(QUERY, t) for t in texts]
    reranker, _, _ = in_process(api, "shuffle")
    assert await reranker.ascore(pairs) == pytest.approx(expected(api, pairs))


def test_mock_transport_results_in_reverse_order_map_by_index() -> None:
    def reversed_ranks(request: httpx.Request) -> httpx.Response:
        texts = json.loads(request.content)["texts"]
        return httpx.Response(
            200,
            json=[{"index": i, "score": float(i)} for i in reversed(range(len(texts)))],
        )

    reranker = RemoteCrossEncoder(
        "http://tei", "tei", transport=httpx.MockTransport(reversed_ranks)
    )
    assert reranker.score([("q", "a"), ("q", "b"), ("q", "c")]) == [0.0, 1.0, 2.0]
    assert reranker.rank("q", ["a", "b", "c"]) == [(2, 2.0), (1, 1.0), (0, 0.0)]


# -- as the model of CrossEncoderCompressor -------------------------------------------


def test_compressor_reranks_through_the_server(server_url: str) -> None:
    from langchain_core.documents import Document

    from langchain_ce_rerank import CrossEncoderCompressor

    reranker, run = remote(server_url, "tei", max_batch_size=2)
    compressor = CrossEncoderCompressor(model=reranker, top_n=3)
    docs = [Document(page_content=text, id=str(i)) for i, text in enumerate(TEXTS)]
    best = compressor.compress_documents(docs, QUERY)
    by_score = sorted(TEXTS, key=lambda text: -fake_logit(QUERY, text))[:3]
    assert [doc.page_content for doc in best] == by_score
    assert [doc.metadata["relevance_score"] for doc in best] == pytest.approx(
        [fake_logit(QUERY, text) for text in by_score]
    )
    assert sorted(stats(server_url, run)["batch_sizes"]) == [1, 2, 2]


async def test_compressor_reranks_through_the_server_async(server_url: str) -> None:
    from langchain_core.documents import Document

    from langchain_ce_rerank import CrossEncoderCompressor

    reranker, _ = remote(server_url, "vllm")
    compressor = CrossEncoderCompressor(model=reranker, top_n=2)
    docs = [Document(page_content=text) for text in TEXTS]
    best = await compressor.acompress_documents(docs, QUERY)
    by_score = sorted(TEXTS, key=lambda text: -fake_sigmoid(QUERY, text))[:2]
    assert [doc.page_content for doc in best] == by_score


# -- score_within: one overall deadline for a call's requests ---------------------

SLOW = {"x-slow-text": "Paris", "x-delay": "30"}  # only TEXTS[4] is slow


def test_score_within_leaves_what_misses_the_deadline_none(server_url: str) -> None:
    reranker, run = remote(
        server_url, "tei", "slow-text", headers=SLOW, max_batch_size=1
    )
    pairs = [(QUERY, text) for text in TEXTS]
    scores = reranker.score_within(pairs, 3.0)  # never raises for the time
    assert scores[4] is None
    assert scores[:4] == pytest.approx(expected("tei", pairs[:4]))
    assert all(type(score) is float for score in scores[:4])
    assert stats(server_url, run)["requests"] == 5


async def test_async_score_within_cancels_what_misses_the_deadline() -> None:
    reranker, app, run = in_process("vllm", "slow-text", headers=SLOW, max_batch_size=2)
    pairs = [(QUERY, text) for text in TEXTS]
    scores = await reranker.ascore_within(pairs, 1.0)
    # Requests of two: [0, 1], [2, 3], [4]; only the one holding TEXTS[4] is slow.
    assert scores[4] is None
    assert scores[:4] == pytest.approx(expected("vllm", pairs[:4]))
    assert app.stats[run].requests == 3


def test_a_retry_that_would_wait_past_the_deadline_is_not_waited_for(
    server_url: str,
) -> None:
    reranker, run = remote(
        server_url,
        "cohere",
        "429-once",
        headers={"x-retry-after": "30"},
        max_backoff=60,
    )
    # Without the deadline this call would sleep 30 s and then score.
    assert reranker.score_within([(QUERY, "a")], 2.0) == [None]
    assert stats(server_url, run)["requests"] == 1


def test_errors_that_are_not_about_time_still_raise_within(server_url: str) -> None:
    reranker, _ = remote(server_url, "tei", "reject")
    with pytest.raises(RemoteRerankError, match="rejected request 1 of 1"):
        reranker.score_within([(QUERY, "a")], 5.0)


def test_no_time_left_sends_nothing(server_url: str) -> None:
    reranker, run = remote(server_url, "tei")
    assert reranker.score_within([(QUERY, "a"), (QUERY, "b")], 0.0) == [None, None]
    assert stats(server_url, run)["requests"] == 0


def test_within_a_deadline_requests_go_rank_by_rank_across_queries(
    server_url: str,
) -> None:
    reranker, run = remote(server_url, "tei", max_batch_size=1, max_concurrency=1)
    pairs = [("q1", "a"), ("q1", "b"), ("q2", "c"), ("q2", "d")]
    assert None not in reranker.score_within(pairs, 10.0)
    sent = [(body["query"], body["texts"]) for body in stats(server_url, run)["bodies"]]
    assert sent == [("q1", ["a"]), ("q2", ["c"]), ("q1", ["b"]), ("q2", ["d"])]


def test_the_engine_hands_its_deadline_to_the_server_client(server_url: str) -> None:
    from langchain_core.documents import Document

    from langchain_ce_rerank import CrossEncoderCompressor

    reranker, _ = remote(server_url, "tei", "slow-text", headers=SLOW, max_batch_size=1)
    compressor = CrossEncoderCompressor(model=reranker, top_n=None, deadline_ms=3000)
    docs = [Document(page_content=text, id=str(i)) for i, text in enumerate(TEXTS)]
    out = compressor.compress_documents(docs, QUERY)
    assert [doc.id for doc in out][-1] == "4"
    assert out[-1].metadata["reranked"] is False
    assert all("relevance_score" in doc.metadata for doc in out[:-1])


# -- configuration, keys, lifecycle --------------------------------------------------


def test_api_key_from_the_environment_is_sent_and_never_shown(
    server_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RERANK_API_KEY", "sk-secret-42")
    run = uuid.uuid4().hex
    reranker = RemoteCrossEncoder(
        f"{server_url}/tei",
        "tei",
        headers={"x-run": run, "x-fault": "503-once"},
        backoff=0.0,
    )
    with caplog.at_level(logging.DEBUG):
        reranker.score([("q", "a")])
    assert stats(server_url, run)["authorization"] == ["Bearer sk-secret-42"] * 2
    assert "sk-secret-42" not in caplog.text
    assert "sk-secret-42" not in repr(reranker)
    assert "sk-secret-42" not in str(reranker.model_dump())


def test_cohere_reads_co_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RERANK_API_KEY", raising=False)
    monkeypatch.setenv("CO_API_KEY", "co-key")
    reranker = RemoteCrossEncoder(
        "https://api.cohere.com", "cohere", model="rerank-v3.5"
    )
    assert reranker.api_key is not None
    assert reranker.api_key.get_secret_value() == "co-key"


def test_cohere_without_a_key_is_refused_by_the_server(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RERANK_API_KEY", raising=False)
    monkeypatch.delenv("CO_API_KEY", raising=False)
    reranker = RemoteCrossEncoder(f"{server_url}/cohere", "cohere", model="rerank-v3.5")
    with pytest.raises(
        RemoteRerankError, match=r"HTTP 401: no api key supplied; check api_key"
    ):
        reranker.score([("q", "a")])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "localhost:8080", "api": "tei"}, "is not an http"),
        ({"url": "http://h", "api": "cohere"}, "needs a model name"),
        (
            {"url": "http://h", "api": "vllm", "raw_scores": True},
            "raw_scores=True is not offered",
        ),
        ({"url": "http://h", "api": "tgi"}, "api"),
        ({"url": "http://h", "api": "tei", "max_batch_size": 0}, "max_batch_size"),
        ({"url": "http://h", "api": "tei", "max_batchsize": 8}, "max_batchsize"),
    ],
)
def test_bad_settings_fail_at_construction(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        RemoteCrossEncoder(**kwargs)


def test_pairs_must_be_string_pairs() -> None:
    reranker = RemoteCrossEncoder("http://h", "tei")
    with pytest.raises(TypeError, match=r"pair 1 is \('q',\)"):
        reranker.score([("q", "a"), ("q",)])  # type: ignore[list-item]
    assert reranker.score([]) == []


def test_without_httpx_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(ImportError, match=re.escape(install_hint("remote"))):
        RemoteCrossEncoder("http://h", "tei")


def test_an_async_only_transport_is_refused_by_the_sync_path() -> None:
    reranker, _, _ = in_process("tei")
    with pytest.raises(TypeError, match="only serves async calls"):
        reranker.score([("q", "a")])


def test_one_client_serves_several_event_loops(server_url: str) -> None:
    reranker, run = remote(server_url, "tei")
    first = asyncio.run(reranker.ascore([(QUERY, "a")]))
    second = asyncio.run(reranker.ascore([(QUERY, "a")]))
    assert first == second
    assert stats(server_url, run)["requests"] == 2


def test_close_then_reuse_opens_a_new_client(server_url: str) -> None:
    reranker, _ = remote(server_url, "tei")
    with reranker:
        reranker.score([(QUERY, "a")])
    assert reranker.score([(QUERY, "a")]) == pytest.approx([fake_logit(QUERY, "a")])
    reranker.close()


# -- retry arithmetic -------------------------------------------------------------------


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_backoff_doubles_with_jitter_and_caps() -> None:
    for attempt in range(4):
        delay = backoff_delay(attempt, 1.0, 100.0, None)
        assert 2**attempt / 2 <= delay <= 2**attempt
    assert backoff_delay(10, 1.0, 5.0, None) == 5.0
    assert backoff_delay(0, 1.0, 5.0, 2.0) == 2.0
    assert backoff_delay(0, 1.0, 5.0, 60.0) == 5.0


@pytest.mark.parametrize("name", serving.__all__)
def test_docstring_examples_run(name: str) -> None:
    doc = getattr(serving, name).__doc__ or ""
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    assert blocks, f"{name} has no example"
    code = "\n".join(textwrap.dedent(block) for block in blocks)
    exec(compile(code, f"<{name} docstring>", "exec"), {})
