"""`RemoteCrossEncoder`: score (query, text) pairs on a reranking server.

Speaks the published rerank APIs of Cohere (v2), Hugging Face
text-embeddings-inference, Infinity and vLLM, and this package's own
`ce-rerank serve` (see `remote_apis.py` for each schema and where it is
documented). It has the scoring method of LangChain's
`BaseCrossEncoder` without importing LangChain, so any door of this package
that takes a model with `score(text_pairs)` can rerank through a server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    model_validator,
)
from typing_extensions import Self

from langchain_ce_rerank.engine.checks import check_instruction
from langchain_ce_rerank.errors import InstructionNotSupportedError
from langchain_ce_rerank.optional import require
from langchain_ce_rerank.serving._exchange import (
    Exchange,
    Request,
    assemble,
    by_rank,
    plan_requests,
)
from langchain_ce_rerank.serving._retry import (
    DeadlinePassedError,
    RemoteRerankError,
    RemoteRerankTimeoutError,
)
from langchain_ce_rerank.serving.remote_apis import API_SPECS, ApiName, ApiSpec

if TYPE_CHECKING:
    import httpx

__all__ = ["RemoteCrossEncoder", "RemoteRerankError", "RemoteRerankTimeoutError"]

logger = logging.getLogger(__name__)

API_KEY_ENV = "RERANK_API_KEY"
"""Read when no `api_key` is given (then `CO_API_KEY` for Cohere)."""


def _require_httpx() -> None:
    require("httpx", extra="remote", feature="RemoteCrossEncoder")


class RemoteCrossEncoder(BaseModel):
    """A cross-encoder that runs on a reranking server you already operate.

    `score(text_pairs)` groups the pairs by query, sends one request per query
    (split into pieces of at most `max_batch_size` documents, sent at once,
    up to `max_concurrency` at a time) and returns one plain `float` per pair
    in input order. Scores are matched to texts by the `index` in each result,
    never by position, and a response that does not score every document sent
    exactly once raises `RemoteRerankError` instead of attaching a score to the
    wrong text. Busy or briefly unreachable servers (HTTP 429, 502, 503, 504,
    refused, dropped or unanswered connections) are retried with exponential
    backoff and jitter, honouring `Retry-After`; other errors are raised at
    once with the server's message, and a request whose whole answer has not
    arrived `timeout` seconds after it started raises
    `RemoteRerankTimeoutError`.

    `instruction` (a setting, or per call) is sent only to a server whose
    schema has a place for it, this package's own (`api="ce-rerank"`);
    for the others it is refused with `InstructionNotSupportedError` (at
    construction for the setting, at the call for a call's), never dropped.

    Scores are on the server's scale. `tei` and `infinity` are asked for raw
    logits (`raw_scores=True`), the scale of `CrossEncoderCompressor`'s scores
    for the same model; Cohere and vLLM return their own relevance scores
    (vLLM applies the model's activation, a sigmoid for one-label models).
    TEI is asked to truncate pairs longer than the model's window, as an
    in-process cross-encoder does, rather than refuse them.

    `score_within(text_pairs, seconds)` (and `ascore_within`) keeps one
    overall deadline for all of a call's requests, retries and waits: what
    has not come back by then is None, and nothing is raised for it. The
    engine calls it under `deadline_ms`.

    `score`/`rank` use a pooled `httpx.Client` (safe to share between
    threads), `ascore`/`arank` an `httpx.AsyncClient`; `close()`/`aclose()`
    or a `with`/`async with` block release them.

    Example:
        ```python
        import json

        import httpx
        from langchain_ce_rerank.serving import RemoteCrossEncoder


        def tei(request: httpx.Request) -> httpx.Response:
            # Stands in for a TEI server: `transport=` is for tests; in use, drop
            # it and point the URL at the server, e.g. "http://localhost:8080".
            texts = json.loads(request.content)["texts"]
            ranks = [{"index": i, "score": float(len(t))} for i, t in enumerate(texts)]
            return httpx.Response(200, json=sorted(ranks, key=lambda r: -r["score"]))


        with RemoteCrossEncoder(
            "http://tei:8080", "tei", transport=httpx.MockTransport(tei)
        ) as reranker:
            print(reranker.score([("Where is Paris?", "Paris is in France.")]))
            print(
                reranker.rank("Where is Paris?", ["Cats purr.", "Paris is in France."])
            )
        ```
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    """Base URL of the server (`http://host:port`, with any path prefix); the
    api's endpoint is appended. A URL that already ends in `/rerank` is used
    as given."""
    api: ApiName
    """The server's API: `"cohere"` (`POST /v2/rerank`), `"tei"`
    (text-embeddings-inference, `POST /rerank`), `"infinity"` (`POST /rerank`),
    `"vllm"` (`POST /v1/rerank`) or `"ce-rerank"` (this package's `ce-rerank
    serve`, `POST /v2/rerank`: Cohere's schema plus `instruction`)."""
    model: str | None = None
    """Model name sent with each request; required by Cohere, optional for
    Infinity and vLLM (the served model), ignored by TEI."""
    api_key: SecretStr | None = None
    """Sent as `Authorization: Bearer <key>`. Defaults to the `RERANK_API_KEY`
    environment variable (then `CO_API_KEY` for Cohere). Never logged."""
    timeout: float = Field(default=30.0, gt=0)
    """Seconds one request may take, from connecting to the last byte of the
    answer: a deadline for the whole exchange, not for each read, so a server
    that trickles its answer cannot hold the caller longer. A request that runs
    past it raises `RemoteRerankTimeoutError` and is not retried. Each retry of
    a busy or unreachable server (see `max_retries`) is a new request with its
    own `timeout`; a connection not made in time counts as unreachable."""
    max_batch_size: int | None = Field(default=None, ge=1)
    """Most documents one request carries; longer lists are split. Defaults
    per api: TEI 32 (its default `--max-client-batch-size`), Infinity 2048,
    Cohere 1000 (its recommended maximum), vLLM unlimited."""
    max_concurrency: int = Field(default=4, ge=1)
    """Most requests in flight at once for one `score`/`ascore` call."""
    max_retries: int = Field(default=3, ge=0)
    """Retries after a 429, 502, 503 or 504 answer or a failed connection."""
    backoff: float = Field(default=0.5, ge=0)
    """Seconds before the first retry; doubles for each further retry."""
    max_backoff: float = Field(default=30.0, ge=0)
    """Longest wait before a retry, a server's `Retry-After` included."""
    instruction: str | None = Field(default=None, strict=True)
    """Sent with every request as the instruction the server's model scores
    under; only `api="ce-rerank"` has a field for it (a call may override
    it with `instruction=`). None sends none (the server's default)."""
    raw_scores: bool | None = None
    """TEI and Infinity: ask for logits rather than sigmoid scores. Defaults to
    `True` for them; Cohere and vLLM have no such option."""
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    """Extra HTTP headers sent with every request."""
    tokenizer: Any = Field(default=None, repr=False, exclude=True)
    """The tokenizer the served model counts in, so that
    `long_documents="max_passage"` windows and `max_tokens_per_doc` cut at the
    model's tokens rather than at words (which leave text past the server's
    window unread): a Hugging Face id or local folder (loaded once with
    `transformers.AutoTokenizer`, from the local cache only under
    `HF_HUB_OFFLINE=1`), a loaded Hugging Face tokenizer, or a function
    `text -> [(start, end), ...]` giving each token's character span. None
    counts whitespace-separated words (logged once). See
    `engine.protocols.TokenizedScorer`."""
    transport: Any = Field(default=None, repr=False, exclude=True)
    """An `httpx` transport to use instead of the network (for tests):
    `httpx.MockTransport` serves both paths, `httpx.ASGITransport` only the
    async one."""

    _client: httpx.Client | None = PrivateAttr(default=None)
    _aclient: httpx.AsyncClient | None = PrivateAttr(default=None)
    _aclient_loop: asyncio.AbstractEventLoop | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, url: str, api: ApiName, **data: Any) -> None:
        super().__init__(url=url, api=api, **data)

    @model_validator(mode="before")
    @classmethod
    def _key_from_environment(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("api_key") is None:
            names = [API_KEY_ENV] + (
                ["CO_API_KEY"] if data.get("api") == "cohere" else []
            )
            for name in names:
                if os.environ.get(name):
                    return {**data, "api_key": os.environ[name]}
        return data

    @model_validator(mode="after")
    def _check(self) -> Self:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            msg = (
                f"url {self.url!r} is not an http(s) URL; pass the server's base "
                "URL, e.g. RemoteCrossEncoder('http://localhost:8080', api='tei')"
            )
            raise ValueError(msg)
        if self.spec.needs_model and not self.model:
            msg = (
                f"api={self.api!r} needs a model name; pass "
                "RemoteCrossEncoder(url, api='cohere', model='rerank-v3.5')"
            )
            raise ValueError(msg)
        if self.instruction is not None:
            self._instruction(self.instruction)
        if self.raw_scores and not self.spec.supports_raw_scores:
            msg = (
                f"raw_scores=True is not offered by api={self.api!r} (only 'tei' and "
                "'infinity' return logits); leave raw_scores unset"
            )
            raise ValueError(msg)
        if self.tokenizer is not None and not (
            isinstance(self.tokenizer, str | os.PathLike) or callable(self.tokenizer)
        ):
            msg = (
                f"tokenizer must be a Hugging Face id or folder, a loaded tokenizer "
                f"or a function returning (start, end) token spans, got "
                f"{type(self.tokenizer).__name__}"
            )
            raise ValueError(msg)
        _require_httpx()
        return self

    @property
    def spec(self) -> ApiSpec:
        """The request and response shapes of `api`."""
        return API_SPECS[self.api]

    @property
    def takes_instruction(self) -> bool:
        """Whether the API has a place for an instruction (`"ce-rerank"`)."""
        return self.spec.supports_instruction

    @property
    def instruction_refusal(self) -> str | None:
        """Why the API cannot carry an instruction, or None when it can."""
        return self.spec.instruction_refusal()

    def _instruction(self, instruction: str | None) -> str | None:
        """A call's instruction (else the setting), refused where it cannot go.

        Raises:
            InstructionNotSupportedError: The API has no field for it.
        """
        resolved = self.instruction if instruction is None else instruction
        if resolved is None:
            return None
        check_instruction(resolved)
        reason = self.spec.instruction_refusal()
        if reason is not None:
            name = f"RemoteCrossEncoder(api={self.api!r})"
            raise InstructionNotSupportedError(name, reason)
        return resolved

    @property
    def endpoint(self) -> str:
        """The URL every request is posted to."""
        parts = urlsplit(self.url)
        path = parts.path.rstrip("/")
        if not path.endswith("/rerank"):
            path += self.spec.path
        return parts._replace(path=path).geturl()

    @property
    def batch_limit(self) -> int | None:
        """Documents per request: `max_batch_size`, or the api's default."""
        return self.max_batch_size or self.spec.max_batch_size

    def _client_options(self) -> dict[str, Any]:
        import httpx

        headers = dict(self.headers)
        if self.api_key is not None:
            headers["Authorization"] = f"Bearer {self.api_key.get_secret_value()}"
        return {
            "headers": headers,
            "timeout": httpx.Timeout(self.timeout),
            "limits": httpx.Limits(max_connections=max(self.max_concurrency, 10)),
        }

    def _exchange(self, instruction: str | None = None) -> Exchange:
        raw = self.raw_scores
        return Exchange(
            instruction=self._instruction(instruction),
            spec=self.spec,
            endpoint=self.endpoint,
            model=self.model,
            raw_scores=self.spec.supports_raw_scores if raw is None else raw,
            timeout=self.timeout,
            max_retries=self.max_retries,
            backoff=self.backoff,
            max_backoff=self.max_backoff,
        )

    # -- sync path ----------------------------------------------------------

    def _sync_client(self) -> httpx.Client:
        import httpx

        with self._lock:
            if self._client is None:
                transport = self.transport
                if transport is not None and not isinstance(
                    transport, httpx.BaseTransport
                ):
                    msg = (
                        f"transport {type(transport).__name__} only serves async "
                        "calls; use ascore()/arank(), or pass httpx.MockTransport"
                    )
                    raise TypeError(msg)
                self._client = httpx.Client(
                    transport=transport, **self._client_options()
                )
            return self._client

    def score(
        self,
        text_pairs: Sequence[tuple[str, str]],
        *,
        instruction: str | None = None,
    ) -> list[float]:
        """One score per (query, text) pair, in input order, as plain floats.

        Args:
            text_pairs: (query, text) pairs.
            instruction: Override of the `instruction` setting.

        Raises:
            RemoteRerankError: The server refused or failed a request (after
                retries), or answered without exactly one score per document.
            RemoteRerankTimeoutError: A request's whole answer took longer than
                `timeout` seconds.
            InstructionNotSupportedError: An instruction for an API without
                a field for it.
        """
        exchange = self._exchange(instruction)
        requests = plan_requests(text_pairs, self.batch_limit)
        if not requests:
            return []
        client = self._sync_client()
        total = len(requests)
        workers = min(self.max_concurrency, total)
        if workers == 1:
            results = [
                exchange.send(client, request, i + 1, total)
                for i, request in enumerate(requests)
            ]
            return assemble(len(text_pairs), requests, results)
        with ThreadPoolExecutor(workers, thread_name_prefix="rerank-http") as pool:
            futures = [
                pool.submit(exchange.send, client, request, i + 1, total)
                for i, request in enumerate(requests)
            ]
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                future.cancel()
            for future in futures:
                if future.done() and not future.cancelled() and future.exception():
                    raise future.exception()  # type: ignore[misc]
            results = [future.result() for future in futures]
        return assemble(len(text_pairs), requests, results)

    def score_within(
        self,
        text_pairs: Sequence[tuple[str, str]],
        seconds: float,
        /,
        *,
        instruction: str | None = None,
    ) -> list[float | None]:
        """`score` within one overall deadline: what misses it is None.

        The same requests as `score` (rank by rank across queries, so each
        query's first texts go first), sent `max_concurrency` at a time, with
        one deadline `seconds` from now for all of them: no attempt runs past
        it (each attempt's `timeout` is cut to the time left), no retry waits
        past it (a `Retry-After` or backoff that would end after it gives the
        request up), and no request starts after it. A request that has not
        answered by then leaves its pairs None; this never raises because the
        time ran out. Errors that are not about time (a refused request,
        retries used up, an unusable answer) raise as in `score`.

        Args:
            text_pairs: (query, text) pairs.
            seconds: The time budget, from now.
            instruction: Override of the `instruction` setting.

        Returns:
            One plain float per pair in input order, None where unscored.

        Raises:
            RemoteRerankError: As for `score`.
        """
        exchange = self._exchange(instruction)
        requests = by_rank(plan_requests(text_pairs, self.batch_limit))
        scores: list[float | None] = [None] * len(text_pairs)
        if not requests or seconds <= 0:
            return scores
        deadline = time.monotonic() + seconds
        client = self._sync_client()
        total = len(requests)
        pool = ThreadPoolExecutor(
            min(self.max_concurrency, total), thread_name_prefix="rerank-http"
        )
        try:
            futures: dict[Future[list[float]], Request] = {
                pool.submit(exchange.send, client, request, i + 1, total, deadline): (
                    request
                )
                for i, request in enumerate(requests)
            }
            pending = set(futures)
            while pending and (left := deadline - time.monotonic()) > 0:
                done, pending = wait(pending, left, return_when=FIRST_EXCEPTION)
                for future in done:
                    _place(scores, futures[future], future.exception(), future)
        finally:
            # Requests in flight end at the deadline by themselves.
            pool.shutdown(wait=False, cancel_futures=True)
        return scores

    def rank(
        self, query: str, texts: Sequence[str], *, instruction: str | None = None
    ) -> list[tuple[int, float]]:
        """`(index into texts, score)` pairs, best first; ties keep input order."""
        scores = self.score([(query, text) for text in texts], instruction=instruction)
        return sorted(enumerate(scores), key=lambda item: -item[1])

    def close(self) -> None:
        """Close the sync client's connections (a later call opens new ones)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- async path ---------------------------------------------------------

    def _async_client(self) -> httpx.AsyncClient:
        import httpx

        loop = asyncio.get_running_loop()
        with self._lock:
            # An AsyncClient's connections belong to the loop that opened them.
            if self._aclient is None or self._aclient_loop is not loop:
                transport = self.transport
                if transport is not None and not isinstance(
                    transport, httpx.AsyncBaseTransport
                ):
                    msg = (
                        f"transport {type(transport).__name__} only serves sync "
                        "calls; use score()/rank(), or pass httpx.MockTransport"
                    )
                    raise TypeError(msg)
                self._aclient = httpx.AsyncClient(
                    transport=transport, **self._client_options()
                )
                self._aclient_loop = loop
            return self._aclient

    async def ascore(
        self,
        text_pairs: Sequence[tuple[str, str]],
        *,
        instruction: str | None = None,
    ) -> list[float]:
        """Async `score`: the same requests, sent with `httpx.AsyncClient`."""
        exchange = self._exchange(instruction)
        requests = plan_requests(text_pairs, self.batch_limit)
        if not requests:
            return []
        client = self._async_client()
        total = len(requests)
        gate = asyncio.Semaphore(self.max_concurrency)

        async def send(number: int, request: Request) -> list[float]:
            async with gate:
                return await exchange.asend(client, request, number, total)

        tasks = [
            asyncio.ensure_future(send(i + 1, request))
            for i, request in enumerate(requests)
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return assemble(len(text_pairs), requests, [t.result() for t in tasks])

    async def ascore_within(
        self,
        text_pairs: Sequence[tuple[str, str]],
        seconds: float,
        /,
        *,
        instruction: str | None = None,
    ) -> list[float | None]:
        """Async `score_within`: requests not answered by the deadline are cancelled."""
        exchange = self._exchange(instruction)
        requests = by_rank(plan_requests(text_pairs, self.batch_limit))
        scores: list[float | None] = [None] * len(text_pairs)
        if not requests or seconds <= 0:
            return scores
        deadline = time.monotonic() + seconds
        client = self._async_client()
        total = len(requests)
        gate = asyncio.Semaphore(self.max_concurrency)

        async def send(number: int, request: Request) -> list[float]:
            async with gate:
                return await exchange.asend(client, request, number, total, deadline)

        tasks = {
            asyncio.ensure_future(send(i + 1, request)): request
            for i, request in enumerate(requests)
        }
        pending = set(tasks)
        try:
            while pending and (left := deadline - time.monotonic()) > 0:
                done, pending = await asyncio.wait(
                    pending, timeout=left, return_when=asyncio.FIRST_EXCEPTION
                )
                for task in done:
                    _place(scores, tasks[task], task.exception(), task)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return scores

    async def arank(
        self, query: str, texts: Sequence[str], *, instruction: str | None = None
    ) -> list[tuple[int, float]]:
        """Async `rank`."""
        pairs = [(query, text) for text in texts]
        scores = await self.ascore(pairs, instruction=instruction)
        return sorted(enumerate(scores), key=lambda item: -item[1])

    async def aclose(self) -> None:
        """Close both clients' connections (a later call opens new ones)."""
        with self._lock:
            aclient, self._aclient = self._aclient, None
            loop, self._aclient_loop = self._aclient_loop, None
        if aclient is not None and loop is asyncio.get_running_loop():
            await aclient.aclose()
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _place(
    scores: list[float | None],
    request: Request,
    error: BaseException | None,
    done: Future[list[float]] | asyncio.Future[list[float]],
) -> None:
    """Put a finished request's scores in place; a deadline leaves them None.

    Raises:
        BaseException: The request's own error, unless it was the deadline.
    """
    if isinstance(error, DeadlinePassedError):
        return
    if error is not None:
        raise error
    for position, score in zip(request.positions, done.result(), strict=True):
        scores[position] = score
