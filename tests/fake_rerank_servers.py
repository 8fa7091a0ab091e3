"""Fake reranking servers speaking the published schemas of Cohere v2, TEI,
Infinity and vLLM, with faults on demand, for `RemoteCrossEncoder`'s tests.

One ASGI app serves all four under a path prefix per api:

- `POST /cohere/v2/rerank`  {model, query, documents, top_n?, max_tokens_per_doc?}
  -> {id, results: [{index, relevance_score}], meta}; needs a Bearer key.
- `POST /tei/rerank`        {query, texts, raw_scores?, return_text?, truncate?,
  truncation_direction?} -> bare array [{index, score}]; 413 over 32 texts.
- `POST /infinity/rerank`   {query, documents, return_documents?, raw_scores?,
  model?, top_n?} -> {object, results: [{relevance_score, index}], model, usage, id}
- `POST /vllm/v1/rerank`    {model?, query, documents, top_n?}
  -> {id, model, usage, results: [{index, document: {text}, relevance_score}]}

Requests are validated strictly (unknown fields get a 422), so a client that
drifts from a schema fails here. Results come back sorted by score, as the
real servers send them, never in input order.

A test picks a fault with the `x-fault` header and keeps its own counters with
`x-run` (read back from `GET /_stats/<run>`). Faults: `503-once`, `502-once`,
`504-once`, `503-always`, `429-once` (with `Retry-After: <x-retry-after>`),
`close-once`, `close-always` (drop the connection mid-body), `slow` (answer
after `x-delay` seconds), `slow-text` (the same, only for a request with a
text containing `x-slow-text`), `malformed`, `index-out-of-range`, `index-missing`,
`index-duplicate`, `score-nan` (the best score is the JSON token `NaN`),
`score-null` (it is `null`), `shuffle`, `reject` (the api's own 4xx error body) and
`barrier` (hold each request until `x-barrier` requests are in flight, to
observe concurrency without timing).

`python tests/fake_rerank_servers.py` serves it with uvicorn on a free port of
127.0.0.1 and prints the port on the first line of stdout.

`TrickleServer` is a second fake, below ASGI: a plain socket server that
answers every request with a valid TEI answer, one byte at a time.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

TEI_MAX_CLIENT_BATCH_SIZE = 32


def fake_logit(query: str, text: str) -> float:
    """The fake model: query words found in the text, minus a length penalty."""
    words = set(text.lower().split())
    return sum(word in words for word in query.lower().split()) - len(text) / 1000


def fake_sigmoid(query: str, text: str) -> float:
    """`fake_logit` through a sigmoid, as servers report without raw scores."""
    return 1 / (1 + math.exp(-fake_logit(query, text)))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CohereRequest(_Strict):
    model: str
    query: str
    documents: list[str]
    top_n: int | None = None
    max_tokens_per_doc: int | None = None


class TeiRequest(_Strict):
    query: str
    texts: list[str]
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool | None = False
    truncation_direction: str = "right"


class InfinityRequest(_Strict):
    query: str
    documents: list[str]
    return_documents: bool = False
    raw_scores: bool = False
    model: str = "default/not-specified"
    top_n: int | None = None


class VllmRequest(_Strict):
    model: str | None = None
    query: str
    documents: list[str]
    top_n: int = 0


@dataclass
class RunStats:
    """What one test's requests looked like, as the server saw them."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    authorization: list[str | None] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    waiting: int = 0
    gate: asyncio.Event | None = None

    def public(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "max_in_flight": self.max_in_flight,
            "batch_sizes": self.batch_sizes,
            "arrivals": self.arrivals,
            "authorization": self.authorization,
            "bodies": self.bodies,
        }


_ERRORS = {
    "cohere": (400, {"message": "invalid request: query must not be blank"}),
    "tei": (
        422,
        {
            "error": "Input validation error: `query` is too long",
            "error_type": "Validation",
        },
    ),
    "infinity": (
        400,
        {
            "error": {
                "message": "ModelNotDeployedError: model=`nope` does not support `rerank`",
                "type": None,
                "param": None,
                "code": 400,
            }
        },
    ),
    "vllm": (
        400,
        {
            "error": {
                "message": "The model `nope` does not exist.",
                "type": "NotFoundError",
                "param": None,
                "code": 404,
            }
        },
    ),
}


class FakeRerankServers:
    """The ASGI app; `stats` maps each `x-run` to its `RunStats`."""

    def __init__(self) -> None:
        self.stats: dict[str, RunStats] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path = request.url.path
        if request.method == "GET" and path.startswith("/_stats/"):
            run = self.stats.get(path.removeprefix("/_stats/"), RunStats())
            await JSONResponse(run.public())(scope, receive, send)
            return
        api = {
            "/cohere/v2/rerank": "cohere",
            "/tei/rerank": "tei",
            "/infinity/rerank": "infinity",
            "/vllm/v1/rerank": "vllm",
        }.get(path)
        if api is None or request.method != "POST":
            await JSONResponse({"error": f"no route {path}"}, 404)(scope, receive, send)
            return
        stats = self.stats.setdefault(request.headers.get("x-run", ""), RunStats())
        stats.requests += 1
        stats.arrivals.append(time.monotonic())
        stats.authorization.append(request.headers.get("authorization"))
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            response = await self._answer(api, request, stats)
        finally:
            # Counted out before answering: the client may only send its next
            # request after reading this answer.
            stats.in_flight -= 1
        if response is None:  # close-*: start a body, then drop the connection
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"4096"),
                    ],
                }
            )
            await send(
                {
                    "type": "http.response.body",
                    "body": b'[{"index": 0',
                    "more_body": True,
                }
            )
            msg = "fake server drops the connection mid-response"
            raise ConnectionAbortedError(msg)
        await response(scope, receive, send)

    async def _answer(
        self, api: str, request: Request, stats: RunStats
    ) -> Response | None:
        fault = request.headers.get("x-fault", "")
        first = stats.requests == 1
        body = await request.json()
        stats.bodies.append(body)
        if fault == "barrier":
            await self._barrier(stats, int(request.headers.get("x-barrier", "2")))
        if fault in ("503-once", "502-once", "504-once") and first:
            status = int(fault[:3])
            return JSONResponse({"error": "Model is overloaded"}, status)
        if fault == "503-always":
            return JSONResponse({"error": "Model is overloaded"}, 503)
        if fault == "429-once" and first:
            retry_after = request.headers.get("x-retry-after", "1")
            return JSONResponse(
                {"message": "too many requests"}, 429, {"Retry-After": retry_after}
            )
        if fault == "close-always" or (fault == "close-once" and first):
            return None
        if fault == "slow" or (
            fault == "slow-text"
            and any(
                request.headers.get("x-slow-text", "\0") in text
                for text in body.get("texts") or body.get("documents") or []
            )
        ):
            await asyncio.sleep(float(request.headers.get("x-delay", "5")))
        if fault == "malformed":
            return Response('{"results": [{"index": 0, "relevance_sc', 200)
        if fault == "reject":
            status, error = _ERRORS[api]
            return JSONResponse(error, status)
        return self._rerank(api, body, request, fault, stats)

    async def _barrier(self, stats: RunStats, size: int) -> None:
        if stats.gate is None:
            stats.gate = asyncio.Event()
        gate = stats.gate
        stats.waiting += 1
        if stats.waiting >= size:
            gate.set()
            stats.gate, stats.waiting = None, 0
            return
        try:
            await asyncio.wait_for(gate.wait(), timeout=10)
        except asyncio.TimeoutError:
            stats.waiting -= 1

    def _rerank(
        self, api: str, body: Any, request: Request, fault: str, stats: RunStats
    ) -> Response:
        schemas: dict[str, type[_Strict]] = {
            "cohere": CohereRequest,
            "tei": TeiRequest,
            "infinity": InfinityRequest,
            "vllm": VllmRequest,
        }
        model_type = schemas[api]
        try:
            parsed: Any = model_type.model_validate(body)
        except ValidationError as exc:
            return JSONResponse({"error": str(exc)}, 422)
        query = parsed.query
        texts = parsed.texts if api == "tei" else parsed.documents
        stats.batch_sizes.append(len(texts))
        if api == "cohere" and not (
            request.headers.get("authorization") or ""
        ).startswith("Bearer "):
            return JSONResponse({"message": "no api key supplied"}, 401)
        if api == "tei" and len(texts) > TEI_MAX_CLIENT_BATCH_SIZE:
            error = {
                "error": f"batch size {len(texts)} > maximum allowed batch size "
                f"{TEI_MAX_CLIENT_BATCH_SIZE}",
                "error_type": "Validation",
            }
            return JSONResponse(error, 413)
        raw = api in ("tei", "infinity") and parsed.raw_scores
        score = fake_logit if raw else fake_sigmoid
        ranks = sorted(
            ({"index": i, "score": score(query, t)} for i, t in enumerate(texts)),
            key=lambda rank: -rank["score"],
        )
        if fault == "shuffle":
            random.Random(len(texts)).shuffle(ranks)
        if fault == "index-out-of-range":
            ranks[0]["index"] = len(texts)
        if fault == "index-missing":
            ranks.pop()
        if fault == "index-duplicate":
            ranks[-1]["index"] = ranks[0]["index"]
        if fault in ("score-nan", "score-null"):
            ranks[0]["score"] = math.nan if fault == "score-nan" else None
        respond = _json_with_nan if fault == "score-nan" else JSONResponse
        if api == "tei":
            return respond(ranks)
        results: list[dict[str, Any]] = [
            {"index": r["index"], "relevance_score": r["score"]} for r in ranks
        ]
        if api == "cohere":
            return respond(
                {
                    "id": "07734bd2-2473-4f07-94e1-0d9f0e6843cf",
                    "results": results,
                    "meta": {
                        "api_version": {"version": "2"},
                        "billed_units": {"search_units": 1},
                    },
                }
            )
        usage = {"prompt_tokens": 7, "total_tokens": 7}
        if api == "infinity":
            return respond(
                {
                    "object": "rerank",
                    "results": results,
                    "model": parsed.model,
                    "usage": usage,
                    "id": "infinity-1",
                    "created": 0,
                }
            )
        for result in results:
            index = result["index"]
            text = texts[index] if 0 <= index < len(texts) else None
            result["document"] = {"text": text}
        return respond(
            {
                "id": "rerank-1",
                "model": parsed.model or "served",
                "usage": usage,
                "results": results,
            }
        )


def _json_with_nan(payload: Any) -> Response:
    """A JSON answer that may hold `NaN` (JSONResponse refuses to write it)."""
    return Response(json.dumps(payload, allow_nan=True), media_type="application/json")


class TrickleServer:
    """A TEI server on 127.0.0.1 that answers every request, slowly.

    Each answer is a valid `POST /rerank` result (a score of 0.5 for each text)
    sent one byte every `interval` seconds: the body only (`headers=False`,
    headers go at once), or the status line and headers too. Serves until the
    `with` block ends; `answers_finished` counts answers sent to the last byte.
    """

    def __init__(self, interval: float, *, headers: bool = False) -> None:
        self.interval = interval
        self.trickle_headers = headers
        self.requests = 0
        self.answers_finished = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._closed = threading.Event()

    def __enter__(self) -> TrickleServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._closed.set()
        self._sock.close()

    def answer_size(self, n_texts: int) -> int:
        """Bytes of one whole answer, headers included."""
        return len(self._answer(n_texts))

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                body += conn.recv(65536)
            self.requests += 1
            answer = self._answer(len(json.loads(body)["texts"]))
            start = 0 if self.trickle_headers else answer.index(b"\r\n\r\n") + 4
            try:
                conn.sendall(answer[:start])
                for i in range(start, len(answer)):
                    if self._closed.wait(self.interval):
                        return
                    conn.sendall(answer[i : i + 1])
            except OSError:  # the client gave up and closed the connection
                return
            self.answers_finished += 1

    @staticmethod
    def _answer(n_texts: int) -> bytes:
        body = json.dumps([{"index": i, "score": 0.5} for i in range(n_texts)])
        head = (
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        return (head + body).encode()


def main() -> None:
    """Serve the fake servers on a free port of 127.0.0.1; print the port."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(
        FakeRerankServers(), log_level="critical", lifespan="off", access_log=False
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
